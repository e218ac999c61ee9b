"""Checkpoints that survive damage: find, verify, fall back, save safely.

TensorFlow's `CheckpointManager` trusts its state file (`checkpoints/
checkpoint`): if that file is damaged it sees no checkpoints at all, and a
relaunch would train from step 0 and rotate the real checkpoints away. A
damaged `ckpt-N.index` or a truncated `ckpt-N.data-*` fails the restore with
an error that does not name the checkpoint. So here:

* the checkpoints of a directory are the `ckpt-N.index` files found in it,
  whatever the state file says;
* a checkpoint is readable when every tensor in it can be read back; on
  resume the newest readable one is restored, each unreadable one newer
  than it reported by name, and a directory whose checkpoints are all
  unreadable stops the run (`CheckpointUnreadableError`) instead of starting
  over;
* the state file is rewritten to match only when it disagrees, after a
  restore succeeded, so that the manager knows every checkpoint again;
* folders `ckpt-N_temp*` that a save killed half-way leaves behind are
  removed;
* a save that fails (a full disk, say) removes what it wrote of the new
  checkpoint and raises `CheckpointWriteError`, naming the file and the
  directory; the manager only rotates old checkpoints away after a new one is
  complete, so the previous one stays readable;
* an epoch's end is also written before its evaluation and hooks, outside
  the manager's numbering (`write_before_evaluation`), and removed once the
  epoch's own checkpoint is saved: a crash or a kill during the evaluation
  then costs the evaluation, not the epoch's training. A resume restores it
  when it is newer than the numbered checkpoints
  (`restore_before_evaluation`), and the evaluation runs again.
"""

from collections.abc import Callable, Sequence
import errno
import glob
import os
import re
import shutil

from absl import logging
import tensorflow as tf

CHECKPOINT_NAME = "ckpt"  # tf.train.CheckpointManager's default prefix.
# The epoch end written before its evaluation: not "ckpt-N", so that neither
# the manager nor the programs that read a workdir's checkpoints count it.
BEFORE_EVALUATION_NAME = "before-evaluation"
_INDEX_PATTERN = re.compile(rf"^{CHECKPOINT_NAME}-(\d+)\.index$")
_TEMPORARY_PATTERN = re.compile(
    rf"^({CHECKPOINT_NAME}-\d+|{BEFORE_EVALUATION_NAME})_temp"
)

# What a damaged checkpoint raises while it is read: TensorFlow's own
# errors, and plain Python ones from the readers' bindings ("Read less bytes
# than requested" is an IndexError).
_READ_ERRORS = (
    tf.errors.OpError,
    ValueError,
    IndexError,
    AssertionError,
    OSError,
    RuntimeError,
)


class CheckpointUnreadableError(ValueError):
    """A directory has checkpoints, but none of them can be read."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; its partial files were removed."""


def numbered_checkpoints(directory: str) -> list[tuple[int, str]]:
    """(number, prefix) of every `ckpt-N.index` in `directory`, oldest
    first."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = _INDEX_PATTERN.match(name)
        if match:
            found.append(
                (int(match.group(1)), os.path.join(directory, name[: -len(".index")]))
            )
    return sorted(found)


def unreadable_reason(prefix: str) -> str | None:
    """Why the checkpoint `prefix` cannot be read, or None when every tensor
    in it reads back."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_dtype_map():
            reader.get_tensor(name)
    except _READ_ERRORS as error:
        return first_line(error)
    return None


def first_line(error: BaseException) -> str:
    """The error's first line, without TensorFlow's "{{function_node ...}}"
    and "[Op:...]" wrapping."""
    text = str(getattr(error, "message", None) or error).strip()
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]", "", text).strip()
    return text.splitlines()[0] if text else type(error).__name__


