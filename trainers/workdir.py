"""One workdir, one run: refuse to mix checkpoints of different runs.

The first launch in a workdir records the run's identity (everything that
changes what the checkpoints mean: data, model, objective, optimiser, batch
size, seed) in `run.json`. A later launch in the same workdir resumes only if
its identity is the same; otherwise it is refused before anything is written,
so no checkpoint is ever overwritten by a different run. Settings that do not
change the meaning of a checkpoint (number of epochs, logging, progress) may
differ between launches: that is how a finished run is extended.
"""

import json
import os
from typing import Any, Callable, Dict, Mapping, Optional

from trainers import base

RUN_FILE = "run.json"


class WorkdirConflictError(ValueError):
    """The workdir holds a different run (or an unknown one)."""


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def claim_workdir(
        workdir: str, identity: Mapping[str, Any],
        upgrade_recorded: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
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
                raise ValueError("expected a JSON object, found "
                                 f"{type(recorded).__name__}")
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
            if mine.get(key) != theirs.get(key)]
        if differences:
            raise WorkdirConflictError(
                f"The workdir {workdir} holds a different run, so this "
                "command would mix its checkpoints with another model's. "
                "Differences: " + "; ".join(differences) + ". Nothing was "
                "changed. Use a new --workdir for the new configuration, or "
                "repeat the original command to resume that run.")
        return True
    checkpoint_dir = os.path.join(workdir, "checkpoints")
    if os.path.isdir(checkpoint_dir) and os.listdir(checkpoint_dir):
        raise WorkdirConflictError(
            f"The workdir {workdir} has checkpoints but no {RUN_FILE}, so we "
            "cannot tell which run they belong to. Nothing was changed; use a "
            "new --workdir.")
    os.makedirs(workdir, exist_ok=True)
    base.write_json_atomically(run_path, identity)
    return False
