"""Trainers by name: the built-in ones, and any trainer class importable as
`package.module:ClassName`.

A trainer that the programs can launch (`vae-train --trainer=NAME`, and then
resume, `vae-evaluate`, `vae-generate`, the export, the pictures and
`vae-submit` on its workdir) is a `trainers.base.Trainer` subclass that
declares three classes and one constructor:

    class MyTrainer(elbo.ElboTrainer):
        model_class = models.VAE               # built as model_class(config)
        model_config_class = models.ModelConfig
        objective_class = MyObjective          # a frozen dataclass
        def train_step(self, batch, seed): ...

`objective_class` holds everything about the objective and its optimisers
that a run sets; each of its fields becomes a flag of the same name, and its
`validate()` raises ValueError naming a bad one. The classmethod
`from_objective(model, objective, config, data, hooks)` builds the trainer
with its optimisers (`ElboTrainer` and `VaeGanTrainer` have one; a subclass
that keeps its parent's constructor inherits it). The run record stores the
name the run was launched with, so the programs that read the workdir later
find the same class.
"""

import dataclasses
import importlib

from trainers import base

# Name -> "module:Class" of the trainers that come with the framework.
BUILT_IN: dict[str, str] = {
    "elbo": "trainers.elbo:ElboTrainer",
    "vaegan": "trainers.vaegan:VaeGanTrainer",
    "iwae": "trainers.iwae:IwaeTrainer",
    "two_level": "trainers.two_level:TwoLevelTrainer",
    "beta_tcvae": "trainers.tcvae:BetaTcvaeTrainer",
    "factorvae": "trainers.factorvae:FactorVaeTrainer",
}
# The trainer of runs recorded before the run record named one.
DEFAULT = "elbo"

_REQUIRED_ATTRIBUTES = ("model_class", "model_config_class", "objective_class")


class TrainerNotFoundError(ValueError):
    """A trainer name or path that does not lead to a usable trainer class."""


def _expected() -> str:
    return (
        f"expected a built-in trainer ({', '.join(sorted(BUILT_IN))}) or "
        "package.module:ClassName of a trainers.base.Trainer subclass "
        "importable from the Python path (PYTHONPATH)"
    )


def resolve(name: str) -> type:
    """The trainer class that `name` (a built-in name or "module:Class")
    names, checked to declare what the programs need.

    Raises:
      TrainerNotFoundError: with one paragraph saying what `name` is and what
        was expected.
    """
    path = BUILT_IN.get(name, name)
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name or ":" in class_name:
        raise TrainerNotFoundError(f"--trainer={name!r} is not a trainer: {_expected()}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TrainerNotFoundError(
            f"--trainer={name!r}: the module {module_name!r} cannot be "
            f"imported ({error}); {_expected()}."
        ) from None
    trainer_class = getattr(module, class_name, None)
    if trainer_class is None:
        raise TrainerNotFoundError(
            f"--trainer={name!r}: the module {module_name!r} "
            f"({getattr(module, '__file__', '?')}) has no {class_name!r}; "
            f"{_expected()}."
        )
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, base.Trainer)):
        raise TrainerNotFoundError(
            f"--trainer={name!r} names {trainer_class!r}, which is not a "
            f"trainer; {_expected()}."
        )
    missing = [
        attribute
        for attribute in _REQUIRED_ATTRIBUTES
        if getattr(trainer_class, attribute, None) is None
    ]
    if missing:
        raise TrainerNotFoundError(
            f"--trainer={name!r}: {trainer_class.__qualname__} does not "
            f"declare {', '.join(missing)}; a trainer the programs launch "
            "names its model class, its model config class and its "
            "objective class (a dataclass), as trainers.elbo.ElboTrainer "
            "does."
        )
    for attribute in ("model_config_class", "objective_class"):
        if not dataclasses.is_dataclass(getattr(trainer_class, attribute)):
            raise TrainerNotFoundError(
                f"--trainer={name!r}: {trainer_class.__qualname__}."
                f"{attribute} is {getattr(trainer_class, attribute)!r}, "
                "which is not a dataclass; expected a frozen dataclass whose "
                "fields the command line sets."
            )
    return trainer_class
