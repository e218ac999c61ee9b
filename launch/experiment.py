"""Builds and runs a training run from a plain config; no flags here.

`launch/train.py` turns flags into a `TrainProgramConfig` and calls
`run_training`; tests and notebooks can call it directly with a config they
build themselves.
"""

import dataclasses
import os
import sys
import time
from typing import Optional

from absl import logging
import tensorflow as tf

from launch import evaluation_program
# Re-exported: callers of run_training catch and report what it raises.
from launch.errors import ConfigError, USER_ERRORS, report_user_error
from trainers import base
from trainers import elbo
from trainers import hooks as hooks_lib
from trainers import optimizers as optimizers_lib
from trainers import workdir as workdir_lib
from vae import datasets
from vae import export as export_lib
from vae import models


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str
    data_dir: Optional[str]
    binarization: str
    validation_size: int
    allow_download: bool


@dataclasses.dataclass(frozen=True)
class TrainProgramConfig:
    """Everything `run` needs, built from flags by `config_from_flags`."""

    data: DataConfig
    model: models.ModelConfig
    kl_estimator: str
    beta: float
    kl_warmup_epochs: float
    optimizer: str
    learning_rate: float
    batch_size: int
    eval_batch_size: int
    trainer: base.TrainerConfig
    deterministic: bool = True
    pictures: bool = True
    manifold_grid_size: int = 20
    export: bool = True
    evaluation: Optional[evaluation_program.TrainingEvaluationConfig] = None

    def run_identity(self) -> dict:
        """What must match for a workdir to be resumed by this config."""
        return {
            "data": {"dataset": self.data.dataset,
                     "binarization": self.data.binarization,
                     "validation_size": self.data.validation_size},
            "model": self.model.to_dict(),
            "objective": {"kl_estimator": self.kl_estimator,
                          "beta": self.beta,
                          "kl_warmup_epochs": self.kl_warmup_epochs},
            "optimizer": {"name": self.optimizer,
                          "learning_rate": self.learning_rate},
            "batch_size": self.batch_size,
            "seed": self.trainer.seed,
        }


def _validated(config: TrainProgramConfig) -> None:
    try:
        config.model.validate()
        config.trainer.validate()
        elbo.ElboConfig(kl_estimator=config.kl_estimator,
                        beta=config.beta).validate()
        optimizers_lib.make_optimizer(config.optimizer, config.learning_rate)
    except ValueError as error:
        raise ConfigError(str(error)) from None


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


def _with_model_defaults(recorded: dict) -> dict:
    """A recorded run identity with model fields added since filled in, so
    runs recorded by an older version resume."""
    model = recorded.get("model")
    if not isinstance(model, dict):
        return recorded
    try:
        return {**recorded,
                "model": models.ModelConfig.from_dict(model).to_dict()}
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
    _validated(config)
    if config.data.dataset == "toy2d" and config.model.architecture != "mlp":
        raise ConfigError("--dataset=toy2d holds 2-D points, which only the "
                          "mlp architecture can model; got --architecture="
                          f"{config.model.architecture}.")
    arrays = datasets.load_dataset(
        config.data.dataset, config.data.data_dir,
        validation_size=config.data.validation_size, seed=config.trainer.seed,
        allow_download=config.data.allow_download)
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
    logging.info("Data: %s from %s (%d train, %d test).", arrays.name,
                 arrays.source, arrays.train.num_examples,
                 arrays.test.num_examples)

    hooks = []
    if config.evaluation is not None:
        # Before the workdir is claimed: a dataset without a classifier is
        # refused without touching it.
        hooks.append(evaluation_program.make_evaluation_hook(
            config.evaluation, arrays, binarization=config.data.binarization,
            data_dir=config.data.data_dir, seed=config.trainer.seed))

    workdir = config.trainer.workdir
    resuming = workdir_lib.claim_workdir(workdir, config.run_identity(),
                                         upgrade_recorded=_with_model_defaults)
    _record_launch(workdir, flags_text, resuming)

    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    # Initial weights come from TensorFlow's global generator.
    tf.random.set_seed(config.trainer.seed)
    model = models.VAE(config.model)
    optimizer = optimizers_lib.make_optimizer(config.optimizer,
                                              config.learning_rate)
    data = build_data_source(config, arrays)
    if config.pictures and len(arrays.example_shape) == 3:
        test_images = datasets.binarize_numpy(
            arrays.test.images[:5000], config.data.binarization,
            config.trainer.seed)
        hooks.append(hooks_lib.VaePictures(
            workdir=workdir, images=test_images,
            labels=arrays.test.labels[:5000], num_classes=arrays.num_classes,
            manifold_grid_size=config.manifold_grid_size,
            seed=config.trainer.seed))
    warmup_steps = int(round(config.kl_warmup_epochs * data.steps_per_epoch))
    trainer = elbo.ElboTrainer(
        model, optimizer, config.trainer, data,
        elbo_config=elbo.ElboConfig(kl_estimator=config.kl_estimator,
                                    beta=config.beta,
                                    kl_warmup_steps=warmup_steps),
        hooks=hooks)
    result = trainer.train()
    if result.completed:
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
    return result
