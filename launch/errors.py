"""How the launch programs report mistakes in what the user asked for."""

import errno
import os
import sys
from typing import List, Optional, Sequence

from absl import flags
import tensorflow as tf

from launch import flagfiles
from trainers import checkpointing
from trainers import workdir as workdir_lib
from trainers import workdir_lock
from vae import datasets


class ConfigError(ValueError):
    """A configuration value is unusable; the message names it."""


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
# The same, as TensorFlow's file writers (TensorBoard events, SavedModel)
# report them: an OpError whose message holds the C library's text.
_DISK_ERROR_TEXTS = tuple(os.strerror(number) for number in DISK_ERRNOS)


def disk_error_message(error: BaseException) -> Optional[str]:
    """One paragraph for an error met while writing that the disk caused
    (a full disk, a read-only filesystem, ...); None for any other error."""
    if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
        where = f" {error.filename}" if error.filename else ""
        what = f"{error.strerror or error}"
    elif isinstance(error, tf.errors.OpError) and any(
            text in error.message for text in _DISK_ERROR_TEXTS):
        where = ""
        what = checkpointing.first_line(error)
    else:
        return None
    return (f"Could not write{where}: {what}. The run stopped; its latest "
            "checkpoint is intact, and running the same command again "
            "resumes from it once the workdir can be written (free some "
            "space, or fix its permissions).")


def report_user_error(error: Exception) -> None:
    program = os.path.basename(sys.argv[0]) or "vae"
    print(f"{program}: error: {error}", file=sys.stderr)


def parse_flags_or_exit(argv: Sequence[str]) -> List[str]:
    """Parses the command line like absl's default parser, but reports a bad
    flag value as a user error: one paragraph naming the flag and what it
    expects, exit status 2. Pass as `flags_parser` to `absl.app.run`."""
    try:
        # Includes inside flagfiles are read relative to the including file
        # (launch/flagfiles.py), so presets work from any directory.
        with flagfiles.resolved_includes(argv) as resolved:
            return flags.FLAGS(resolved)
    except flags.Error as error:
        report_user_error(error)
        sys.exit(2)
