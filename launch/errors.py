"""How the launch programs report mistakes in what the user asked for."""

import contextlib
import errno
import os

import tensorflow as tf

from launch import user_errors

# Re-exported: the reporting itself is free of TensorFlow (vae-submit uses it).
from launch.user_errors import ConfigError  # noqa: F401
from launch.user_errors import parse_flags_or_exit  # noqa: F401
from launch.user_errors import reject_positional_arguments  # noqa: F401
from launch.user_errors import report_user_error  # noqa: F401
from trainers import checkpointing
from trainers import workdir as workdir_lib
from trainers import workdir_lock
from vae import datasets

# Errors caused by what the user asked for: reported as one paragraph, no
# traceback. Anything else is a bug and keeps its traceback.
USER_ERRORS = (
    ConfigError,
    datasets.DataError,
    workdir_lib.WorkdirConflictError,
    workdir_lib.WorkdirUnusableError,
    workdir_lock.WorkdirBusyError,
    checkpointing.CheckpointUnreadableError,
    checkpointing.CheckpointWriteError,
)


def exit_on_user_error() -> contextlib.AbstractContextManager[None]:
    """A `with` block whose `USER_ERRORS` end the program: one paragraph on
    stderr, exit status 2. Programs wrap their work in it."""
    return user_errors.exit_on(USER_ERRORS)


# OSError numbers that mean the disk (or the workdir's filesystem), not the
# program, is at fault: full, over quota, read-only, or no permission.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
# The same, as TensorFlow's file writers (TensorBoard events, SavedModel)
# report them: an OpError whose message holds the C library's text.
_DISK_ERROR_TEXTS = tuple(os.strerror(number) for number in DISK_ERRNOS)


def disk_error_message(error: BaseException) -> str | None:
    """One paragraph for an error met while writing that the disk caused
    (a full disk, a read-only filesystem, ...); None for any other error."""
    if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
        where = f" {error.filename}" if error.filename else ""
        what = f"{error.strerror or error}"
    elif isinstance(error, tf.errors.OpError) and any(
        text in error.message for text in _DISK_ERROR_TEXTS
    ):
        where = ""
        what = checkpointing.first_line(error)
    else:
        return None
    return (
        f"Could not write{where}: {what}. The run stopped; its latest "
        "checkpoint is intact, and running the same command again "
        "resumes from it once the workdir can be written (free some "
        "space, or fix its permissions)."
    )
