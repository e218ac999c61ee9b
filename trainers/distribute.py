"""What a trainer needs to know about the `tf.distribute` strategy it runs
under.

The base trainer (`trainers.base`) runs every step on all replicas of its
strategy: the default strategy (one device, what a plain program gets),
`MirroredStrategy` (the GPUs of one machine), `MultiWorkerMirroredStrategy`
(several machines, each a worker with its own GPUs). Nothing here is
specific to those three; a TPU strategy answers the same questions.

Two things differ from a single device, and this module holds both:

* Gradients. A step computes the mean loss over the batch its replica sees
  (the global batch divided by the number of replicas) and the optimiser
  sums the replicas' gradients. `ReplicaAveragingOptimizer` divides each
  replica's gradients by the number of replicas before that sum, so the
  update is the gradient of the mean over the global batch, the same update
  as one device would take on the whole batch. Subclasses of the trainer keep
  writing batch means, as on one device.
* Roles. In a multi-worker run exactly one worker, the chief, writes the
  workdir (checkpoints, summaries, metrics, pictures, the export); the others
  must still take part in writing checkpoints, because saving a distributed
  variable can need every worker, so they write theirs to a temporary
  directory of their own and delete it (TensorFlow's multi-worker
  recommendation).
"""

from collections.abc import Iterable, Sequence
import inspect
from typing import Any

import tensorflow as tf


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one worker that writes the workdir (always on one
    machine)."""
    return bool(strategy.extended.should_checkpoint)


def task(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    """(task type, task index) of this worker, ("worker", 0) on one machine."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    if task_type is None or task_id is None:
        return "worker", 0
    return str(task_type), int(task_id)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """How many processes take part in each step (1 unless multi-worker).

    A TPU strategy is one process however many hosts its cores are on, so
    only a multi-worker strategy's cluster counts.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    cluster_spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return max(1, sum(len(cluster_spec.get(job, ())) for job in ("chief", "worker")))


def check_batch_divides(strategy: tf.distribute.Strategy, batch_size: int) -> None:
    """Raises ValueError unless the global batch splits evenly over replicas.

    Each replica's loss is a mean over its share of the batch; only equal
    shares make the average of those means the mean over the whole batch.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"The batch size {batch_size} does not split evenly over the "
            f"{replicas} replicas of the {type(strategy).__name__}; expected "
            f"a multiple of {replicas} (each replica takes batch_size / "
            f"{replicas} examples per step)."
        )


def _optimizer_variables(optimizer: Any) -> Sequence[tf.Variable]:
    # tf-keras optimisers expose `variables` as a property (a callable list),
    # the legacy ones as a method.
    variables = optimizer.variables
    variables = variables() if inspect.ismethod(variables) else list(variables)
    # A Keras 3 optimiser's variables are `keras.Variable`s wrapping the
    # `tf.Variable` (or distributed variable) in `.value`.
    return [
        variable
        if isinstance(variable, tf.Variable)
        else getattr(variable, "value", variable)
        for variable in variables
    ]


# What the trainer calls on an optimiser: tf-keras (Keras 2) and Keras 3
# optimisers both have these.
_OPTIMIZER_METHODS = ("apply_gradients", "build")


def check_optimizer(name: str, optimizer: Any) -> None:
    """Raises ValueError unless `optimizer` can serve as a trainer's optimiser.

    Keras 3 optimisers (`keras.optimizers.*`, which is what
    `tf.keras.optimizers` is with TensorFlow 2.16 and later) and tf-keras
    ones (`trainers.optimizers.make_optimizer`) both can.
    """
    missing = [
        method
        for method in _OPTIMIZER_METHODS
        if not callable(getattr(optimizer, method, None))
    ]
    if missing or not hasattr(optimizer, "variables"):
        raise ValueError(
            f"The optimiser {name!r} is {optimizer!r} (a "
            f"{type(optimizer).__module__}.{type(optimizer).__qualname__}), "
            "which is not a usable optimiser: it lacks "
            f"{', '.join(missing) or 'variables'}. Expected a Keras "
            "optimiser, such as keras.optimizers.Adam(1e-3) or "
            "trainers.optimizers.make_optimizer('adam', 1e-3)."
        )


def check_created_in_scope(
    strategy: tf.distribute.Strategy,
    named_variables: Iterable[tuple[str, Iterable[tf.Variable]]],
) -> None:
    """Raises ValueError naming the first owner whose variables the strategy
    did not create.

    A variable made outside `strategy.scope()` lives on one device only, so
    the replicas would not share it and the run would fail, or silently
    train one copy.

    Args:
      strategy: the strategy the trainer runs under.
      named_variables: (what owns them, e.g. "the model", variables) pairs.
    """
    for owner, variables in named_variables:
        for variable in variables:
            if not strategy.extended.variable_created_in_scope(variable):
                raise ValueError(
                    f"The variable {variable.name} of {owner} was not created "
                    f"under the scope of the trainer's "
                    f"{type(strategy).__name__}; create the model, its "
                    "optimisers and the trainer inside `with "
                    "strategy.scope():` (or pass the strategy whose scope "
                    "they were created in)."
                )


def optimizer_variables(name: str, optimizer: Any) -> tuple[str, Sequence[tf.Variable]]:
    """("the optimiser 'NAME'", its variables), for
    `check_created_in_scope`."""
    return f"the optimiser {name!r}", _optimizer_variables(optimizer)


def _divided(gradient, divisor: int):
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(
            gradient.values / divisor, gradient.indices, gradient.dense_shape
        )
    return gradient / divisor


class ReplicaAveragingOptimizer:
    """An optimiser as one replica's step sees it: gradients are averaged.

    `apply_gradients` divides the gradients by the number of replicas, then
    hands them to the wrapped optimiser, which sums them over the replicas:
    the update is the replicas' mean gradient. With the per-replica loss a
    mean over the replica's equal share of the batch, that is the gradient of
    the mean over the global batch. (The division by a power of two, as for
    2, 4 or 8 replicas, is exact in floating point.)

    Everything else (`learning_rate`, `iterations`, ...) is the wrapped
    optimiser's; checkpoints hold the wrapped optimiser itself, so a run can
    resume under another number of replicas.

    Args:
      optimizer: a tf-keras optimiser created in the strategy's scope.
      num_replicas: replicas in sync (more than 1; with one replica there is
        nothing to average, and the trainer uses the optimiser directly).
    """

    def __init__(self, optimizer: Any, num_replicas: int):
        self.wrapped = optimizer
        self.num_replicas = num_replicas

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        averaged = [
            (_divided(gradient, self.num_replicas), variable)
            for gradient, variable in grads_and_vars
        ]
        return self.wrapped.apply_gradients(averaged, *args, **kwargs)

    def __getattr__(self, name):
        # Only reached for names the wrapper lacks; special names stay the
        # wrapper's own, so that copying or inspecting it never reaches into
        # the optimiser (or recurses before `wrapped` is set).
        if name.startswith("__") or name == "wrapped":
            raise AttributeError(name)
        return getattr(self.wrapped, name)


def averaging_over_replicas(optimizer: Any, strategy: tf.distribute.Strategy) -> Any:
    """The optimiser itself with one replica, else a
    `ReplicaAveragingOptimizer` around it."""
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return optimizer
    return ReplicaAveragingOptimizer(optimizer, replicas)