def newest_readable(
    directory: str, log: bool = True, restore: Callable[[str], None] | None = None
) -> str | None:
    """The newest readable checkpoint of `directory`, or None when it has
    none at all.

    Args:
      directory: the checkpoint directory.
      log: warn about each unreadable checkpoint passed over.
      restore: called with each readable candidate, newest first; one that
        raises a read error is passed over like an unreadable file.

    Raises:
      CheckpointUnreadableError: there are checkpoints, none readable.
    """
    damaged = []
    for _, prefix in reversed(numbered_checkpoints(directory)):
        reason = unreadable_reason(prefix)
        if reason is None and restore is not None:
            try:
                restore(prefix)
            except _READ_ERRORS as error:
                reason = first_line(error)
        if reason is None:
            if damaged and log:
                logging.warning(
                    "Resuming from %s, the newest checkpoint that can be "
                    "read, instead of %s.",
                    prefix,
                    ", ".join(path for path, _ in damaged),
                )
            return prefix
        damaged.append((prefix, reason))
        if log:
            logging.warning(
                "Checkpoint %s cannot be read (%s); trying the one before it.",
                prefix,
                reason,
            )
    if damaged:
        raise _none_readable(directory, damaged)
    return None


def _none_readable(
    directory: str, damaged: Sequence[tuple[str, str]]
) -> CheckpointUnreadableError:
    listing = "; ".join(
        f"{os.path.basename(prefix)}: {reason}" for prefix, reason in damaged
    )
    return CheckpointUnreadableError(
        f"None of the checkpoints in {directory} can be read ({listing}), so "
        "the run cannot resume, and starting it over would replace them. "
        "Nothing was changed. Restore the checkpoints from a copy, or use a "
        "new --workdir."
    )


def restore_newest_readable(
    checkpoint: tf.train.Checkpoint, directory: str
) -> str | None:
    """Restores the newest readable checkpoint of `directory` into
    `checkpoint`; returns its prefix, or None when there is none at all.

    Every object of `checkpoint` must be in the file (a checkpoint of another
    model is refused by `assert_existing_objects_matched`).

    Raises:
      CheckpointUnreadableError: there are checkpoints, none readable.
    """

    def restore(prefix: str) -> None:
        checkpoint.restore(prefix).assert_existing_objects_matched()

    return newest_readable(directory, restore=restore)


def repair_state_file(
    manager: tf.train.CheckpointManager, restored: str
) -> tf.train.CheckpointManager | None:
    """Rewrites the manager's state file when it disagrees with what is on
    disk, and returns a new manager that reads it; None when it agreed.

    The state lists the readable-looking checkpoints up to `restored` (those
    with an index file, oldest first), `restored` last: a damaged newer one
    is left out, and the next save, which takes its number, replaces it.
    """
    directory = manager.directory
    kept = [
        prefix
        for number, prefix in numbered_checkpoints(directory)
        if number <= _number(restored)
    ]
    if manager.latest_checkpoint == restored and list(manager.checkpoints) == kept:
        return None
    logging.warning(
        "The checkpoint state file %s did not match the "
        "checkpoints on disk; rewriting it (latest %s).",
        os.path.join(directory, "checkpoint"),
        restored,
    )
    # With their files' times and a preserved time before them, so that the
    # manager rotates them as it would its own.
    times = [os.path.getmtime(prefix + ".index") for prefix in kept]
    tf.compat.v1.train.update_checkpoint_state(
        directory,
        restored,
        all_model_checkpoint_paths=kept,
        all_model_checkpoint_timestamps=times,
        last_preserved_timestamp=min(times) - 1.0,
    )
    # The manager reads its state when it is built.
    return tf.train.CheckpointManager(
        manager._checkpoint,
        directory,  # pylint: disable=protected-access
        max_to_keep=manager._max_to_keep,
    )  # pylint: disable=protected-access


def _number(prefix: str) -> int:
    return int(prefix.rsplit("-", 1)[1])


def remove_temporary_leftovers(directory: str) -> list[str]:
    """Removes `ckpt-N_temp*` files and folders (what a save that was killed
    leaves); returns their paths."""
    removed = []
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for name in names:
        if _TEMPORARY_PATTERN.match(name):
            path = os.path.join(directory, name)
            _remove_quietly(path)
            removed.append(path)
    if removed:
        logging.info("Removed what interrupted saves left: %s.", ", ".join(removed))
    return removed


