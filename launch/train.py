r"""Trains a model with any trainer: flags in, checkpoints, metrics and
pictures out.

Examples (from the repository root):

    vae-train --flagfile=launch/configs/tf_tutorial_conv.flags \
        --data_dir=../shared/data/mnist --workdir=runs/tf_tutorial_conv

    python -m launch.train --dataset=fashion_mnist --architecture=mlp \
        --hidden_units=512,256 --latent_dim=16 --workdir=runs/fashion_mlp

    vae-train --trainer=vaegan --flagfile=launch/configs/cvae_gan_cpu.flags ...
    vae-train --trainer=my_package.my_module:MyTrainer --my_field=3 ...

`--trainer` picks the trainer: a built-in name (`trainers.registry`) or any
trainer class importable as `package.module:ClassName`. The trainer decides
the model (its model flags) and the objective: every field of its objective
dataclass is a flag of the same name. Running the same command again resumes
from the latest checkpoint; a workdir that holds a different run is refused.
SIGTERM, SIGUSR1 or Ctrl-C finishes the current loop of steps, writes a
checkpoint and exits with 128 + the signal number. `--strategy=mirrored`
trains on every GPU of the machine, `--strategy=multi_worker` on several
machines (launch/submit.py writes Slurm scripts). A bad flag value stops the
program with one paragraph naming it and exit status 2.
"""

from collections.abc import Callable, Sequence
import sys

from absl import app
from absl import flags

from launch import common_flags
from launch import config_flags
from launch import errors
from launch import exit_codes
from launch import experiment
from launch import flagfiles
from launch import model_flags
from trainers import registry

_TRAINER = flags.DEFINE_string(
    "trainer",
    registry.DEFAULT,
    "The trainer: a built-in name ("
    + ", ".join(sorted(registry.BUILT_IN))
    + ") or package.module:ClassName of a trainers.base.Trainer subclass "
    "importable from the Python path. Its objective fields are flags of the "
    "same name.",
)
# Data, loop, output and evaluation flags, and --latent_dim and
# --conditional; a trainer may change their defaults (`flag_defaults`).
_TRAINING = common_flags.TrainingFlags(batch_size=32, latent_dim=2, conditional=False)
flags.adopt_module_key_flags(common_flags)


_HELP_FLAGS = ("help", "helpfull", "helpshort", "helpxml", "h", "?")


class _TrainerFlags:
    """What the trainer adds to the command line once it is known."""

    trainer_class = None
    read_model = None
    objective_fields = ()


def _define_trainer_flags(trainer_name: str) -> None:
    """Defines the model and objective flags of the trainer `trainer_name`
    and applies its defaults of the shared flags.

    A process defines one trainer's flags: parsing again for the same
    trainer (tests and tools that run several presets) reuses them.
    """
    trainer_class = registry.resolve(trainer_name)
    if _TrainerFlags.trainer_class is trainer_class:
        return
    if _TrainerFlags.trainer_class is not None:
        raise RuntimeError(
            f"This process has parsed the flags of the trainer "
            f"{_TrainerFlags.trainer_class.__qualname__} already; one "
            f"process cannot also define those of {trainer_name!r}."
        )
    _TrainerFlags.trainer_class = trainer_class
    _TrainerFlags.read_model = model_flags.define(trainer_class.model_config_class)
    _TrainerFlags.objective_fields = config_flags.define_fields(
        trainer_class.objective_class
    )
    for name, value in dict(trainer_class.flag_defaults).items():
        flags.FLAGS.set_default(name, value)


def parse_flags(argv: Sequence[str], default_trainer: str) -> list[str]:
    """Parses the command line in two passes: the first finds --trainer (on
    the command line or in a flagfile), whose model and objective flags are
    then defined, and the second parses everything.

    Raises:
      flags.Error: a bad flag.
      registry.TrainerNotFoundError: a --trainer that is not a trainer.
      config_flags.FieldTypeError: an objective field no flag can hold.
    """
    flags.FLAGS.set_default("trainer", default_trainer)
    # Includes inside flagfiles are read relative to the including file
    # (launch/flagfiles.py), so presets work from any directory.
    with flagfiles.resolved_includes(argv) as resolved:
        _define_trainer_flags(_trainer_named_in(resolved, default_trainer))
        return flags.FLAGS(resolved)


def _trainer_named_in(argv: Sequence[str], default_trainer: str) -> str:
    """The --trainer of a command line (or of its flagfiles), read alone:
    the other flags, help and their checks wait for the full parse, which
    knows the trainer's flags."""
    finder = flags.FlagValues()
    flags.DEFINE_string("trainer", default_trainer, "", flag_values=finder)
    finder(
        [
            argument
            for argument in argv
            if argument.lstrip("-").split("=")[0] not in _HELP_FLAGS
        ],
        known_only=True,
    )
    return finder.trainer


def config_from_flags() -> experiment.TrainProgramConfig:
    """Packs the parsed flags into a config; the only place that reads them."""
    model = _TrainerFlags.read_model(
        image_shape=_TRAINING.image_shape(),
        latent_dim=_TRAINING.latent_dim.value,
        num_classes=_TRAINING.num_classes(),
    )
    objective = _TrainerFlags.trainer_class.objective_class(
        **config_flags.read_fields(_TrainerFlags.objective_fields)
    )
    return _TRAINING.program_config(
        model, trainer_name=_TRAINER.value, objective=objective
    )


main = common_flags.train_main(config_from_flags)


def flags_parser(default_trainer: str) -> Callable[[Sequence[str]], list[str]]:
    """`parse_flags` for `absl.app.run`: a bad flag or trainer is reported
    in one paragraph, with exit status 2."""

    def parse_or_exit(argv: Sequence[str]) -> list[str]:
        try:
            return parse_flags(argv, default_trainer)
        except (
            flags.Error,
            registry.TrainerNotFoundError,
            config_flags.FieldTypeError,
        ) as error:
            errors.report_user_error(error)
            sys.exit(exit_codes.USER_ERROR)

    return parse_or_exit


def run_program(default_trainer: str) -> None:
    """Runs the training program with `default_trainer` as --trainer's
    default."""
    app.run(main, flags_parser=flags_parser(default_trainer))


def run_main():
    """Console-script entry point (`vae-train`)."""
    run_program(registry.DEFAULT)


if __name__ == "__main__":
    run_main()
