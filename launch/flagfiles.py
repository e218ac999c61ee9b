"""Flagfiles that include other flagfiles, from any directory.

absl reads a `--flagfile=PATH` line inside a flagfile relative to the
current directory, so a preset that includes another one
(launch/configs/cvae_gan_cpu.flags includes cvae_gan.flags) would only work
from the directory its author ran it in. Here an included path is resolved
relative to the flagfile that names it (and, failing that, relative to the
current directory, as absl does): before absl parses the command line, each
`--flagfile` argument whose file includes others is replaced by a temporary
copy in which every include is an absolute path. Files without includes are
passed through untouched.
"""

from collections.abc import Iterator, Sequence
import contextlib
import os
import re
import tempfile

_INCLUDE = re.compile(r"^(\s*--flagfile=)(\S.*?)\s*$")


def resolve_include(path: str, including_file: str) -> str:
    """`path` as named in `including_file`: relative to that file's
    directory when it exists there, else as given (relative to the current
    directory), expanded."""
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return path
    beside = os.path.join(os.path.dirname(os.path.abspath(including_file)), path)
    if os.path.exists(beside):
        return beside
    return os.path.abspath(path)


def _rewritten(path: str, directory: str, depth: int = 0) -> str:
    """`path` itself if it includes nothing, else a copy in `directory` with
    every include resolved (recursively)."""
    if depth > 20:
        # absl reports include cycles itself; stop rewriting and let it.
        return path
    try:
        with open(path) as stream:
            lines = stream.read().splitlines()
    except OSError:
        return path  # absl names the file it cannot read.
    changed = False
    output = []
    for line in lines:
        match = _INCLUDE.match(line)
        if match:
            included = _rewritten(
                resolve_include(match.group(2), path), directory, depth + 1
            )
            line = match.group(1) + included
            changed = True
        output.append(line)
    if not changed:
        return path
    handle, copy = tempfile.mkstemp(
        prefix=os.path.basename(path) + ".", suffix=".flags", dir=directory
    )
    with os.fdopen(handle, "w") as stream:
        stream.write("\n".join(output) + "\n")
    return copy


@contextlib.contextmanager
def resolved_includes(argv: Sequence[str]) -> Iterator[list[str]]:
    """`argv` with every `--flagfile=PATH` (or `--flagfile PATH`) whose file
    includes others replaced by a copy whose includes are absolute; the
    copies are deleted when the context ends."""
    with tempfile.TemporaryDirectory(prefix="vae-flagfiles-") as directory:
        result = []
        arguments = list(argv)
        index = 0
        while index < len(arguments):
            argument = arguments[index]
            if argument.startswith("--flagfile="):
                path = argument[len("--flagfile=") :]
                result.append(
                    "--flagfile=" + _rewritten(os.path.expanduser(path), directory)
                )
            elif argument == "--flagfile" and index + 1 < len(arguments):
                index += 1
                result.extend(
                    [
                        "--flagfile",
                        _rewritten(os.path.expanduser(arguments[index]), directory),
                    ]
                )
            else:
                result.append(argument)
            index += 1
        yield result
