"""What the loop does when a step makes something non-finite (NaN or inf).

A step that diverges (a learning rate far too high, say) first shows a
non-finite loss, or an update that makes a weight non-finite; from then on
every later step is non-finite too, and any checkpoint or export written
after it holds unusable weights. The base loop checks, after every step and
inside the compiled loop, that every logged scalar and every weight of the
model and of the optimised variable lists is finite. A non-finite gradient
shows up there within its step: an optimiser update with a NaN or infinite
gradient makes the weights it touches non-finite (Adam, RMSprop and SGD
alike), so checking the weights after the update sees it without every
trainer having to hand its gradients to the loop. The check reads each
weight once per step, a small part of what the step itself reads (the
forward pass, the backward pass and the update each read them).

Two policies (`TrainerConfig.on_nonfinite`):

* "stop" (the default): the compiled loop ends after the first such step;
  the trainer raises `NonFiniteError` naming the global step and the
  quantity. The weights in memory are the bad step's, so nothing is saved
  after it: the latest checkpoint stays the last good one, and no export is
  written.
* "skip_step": the loop keeps a copy of every weight and optimiser variable
  before each step and puts it back when the step made anything non-finite,
  so the bad batch's update is not applied (the optimisers' step counters
  are restored too); the step still counts as taken (its batch was used),
  its logs are left out of the averages, and the number of skipped steps is
  logged and written to each epoch's record. The copy costs one read and,
  for a skipped step, one write of every variable per step.
"""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

ON_NONFINITE_MODES = ("stop", "skip_step")


class NonFiniteError(RuntimeError):
    """Training produced a non-finite value; nothing was saved after it.

    Attributes:
      global_step: the global step whose update or logs were non-finite.
      quantities: what was non-finite (logged scalars by name, or weights).
    """

    def __init__(self, message: str, global_step: int, quantities: Sequence[str]):
        super().__init__(message)
        self.global_step = global_step
        self.quantities = list(quantities)


def unique_variables(groups: Sequence[Sequence[tf.Variable]]) -> list[tf.Variable]:
    """The variables of `groups`, each once, in order of first appearance."""
    seen, variables = set(), []
    for group in groups:
        for variable in group:
            if variable.ref() not in seen:
                seen.add(variable.ref())
                variables.append(variable)
    return variables


def all_finite(variables: Sequence[tf.Variable]) -> tf.Tensor:
    """Scalar bool: every element of every variable is finite."""
    checks = [
        tf.reduce_all(tf.math.is_finite(variable))
        for variable in variables
        if variable.dtype.is_floating
    ]
    if not checks:
        return tf.constant(True)
    return tf.reduce_all(tf.stack(checks))


def nonfinite_variable_names(
    variables: Sequence[tf.Variable], limit: int = 3
) -> tuple[list[str], int]:
    """(names of up to `limit` variables holding a non-finite value, how
    many do); eager, for the error message."""
    names = [
        variable.name
        for variable in variables
        if variable.dtype.is_floating and not np.all(np.isfinite(variable.numpy()))
    ]
    return names[:limit], len(names)


def stop_message(global_step: int, quantities: Sequence[str], latest_checkpoint) -> str:
    """The paragraph a stopped run reports."""
    where = (
        f"The latest checkpoint, {latest_checkpoint}, holds the last "
        "good weights and stays the latest; running the same command "
        "again resumes from it (and diverges the same way unless "
        "something changes)."
        if latest_checkpoint
        else "No checkpoint had been written yet."
    )
    return (
        f"Training diverged: at global step {global_step} "
        f"{' and '.join(quantities)} became non-finite (NaN or inf). "
        "The weights in memory are no longer usable, so no checkpoint "
        f"or export was written from them. {where} Lower the learning "
        "rate (or check the data and the loss weights), or pass "
        "--on_nonfinite=skip_step to skip the updates of such steps."
    )
