"""The base trainer: it owns the loop, a subclass writes the maths of a step.

The shape follows TF Model Garden's orbit: the trainer is a `tf.Module`; the
base class compiles the step with `tf.function` and runs `steps_per_loop`
steps inside one compiled call (a `tf.while_loop` over the dataset iterator),
so Python runs once per loop rather than once per step. Around that loop the
base class keeps the global step, checkpoints, TensorBoard summaries,
progress, evaluation, epoch-end hooks and signal handling, so that a subclass
gets all of them by writing `train_step` and `eval_step`.

Every step runs under a `tf.distribute.Strategy` (the default one unless the
trainer is given another): the training batches are distributed over the
strategy's replicas, `train_step` runs on each replica through
`strategy.run`, each optimiser averages the replicas' gradients, and the
logged scalars are averaged over the replicas (see `trainers.distribute`).
With several workers, only the chief writes the workdir, and a stop signal
that reaches any worker stops all of them at the same step.
"""

from collections.abc import Callable, Mapping, Sequence
import dataclasses
import gc
import os
import shutil
import signal
import tempfile
import time
from typing import Any, Protocol
import weakref

from absl import logging
import tensorflow as tf

from trainers import checkpointing
from trainers import distribute as distribute_lib
from trainers import loop_state as loop_state_lib
from trainers import nonfinite as nonfinite_lib
from trainers import progress as progress_lib
from trainers import stop_signals
from trainers import worker_vote
from vae import atomic_files

Logs = dict[str, tf.Tensor]

# The step's seed: a stateless seed, as `tf.random.stateless_*` take it.
SEED_SPEC = tf.TensorSpec([2], tf.int32)


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """How the loop runs; nothing here changes what the model computes.

    Attributes:
      workdir: directory for checkpoints, TensorBoard events and metrics.json.
      epochs: number of passes over the training data.
      seed: seeds the trainer's random generators (sampling noise).
      steps_per_loop: steps run inside one compiled call; Python (progress,
        signal checks, summaries) runs between calls.
      jit_compile: compile the step with XLA (with several replicas:
        `train_step` on each replica).
      log_every_steps: TensorBoard scalars at most once per this many steps.
      checkpoint_every_steps: also checkpoint mid-epoch this often (0: only at
        the end of each epoch and when interrupted).
      checkpoint_every_seconds: also checkpoint after the first loop of steps
        that ends this long after the last checkpoint (0: never by time).
        With several workers they agree to save when any of them is due, so
        a lost worker costs this much training rather than an epoch.
      max_checkpoints_to_keep: older checkpoints are deleted beyond this.
      progress: "auto", "bar", "log" or "none" (see trainers.progress).
      on_nonfinite: what a step that makes a logged scalar or a weight
        non-finite does: "stop" (raise `NonFiniteError`, save nothing more)
        or "skip_step" (undo its update and go on); see trainers.nonfinite.
    """

    workdir: str
    epochs: int
    seed: int = 0
    steps_per_loop: int = 50
    jit_compile: bool = False
    log_every_steps: int = 100
    checkpoint_every_steps: int = 0
    checkpoint_every_seconds: float = 0.0
    max_checkpoints_to_keep: int = 3
    progress: str = "auto"
    on_nonfinite: str = "stop"

    def validate(self) -> None:
        for name in (
            "epochs",
            "steps_per_loop",
            "log_every_steps",
            "max_checkpoints_to_keep",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"TrainerConfig.{name} must be at least 1, got {getattr(self, name)}."
                )
        if self.checkpoint_every_steps < 0:
            raise ValueError(
                "TrainerConfig.checkpoint_every_steps must be 0 "
                "(epoch ends only) or positive, got "
                f"{self.checkpoint_every_steps}."
            )
        if self.checkpoint_every_seconds < 0:
            raise ValueError(
                "TrainerConfig.checkpoint_every_seconds must be "
                "0 (never by time) or positive, got "
                f"{self.checkpoint_every_seconds}."
            )
        if self.progress not in progress_lib.PROGRESS_MODES:
            raise ValueError(
                f"TrainerConfig.progress must be one of "
                f"{progress_lib.PROGRESS_MODES}, got "
                f"{self.progress!r}."
            )
        if self.on_nonfinite not in nonfinite_lib.ON_NONFINITE_MODES:
            raise ValueError(
                f"TrainerConfig.on_nonfinite must be one of "
                f"{nonfinite_lib.ON_NONFINITE_MODES}, got "
                f"{self.on_nonfinite!r}."
            )


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where batches come from.

    Attributes:
      train_batches: `(epoch, skip_batches) -> tf.data.Dataset` giving the
        batches of one epoch, the first `skip_batches` left out. It must give
        the same batches for the same epoch every time it is called: resume
        depends on it.
      steps_per_epoch: number of batches `train_batches` gives per epoch.
      batch_size: images per training batch (for images/s).
      eval_batches: split name -> `() -> tf.data.Dataset` of evaluation
        batches; each element carries a float `mask` of shape [batch] that is
        0 for padding rows.
    """

    train_batches: Callable[[int, int], tf.data.Dataset]
    steps_per_epoch: int
    batch_size: int
    eval_batches: Mapping[str, Callable[[], tf.data.Dataset]] = dataclasses.field(
        default_factory=dict
    )


class Hook(Protocol):
    """Called by the loop at the end of each epoch (after evaluation)."""

    def on_epoch_end(
        self, trainer: "Trainer", epoch: int, logs: Mapping[str, Any]
    ) -> None: ...


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `Trainer.train` returns.

    Attributes:
      completed: True when every epoch ran; False when a signal stopped it.
      stop_signal: the signal number that stopped training, else None.
      global_step: steps taken so far, over all runs in this workdir.
      metrics: the contents of metrics.json.
    """

    completed: bool
    stop_signal: int | None
    global_step: int
    metrics: dict[str, Any]


