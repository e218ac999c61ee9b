"""Building frozen config dataclasses back from dicts (such as JSON records)."""

import dataclasses
from typing import Any, Mapping


def from_dict(cls, values: Mapping[str, Any]):
    """`cls(**values)`, validated, refusing keys that are not fields.

    Missing fields take their defaults, which is what lets a record written
    before a field existed still be read.

    Args:
        cls: a dataclass with a `validate()` method.
        values: field name -> value.

    Raises:
        ValueError: a key that is not a field (named, with the known ones),
            or a bad value (from `validate()`).
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no field(s) {', '.join(map(repr, unknown))}; "
            f"expected only fields among {', '.join(sorted(known))}.")
    config = cls(**values)
    config.validate()
    return config
