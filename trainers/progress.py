"""Progress reporting: a one-line bar on a terminal, plain log lines elsewhere.

A cluster job or CI log cannot render carriage returns, so the bar is used
only when stderr is an interactive terminal; otherwise the same information
goes out as absl log lines that stay readable in a file.
"""

from collections.abc import Mapping
import sys
import time
from typing import TextIO

from absl import logging

PROGRESS_MODES = ("auto", "bar", "log", "none")


def format_logs(logs: Mapping[str, float]) -> str:
    """`loss=152.31 kl=4.02` with short, stable formatting."""
    return " ".join(f"{key}={value:.4g}" for key, value in logs.items())


class ProgressReporter:
    """Reports training progress within one epoch.

    Args:
      mode: "bar" (redrawn line on `stream`), "log" (absl info lines), "none",
        or "auto" (bar when `stream` is a terminal, else log).
      stream: where the bar is drawn; stderr by default.
      min_seconds_between_logs: in "log" mode, at most one line this often so
        that a fast loop does not flood the log.
    """

    def __init__(
        self,
        mode: str = "auto",
        stream: TextIO | None = None,
        min_seconds_between_logs: float = 10.0,
    ):
        if mode not in PROGRESS_MODES:
            raise ValueError(
                f"Unknown progress mode {mode!r}; expected one of {PROGRESS_MODES}."
            )
        self._stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            is_terminal = getattr(self._stream, "isatty", lambda: False)()
            mode = "bar" if is_terminal else "log"
        self.mode = mode
        self._min_seconds = min_seconds_between_logs
        self._last_log_time = -float("inf")
        self._bar_open = False

    def update(
        self,
        *,
        epoch: int,
        num_epochs: int,
        step_in_epoch: int,
        steps_per_epoch: int,
        global_step: int,
        logs: Mapping[str, float],
        images_per_second: float,
    ) -> None:
        """Shows where training stands after a compiled loop returns."""
        if self.mode == "none":
            return
        if self.mode == "bar":
            width = 24
            filled = int(width * step_in_epoch / max(1, steps_per_epoch))
            bar = "#" * filled + "-" * (width - filled)
            line = (
                f"\repoch {epoch + 1}/{num_epochs} [{bar}] "
                f"{step_in_epoch}/{steps_per_epoch} {format_logs(logs)} "
                f"{images_per_second:.0f} img/s"
            )
            self._stream.write(line)
            self._stream.flush()
            self._bar_open = True
            return
        now = time.monotonic()
        if (
            now - self._last_log_time < self._min_seconds
            and step_in_epoch < steps_per_epoch
        ):
            return
        self._last_log_time = now
        logging.info(
            "epoch %d/%d step %d/%d (global %d): %s, %.0f images/s",
            epoch + 1,
            num_epochs,
            step_in_epoch,
            steps_per_epoch,
            global_step,
            format_logs(logs),
            images_per_second,
        )

    def end_line(self) -> None:
        """Ends an open bar so that the next log line starts cleanly."""
        if self._bar_open:
            self._stream.write("\n")
            self._stream.flush()
            self._bar_open = False