class Trainer(tf.Module):
    """Base class of all trainers: it owns the loop, a subclass the maths.

    The contract (trainers/WRITING_A_TRAINER.md says it with an example):

    * `train_step(batch, seed) -> dict of scalar tensors` (required): one
      optimisation step, written as for one device. `batch` is a dict of
      tensors; `seed` a stateless int32 [2] seed, fresh every step and the
      same on every replica. Take a `tf.GradientTape` per optimiser, the mean
      loss over the batch, apply each optimiser in `self.optimizers` to its
      variables in `self.optimized_variables`, and return the scalars to
      log. Per-example noise: `self.example_noise(seed, batch_size, shape)`
      (example i draws the same on one device as on eight); draws that need
      only differ between replicas (dropout): `self.replica_seed(seed)`.
      The loop counts the global step.
    * `eval_step(batch) -> dict of [batch] tensors` (when there is
      evaluation data): per-example metrics, averaged by the base class over
      the rows whose `mask` is 1; randomness from `self.next_eval_seed()`,
      the same at every evaluation.
    * For the programs (`vae-train --trainer=...`): class attributes
      `model_class`, `model_config_class` and `objective_class` (a frozen
      dataclass; each field becomes a flag) and the classmethod
      `from_objective`. `ElboTrainer` has them all; its subclasses set
      `objective_class` and write `train_step`.

    Rarely needed: `distributed_train_step(batch, seed)` when a step's
    control flow depends on what all replicas measured (the VAE-GAN's
    balancing); `on_epoch_end(epoch, logs)` (hooks passed to the
    constructor are the usual way to add outputs); `track_in_checkpoint(
    name=variable)` for more state that resume needs; `check_configs` to
    refuse a model the trainer cannot train.

    The base class brings the rest: compiled loops of `steps_per_loop`
    steps, distribution over the strategy's replicas, checkpoints of the
    model, optimisers, random generator and loop state (resume is exact,
    mid-epoch too; trainers.checkpointing), TensorBoard, progress,
    evaluation, `metrics.json` (trainers.loop_state), the non-finite guard
    (trainers.nonfinite) and stop signals (trainers.stop_signals,
    trainers.worker_vote). Create the model, the optimisers and the trainer
    in the strategy's scope. With several workers only the chief writes the
    workdir, which every worker must see.

    Args:
      model: the `tf.Module` being trained; checkpointed as "model".
      optimizers: name -> (optimiser, variables it updates). One entry per
        player; no optimiser sees another's variables.
      config: loop settings.
      data: the data source; its batches are global batches, split over the
        replicas.
      hooks: objects with `on_epoch_end(trainer, epoch, logs)`; run on the
        chief only.
      name: module name.
      strategy: the `tf.distribute.Strategy` to train under; None: the one
        whose scope the trainer is created in (the default strategy outside
        any scope).
    """

    # What the programs read to build a run of this trainer (see
    # `trainers.registry`); None where the trainer is not launched by them.
    model_class: type | None = None
    model_config_class: type | None = None
    objective_class: type | None = None
    # Defaults of the shared program flags that suit this trainer, e.g.
    # {"batch_size": 64}; the command line still overrides them.
    flag_defaults: Mapping[str, Any] = {}

    def __init__(
        self,
        model: tf.Module,
        optimizers: Mapping[str, tuple[Any, Sequence[tf.Variable]]],
        config: TrainerConfig,
        data: DataSource,
        hooks: Sequence[Hook] = (),
        name: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        super().__init__(name=name)
        config.validate()
        if not optimizers:
            raise ValueError("A trainer needs at least one optimiser.")
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        distribute_lib.check_batch_divides(self.strategy, data.batch_size)
        self.model = model
        self.config = config
        self.data = data
        self.hooks = list(hooks)
        checkpointed_optimizers = {key: pair[0] for key, pair in optimizers.items()}
        for key, optimizer in checkpointed_optimizers.items():
            distribute_lib.check_optimizer(key, optimizer)
        self.optimizers = {
            key: distribute_lib.averaging_over_replicas(optimizer, self.strategy)
            for key, optimizer in checkpointed_optimizers.items()
        }
        self.optimized_variables = {
            key: list(pair[1]) for key, pair in optimizers.items()
        }
        self.is_chief = distribute_lib.is_chief(self.strategy)

        # Before anything is built on them: building an optimiser's slots
        # for variables from elsewhere fails with a less helpful message.
        distribute_lib.check_created_in_scope(
            self.strategy,
            [
                ("the model", model.variables),
                *(
                    distribute_lib.optimizer_variables(key, optimizer)
                    for key, optimizer in checkpointed_optimizers.items()
                ),
            ],
        )
        with self.strategy.scope():
            for key, optimizer in checkpointed_optimizers.items():
                # Slots exist before any restore, so a checkpoint restores
                # them directly instead of relying on deferred restoration.
                optimizer.build(self.optimized_variables[key])
            self.global_step = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="global_step"
            )
            self.completed_epochs = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="completed_epochs"
            )
            # The source of every training step's seed, drawn once per step
            # by the loop and passed to the step.
            self.rng = tf.random.Generator.from_seed(config.seed)
            self._eval_rng = tf.random.Generator.from_seed(config.seed + 1)
        self._loop_state = loop_state_lib.LoopState()

        self.checkpoint = tf.train.Checkpoint(
            model=model,
            global_step=self.global_step,
            completed_epochs=self.completed_epochs,
            rng=self.rng,
            loop_state=self._loop_state,
            **{
                f"optimizer_{key}": optimizer
                for key, optimizer in checkpointed_optimizers.items()
            },
        )
        self.checkpoint_dir = os.path.join(config.workdir, "checkpoints")
        self.metrics_path = os.path.join(config.workdir, "metrics.json")
        # The chief's TensorBoard writer is made on first use (see
        # `summary_writer`): its events file must not appear in the workdir
        # before the checkpoint is known to load.
        self._summary_writer = None
        if self.is_chief:
            os.makedirs(config.workdir, exist_ok=True)
            checkpoint_dir = self.checkpoint_dir
        else:
            # Saving may need every worker, so the others save too, where
            # nobody reads it; the finalizer deletes it even if train() is
            # never called.
            task_type, task_id = distribute_lib.task(self.strategy)
            checkpoint_dir = tempfile.mkdtemp(
                prefix=f"vae-{task_type}-{task_id}-checkpoints-"
            )
            weakref.finalize(self, shutil.rmtree, checkpoint_dir, ignore_errors=True)
            self._summary_writer = tf.summary.create_noop_writer()
        self.checkpoint_manager = tf.train.CheckpointManager(
            self.checkpoint,
            checkpoint_dir,
            max_to_keep=(config.max_checkpoints_to_keep if self.is_chief else 1),
        )

        # With one replica the whole step is compiled with XLA, as before
        # strategies; with several, the replica function is (XLA cannot
        # compile the cross-device reduction around it).
        one_replica = self.strategy.num_replicas_in_sync == 1
        self._replica_step_fn = (
            tf.function(self.train_step, jit_compile=True)
            if config.jit_compile and not one_replica
            else self.train_step
        )
        self._step_fn = tf.function(
            self.distributed_train_step, jit_compile=config.jit_compile and one_replica
        )
        self._eval_step_fn = tf.function(self.eval_step)
        # What the non-finite guard checks after every step, and (for
        # skip_step) what it puts back.
        self._guarded_variables = nonfinite_lib.unique_variables(
            [model.variables, *self.optimized_variables.values()]
        )
        self._restorable_variables = nonfinite_lib.unique_variables(
            [
                self._guarded_variables,
                *(
                    distribute_lib.optimizer_variables(key, optimizer)[1]
                    for key, optimizer in checkpointed_optimizers.items()
                ),
            ]
        )
        self._train_loop_fn = None
        self._eval_loop_fn = None
        self._vote = worker_vote.WorkerVote(self.strategy)
        self._stop_request = stop_signals.StopRequest()
        self._stop_signal: int | None = None
        self._last_save_time = time.monotonic()
        # The global step of the checkpoint written before an evaluation
        # that this trainer restored (see `_finish_epoch`).
        self._written_before_evaluation_at = -1
        # The global step of this trainer's latest numbered checkpoint.
        self._saved_at_step = -1

    @classmethod
    def check_configs(cls, model_config: Any, objective: Any) -> None:
        """Raises ValueError, naming the flags, when a model of
        `model_config` cannot be trained on `objective`; the programs call
        it before any work. The default accepts every pair."""
        del model_config, objective

    @classmethod
    def from_objective(
        cls,
        model: tf.Module,
        objective: Any,
        config: TrainerConfig,
        data: DataSource,
        hooks: Sequence[Hook] = (),
    ) -> "Trainer":
        """Builds the trainer a program asks for: its optimisers made from
        `objective` (an instance of `objective_class`). Called in the scope
        of the strategy to train under; see `trainers.registry`."""
        raise NotImplementedError(
            f"{cls.__name__} does not say how to build itself from an "
            "objective; define the classmethod from_objective(model, "
            "objective, config, data, hooks) to launch it with vae-train."
        )

    # ----------------------------------------------------------- subclasses
    def train_step(self, batch: Mapping[str, tf.Tensor], seed: tf.Tensor) -> Logs:
        """One optimisation step on one replica; see the class docstring."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement train_step(batch, seed) "
            "(or distributed_train_step(batch, seed))."
        )

    def distributed_train_step(self, batch: Any, seed: tf.Tensor) -> Logs:
        """One step on every replica; see the class docstring.

        Args:
          batch: a batch distributed over the replicas (on one replica, the
            batch itself).
          seed: the step's stateless seed, int32 [2], drawn once outside the
            replicas from the checkpointed generator `self.rng`.

        Returns:
          The scalars of `train_step`, as float32, averaged over the replicas.
        """

        def replica_step(replica_batch, replica_seed):
            logs = self._replica_step_fn(replica_batch, replica_seed)
            return {key: tf.cast(value, tf.float32) for key, value in logs.items()}

        return self.mean_over_replicas(
            self.strategy.run(replica_step, args=(batch, seed))
        )

    def eval_step(self, batch: Mapping[str, tf.Tensor]) -> Logs:
        """Per-example evaluation metrics; see the class docstring."""
        raise NotImplementedError(
            f"{type(self).__name__} has evaluation data but no eval_step."
        )

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Extra epoch-end work for subclasses; the default does nothing."""

    # ------------------------------------------------------------- helpers
    def example_noise(
        self,
        seed: tf.Tensor,
        batch_size: tf.Tensor,
        event_shape: Sequence[int],
        dtype: tf.DType = tf.float32,
    ) -> tf.Tensor:
        """Standard normal noise [batch_size, *event_shape] for this
        replica's examples, the same for example i on any number of replicas.

        Args:
          seed: a seed that is the same on every replica (the step's).
          batch_size: this replica's batch size (`tf.shape(images)[0]`).
          event_shape: the shape of one example's noise, e.g. [latent_dim]
            or [num_samples, latent_dim].
          dtype: a floating dtype.
        """

        def draw(num_examples):
            shape = tf.concat(
                [[num_examples], tf.constant(list(event_shape), tf.int32)], 0
            )
            return tf.random.stateless_normal(shape, seed, dtype=dtype)

        return self.example_rows(draw, tf.cast(batch_size, tf.int32))

    def replica_seed(self, seed: tf.Tensor) -> tf.Tensor:
        """`seed` with this replica's index folded in, for draws that need
        only differ between replicas (dropout masks); on one replica, `seed`
        itself."""
        if self.strategy.num_replicas_in_sync == 1:
            return seed
        return tf.random.experimental.stateless_fold_in(
            seed, tf.distribute.get_replica_context().replica_id_in_sync_group
        )

    def example_rows(
        self, draw: Callable[[tf.Tensor], tf.Tensor], batch_size: tf.Tensor
    ) -> tf.Tensor:
        """This replica's rows of a draw made for the whole global batch.

        `draw(n)` makes n rows of per-example randomness from a seed that is
        the same on every replica; replica r of R keeps rows r * batch_size to
        (r + 1) * batch_size, the examples tf.distribute gives it (it splits
        each global batch evenly, in order). So example i gets the same draw
        on one device as on eight, and a run on several follows the
        one-device run up to float rounding. `example_noise` is this for
        standard normal noise.

        Args:
          draw: n (a scalar int32 tensor) -> a tensor of n rows.
          batch_size: this replica's batch size (`tf.shape(images)[0]`).
        """
        replicas = self.strategy.num_replicas_in_sync
        rows = draw(batch_size * replicas)
        if replicas == 1:
            return rows
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        start = tf.cast(replica, batch_size.dtype) * batch_size
        return rows[start : start + batch_size]

    def mean_over_replicas(self, values: Any) -> Any:
        """Averages per-replica values (a tensor or a dict of them) over the
        replicas, in cross-replica context; on one replica, the values
        themselves."""

        def mean(value):
            return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)

        if isinstance(values, Mapping):
            return {key: mean(value) for key, value in values.items()}
        return mean(values)

    def next_eval_seed(self) -> tf.Tensor:
        """A stateless seed for evaluation, reproducible across epochs."""
        return self._eval_rng.uniform_full_int([2], dtype=tf.int32)

    @property
    def compiled_step(self) -> Callable:
        """The `tf.function` of one training step (`distributed_train_step`),
        for tools that trace it, such as the benchmark's FLOP count."""
        return self._step_fn

    @property
    def summary_writer(self) -> tf.summary.SummaryWriter:
        """The TensorBoard writer (the chief's, in WORKDIR/tensorboard;
        another worker's writes nothing), made on first use."""
        if self._summary_writer is None:
            self._summary_writer = tf.summary.create_file_writer(
                os.path.join(self.config.workdir, "tensorboard")
            )
        return self._summary_writer

    @property
    def epoch(self) -> int:
        """Number of epochs completed so far."""
        return int(self.completed_epochs.numpy())

    @property
    def history(self) -> list[dict[str, Any]]:
        """The records of the completed epochs, as metrics.json's "epochs".

        The history is part of the checkpoint, so a resumed trainer's holds
        the epochs of the runs before it too.
        """
        return list(self._loop_state.history)

    def restore(self) -> bool:
        """Restores the latest checkpoint in the workdir, if there is one.

        Returns:
          True when a checkpoint was restored.
        """
        # Every worker resumes from the chief's checkpoints, the newest that
        # can be read, whatever the state file says (see
        # trainers.checkpointing).
        latest = checkpointing.restore_newest_readable(
            self.checkpoint, self.checkpoint_dir
        )
        # An epoch that ended but whose evaluation or hooks did not finish:
        # its end, written before the evaluation, is newer than any
        # numbered checkpoint.
        restored = latest
        step = checkpointing.before_evaluation_step(self.checkpoint_dir)
        if step is not None and step > int(self.global_step.numpy()):
            restored = checkpointing.restore_before_evaluation(
                self.checkpoint, self.checkpoint_dir, fallback=latest
            )
        before_evaluation = restored is not None and restored != latest
        if self.is_chief:
            if not before_evaluation:
                checkpointing.remove_before_evaluation(self.checkpoint_dir)
            checkpointing.remove_temporary_leftovers(self.checkpoint_dir)
        if restored is None:
            return False
        if self.is_chief and latest is not None:
            repaired = checkpointing.repair_state_file(self.checkpoint_manager, latest)
            if repaired is not None:
                self.checkpoint_manager = repaired
        if before_evaluation:
            self._written_before_evaluation_at = int(self.global_step.numpy())
        logging.info(
            "Restored %s: global step %d, %d epochs completed%s.",
            restored,
            int(self.global_step.numpy()),
            self.epoch,
            "; the evaluation of the epoch that ended there runs now"
            if before_evaluation
            else "",
        )
        return True

    def save_checkpoint(self) -> str:
        """Writes a checkpoint; raises `checkpointing.CheckpointWriteError`
        (the partial files removed, the previous checkpoint intact) when it
        cannot."""
        path = checkpointing.save(self.checkpoint_manager)
        self._last_save_time = time.monotonic()
        self._saved_at_step = int(self.global_step.numpy())
        return path

    def track_in_checkpoint(self, **state: tf.Variable) -> None:
        """Adds a subclass's own state to every checkpoint, by name.

        Call it in the subclass's constructor, after `super().__init__`, for
        anything besides the model and the optimisers that resume depends on
        (counters, schedules' state), so that a resumed run continues from the
        same values. The names must not clash with the base class's
        ("model", "global_step", "rng", "optimizer_*", ...).
        """
        distribute_lib.check_created_in_scope(
            self.strategy,
            [
                (f"the trainer's {key!r}", [value])
                for key, value in state.items()
                if isinstance(value, tf.Variable)
            ],
        )
        for key, value in state.items():
            if hasattr(self.checkpoint, key):
                raise ValueError(
                    f"The checkpoint already holds {key!r}; choose another name."
                )
            setattr(self.checkpoint, key, value)

    # ---------------------------------------------------------------- loops
    def _build_train_loop(self, element_spec) -> Callable:
        # Tracing the step once here tells us which scalars it returns; the
        # traced function is cached, so the loop below reuses it.
        structure = self._step_fn.get_concrete_function(
            element_spec, SEED_SPEC
        ).structured_outputs
        keys = sorted(structure)
        skip = self.config.on_nonfinite == "skip_step"
        guarded = self._guarded_variables
        restorable = self._restorable_variables

        def restore(backup):
            for variable, value in zip(restorable, backup):
                variable.assign(value)
            return tf.constant(True)

        # The non-finite guard (trainers.nonfinite): after every step, one
        # flag per logged scalar and one for the weights; "stop" ends the
        # loop after the first step that raises one, "skip_step" undoes it.
        @tf.function
        def train_loop(iterator, num_steps):
            sums = {key: tf.constant(0.0, tf.float32) for key in keys}
            steps = tf.constant(0, tf.int32)
            counted = tf.constant(0, tf.int32)
            nonfinite = tf.zeros([len(keys) + 1], tf.bool)
            while steps < num_steps and not tf.reduce_any(nonfinite):
                backup = (
                    [variable.read_value() for variable in restorable] if skip else []
                )
                # Drawn here, outside the replicas (in a replica the
                # generator would fold the replica's index in), so every
                # replica gets the same seed.
                seed = self.rng.uniform_full_int([2], dtype=tf.int32)
                logs = self._step_fn(next(iterator), seed)
                self.global_step.assign_add(1)
                steps += 1
                flags = tf.stack(
                    [
                        tf.logical_not(tf.math.is_finite(tf.cast(logs[key], tf.float32)))
                        for key in keys
                    ]
                    + [tf.logical_not(nonfinite_lib.all_finite(guarded))]
                )
                finite = tf.logical_not(tf.reduce_any(flags))
                if skip:
                    tf.cond(
                        finite,
                        lambda: tf.constant(False),
                        lambda backup=backup: restore(backup),
                    )
                else:
                    nonfinite = flags
                sums = {
                    key: sums[key] + tf.where(finite, tf.cast(logs[key], tf.float32), 0.0)
                    for key in keys
                }
                counted += tf.cast(finite, tf.int32)
            divisor = tf.cast(tf.maximum(counted, 1), tf.float32)
            return ({key: sums[key] / divisor for key in keys}, steps, counted, nonfinite)

        self._train_loop_keys = keys
        return train_loop

    def _build_eval_loop(self, element_spec) -> Callable:
        structure = self._eval_step_fn.get_concrete_function(
            element_spec
        ).structured_outputs
        keys = sorted(structure)

        @tf.function
        def eval_loop(dataset):
            sums = {key: tf.constant(0.0, tf.float64) for key in keys}
            count = tf.constant(0.0, tf.float64)
            for batch in dataset:
                values = self._eval_step_fn(batch)
                mask = tf.cast(batch["mask"], tf.float64)
                sums = {
                    key: sums[key]
                    + tf.reduce_sum(tf.cast(values[key], tf.float64) * mask)
                    for key in keys
                }
                count += tf.reduce_sum(mask)
            return {key: sums[key] / count for key in keys}

        return eval_loop

    def evaluate(self) -> dict[str, dict[str, float]]:
        """Averages `eval_step` over every evaluation split.

        Returns:
          split name -> metric name -> mean over the split's real examples.
        """
        results = {}
        for split, make_dataset in self.data.eval_batches.items():
            dataset = make_dataset()
            if self._eval_loop_fn is None:
                self._eval_loop_fn = self._build_eval_loop(dataset.element_spec)
            # Same noise at every evaluation: epoch-to-epoch differences in
            # the numbers come from the model, not from the draw.
            self._eval_rng.reset_from_seed(self.config.seed + 1)
            values = self._eval_loop_fn(dataset)
            results[split] = {key: float(value.numpy()) for key, value in values.items()}
        return results

    def train(self) -> TrainResult:
        """Runs (or resumes) training until `config.epochs` are complete.

        Restores the latest checkpoint in the workdir first. Returns early,
        after writing a checkpoint, when SIGTERM, SIGUSR1 or SIGINT arrives
        (at any worker).
        """
        config = self.config
        if self.restore():
            recorded = self._loop_state.steps_per_epoch
            if recorded != self.data.steps_per_epoch:
                raise ValueError(
                    f"The checkpoint in {config.workdir} was written with "
                    f"{recorded} steps per epoch, but this data source has "
                    f"{self.data.steps_per_epoch}: the data or batch size "
                    "differs from the run that wrote it, so resuming would "
                    "not continue the same run."
                )
        self._loop_state.steps_per_epoch = self.data.steps_per_epoch
        # One progress display per run: the chief's.
        reporter = progress_lib.ProgressReporter(
            config.progress if self.is_chief else "none"
        )
        # A program installs its handlers at start (stop_signals.
        # install_for_process), so a signal that came while it loaded is
        # honoured here; elsewhere (tests, notebooks) train() handles the
        # signals while it runs.
        own_request = stop_signals.process_request() is None
        self._stop_request = (
            stop_signals.StopRequest() if own_request else stop_signals.process_request()
        )
        if own_request:
            self._stop_request.install()
        self._wall_mark = time.perf_counter()
        self._last_save_time = time.monotonic()
        try:
            # A signal before the first step (while the program loaded):
            # stop with a checkpoint of where the run stands.
            self._stop_signal, _ = self._vote(
                self._stop_request.signal_number, saving_due=False
            )
            while self.epoch < config.epochs:
                stopped = self._stop_signal is not None or self._run_epoch(
                    self.epoch, reporter
                )
                if stopped:
                    reporter.end_line()
                    self._account_wall_time()
                    path = (
                        self.checkpoint_manager.latest_checkpoint
                        if self._saved_at_step == int(self.global_step.numpy())
                        else self.save_checkpoint()
                    )
                    logging.warning(
                        "Stopped by %s at global step %d; checkpoint %s "
                        "written. Run the same command again to resume.",
                        signal.Signals(self._stop_signal).name,
                        int(self.global_step.numpy()),
                        path,
                    )
                    return TrainResult(
                        completed=False,
                        stop_signal=self._stop_signal,
                        global_step=int(self.global_step.numpy()),
                        metrics=self._metrics_payload(),
                    )
        finally:
            if own_request:
                self._stop_request.uninstall()
            if not self.is_chief:
                shutil.rmtree(self.checkpoint_manager.directory, ignore_errors=True)
        return TrainResult(
            completed=True,
            stop_signal=None,
            global_step=int(self.global_step.numpy()),
            metrics=self._metrics_payload(),
        )

    def _run_epoch(self, epoch: int, reporter: progress_lib.ProgressReporter) -> bool:
        """Trains the rest of `epoch`; returns True when a signal stopped it."""
        config, state = self.config, self._loop_state
        steps_per_epoch = self.data.steps_per_epoch
        step_in_epoch = int(self.global_step.numpy()) - epoch * steps_per_epoch
        if step_in_epoch == 0:
            state.start_epoch()
        # Free the previous epoch's datasets, iterators and evaluation sets
        # now: reference cycles through their functions keep them (and the
        # tensors they captured) until Python's cycle collector runs, which
        # it does more and more rarely as a run's objects age, so without
        # this the process grew by megabytes every epoch.
        gc.collect()
        iterator = iter(
            self.strategy.experimental_distribute_dataset(
                self._shardable(self.data.train_batches(epoch, step_in_epoch))
            )
        )
        if self._train_loop_fn is None:
            self._train_loop_fn = self._build_train_loop(iterator.element_spec)

        while step_in_epoch < steps_per_epoch:
            num_steps = min(config.steps_per_loop, steps_per_epoch - step_in_epoch)
            start = time.perf_counter()
            logs, steps, counted, nonfinite = self._train_loop_fn(
                iterator, tf.constant(num_steps)
            )
            logs = {key: float(value.numpy()) for key, value in logs.items()}
            seconds = time.perf_counter() - start
            num_steps, counted = int(steps.numpy()), int(counted.numpy())
            step_in_epoch += num_steps
            global_step = int(self.global_step.numpy())
            if nonfinite.numpy().any():
                self._raise_nonfinite(nonfinite.numpy(), global_step)
            if counted < num_steps:
                self._report_skipped(num_steps - counted, global_step)
                if not counted:
                    logs = {}  # No step of the loop left a value to show.

            state.add_loop(logs, num_steps, counted, seconds)
            images_per_second = num_steps * self.data.batch_size / seconds

            if (
                global_step // config.log_every_steps
                != (global_step - num_steps) // config.log_every_steps
            ):
                with self.summary_writer.as_default(step=global_step):
                    for key, value in logs.items():
                        tf.summary.scalar(f"train/{key}", value)
                    tf.summary.scalar("train/images_per_second", images_per_second)
            reporter.update(
                epoch=epoch,
                num_epochs=config.epochs,
                step_in_epoch=step_in_epoch,
                steps_per_epoch=steps_per_epoch,
                global_step=global_step,
                logs=logs,
                images_per_second=images_per_second,
            )
            mid_epoch = step_in_epoch < steps_per_epoch
            self._stop_signal, save_now = self._vote(
                self._stop_request.signal_number,
                saving_due=mid_epoch
                and (
                    time.monotonic() - self._last_save_time
                    >= config.checkpoint_every_seconds
                    > 0
                ),
            )
            if self._stop_signal is not None:
                return True
            if mid_epoch and (
                save_now
                or (
                    config.checkpoint_every_steps
                    and global_step // config.checkpoint_every_steps
                    != (global_step - num_steps) // config.checkpoint_every_steps
                )
            ):
                self.save_checkpoint()

        reporter.end_line()
        self._finish_epoch(epoch)
        # A signal that came during the evaluation or the hooks stops the
        # run on the checkpoint just written, not after another loop of
        # steps: a scheduler's grace period may not last that long.
        self._stop_signal, _ = self._vote(
            self._stop_request.signal_number, saving_due=False
        )
        return False

    def _raise_nonfinite(self, flags, global_step: int) -> None:
        """Raises `NonFiniteError` for the step whose `flags` (one per
        logged scalar, then one for the weights) are set."""
        keys = self._train_loop_keys
        logged = [key for key, flag in zip(keys, flags) if flag]
        quantities = []
        if logged:
            quantities.append(f"the logged {', '.join(logged)}")
        if flags[-1]:
            names, count = nonfinite_lib.nonfinite_variable_names(self._guarded_variables)
            quantities.append(
                f"{count} weight variable(s) after the step's update "
                f"({', '.join(names)}{', ...' if count > len(names) else ''})"
            )
        message = nonfinite_lib.stop_message(
            global_step, quantities, self.checkpoint_manager.latest_checkpoint
        )
        raise nonfinite_lib.NonFiniteError(message, global_step, quantities)

    def _report_skipped(self, skipped: int, global_step: int) -> None:
        state = self._loop_state
        state.add_skipped(skipped)
        logging.warning(
            "Skipped the update of %d step(s) with non-finite values among "
            "the steps up to global step %d (--on_nonfinite=skip_step); %d "
            "skipped so far.",
            skipped,
            global_step,
            state.total_skipped_steps,
        )

    @staticmethod
    def _shardable(dataset: tf.data.Dataset) -> tf.data.Dataset:
        # Our batches come from arrays in memory, not files: each worker
        # makes every global batch and keeps its replicas' share of it, which
        # is what the DATA policy says (AUTO would first look for files).
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return dataset.with_options(options)

    def _finish_epoch(self, epoch: int) -> None:
        """Evaluation, history, hooks and the epoch-end checkpoint (with the
        epoch's end also written before the evaluation; see
        trainers.checkpointing).

        Evaluation, hooks and metrics.json are the chief's alone: the other
        workers only checkpoint (where nobody reads it) and go on to the next
        epoch, whose first step waits for the chief.
        """
        # The epoch's end first, where the manager does not count it: a crash
        # or kill in the evaluation or the hooks (or a scheduler's SIGKILL
        # that follows its SIGTERM before they end) then costs only them on
        # resume, not the epoch's training. Every worker writes, as for any
        # save; not again when the run resumed from this very one.
        if int(self.global_step.numpy()) != self._written_before_evaluation_at:
            checkpointing.write_before_evaluation(self.checkpoint_manager)
        evaluation = self.evaluate() if self.is_chief else {}
        record = self._loop_state.epoch_record(
            epoch,
            int(self.global_step.numpy()),
            self.data.batch_size,
            with_skipped=self.config.on_nonfinite == "skip_step",
        )
        record.update(evaluation)
        self._report_epoch(record, evaluation)
        if self.is_chief:
            for hook in self.hooks:
                hook.on_epoch_end(self, epoch, record)
        self.on_epoch_end(epoch, record)
        self.summary_writer.flush()

        self._account_wall_time()
        record["wall_seconds"] = self._loop_state.total_wall_seconds
        self._loop_state.history.append(record)
        self.completed_epochs.assign(epoch + 1)
        # Metrics first, checkpoint last: if we crash in between, the rerun
        # repeats this epoch end from the one written before the evaluation.
        if self.is_chief:
            atomic_files.write_json(self.metrics_path, self._metrics_payload())
        self.save_checkpoint()
        checkpointing.remove_before_evaluation(self.checkpoint_manager.directory)

    def _report_epoch(
        self, record: Mapping[str, Any], evaluation: Mapping[str, Mapping[str, float]]
    ) -> None:
        """The epoch's evaluation to TensorBoard, and one line to the log."""
        with self.summary_writer.as_default(step=record["global_step"]):
            for split, values in evaluation.items():
                for key, value in values.items():
                    tf.summary.scalar(f"{split}/{key}", value)
        summary = ", ".join(
            f"{split} {progress_lib.format_logs(values)}"
            for split, values in evaluation.items()
        )
        logging.info(
            "epoch %d/%d done: train %s%s; %.0f images/s",
            record["epoch"],
            self.config.epochs,
            progress_lib.format_logs(record["train"]),
            f"; {summary}" if summary else "",
            record["images_per_second"],
        )

    def _account_wall_time(self) -> None:
        now = time.perf_counter()
        self._loop_state.total_wall_seconds += now - self._wall_mark
        self._wall_mark = now

    def _metrics_payload(self) -> dict[str, Any]:
        return loop_state_lib.metrics_payload(self._loop_state.history)
