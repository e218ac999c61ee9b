"""Builds and runs a training run from a plain config; no flags here.

`launch/train.py` (the ELBO trainer) and `launch/train_vaegan.py` (the
VAE-GAN trainer) turn flags into a `TrainProgramConfig` and call
`run_training`; tests and notebooks can call it directly with a config they
build themselves.

Both trainers go through the one `run_training`: every check, the data, the
workdir, the pictures, evaluation and export are the same code. What differs
is small and lives in the config: `TrainProgramConfig.vaegan` is None for an
ELBO run (then `model` is a `vae.models.ModelConfig` and the ELBO fields
`kl_estimator` ... `learning_rate` are the objective and optimiser) and a
`VaeGanProgram` for a VAE-GAN run (then `model` is a
`vae.vaegan.VaeGanConfig`, and the objective and the three optimisers come
from it; the ELBO fields are not used). Which model class a run record
describes is `launch.runs`'s business, so the programs that read runs back
and this one agree.

The run identity (run.json) of an ELBO run has no "trainer" key, exactly as
runs recorded before the VAE-GAN existed, so those still resume; a VAE-GAN
run records `"trainer": "vaegan"`, which is also what keeps either program
from resuming the other's workdir.
"""

import dataclasses
import os
import sys
import time
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from absl import logging
import tensorflow as tf

