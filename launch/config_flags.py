"""Flags from the fields of a config dataclass, and the config back from them.

A plug-in trainer's objective (and any model config field without a flag of
its own) is set from the command line and flagfiles by a flag of the same
name as its field. The flag's type follows the field's annotation:

    bool -> --name / --noname          int, float, str -> --name=VALUE
    str with metadata "choices" -> an enum flag
    tuple[int, ...], tuple[float, ...], tuple[str, ...] -> --name=A,B,C

and its help text is the field's metadata "help". What a value means (a
range, a relation between fields) is the config's `validate()`'s to check, so
a bad value is reported with the config's own words.
"""

from collections.abc import Collection
import dataclasses
import types
import typing
from typing import Any

from absl import flags

from launch import flag_types


class FieldTypeError(ValueError):
    """A config field whose type the command line cannot set."""


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [
            member for member in typing.get_args(annotation) if member is not type(None)
        ]
        if len(members) == 1:
            return members[0]
    return annotation


def _sequence_item_type(annotation: Any) -> Any:
    """The item type of tuple[X, ...], tuple[X, X] or list[X]; None when the
    annotation is not such a sequence of one type."""
    if typing.get_origin(annotation) not in (tuple, list):
        return None
    item_types = {
        argument for argument in typing.get_args(annotation) if argument is not Ellipsis
    }
    return item_types.pop() if len(item_types) == 1 else None


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def define_fields(
    config_class: type,
    *,
    skip: Collection[str] = (),
    flag_values: flags.FlagValues = flags.FLAGS,
) -> tuple[str, ...]:
    """Defines one flag per field of `config_class` not in `skip`.

    Returns:
      The names of the flags defined, which `read_fields` reads back.

    Raises:
      FieldTypeError: a field of a type no flag can hold, or a field named as
        a flag the program already has.
    """
    hints = typing.get_type_hints(config_class)
    owner = config_class.__qualname__
    defined = []
    for field in dataclasses.fields(config_class):
        if field.name in skip or not field.init:
            continue
        if field.name in flag_values:
            raise FieldTypeError(
                f"{owner}.{field.name} has the name of a flag the program "
                f"already has (--{field.name}), so the command line cannot "
                "set it; rename the field."
            )
        annotation = _unwrap_optional(hints[field.name])
        default = _default(field)
        help_text = field.metadata.get("help") or f"{owner}.{field.name}."
        choices = field.metadata.get("choices")
        item_type = _sequence_item_type(annotation)
        if annotation is bool:
            flags.DEFINE_boolean(field.name, default, help_text, flag_values=flag_values)
        elif annotation is int:
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif annotation is float:
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        elif annotation is str and choices:
            flags.DEFINE_enum(
                field.name, default, list(choices), help_text, flag_values=flag_values
            )
        elif annotation is str:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)
        elif item_type is int:
            flag_types.DEFINE_int_list(
                field.name,
                None if default is None else list(default),
                help_text,
                minimum=field.metadata.get("minimum", 0),
                flag_values=flag_values,
            )
        elif item_type is float:
            flag_types.DEFINE_float_list(
                field.name,
                None if default is None else list(default),
                help_text,
                flag_values=flag_values,
            )
        elif item_type is str:
            flags.DEFINE_list(
                field.name,
                None if default is None else list(default),
                help_text,
                flag_values=flag_values,
            )
        else:
            raise FieldTypeError(
                f"{owner}.{field.name} is a {hints[field.name]}, which no "
                "command-line flag can hold; expected bool, int, float, str "
                "or a tuple of int, float or str."
            )
        defined.append(field.name)
    return tuple(defined)


def read_fields(
    names: Collection[str], flag_values: flags.FlagValues = flags.FLAGS
) -> dict[str, Any]:
    """Field name -> the parsed value of its flag (lists as tuples)."""
    values = {}
    for name in names:
        value = flag_values[name].value
        values[name] = tuple(value) if isinstance(value, list) else value
    return values
