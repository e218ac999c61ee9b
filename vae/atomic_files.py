"""Files written whole or not at all.

Every file the framework leaves for a reader (run records, metrics, the
evaluation's results and progress, pictures, dataset caches) goes through
`write_atomically`: the content goes to a temporary file beside the target
and is then renamed onto it. A crash, a kill or a full disk leaves the
previous file (or none), never half of a new one, and another process
reading the target sees one version or the other.
"""

from collections.abc import Callable, Mapping
import json
import math
import os
from typing import Any
import uuid

import numpy as np


def write_atomically(path: str | os.PathLike, write_fn: Callable[[str], None]) -> None:
    """Calls `write_fn(temporary_path)`, then renames the result onto `path`.

    The temporary file lies in `path`'s directory (created if missing), so
    the rename stays on one file system, where `os.replace` is atomic. Its
    name is unique, so two processes writing one target do not share it. If
    `write_fn` or the rename fails, the temporary file is removed and the
    error raised.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    stem, suffix = os.path.splitext(os.path.basename(path))
    # Unique per writer; the target's extension kept for writers that pick a
    # format by it (imageio). Not tempfile.mkstemp: its files are private
    # (mode 0600), and results are meant to be read by others.
    temporary_path = os.path.join(
        directory, f".{stem}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    )
    try:
        write_fn(temporary_path)
        os.replace(temporary_path, path)
    except BaseException:
        if os.path.exists(temporary_path):
            os.remove(temporary_path)
        raise


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Writes `payload` as indented, key-sorted, strict JSON, atomically.

    A NaN or infinite number (a metric that could not be computed) is written
    as null, which every JSON reader accepts; Python's bare NaN and Infinity
    are not JSON.
    """

    def write(temporary_path):
        with open(temporary_path, "w") as stream:
            json.dump(
                _finite_or_none(payload),
                stream,
                indent=2,
                sort_keys=True,
                allow_nan=False,
            )
            stream.write("\n")

    write_atomically(path, write)


def write_npz(path: str | os.PathLike, arrays: Mapping[str, Any]) -> None:
    """Writes an uncompressed .npz of `arrays`, atomically."""

    def write(temporary_path):
        with open(temporary_path, "wb") as stream:
            np.savez(stream, **arrays)

    write_atomically(path, write)
