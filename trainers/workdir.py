"""One workdir, one run: refuse to mix checkpoints of different runs.

The first launch in a workdir records the run's identity (everything that
changes what the checkpoints mean: data, model, objective, optimiser, batch
size, seed) in `run.json`. A later launch in the same workdir resumes only if
its identity is the same; otherwise it is refused before anything is written,
so no checkpoint is ever overwritten by a different run. Settings that do not
change the meaning of a checkpoint (number of epochs, logging, progress) may
differ between launches: that is how a finished run is extended.
"""

from collections.abc import Callable, Mapping
import json
import os
from typing import Any

from vae import atomic_files

RUN_FILE = "run.json"


class WorkdirConflictError(ValueError):
    """The workdir holds a different run (or an unknown one)."""


class WorkdirUnusableError(ValueError):
    """The workdir is not a directory, or cannot be created or written."""


# What a launch writes at the top of an existing workdir, besides new files.
_WRITTEN_FILES = (
    RUN_FILE,
    "launches.log",
    "metrics.json",
    "flags.txt",
    "checkpoints",
    "lock",
)


def check_workdir_usable(workdir: str) -> None:
    """Raises `WorkdirUnusableError` unless `workdir` is a directory this
    process can write (or one it can create), before any work starts.

    Refused: a workdir that is a file; one whose nearest existing ancestor is
    a file; a directory (or a file or subdirectory a launch writes in it,
    such as launches.log) that this process may not write; a parent in which
    it may not create the workdir. Permissions are asked of `os.access`,
    which also answers "no" on a read-only filesystem.
    """
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise WorkdirUnusableError(
            f"--workdir={workdir} is a file, not a directory; expected a "
            "directory for the run's outputs (an existing run's, or a new "
            "one). Nothing was changed."
        )
    if os.path.isdir(workdir):
        for name in ("", *_WRITTEN_FILES):
            path = os.path.join(workdir, name) if name else workdir
            if os.path.exists(path) and not os.access(
                path, os.W_OK | (os.X_OK if os.path.isdir(path) else 0)
            ):
                raise WorkdirUnusableError(
                    f"The workdir {workdir} cannot be written: this process "
                    f"may not write {path} (permissions, or a read-only "
                    "filesystem). A run needs to write its checkpoints, "
                    "metrics and logs there; fix the permissions or use "
                    "another --workdir. Nothing was changed."
                )
        return
    # A new workdir: it is created under its nearest existing ancestor.
    ancestor = os.path.dirname(os.path.abspath(workdir))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise WorkdirUnusableError(
            f"--workdir={workdir} cannot be created: {ancestor} is a file, "
            "not a directory. Expected a path whose parents are "
            "directories."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise WorkdirUnusableError(
            f"--workdir={workdir} cannot be created: this process may not "
            f"write in {ancestor} (permissions, or a read-only filesystem). "
            "Choose a --workdir in a directory you can write."
        )


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def claim_workdir(
    workdir: str,
    identity: Mapping[str, Any],
    upgrade_recorded: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> bool:
    """Checks that `workdir` is empty or holds this same run, and claims it.

    Args:
      workdir: the run's output directory (created if missing).
      identity: JSON-serialisable description of the run; compared field by
        field with the one recorded in the workdir.
      upgrade_recorded: maps a recorded identity to today's form (say, fills
        in fields added since with their defaults), so that a run recorded by
        an older version still resumes; the file itself is left alone.

    Returns:
      True when the workdir already holds this run (so training resumes),
      False when it was new.

    Raises:
      WorkdirConflictError: the workdir holds a run with another identity, or
        checkpoints without a run record.
    """
    identity = json.loads(json.dumps(identity))  # tuples -> lists, as stored
    run_path = os.path.join(workdir, RUN_FILE)
    if os.path.exists(run_path):
        try:
            with open(run_path) as stream:
                recorded = json.load(stream)
            if not isinstance(recorded, dict):
                # Valid JSON but not a record (say `[]` or `null`).
                raise ValueError(
                    f"expected a JSON object, found {type(recorded).__name__}"
                )
        except (OSError, ValueError) as error:
            raise WorkdirConflictError(
                f"The workdir {workdir} has a run record {run_path} that "
                f"cannot be read ({error}). Choose a new --workdir, or repair "
                "or remove that file if you know the run it belongs to."
            ) from None
        if upgrade_recorded is not None:
            recorded = json.loads(json.dumps(upgrade_recorded(recorded)))
        mine, theirs = _flatten(identity), _flatten(recorded)
        differences = [
            f"{key}: workdir has {theirs.get(key, '(unset)')!r}, this command "
            f"has {mine.get(key, '(unset)')!r}"
            for key in sorted(set(mine) | set(theirs))
            if mine.get(key) != theirs.get(key)
        ]
        if differences:
            raise WorkdirConflictError(
                f"The workdir {workdir} holds a different run, so this "
                "command would mix its checkpoints with another model's. "
                "Differences: " + "; ".join(differences) + ". Nothing was "
                "changed. Use a new --workdir for the new configuration, or "
                "repeat the original command to resume that run."
            )
        return True
    checkpoint_dir = os.path.join(workdir, "checkpoints")
    if os.path.isdir(checkpoint_dir) and os.listdir(checkpoint_dir):
        raise WorkdirConflictError(
            f"The workdir {workdir} has checkpoints but no {RUN_FILE}, so we "
            "cannot tell which run they belong to. Nothing was changed; use a "
            "new --workdir."
        )
    os.makedirs(workdir, exist_ok=True)
    atomic_files.write_json(run_path, identity)
    return False
