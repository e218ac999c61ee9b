"""Flag types and flag definitions the launch programs share."""

import math
import os

from absl import flags


class _IntListParser(flags.ListParser):
    """Parses "32,64" into [32, 64]; "" into []. Items below `minimum` are
    refused."""

    def __init__(self, minimum: int = 1):
        super().__init__()
        self.minimum = minimum

    def _kind(self) -> str:
        return (
            "positive integers"
            if self.minimum == 1
            else "non-negative integers"
            if self.minimum == 0
            else f"integers >= {self.minimum}"
        )

    def parse(self, argument):
        items = super().parse(argument)
        values = []
        for item in items:
            try:
                values.append(int(item))
            except ValueError:
                raise ValueError(
                    f"expected a comma-separated list of {self._kind()} "
                    f"such as 32,64; {item!r} is not an integer"
                ) from None
            if values[-1] < self.minimum:
                raise ValueError(
                    f"expected a comma-separated list of {self._kind()} "
                    f"such as 32,64; {values[-1]} is too small"
                )
        return values

    def flag_type(self):
        return f"comma-separated list of {self._kind()}"


def DEFINE_int_list(
    name: str,
    default: list[int] | None,
    help_text: str,
    minimum: int = 1,
    flag_values=flags.FLAGS,
) -> flags.FlagHolder:
    """Defines a flag holding a list of integers, each at least `minimum`."""
    return flags.DEFINE(
        _IntListParser(minimum),
        name,
        default,
        help_text,
        flag_values=flag_values,
        serializer=flags.CsvListSerializer(","),
    )


class _FloatListParser(flags.ListParser):
    """Parses "1,1,2" into [1.0, 1.0, 2.0]; "" into []."""

    def parse(self, argument):
        values = []
        for item in super().parse(argument):
            try:
                values.append(float(item))
            except ValueError:
                raise ValueError(
                    "expected a comma-separated list of numbers such as "
                    f"1,1,2; {item!r} is not a number"
                ) from None
        return values

    def flag_type(self):
        return "comma-separated list of numbers"


def DEFINE_float_list(
    name: str, default: list[float] | None, help_text: str, flag_values=flags.FLAGS
) -> flags.FlagHolder:
    """Defines a flag holding a list of numbers."""
    return flags.DEFINE(
        _FloatListParser(),
        name,
        default,
        help_text,
        flag_values=flag_values,
        serializer=flags.CsvListSerializer(","),
    )


def DEFINE_workdir(help_text: str, flag_values=flags.FLAGS) -> flags.FlagHolder:
    """Defines the required --workdir, refusing a blank value."""
    holder = flags.DEFINE_string("workdir", None, help_text, flag_values=flag_values)
    flags.mark_flag_as_required("workdir", flag_values=flag_values)
    flags.register_validator(
        "workdir",
        lambda value: value is None or value.strip() != "",
        message="--workdir must name a directory.",
        flag_values=flag_values,
    )
    return holder


def DEFINE_learning_rate(
    default: float, help_text: str, name: str = "learning_rate", flag_values=flags.FLAGS
) -> flags.FlagHolder:
    """Defines --learning_rate (or --`name`), which must be positive and
    finite (absl's lower_bound can exclude neither 0 nor inf)."""
    holder = flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
    flags.register_validator(
        name,
        lambda value: 0 < value < math.inf,
        message=f"--{name} must be a positive finite number.",
        flag_values=flag_values,
    )
    return holder


def DEFINE_classifier_dir(flag_values=flags.FLAGS) -> flags.FlagHolder:
    """Defines --classifier_dir, the cache of evaluation classifiers."""
    return flags.DEFINE_string(
        "classifier_dir",
        None,
        "Cache of trained evaluation classifiers; unset: $VAE_CACHE_DIR/"
        "classifiers, or ~/.cache/vae-framework/classifiers.",
        flag_values=flag_values,
    )


def default_cache_dir(kind: str) -> str:
    """Where the programs keep what they compute once and reuse: `kind`
    ("classifiers", "datasets") under $VAE_CACHE_DIR, or under
    ~/.cache/vae-framework when that is unset."""
    root = os.environ.get("VAE_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "vae-framework"
    )
    return os.path.join(root, kind)