from launch import cluster
from launch import evaluation_program
from launch import multi_worker
from launch import runs
# Re-exported: callers of run_training catch and report what it raises.
from launch.errors import ConfigError, USER_ERRORS, report_user_error
from trainers import base
from trainers import distribute as distribute_lib
from trainers import elbo
from trainers import hooks as hooks_lib
from trainers import optimizers as optimizers_lib
from trainers import vaegan as vaegan_trainer
from trainers import workdir as workdir_lib
from vae import datasets
from vae import export as export_lib
from vae import models
from vae import vaegan as vaegan_models


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
    folder on every launch.
    """

    dataset: str
    data_dir: Optional[str]
    binarization: str
    validation_size: int
    allow_download: bool
    image_size: Tuple[int, ...] = ()
    channels: int = 0
    test_fraction: float = 0.1
    cache_dir: Optional[str] = None
    non_image_files: str = "skip"

    def identity(self) -> dict:
        """What about the data must match for a workdir to be resumed.

        Runs on datasets of fixed shape record exactly what they recorded
        before the other datasets existed, so those runs still resume.
        """
        record = {"dataset": self.dataset, "binarization": self.binarization,
                  "validation_size": self.validation_size}
        if self.dataset in datasets.DATA_DEFINED_DATASETS:
            record.update(image_size=list(self.image_size),
                          channels=self.channels)
        if self.dataset == "folder":
            record["test_fraction"] = self.test_fraction
        return record

    def load(self, seed: int) -> datasets.DatasetArrays:
        """Reads the data (the validation split is drawn with `seed`).

        Raises:
          ConfigError: a setting the dataset cannot take.
          datasets.DataError: the data cannot be read.
        """
        try:
            return datasets.load_dataset(
                self.dataset, self.data_dir,
                validation_size=self.validation_size, seed=seed,
                allow_download=self.allow_download,
                image_size=self.image_size, channels=self.channels,
                test_fraction=self.test_fraction, cache_dir=self.cache_dir,
                non_image_files=self.non_image_files)
        except datasets.DataError:
            raise
        except ValueError as error:
            raise ConfigError(str(error)) from None


@dataclasses.dataclass(frozen=True)
class VaeGanProgram:
    """The VAE-GAN's objective and its three optimisers (one per network).

    Attributes:
      objective: loss weights, feature loss and the D/G step balancing.
      optimizer: optimiser name (trainers.optimizers), used by all three.
      encoder_learning_rate: step size of the encoder's optimiser.
      decoder_learning_rate: step size of the decoder's optimiser.
      discriminator_learning_rate: step size of the discriminator's.
    """

    objective: vaegan_trainer.VaeGanObjective = vaegan_trainer.VaeGanObjective()
    optimizer: str = "rmsprop"
    encoder_learning_rate: float = 1e-3
    decoder_learning_rate: float = 3e-4
    discriminator_learning_rate: float = 1e-3

    def learning_rates(self) -> Dict[str, float]:
        """Network ("encoder", "decoder", "discriminator") -> step size."""
        return {"encoder": self.encoder_learning_rate,
                "decoder": self.decoder_learning_rate,
                "discriminator": self.discriminator_learning_rate}

    def make_optimizers(self) -> Dict[str, Any]:
        """Network -> a new optimiser; raises ValueError on a bad setting."""
        return {network: optimizers_lib.make_optimizer(self.optimizer, rate)
                for network, rate in self.learning_rates().items()}


@dataclasses.dataclass(frozen=True)
class TrainProgramConfig:
    """Everything `run_training` needs, built from flags by a program's
    `config_from_flags`.

    `vaegan` None: an ELBO run of `models.VAE(model)`, trained on
    `kl_estimator`, `beta` and `kl_warmup_epochs` by one `optimizer` at
    `learning_rate`. `vaegan` set: a VAE-GAN run of
    `vaegan_models.VaeGan(model)`; the five ELBO fields are ignored.
    """

    data: DataConfig
    model: Union[models.ModelConfig, vaegan_models.VaeGanConfig]
    batch_size: int
    eval_batch_size: int
    trainer: base.TrainerConfig
    kl_estimator: str = "analytic"
    beta: float = 1.0
    kl_warmup_epochs: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    deterministic: bool = True
    pictures: bool = True
    manifold_grid_size: int = 20
    export: bool = True
    evaluation: Optional[evaluation_program.TrainingEvaluationConfig] = None
    vaegan: Optional[VaeGanProgram] = None
    # One of `cluster.STRATEGIES`. Not part of the run's identity: the batch
    # size is the global batch whatever the replicas, so a run may resume
    # under another strategy.
    strategy: str = "default"

    @property
    def trainer_name(self) -> str:
        """The trainer, as `launch.runs` names it ("elbo" or "vaegan")."""
        return runs.ELBO if self.vaegan is None else runs.VAEGAN

    def run_identity(self) -> dict:
        """What must match for a workdir to be resumed by this config."""
        identity = {
            "data": self.data.identity(),
            "model": self.model.to_dict(),
            "batch_size": self.batch_size,
            "seed": self.trainer.seed,
        }
        if self.vaegan is None:
            # Exactly the record of runs that predate the VAE-GAN.
            return {
                **identity,
                "objective": {"kl_estimator": self.kl_estimator,
                              "beta": self.beta,
                              "kl_warmup_epochs": self.kl_warmup_epochs},
                "optimizer": {"name": self.optimizer,
                              "learning_rate": self.learning_rate},
            }
        return {
            **identity,
            runs.TRAINER_KEY: runs.VAEGAN,
            "objective": dataclasses.asdict(self.vaegan.objective),
            "optimizers": {
                network: {"name": self.vaegan.optimizer,
                          "learning_rate": rate}
                for network, rate in self.vaegan.learning_rates().items()},
        }


def _model_waits_for_data(model) -> bool:
    """Whether the model config leaves its shape or classes to the data."""
    return model.image_shape is FROM_DATA or model.num_classes is FROM_DATA


def _fitted_to_data(config: TrainProgramConfig,
                    arrays: datasets.DatasetArrays) -> TrainProgramConfig:
    """The config with the model's `FROM_DATA` fields taken from `arrays`,
    validated."""
    if not _model_waits_for_data(config.model):
        return config
    changes = {}
    if config.model.image_shape is FROM_DATA:
        changes["image_shape"] = arrays.example_shape
    if config.model.num_classes is FROM_DATA:
        if arrays.num_classes < 2:
            what = (f"the one class {arrays.class_names[0]!r}"
                    if arrays.class_names else
                    "one class (images directly in the folder are unlabelled)"
                    if config.data.dataset == "folder" else
                    "labels of one class only")
            raise ConfigError(
                f"--conditional needs labels of at least 2 classes, but "
                f"{arrays.source} has {what}; expected one class subfolder "
                f"per label (at least two), or drop --conditional.")
        changes["num_classes"] = arrays.num_classes
    model = dataclasses.replace(config.model, **changes)
    try:
        model.validate()
    except ValueError as error:
        raise ConfigError(
            f"{error} (The data, {arrays.source}, have examples of shape "
            f"{arrays.example_shape}; --image_size resizes images.)") from None
    return dataclasses.replace(config, model=model)


def _validated(config: TrainProgramConfig) -> None:
    if config.data.dataset == "toy2d" and config.vaegan is not None:
        raise ConfigError("--dataset=toy2d holds 2-D points, which the "
                          "VAE-GAN's convolutional networks cannot model; "
                          "expected an image dataset (mnist or "
                          "fashion_mnist).")
    try:
        if not _model_waits_for_data(config.model):
            config.model.validate()
        config.trainer.validate()
        if config.vaegan is None:
            elbo.ElboConfig(kl_estimator=config.kl_estimator,
                            beta=config.beta).validate()
            optimizers_lib.make_optimizer(config.optimizer,
                                          config.learning_rate)
        else:
            config.vaegan.objective.validate()
            config.vaegan.make_optimizers()
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if (config.data.dataset == "toy2d" and config.vaegan is None
            and config.model.architecture != "mlp"):
        raise ConfigError("--dataset=toy2d holds 2-D points, which only the "
                          "mlp architecture can model; got --architecture="
                          f"{config.model.architecture}.")


def build_data_source(config: TrainProgramConfig,
                      arrays: datasets.DatasetArrays) -> base.DataSource:
    """Wraps the dataset's splits as the trainer's data source."""
    seed, binarization = config.trainer.seed, config.data.binarization

    def train(epoch: int, skip_batches: int) -> tf.data.Dataset:
        return datasets.train_batches(
            arrays.train, batch_size=config.batch_size, epoch=epoch,
            seed=seed, binarization=binarization,
            num_classes=arrays.num_classes, skip_batches=skip_batches)

    def evaluation(split: datasets.ArraySplit):
        return lambda: datasets.eval_batches(
            split, batch_size=config.eval_batch_size, seed=seed,
            binarization=binarization, num_classes=arrays.num_classes)

    eval_sets = {"test": evaluation(arrays.test)}
    if arrays.validation is not None:
        eval_sets["validation"] = evaluation(arrays.validation)
    return base.DataSource(
        train_batches=train,
        steps_per_epoch=datasets.steps_per_epoch(arrays.train.num_examples,
                                                 config.batch_size),
        batch_size=config.batch_size, eval_batches=eval_sets)


def _with_added_field_defaults(recorded: dict) -> dict:
    """A recorded run identity with the model and VAE-GAN objective fields
    added since filled in with their defaults (which are what those runs
    trained with), so runs recorded by an older version resume."""
    objective = recorded.get("objective")
    if (runs.trainer_name(recorded) == runs.VAEGAN
            and isinstance(objective, dict)):
        defaults = dataclasses.asdict(vaegan_trainer.VaeGanObjective())
        recorded = {**recorded, "objective": {**defaults, **objective}}
    model = recorded.get("model")
    if not isinstance(model, dict):
        return recorded
    try:
        config_class = runs.model_classes(runs.trainer_name(recorded))[0]
        return {**recorded, "model": config_class.from_dict(model).to_dict()}
    except (TypeError, ValueError):
        return recorded  # Let the field-by-field comparison name the problem.


def _record_launch(workdir: str, flags_text: Optional[str],
                   resuming: bool) -> None:
    if flags_text is not None and not resuming:
        with open(os.path.join(workdir, "flags.txt"), "w") as stream:
            stream.write(flags_text)
    with open(os.path.join(workdir, "launches.log"), "a") as stream:
        stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} "
                     f"{'resume' if resuming else 'start'}: "
                     f"{' '.join(sys.argv)}\n")


def make_trainer(config: TrainProgramConfig, model: tf.Module,
                  data: base.DataSource,
                  hooks: Sequence[base.Hook]) -> base.Trainer:
    """The trainer the config asks for, with new optimisers.

    Call it in the scope of the strategy to train under (the one the model
    was created in): the optimisers and the trainer's variables belong to it.
    """
    if config.vaegan is not None:
        return vaegan_trainer.VaeGanTrainer(
            model, config.vaegan.make_optimizers(), config.trainer, data,
            objective=config.vaegan.objective, hooks=hooks)
    warmup_steps = int(round(config.kl_warmup_epochs * data.steps_per_epoch))
    return elbo.ElboTrainer(
        model, optimizers_lib.make_optimizer(config.optimizer,
                                             config.learning_rate),
        config.trainer, data,
        elbo_config=elbo.ElboConfig(kl_estimator=config.kl_estimator,
                                    beta=config.beta,
                                    kl_warmup_steps=warmup_steps),
        hooks=hooks)


def run_training(config: TrainProgramConfig,
                 flags_text: Optional[str] = None) -> base.TrainResult:
    """Validates, loads data, claims the workdir, trains, exports.

    Every check that can fail on user input runs before the workdir is
    touched, so a bad flag or a missing file never changes an existing run.

    Args:
      config: the run.
      flags_text: the resolved flags in flagfile format, written to
        WORKDIR/flags.txt on the first launch.

    Returns:
      The trainer's result (completed, or stopped by a signal).
    """
    # First of all: a multi-worker strategy must exist before TensorFlow runs
    # anything (even the optimisers that _validated makes), and it waits here
    # for the other workers.
    strategy = cluster.make_strategy(config.strategy)
    _validated(config)
    try:
        distribute_lib.check_batch_divides(strategy, config.batch_size)
    except ValueError as error:
        raise ConfigError(f"--batch_size: {error}") from None
    is_chief = distribute_lib.is_chief(strategy)
    arrays = config.data.load(config.trainer.seed)
    config = _fitted_to_data(config, arrays)
    if arrays.example_shape != tuple(config.model.image_shape):
        raise ConfigError(
            f"The model expects examples of shape {config.model.image_shape} "
            f"but {config.data.dataset} has {arrays.example_shape}.")
    if config.model.num_classes not in (0, arrays.num_classes):
        raise ConfigError(
            f"The model is conditioned on {config.model.num_classes} classes "
            f"but {config.data.dataset} has {arrays.num_classes}.")
    if arrays.train.num_examples < config.batch_size:
        raise ConfigError(
            f"--batch_size={config.batch_size} is larger than the "
            f"{arrays.train.num_examples} training examples.")
    logging.info("Data: %s from %s (%d train, %d test, examples of shape "
                 "%s, %d classes).", arrays.name, arrays.source,
                 arrays.train.num_examples, arrays.test.num_examples,
                 arrays.example_shape, arrays.num_classes)

    # Hooks write outputs, which are the chief's alone (see base.Trainer).
    hooks = []
    if config.evaluation is not None and is_chief:
        # Before the workdir is claimed: a dataset without a classifier is
        # refused without touching it.
        hooks.append(evaluation_program.make_evaluation_hook(
            config.evaluation, arrays, binarization=config.data.binarization,
            data_dir=config.data.data_dir, seed=config.trainer.seed))

    workdir = config.trainer.workdir
    if is_chief:
        resuming = workdir_lib.claim_workdir(
            workdir, config.run_identity(),
            upgrade_recorded=_with_added_field_defaults)
        _record_launch(workdir, flags_text, resuming)
    if arrays.class_names and is_chief:
        # Label i of the checkpoints, pictures and export is this class.
        base.write_json_atomically(
            os.path.join(workdir, CLASSES_FILE),
            {str(label): name for label, name in enumerate(arrays.class_names)})

    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    # Initial weights come from TensorFlow's global generator.
    tf.random.set_seed(config.trainer.seed)
    with strategy.scope():
        model = runs.model_classes(config.trainer_name)[1](config.model)
    data = build_data_source(config, arrays)
    if config.pictures and len(arrays.example_shape) == 3 and is_chief:
        test_images = datasets.binarize_numpy(
            arrays.test.images[:5000], config.data.binarization,
            config.trainer.seed)
        hooks.append(hooks_lib.VaePictures(
            workdir=workdir, images=test_images,
            labels=arrays.test.labels[:5000], num_classes=arrays.num_classes,
            manifold_grid_size=config.manifold_grid_size,
            seed=config.trainer.seed))
    with strategy.scope():
        trainer = make_trainer(config, model, data, hooks)
    # A lost worker: one clear line and a status the Slurm script requeues.
    result = multi_worker.train(trainer)
    if result.completed and is_chief:
        final = result.metrics.get("final", {})
        if "test" in final:
            logging.info("Final test ELBO %.2f nats (reconstruction %.2f, "
                         "KL %.2f).", final["test"]["elbo"],
                         final["test"]["reconstruction"],
                         final["test"]["kl"])
        if config.export:
            path = export_lib.export_saved_model(
                model, os.path.join(workdir, "export"))
            logging.info("SavedModel written to %s.", path)
    # Workers leave together, once the chief is done (no error logged).
    multi_worker.finish_together(strategy)
    return result
