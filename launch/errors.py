"""How the launch programs report mistakes in what the user asked for."""

import os
import sys
from typing import List, Sequence

from absl import flags

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


def parse_flags_or_exit(argv: Sequence[str]) -> List[str]:
    """Parses the command line like absl's default parser, but reports a bad
    flag value as a user error: one paragraph naming the flag and what it
    expects, exit status 2. Pass as `flags_parser` to `absl.app.run`."""
    try:
        return flags.FLAGS(list(argv))
    except flags.Error as error:
        report_user_error(error)
        sys.exit(2)
