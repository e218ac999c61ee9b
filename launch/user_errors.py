"""Reporting mistakes in what the user asked for, free of TensorFlow.

launch/errors.py re-exports these beside the data and workdir errors (whose
modules load TensorFlow); `vae-submit` imports this module only, so that
writing a batch script does not load TensorFlow (seconds, and a CUDA probe
on a login node).
"""

from collections.abc import Iterator, Sequence
import contextlib
import os
import sys

from absl import app
from absl import flags

from launch import flagfiles


class ConfigError(ValueError):
    """A configuration value is unusable; the message names it."""


def report_user_error(error: Exception) -> None:
    program = os.path.basename(sys.argv[0]) or "vae"
    print(f"{program}: error: {error}", file=sys.stderr)


@contextlib.contextmanager
def exit_on(error_types: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Reports an error of `error_types` raised inside as one paragraph and
    exits with status 2 (`exit_codes.USER_ERROR`); anything else is a bug and
    keeps its traceback."""
    try:
        yield
    except error_types as error:
        report_user_error(error)
        sys.exit(2)


def reject_positional_arguments(argv: Sequence[str]) -> None:
    """absl's usage error (the program's usage, exit status 1) for words on the
    command line that are not flags: every program takes flags only."""
    if len(argv) > 1:
        raise app.UsageError("Unexpected arguments: " + " ".join(argv[1:]))


def parse_flags_or_exit(argv: Sequence[str]) -> list[str]:
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
