"""Builds and runs a training run from a plain config; no flags here.

`launch/train.py` turns flags into a `TrainProgramConfig` and calls
`run_training`; tests and notebooks can call it directly with a config they
build themselves.

Every trainer goes through the one `run_training`: every check, the data,
the workdir, the pictures, evaluation and export are the same code. What
differs between trainers is in the config: `trainer_name` (a name that
`trainers.registry` resolves to the trainer class), `model` (an instance of
that class's `model_config_class`) and `objective` (of its
`objective_class`). The run record (run.json) stores all three, so the
programs that read a workdir back (`launch.runs`) build the same model, and
a workdir is never resumed by another trainer or objective.
"""

from collections.abc import Sequence
import dataclasses
import os
import sys
import time
from typing import Any

from absl import logging
import tensorflow as tf

from launch import cluster
from launch import evaluation_program
from launch import multi_worker
from launch import runs

# Re-exported: callers of run_training catch and report what it raises.
from launch.errors import ConfigError
from trainers import base
from trainers import checkpointing
from trainers import distribute as distribute_lib
from trainers import elbo
from trainers import hooks as hooks_lib
from trainers import registry
from trainers import workdir as workdir_lib
from trainers import workdir_lock
from vae import atomic_files
from vae import datasets
from vae import export as export_lib

