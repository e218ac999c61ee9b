"""How the launch programs report mistakes in what the user asked for."""

import os
import sys

from trainers import workdir as workdir_lib
from vae import datasets


class ConfigError(ValueError):
    """A configuration value is unusable; the message names it."""


# Errors caused by what the user asked for: reported as one paragraph, no
# traceback. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, datasets.DataError, workdir_lib.WorkdirConflictError)


def report_user_error(error: Exception) -> None:
    program = os.path.basename(sys.argv[0]) or "vae"
    print(f"{program}: error: {error}", file=sys.stderr)
