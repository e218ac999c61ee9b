"""Reading back what a training run left in its workdir: its record and model.

Shared by the programs that use a trained model (vae-evaluate, vae-generate),
and by the training programs for what a run record says about its model.
Every failure is a `ConfigError` whose message names the workdir or file and
what was expected there.
"""

import dataclasses
import json
import os
from typing import Any

from absl import logging
import tensorflow as tf

from launch import errors
from trainers import registry
from trainers import workdir as workdir_lib
from vae import export as export_lib

SOURCES = ("checkpoint", "saved_model")

# The run record names the trainer under this key, as `--trainer` was given;
# the records of ELBO runs made before trainers were plug-ins have no such
# key, so its absence means the ELBO trainer.
TRAINER_KEY = "trainer"


def trainer_name(identity: dict[str, Any]) -> str:
    """The trainer that wrote a run record, as `registry.resolve` takes it."""
    return identity.get(TRAINER_KEY, registry.DEFAULT)


def trainer_class(identity: dict[str, Any]) -> type:
    """The trainer class of a run record.

    Raises:
      errors.ConfigError: the recorded trainer cannot be found (say, a
        plug-in whose module is not on the Python path).
    """
    try:
        return registry.resolve(trainer_name(identity))
    except registry.TrainerNotFoundError as error:
        raise errors.ConfigError(
            f"The run record names a trainer that cannot be loaded: {error}"
        ) from None


def model_classes(identity: dict[str, Any]) -> tuple[type, type]:
    """(model config class, model class) of the run recorded in `identity`."""
    found = trainer_class(identity)
    return found.model_config_class, found.model_class


def _legacy_objective(recorded: dict[str, Any]) -> dict[str, Any]:
    """The objective of a record written before objectives held their
    optimisers, in today's form."""
    objective = dict(recorded.get("objective") or {})
    optimizer = recorded.get("optimizer")
    if isinstance(optimizer, dict):  # An ELBO run.
        if "kl_estimator" in objective:
            objective["kl"] = objective.pop("kl_estimator")
        objective.update(
            optimizer=optimizer.get("name"), learning_rate=optimizer.get("learning_rate")
        )
    players = recorded.get("optimizers")
    if isinstance(players, dict):  # A VAE-GAN run: one optimiser per player.
        for player, settings in players.items():
            if isinstance(settings, dict):
                objective["optimizer"] = settings.get("name")
                objective[f"{player}_learning_rate"] = settings.get("learning_rate")
    return objective


def upgrade_identity(recorded: dict[str, Any]) -> dict[str, Any]:
    """A run record in today's form, so that runs recorded by an older
    version still resume and load.

    The trainer is named (ELBO when the record has none), the optimiser
    settings move into the objective as today's objectives hold them, and
    objective and model fields added since are filled in with their
    defaults, which is what those runs trained with. A record that cannot be
    read this way is returned as it is, for the field-by-field comparison to
    name the problem.
    """
    if not isinstance(recorded, dict):
        return recorded
    upgraded = {
        key: value
        for key, value in recorded.items()
        if key not in ("optimizer", "optimizers")
    }
    upgraded[TRAINER_KEY] = trainer_name(recorded)
    upgraded["objective"] = _legacy_objective(recorded)
    try:
        found = registry.resolve(upgraded[TRAINER_KEY])
    except registry.TrainerNotFoundError:
        return upgraded
    try:
        defaults = dataclasses.asdict(found.objective_class())
    except TypeError:  # An objective without defaults for every field.
        defaults = {}
    upgraded["objective"] = {**defaults, **upgraded["objective"]}
    model = upgraded.get("model")
    if isinstance(model, dict):
        try:
            upgraded["model"] = found.model_config_class.from_dict(model).to_dict()
        except (TypeError, ValueError):
            pass
    return upgraded


def read_run_identity(workdir: str) -> dict[str, Any]:
    """The run record (run.json) of the training run in `workdir`."""
    run_path = os.path.join(workdir, workdir_lib.RUN_FILE)
    if not os.path.exists(run_path):
        raise errors.ConfigError(
            f"{workdir} is not a training workdir: it has no "
            f"{workdir_lib.RUN_FILE}. Expected the --workdir of a vae-train "
            "run."
        )
    try:
        with open(run_path) as stream:
            identity = json.load(stream)
        if not isinstance(identity["data"]["dataset"], str):
            raise TypeError("data.dataset is not a name")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise errors.ConfigError(
            f"The run record {run_path} cannot be read ({error!r}); expected "
            "the run.json that vae-train writes."
        ) from None
    return upgrade_identity(identity)


def model_config(workdir: str, identity: dict[str, Any]) -> Any:
    """The config of the run's model (an instance of its trainer's
    `model_config_class`)."""
    config_class = model_classes(identity)[0]
    try:
        return config_class.from_dict(identity["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise errors.ConfigError(
            f"The model recorded in {workdir}/{workdir_lib.RUN_FILE} cannot be "
            f"built: {error}"
        ) from None


def restore_model(workdir: str, identity: dict[str, Any]) -> tuple[Any, str]:
    """The run's model (its trainer's `model_class`) with the weights of its
    latest checkpoint, and the checkpoint's path."""
    config = model_config(workdir, identity)
    model = model_classes(identity)[1](config)
    checkpoint_dir = os.path.join(workdir, "checkpoints")
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
        raise errors.ConfigError(
            f"The workdir {workdir} has no checkpoint in {checkpoint_dir}; "
            "expected a run that has completed at least one epoch. Train it "
            "first, or pass --source=saved_model for an exported model."
        )
    status = tf.train.Checkpoint(model=model).restore(latest)
    status.expect_partial().assert_existing_objects_matched()
    logging.info("Loaded %s.", latest)
    return model, latest


def load_model(workdir: str, identity: dict[str, Any], source: str):
    """The run's model from its latest checkpoint or its exported SavedModel.

    Returns:
      (model, where it came from).
    """
    if source == "checkpoint":
        return restore_model(workdir, identity)
    if source != "saved_model":
        raise errors.ConfigError(
            f"Unknown model source {source!r}; expected one of {SOURCES}."
        )
    export_dir = os.path.join(workdir, "export")
    try:
        return export_lib.SavedModelVae(export_dir), export_dir
    except FileNotFoundError as error:
        raise errors.ConfigError(str(error)) from None