# What a program puts in a model config's `image_shape` and `num_classes`
# (for a conditional model) where only the data can tell them, for the
# datasets `datasets.DATA_DEFINED_DATASETS` (folder, idx, npz): `run_training`
# fills them in once it has read the data.
FROM_DATA = None
# Written to the workdir of a run on an image folder with class subfolders:
# label number -> class subfolder name.
CLASSES_FILE = "classes.json"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data a run reads, and how (see `datasets.load_dataset`).

    `image_size`, `channels` convert the images of the datasets whose shape
    the files decide (folder, idx, npz); `test_fraction`, `cache_dir` and
    `non_image_files` apply to image folders only. `cache_dir` None converts a
    folder on every launch. `train_subset` (dsprites only) trains on that many
    of its images (0: all).
    """

    dataset: str
    data_dir: str | None
    binarization: str
    validation_size: int
    allow_download: bool
    image_size: tuple[int, ...] = ()
    channels: int = 0
    test_fraction: float = 0.1
    cache_dir: str | None = None
    non_image_files: str = "skip"
    train_subset: int = 0

    def identity(self) -> dict:
        """What about the data must match for a workdir to be resumed.

        Runs on datasets of fixed shape record exactly what they recorded
        before the other datasets existed, so those runs still resume.
        """
        record = {
            "dataset": self.dataset,
            "binarization": self.binarization,
            "validation_size": self.validation_size,
        }
        if self.dataset in datasets.DATA_DEFINED_DATASETS:
            record.update(image_size=list(self.image_size), channels=self.channels)
        if self.dataset == "folder":
            record["test_fraction"] = self.test_fraction
        if self.dataset == "dsprites":
            record["train_subset"] = self.train_subset
        return record

    def load(self, seed: int) -> datasets.DatasetArrays:
        """Reads the data (the validation split is drawn with `seed`).

        Raises:
          ConfigError: a setting the dataset cannot take.
          datasets.DataError: the data cannot be read.
        """
        try:
            return datasets.load_dataset(
                self.dataset,
                self.data_dir,
                validation_size=self.validation_size,
                seed=seed,
                allow_download=self.allow_download,
                image_size=self.image_size,
                channels=self.channels,
                test_fraction=self.test_fraction,
                cache_dir=self.cache_dir,
                non_image_files=self.non_image_files,
                train_subset=self.train_subset,
            )
        except datasets.DataError:
            raise
        except ValueError as error:
            raise ConfigError(str(error)) from None


@dataclasses.dataclass(frozen=True)
class TrainProgramConfig:
    """Everything `run_training` needs, built from flags by
    `launch.train.config_from_flags`.

    Attributes:
      data: which data, and how.
      model: the model config, an instance of the trainer's
        `model_config_class`.
      batch_size: the global training batch.
      eval_batch_size: batch size for evaluation.
      trainer: how the loop runs.
      trainer_name: the trainer, as `trainers.registry.resolve` takes it (a
        built-in name or "package.module:ClassName").
      objective: the objective and optimiser settings, an instance of the
        trainer's `objective_class`.
      deterministic, pictures, manifold_grid_size, export, evaluation,
        strategy: see the flags of the same names.
    """

    data: DataConfig
    model: Any
    batch_size: int
    eval_batch_size: int
    trainer: base.TrainerConfig
    trainer_name: str = registry.DEFAULT
    objective: Any = dataclasses.field(default_factory=elbo.ElboObjective)
    deterministic: bool = True
    pictures: bool = True
    manifold_grid_size: int = 20
    export: bool = True
    evaluation: evaluation_program.TrainingEvaluationConfig | None = None
    # One of `cluster.STRATEGIES`. Not part of the run's identity: the batch
    # size is the global batch whatever the replicas, so a run may resume
    # under another strategy.
    strategy: str = "default"

    def run_identity(self) -> dict:
        """What must match for a workdir to be resumed by this config."""
        return {
            "data": self.data.identity(),
            "model": self.model.to_dict(),
            "batch_size": self.batch_size,
            "seed": self.trainer.seed,
            runs.TRAINER_KEY: self.trainer_name,
            "objective": dataclasses.asdict(self.objective),
        }


def _model_waits_for_data(model) -> bool:
    """Whether the model config leaves its shape or classes to the data."""
    return model.image_shape is FROM_DATA or model.num_classes is FROM_DATA


def _fitted_to_data(
    config: TrainProgramConfig, arrays: datasets.DatasetArrays
) -> TrainProgramConfig:
    """The config with the model's `FROM_DATA` fields taken from `arrays`,
    validated."""
    if not _model_waits_for_data(config.model):
        return config
    changes = {}
    if config.model.image_shape is FROM_DATA:
        changes["image_shape"] = arrays.example_shape
    if config.model.num_classes is FROM_DATA:
        if arrays.num_classes < 2:
            what = (
                f"the one class {arrays.class_names[0]!r}"
                if arrays.class_names
                else "one class (images directly in the folder are unlabelled)"
                if config.data.dataset == "folder"
                else "labels of one class only"
            )
            raise ConfigError(
                f"--conditional needs labels of at least 2 classes, but "
                f"{arrays.source} has {what}; expected one class subfolder "
                f"per label (at least two), or drop --conditional."
            )
        changes["num_classes"] = arrays.num_classes
    model = dataclasses.replace(config.model, **changes)
    try:
        model.validate()
    except ValueError as error:
        raise ConfigError(
            f"{error} (The data, {arrays.source}, have examples of shape "
            f"{arrays.example_shape}; --image_size resizes images.)"
        ) from None
    return dataclasses.replace(config, model=model)


def _validated(config: TrainProgramConfig) -> type:
    """Checks the config before anything is read or written.

    Returns:
      The trainer class.
    """
    try:
        trainer_class = registry.resolve(config.trainer_name)
    except registry.TrainerNotFoundError as error:
        raise ConfigError(str(error)) from None
    for what, value, expected in (
        ("model", config.model, trainer_class.model_config_class),
        ("objective", config.objective, trainer_class.objective_class),
    ):
        if not isinstance(value, expected):
            raise ConfigError(
                f"The {what} config is a {type(value).__qualname__}, but the "
                f"trainer {config.trainer_name!r} takes a "
                f"{expected.__qualname__}."
            )
    if (
        config.data.dataset == "toy2d"
        and getattr(config.model, "architecture", None) != "mlp"
    ):
        raise ConfigError(
            "--dataset=toy2d holds 2-D points, which only the mlp "
            "architecture of the VAE can model; got "
            + (
                f"--architecture={config.model.architecture}."
                if hasattr(config.model, "architecture")
                else f"the trainer {config.trainer_name!r}, whose convolutional "
                "networks need images (mnist or fashion_mnist)."
            )
        )
    try:
        if not _model_waits_for_data(config.model):
            config.model.validate()
        config.trainer.validate()
        config.objective.validate()
        trainer_class.check_configs(config.model, config.objective)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return trainer_class


def build_data_source(
    config: TrainProgramConfig, arrays: datasets.DatasetArrays
) -> base.DataSource:
    """Wraps the dataset's splits as the trainer's data source."""
    seed, binarization = config.trainer.seed, config.data.binarization

    def train(epoch: int, skip_batches: int) -> tf.data.Dataset:
        return datasets.train_batches(
            arrays.train,
            batch_size=config.batch_size,
            epoch=epoch,
            seed=seed,
            binarization=binarization,
            num_classes=arrays.num_classes,
            skip_batches=skip_batches,
        )

    def evaluation(split: datasets.ArraySplit):
        return lambda: datasets.eval_batches(
            split,
            batch_size=config.eval_batch_size,
            seed=seed,
            binarization=binarization,
            num_classes=arrays.num_classes,
        )

    eval_sets = {"test": evaluation(arrays.test)}
    if arrays.validation is not None:
        eval_sets["validation"] = evaluation(arrays.validation)
    return base.DataSource(
        train_batches=train,
        steps_per_epoch=datasets.steps_per_epoch(
            arrays.train.num_examples, config.batch_size
        ),
        batch_size=config.batch_size,
        eval_batches=eval_sets,
    )


def _record_launch(workdir: str, flags_text: str | None, resuming: bool) -> None:
    if flags_text is not None and not resuming:
        with open(os.path.join(workdir, "flags.txt"), "w") as stream:
            stream.write(flags_text)
    with open(os.path.join(workdir, "launches.log"), "a") as stream:
        stream.write(
            f"{time.strftime('%Y-%m-%d %H:%M:%S')} "
            f"{'resume' if resuming else 'start'}: "
            f"{' '.join(sys.argv)}\n"
        )


def make_trainer(
    config: TrainProgramConfig,
    model: tf.Module,
    data: base.DataSource,
    hooks: Sequence[base.Hook],
) -> base.Trainer:
    """The trainer the config asks for, with new optimisers.

    Call it in the scope of the strategy to train under (the one the model
    was created in): the optimisers and the trainer's variables belong to it.
    """
    trainer_class = registry.resolve(config.trainer_name)
    return trainer_class.from_objective(
        model, config.objective, config.trainer, data, hooks=hooks
    )


def run_training(
    config: TrainProgramConfig, flags_text: str | None = None
) -> base.TrainResult:
    """Validates, loads data, claims the workdir, trains, exports.

    Every check that can fail on user input runs before the workdir is
    touched, so a bad flag or a missing file never changes an existing run.
    The chief holds the workdir's lock (trainers.workdir_lock) from before
    it claims the workdir until it returns, so a second launch on the same
    workdir is refused.

    Args:
      config: the run.
      flags_text: the resolved flags in flagfile format, written to
        WORKDIR/flags.txt on the first launch.

    Returns:
      The trainer's result (completed, or stopped by a signal).
    """
    lock = workdir_lock.WorkdirLock(config.trainer.workdir)
    try:
        return _run_training(config, flags_text, lock)
    finally:
        lock.release()


def _run_training(
    config: TrainProgramConfig, flags_text: str | None, lock: workdir_lock.WorkdirLock
) -> base.TrainResult:
    # First of all: a multi-worker strategy must exist before TensorFlow runs
    # anything (even the optimisers that _validated makes), and it waits here
    # for the other workers.
    strategy = cluster.make_strategy(config.strategy)
    trainer_class = _validated(config)
    try:
        distribute_lib.check_batch_divides(strategy, config.batch_size)
    except ValueError as error:
        raise ConfigError(f"--batch_size: {error}") from None
    is_chief = distribute_lib.is_chief(strategy)
    if is_chief:
        workdir_lib.check_workdir_usable(config.trainer.workdir)
    arrays = config.data.load(config.trainer.seed)
    config = _fitted_to_data(config, arrays)
    if arrays.example_shape != tuple(config.model.image_shape):
        raise ConfigError(
            f"The model expects examples of shape {config.model.image_shape} "
            f"but {config.data.dataset} has {arrays.example_shape}."
        )
    if config.model.num_classes not in (0, arrays.num_classes):
        raise ConfigError(
            f"The model is conditioned on {config.model.num_classes} classes "
            f"but {config.data.dataset} has {arrays.num_classes}."
        )
    if arrays.train.num_examples < config.batch_size:
        raise ConfigError(
            f"--batch_size={config.batch_size} is larger than the "
            f"{arrays.train.num_examples} training examples."
        )
    logging.info(
        "Data: %s from %s (%d train, %d test, examples of shape %s, %d classes).",
        arrays.name,
        arrays.source,
        arrays.train.num_examples,
        arrays.test.num_examples,
        arrays.example_shape,
        arrays.num_classes,
    )

    # Hooks write outputs, which are the chief's alone (see base.Trainer).
    hooks = []
    if config.evaluation is not None and is_chief:
        # Before the workdir is claimed: a dataset without a classifier is
        # refused without touching it.
        hooks.append(
            evaluation_program.make_evaluation_hook(
                config.evaluation,
                arrays,
                binarization=config.data.binarization,
                data_dir=config.data.data_dir,
                seed=config.trainer.seed,
            )
        )

    workdir = config.trainer.workdir
    if is_chief:
        os.makedirs(workdir, exist_ok=True)
        lock.acquire()
        resuming = workdir_lib.claim_workdir(
            workdir, config.run_identity(), upgrade_recorded=runs.upgrade_identity
        )
        if resuming:
            # Before anything is written: a run whose checkpoints are all
            # unreadable stops here, untouched (the trainer falls back past
            # damaged ones, saying so).
            checkpointing.newest_readable(os.path.join(workdir, "checkpoints"), log=False)
        lock.record_holder()
        _record_launch(workdir, flags_text, resuming)
    if arrays.class_names and is_chief:
        # Label i of the checkpoints, pictures and export is this class.
        atomic_files.write_json(
            os.path.join(workdir, CLASSES_FILE),
            {str(label): name for label, name in enumerate(arrays.class_names)},
        )

    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    # Initial weights come from TensorFlow's global generator.
    tf.random.set_seed(config.trainer.seed)
    with strategy.scope():
        model = trainer_class.model_class(config.model)
    data = build_data_source(config, arrays)
    if config.pictures and len(arrays.example_shape) == 3 and is_chief:
        test_images = datasets.binarize_numpy(
            arrays.test.images[:5000], config.data.binarization, config.trainer.seed
        )
        hooks.append(
            hooks_lib.VaePictures(
                workdir=workdir,
                images=test_images,
                labels=arrays.test.labels[:5000],
                num_classes=arrays.num_classes,
                class_names=arrays.class_names,
                manifold_grid_size=config.manifold_grid_size,
                seed=config.trainer.seed,
                # Where the factors are known, what each latent dimension does
                # is the question (vae/traversals.py).
                traversal_steps=10 if arrays.factor_names else 0,
            )
        )
    with strategy.scope():
        trainer = make_trainer(config, model, data, hooks)
    # A lost worker: one clear line and a status the Slurm script requeues.
    result = multi_worker.train(trainer)
    if result.completed and is_chief:
        final = result.metrics.get("final", {})
        if "test" in final:
            logging.info(
                "Final test ELBO %.2f nats (reconstruction %.2f, KL %.2f).",
                final["test"]["elbo"],
                final["test"]["reconstruction"],
                final["test"]["kl"],
            )
        if config.export:
            path = export_lib.export_saved_model(model, os.path.join(workdir, "export"))
            logging.info("SavedModel written to %s.", path)
    # Workers leave together, once the chief is done (no error logged).
    multi_worker.finish_together(strategy)
    return result
