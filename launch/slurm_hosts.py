"""Slurm host lists and task layouts, read in Slurm's own order.

A Slurm job step describes its tasks with three variables:

* `SLURM_STEP_NODELIST`, a compressed host list such as `node[9-10]`,
  `a[1-2],b3` or `rack[1-2]-gpu[07-08]`: comma-separated items, each a name
  with bracketed ranges (`[1,3-5]`, zero padding kept: `[07-10]` gives 07,
  08, 09, 10). Several brackets in one name multiply, the first varying
  slowest (`r[1-2]-n[1-2]`: r1-n1, r1-n2, r2-n1, r2-n2). The expansion keeps
  the order written, as `scontrol show hostnames` does: no sorting, so
  `node[9-10]` is node9 then node10 (sorted as strings, node10 would come
  first);
* `SLURM_STEP_TASKS_PER_NODE`, the task count of each node in that order,
  runs compressed as `2(x3)`: `2(x3),1` is 2, 2, 2, 1;
* `SLURM_PROCID`, this task's rank.

Slurm's default (block) distribution gives the first node the first ranks,
the next node the next ones, and so on, so rank r runs on the node whose
running task count first exceeds r. `step_tasks` lists (host, local index)
by rank; launch/cluster.py makes rank r worker r, so that the process Slurm
ranks 0 is TensorFlow's chief on every host list. Nothing here imports
TensorFlow.
"""

import re

_RANGE = re.compile(r"(\d+)(?:-(\d+))?\Z")
_RUN = re.compile(r"(\d+)(?:\(x(\d+)\))?\Z")


def _split_top_level(text: str) -> list[str]:
    """Splits at commas outside brackets."""
    items, depth, start = [], 0, 0
    for index, character in enumerate(text):
        if character == "[":
            depth += 1
        elif character == "]":
            depth -= 1
            if depth < 0:
                raise ValueError("']' without '['")
        elif character == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    if depth:
        raise ValueError("'[' without ']'")
    items.append(text[start:])
    return items


def _expand_range_list(text: str) -> list[str]:
    """`1,3-5` or `07-10` as the numbers' strings, padding kept."""
    values = []
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise ValueError(f"[{text}] holds {part!r}, not N or N-M")
        first, last = match.group(1), match.group(2)
        if last is None:
            values.append(first)
            continue
        if int(last) < int(first):
            raise ValueError(f"[{text}] has the decreasing range {part!r}")
        width = len(first) if first.startswith("0") else 0
        values += [
            str(number).zfill(width) for number in range(int(first), int(last) + 1)
        ]
    return values


def _expand_item(item: str) -> list[str]:
    """One host-list item (`rack[1-2]-gpu[07-08]`) as its host names."""
    names = [""]
    rest = item
    while rest:
        opening = rest.find("[")
        if opening < 0:
            return [name + rest for name in names]
        closing = rest.index("]", opening)
        prefix = rest[:opening]
        values = _expand_range_list(rest[opening + 1 : closing])
        names = [name + prefix + value for name in names for value in values]
        rest = rest[closing + 1 :]
    return names


def expand_hostlist(text: str) -> list[str]:
    """The host names of a Slurm host list, in Slurm's order.

    Args:
      text: e.g. `node[9-10]`, `a[1-2],b3`, `gpu[07-08,10]`.

    Returns:
      The names, in the order `scontrol show hostnames` gives them.

    Raises:
      ValueError: `text` is not a host list; the message names it.
    """
    try:
        hosts = []
        for item in _split_top_level(text.strip()):
            if not item.strip():
                raise ValueError("an empty item")
            hosts += _expand_item(item.strip())
        return hosts
    except ValueError as error:
        raise ValueError(
            f"{text!r} is not a Slurm host list ({error}); "
            "expected names with bracketed ranges such as "
            "node[9-10],gpu07."
        ) from None


def expand_tasks_per_node(text: str) -> list[int]:
    """`2(x3),1` as [2, 2, 2, 1].

    Raises:
      ValueError: `text` is not in Slurm's format; the message names it.
    """
    counts = []
    for part in text.strip().split(","):
        match = _RUN.match(part.strip())
        if not match:
            raise ValueError(
                f"{text!r} is not a Slurm task count list; "
                "expected counts such as 2(x3),1."
            )
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def step_tasks(nodelist: str, tasks_per_node: str) -> list[tuple[str, int]]:
    """(host, index of the task on its host) for each rank of a job step
    laid out by Slurm's default block distribution.

    Raises:
      ValueError: the variables cannot be read, or do not match each other.
    """
    hosts = expand_hostlist(nodelist)
    counts = expand_tasks_per_node(tasks_per_node)
    if len(counts) != len(hosts):
        raise ValueError(
            f"the step's node list {nodelist!r} names {len(hosts)} nodes but "
            f"its task counts {tasks_per_node!r} give {len(counts)}"
        )
    return [(host, local) for host, count in zip(hosts, counts) for local in range(count)]
