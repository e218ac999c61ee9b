"""What the loop remembers between steps and across a resume: the epoch in
progress, the per-epoch history, and the `metrics.json` made from it.

The state is saved inside every checkpoint (a `PythonState`), so a run
resumed mid-epoch reports exactly what an uninterrupted run would have
reported: the epoch's running sums, its step and skip counts and its times
come back with the weights.
"""

import dataclasses
import json
from typing import Any

import tensorflow as tf


@dataclasses.dataclass
class _Record:
    epoch_sums: dict[str, float]
    epoch_steps: int
    epoch_train_seconds: float
    total_train_seconds: float
    total_wall_seconds: float
    steps_per_epoch: int
    history: list
    epoch_skipped_steps: int = 0
    total_skipped_steps: int = 0


class LoopState(tf.train.experimental.PythonState):
    """The loop's Python-side state, checkpointed as JSON.

    Attributes:
      epoch_sums: logged key -> sum over the epoch's counted steps.
      epoch_steps: steps taken in the epoch in progress.
      epoch_train_seconds, total_train_seconds: time in training loops.
      total_wall_seconds: wall-clock time of every launch of the run.
      steps_per_epoch: of the data source that wrote it (resume checks it).
      history: one record per completed epoch (what metrics.json lists).
      epoch_skipped_steps, total_skipped_steps: steps whose update
        `--on_nonfinite=skip_step` undid.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.epoch_sums: dict[str, float] = {}
        self.epoch_steps = 0
        self.epoch_train_seconds = 0.0
        self.total_train_seconds = 0.0
        self.total_wall_seconds = 0.0
        self.steps_per_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.epoch_skipped_steps = 0
        self.total_skipped_steps = 0

    def start_epoch(self) -> None:
        self.epoch_sums, self.epoch_steps = {}, 0
        self.epoch_train_seconds = 0.0
        self.epoch_skipped_steps = 0

    def add_loop(
        self, logs: dict[str, float], num_steps: int, counted: int, seconds: float
    ) -> None:
        """Accounts one loop of `num_steps` steps, `counted` of which left
        values (their mean is `logs`), that took `seconds`."""
        for key, value in logs.items():
            self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value * counted
        self.epoch_steps += num_steps
        self.epoch_train_seconds += seconds
        self.total_train_seconds += seconds

    def add_skipped(self, skipped: int) -> None:
        self.epoch_skipped_steps += skipped
        self.total_skipped_steps += skipped

    def epoch_means(self) -> dict[str, float]:
        """The epoch's logged values, averaged over its counted steps."""
        counted = max(1, self.epoch_steps - self.epoch_skipped_steps)
        return {key: total / counted for key, total in self.epoch_sums.items()}

    def epoch_record(
        self, epoch: int, global_step: int, batch_size: int, with_skipped: bool
    ) -> dict[str, Any]:
        """The completed epoch `epoch` (from 0) as metrics.json lists it,
        before evaluation and wall time are added."""
        record = {
            "epoch": epoch + 1,
            "global_step": global_step,
            "train": self.epoch_means(),
            "images_per_second": (
                self.epoch_steps * batch_size / max(self.epoch_train_seconds, 1e-9)
            ),
            "epoch_train_seconds": self.epoch_train_seconds,
            "total_train_seconds": self.total_train_seconds,
        }
        if with_skipped:
            record["skipped_nonfinite_steps"] = self.epoch_skipped_steps
        return record

    def serialize(self) -> str:
        return json.dumps(
            dataclasses.asdict(
                _Record(
                    epoch_sums=self.epoch_sums,
                    epoch_steps=self.epoch_steps,
                    epoch_train_seconds=self.epoch_train_seconds,
                    total_train_seconds=self.total_train_seconds,
                    total_wall_seconds=self.total_wall_seconds,
                    steps_per_epoch=self.steps_per_epoch,
                    history=self.history,
                    epoch_skipped_steps=self.epoch_skipped_steps,
                    total_skipped_steps=self.total_skipped_steps,
                )
            )
        )

    def deserialize(self, string_value) -> None:
        if hasattr(string_value, "numpy"):
            string_value = string_value.numpy()
        if isinstance(string_value, bytes):
            string_value = string_value.decode("utf-8")
        record = json.loads(string_value)
        self.epoch_sums = dict(record["epoch_sums"])
        self.epoch_steps = int(record["epoch_steps"])
        self.epoch_train_seconds = float(record["epoch_train_seconds"])
        self.total_train_seconds = float(record["total_train_seconds"])
        self.total_wall_seconds = float(record["total_wall_seconds"])
        self.steps_per_epoch = int(record["steps_per_epoch"])
        self.history = list(record["history"])
        # Absent from checkpoints written before steps could be skipped.
        self.epoch_skipped_steps = int(record.get("epoch_skipped_steps", 0))
        self.total_skipped_steps = int(record.get("total_skipped_steps", 0))


def metrics_payload(history: list[dict[str, Any]]) -> dict[str, Any]:
    """What metrics.json holds: every epoch's record and, once there is
    one, the last epoch's values as "final", with images/s over the whole
    run."""
    payload: dict[str, Any] = {"epochs": history}
    if history:
        last = history[-1]
        total_images = sum(
            record["images_per_second"] * record["epoch_train_seconds"]
            for record in history
        )
        total_seconds = sum(record["epoch_train_seconds"] for record in history)
        final = {
            key: value
            for key, value in last.items()
            if key not in ("images_per_second", "epoch_train_seconds")
        }
        final["images_per_second"] = total_images / max(total_seconds, 1e-9)
        payload["final"] = final
    return payload
