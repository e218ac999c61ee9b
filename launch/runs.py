"""Reading back what a training run left in its workdir: its record and model.

Shared by the programs that use a trained model (vae-evaluate, vae-generate),
and by the training programs for what a run record says about its model.
Every failure is a `ConfigError` whose message names the workdir or file and
what was expected there.
"""

import json
import os
from typing import Any, Dict, Tuple, Union

from absl import logging
import tensorflow as tf

from launch import errors
from trainers import workdir as workdir_lib
from vae import export as export_lib
from vae import models
from vae import vaegan

SOURCES = ("checkpoint", "saved_model")

# The run record names the trainer under this key; the records of ELBO runs
# have no such key (they predate the VAE-GAN), so its absence means ELBO.
TRAINER_KEY = "trainer"
ELBO = "elbo"
VAEGAN = "vaegan"
# Trainer -> (model config class, model class) of its runs.
_MODEL_CLASSES = {ELBO: (models.ModelConfig, models.VAE),
                  VAEGAN: (vaegan.VaeGanConfig, vaegan.VaeGan)}


def trainer_name(identity: Dict[str, Any]) -> str:
    """The trainer that wrote a run record: "elbo" or "vaegan"."""
    return identity.get(TRAINER_KEY, ELBO)


def model_classes(trainer: str) -> Tuple[type, type]:
    """(model config class, model class) of the runs of `trainer`.

    Raises:
      ValueError: an unknown trainer name.
    """
    if trainer not in _MODEL_CLASSES:
        raise ValueError(f"The run record names the trainer {trainer!r}, "
                         f"which this version does not know; expected one of "
                         f"{tuple(_MODEL_CLASSES)}.")
    return _MODEL_CLASSES[trainer]


def read_run_identity(workdir: str) -> Dict[str, Any]:
    """The run record (run.json) of the training run in `workdir`."""
    run_path = os.path.join(workdir, workdir_lib.RUN_FILE)
    if not os.path.exists(run_path):
        raise errors.ConfigError(
            f"{workdir} is not a training workdir: it has no "
            f"{workdir_lib.RUN_FILE}. Expected the --workdir of a vae-train "
            "or vae-train-vaegan run.")
    try:
        with open(run_path) as stream:
            identity = json.load(stream)
        if not isinstance(identity["data"]["dataset"], str):
            raise TypeError("data.dataset is not a name")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise errors.ConfigError(
            f"The run record {run_path} cannot be read ({error!r}); expected "
            "the run.json that vae-train and vae-train-vaegan write."
        ) from None
    return identity


def model_config(
        workdir: str, identity: Dict[str, Any]
) -> Union[models.ModelConfig, vaegan.VaeGanConfig]:
    """The config of the run's model (a `models.ModelConfig` or, for a
    VAE-GAN run, a `vaegan.VaeGanConfig`)."""
    try:
        config_class = model_classes(trainer_name(identity))[0]
        return config_class.from_dict(identity["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise errors.ConfigError(
            f"The model recorded in {workdir}/{workdir_lib.RUN_FILE} cannot be "
            f"built: {error}") from None


def restore_model(
        workdir: str, identity: Dict[str, Any]
) -> Tuple[Union[models.VAE, vaegan.VaeGan], str]:
    """The run's model (a VAE or VAE-GAN) with the weights of its latest
    checkpoint, and the checkpoint's path."""
    config = model_config(workdir, identity)
    model = model_classes(trainer_name(identity))[1](config)
    checkpoint_dir = os.path.join(workdir, "checkpoints")
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
        raise errors.ConfigError(
            f"The workdir {workdir} has no checkpoint in {checkpoint_dir}; "
            "expected a run that has completed at least one epoch. Train it "
            "first, or pass --source=saved_model for an exported model.")
    status = tf.train.Checkpoint(model=model).restore(latest)
    status.expect_partial().assert_existing_objects_matched()
    logging.info("Loaded %s.", latest)
    return model, latest


def load_model(workdir: str, identity: Dict[str, Any], source: str):
    """The run's model from its latest checkpoint or its exported SavedModel.

    Returns:
      (model, where it came from).
    """
    if source == "checkpoint":
        return restore_model(workdir, identity)
    if source != "saved_model":
        raise errors.ConfigError(
            f"Unknown model source {source!r}; expected one of {SOURCES}.")
    export_dir = os.path.join(workdir, "export")
    try:
        return export_lib.SavedModelVae(export_dir), export_dir
    except FileNotFoundError as error:
        raise errors.ConfigError(str(error)) from None
