"""Flag types the launch programs share."""

from typing import List, Optional

from absl import flags


class _IntListParser(flags.ListParser):
    """Parses "32,64" into [32, 64]; "" into []."""

    def parse(self, argument):
        items = super().parse(argument)
        values = []
        for item in items:
            try:
                values.append(int(item))
            except ValueError:
                raise ValueError(
                    f"expected a comma-separated list of positive integers "
                    f"such as 32,64; {item!r} is not an integer") from None
            if values[-1] <= 0:
                raise ValueError(
                    f"expected a comma-separated list of positive integers "
                    f"such as 32,64; {values[-1]} is not positive")
        return values

    def flag_type(self):
        return "comma-separated list of positive integers"


def DEFINE_int_list(name: str, default: Optional[List[int]], help_text: str,
                    flag_values=flags.FLAGS) -> flags.FlagHolder:
    """Defines a flag holding a list of positive integers."""
    return flags.DEFINE(_IntListParser(), name, default, help_text,
                        flag_values=flag_values,
                        serializer=flags.CsvListSerializer(","))