def _remove_quietly(path: str) -> None:
    """Removes a file or folder, best effort: what is left is cleaned up by
    the next run's `remove_temporary_leftovers`, so a failure here must not
    hide the error that made the clean-up necessary."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:
            pass


def _remove_checkpoint_files(prefix: str) -> None:
    for path in glob.glob(glob.escape(prefix) + ".*") + glob.glob(
        glob.escape(prefix) + "_temp*"
    ):
        _remove_quietly(path)


def save(manager: tf.train.CheckpointManager) -> str:
    """`manager.save()`, which on failure removes the new checkpoint's
    partial files and raises `CheckpointWriteError` naming it.

    Returns:
      The new checkpoint's prefix.
    """
    # The number the manager gives the new checkpoint: its save counter, one
    # up (see CheckpointManager.save).
    number = int(manager._checkpoint.save_counter.numpy()) + 1  # pylint: disable=protected-access
    prefix = os.path.join(manager.directory, f"{CHECKPOINT_NAME}-{number}")
    try:
        return manager.save(checkpoint_number=number)
    except (tf.errors.OpError, OSError) as error:
        _remove_checkpoint_files(prefix)
        raise _write_error(prefix, manager, error) from None


def _write_error(
    prefix: str, manager: tf.train.CheckpointManager, error: BaseException
) -> CheckpointWriteError:
    previous = manager.latest_checkpoint
    full = isinstance(error, tf.errors.ResourceExhaustedError) or getattr(
        error, "errno", None
    ) in (errno.ENOSPC, errno.EDQUOT)
    return CheckpointWriteError(
        f"Could not write the checkpoint {prefix} in "
        f"{manager.directory}: {first_line(error)}"
        f"{' (the disk is full)' if full else ''}. Its partial files "
        "were removed; "
        + (
            f"the previous checkpoint, {previous}, is intact, and running "
            "the same command again resumes from it once the directory "
            "can be written."
            if previous
            else "there is no earlier checkpoint."
        )
    )


def before_evaluation_prefix(directory: str) -> str:
    return os.path.join(directory, BEFORE_EVALUATION_NAME)


def write_before_evaluation(manager: tf.train.CheckpointManager) -> str:
    """Writes the manager's checkpoint to `before_evaluation_prefix` of its
    directory, replacing what is there, without numbering or rotation; on
    failure removes the partial files and raises `CheckpointWriteError`.

    Returns:
      The prefix written.
    """
    prefix = before_evaluation_prefix(manager.directory)
    try:
        manager._checkpoint.write(prefix)  # pylint: disable=protected-access
    except (tf.errors.OpError, OSError) as error:
        _remove_checkpoint_files(prefix)
        raise _write_error(prefix, manager, error) from None
    return prefix


def remove_before_evaluation(directory: str) -> None:
    """Removes the checkpoint `write_before_evaluation` wrote, if any."""
    _remove_checkpoint_files(before_evaluation_prefix(directory))


def before_evaluation_step(directory: str, step_name: str = "global_step") -> int | None:
    """The `step_name` variable of the checkpoint written before an epoch's
    evaluation in `directory`; None when there is none, or it cannot be read
    (a warning says why)."""
    prefix = before_evaluation_prefix(directory)
    if not tf.io.gfile.exists(prefix + ".index"):
        return None
    reason = unreadable_reason(prefix)
    if reason is None:
        try:
            return int(
                tf.train.load_checkpoint(prefix).get_tensor(
                    f"{step_name}/.ATTRIBUTES/VARIABLE_VALUE"
                )
            )
        except (*_READ_ERRORS, KeyError) as error:
            reason = first_line(error)
    _warn_unusable(prefix, reason)
    return None


def restore_before_evaluation(
    checkpoint: tf.train.Checkpoint, directory: str, fallback: str | None
) -> str:
    """Restores the checkpoint written before an epoch's evaluation and
    returns its prefix. When that fails, warns and restores the numbered
    checkpoint `fallback` instead (a failed read may have restored part of
    the first), returning it.

    Raises:
      CheckpointUnreadableError: it failed and `fallback` is None.
    """
    prefix = before_evaluation_prefix(directory)
    try:
        checkpoint.restore(prefix).assert_existing_objects_matched()
    except _READ_ERRORS as error:
        reason = first_line(error)
        if fallback is None:
            raise _none_readable(directory, [(prefix, reason)]) from None
        _warn_unusable(prefix, reason)
        checkpoint.restore(fallback).assert_existing_objects_matched()
        return fallback
    return prefix


def _warn_unusable(prefix: str, reason: str) -> None:
    logging.warning(
        "The checkpoint %s, written at an epoch's end before its evaluation, "
        "cannot be read (%s); resuming from the numbered checkpoints.",
        prefix,
        reason,
    )
