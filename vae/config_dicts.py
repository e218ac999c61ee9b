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


class ConfigRecord:
    """What the model configs share: tuples from lists, dicts, clear errors.

    A base for frozen dataclasses whose fields are plain values. Lists given
    for tuple fields become tuples, so a config read from JSON or flags
    compares equal to one written in code; `to_dict` and `from_dict` make a
    round trip through JSON; `_fail` raises the one-line ValueError that
    names the field, its value and what was expected.
    """

    def __post_init__(self):
        for name in self._tuple_fields():
            value = getattr(self, name)
            if isinstance(value, list):
                # The dataclass is frozen, so go around its __setattr__.
                object.__setattr__(self, name, tuple(value))

    @classmethod
    def _tuple_fields(cls) -> list:
        return [field.name for field in dataclasses.fields(cls)
                if isinstance(field.default, tuple)]

    def _fail(self, name: str, expected: str) -> None:
        raise ValueError(f"{type(self).__name__}.{name} must be {expected}, "
                         f"got {getattr(self, name)!r}.")

    def to_dict(self) -> dict:
        """The fields as a dict of JSON-serialisable values (tuples stay
        tuples)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        """Builds and validates a config from `to_dict()` output, for example
        via JSON.

        Missing fields take their defaults; lists (as JSON returns them)
        become tuples.

        Raises:
            ValueError: if `values` has a key that is not a field, or a bad
                value.
        """
        return from_dict(cls, values)
