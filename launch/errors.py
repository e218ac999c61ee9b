"""How the launch programs report mistakes in what the user asked for."""

import errno

# Re-exported: the reporting itself is free of TensorFlow (vae-submit uses it).
from launch.user_errors import ConfigError, parse_flags_or_exit  # noqa: F401
from launch.user_errors import report_user_error  # noqa: F401
from trainers import checkpointing
from trainers import workdir as workdir_lib
from trainers import workdir_lock
from vae import datasets

# Errors caused by what the user asked for: reported as one paragraph, no
# traceback. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, datasets.DataError, workdir_lib.WorkdirConflictError,
               workdir_lib.WorkdirUnusableError, workdir_lock.WorkdirBusyError,
               checkpointing.CheckpointUnreadableError,
               checkpointing.CheckpointWriteError)

# OSError numbers that mean the disk (or the workdir's filesystem), not the
# program, is at fault: full, over quota, read-only, or no permission.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
               errno.EPERM)


def disk_error_message(error: OSError) -> str:
    """One paragraph for an OSError of `DISK_ERRNOS` met while writing."""
    where = f" {error.filename}" if error.filename else ""
    return (f"Could not write{where}: {error.strerror or error}. The run "
            "stopped; its latest checkpoint is intact, and running the same "
            "command again resumes from it once the workdir can be written "
            "(free some space, or fix its permissions).")
