"""How the launch programs report mistakes in what the user asked for."""

from launch.user_errors import ConfigError, parse_flags_or_exit  # noqa: F401
from launch.user_errors import report_user_error  # noqa: F401
from trainers import workdir as workdir_lib
from vae import datasets

# Errors caused by what the user asked for: reported as one paragraph, no
# traceback. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, datasets.DataError, workdir_lib.WorkdirConflictError)
