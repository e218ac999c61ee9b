"""Building frozen config dataclasses back from dicts (such as JSON records)."""

from collections.abc import Mapping
import dataclasses
from typing import Any


def is_int(value: Any) -> bool:
    """An int that is not a bool (True is never a sensible size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
            f"expected only fields among {', '.join(sorted(known))}."
        )
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
        return [
            field.name
            for field in dataclasses.fields(cls)
            if isinstance(field.default, tuple)
        ]

    def _fail(self, name: str, expected: str) -> None:
        raise ValueError(
            f"{type(self).__name__}.{name} must be {expected}, "
            f"got {getattr(self, name)!r}."
        )

    # Checks the model configs share; each raises through `_fail`.
    def _require_positive_ints(self, *names: str) -> None:
        for name in names:
            if not is_int(getattr(self, name)) or getattr(self, name) <= 0:
                self._fail(name, "a positive integer")

    def _require_positive_int_tuples(self) -> None:
        """Every tuple field holds positive integers only."""
        for name in self._tuple_fields():
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(
                is_int(v) and v > 0 for v in value
            ):
                self._fail(name, "a tuple of positive integers")

    def _require_num_classes(self) -> None:
        """num_classes: 0 (unconditional) or at least 2."""
        if not is_int(self.num_classes) or self.num_classes < 0 or self.num_classes == 1:
            self._fail("num_classes", "0 (unconditional) or an integer >= 2")

    def _require_flag(self, name: str) -> None:
        if not isinstance(getattr(self, name), bool):
            self._fail(name, "True or False")

    def _require_rate(self, name: str) -> None:
        """A probability such as a dropout rate, in [0, 1)."""
        value = getattr(self, name)
        if not is_number(value) or not 0 <= value < 1:
            self._fail(name, "a number in [0, 1)")

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
