r"""The disconnected-manifold experiment: why an autoencoder needs the label.

The toy2d data are 2-D points near two curves that do not touch, an arc
y = sin(x) (label 0) and a circle (label 1). Two deterministic autoencoders
2-64-64-1-64-64-2 (ELU, mean squared error, a one-number code) are trained on
them with Adam:

* unconditional: x -> code -> x_hat. Encoder and decoder are continuous, so
    the decoded code line is one connected curve, which must bridge the gap
    between arc and circle; reconstructions smear along that bridge.
* conditional: the one-hot label is appended to the encoder's input and to
    the code. For each label the decoder traces a curve of its own, so each
    part of the manifold is reconstructed cleanly.

The number that tells them apart is the distance from the reconstructions of
the test points to the nearer of the two noise-free curves (mean and median,
and the fraction farther than twice the noise; see `vae.toy2d`).
The defaults are those of the Keras reference experiment ("Autoencoders in
Keras, part 4", habr.com/ru/post/331664): Adam with learning rate 0.001,
batch size 30, 300 epochs.

How far apart the two models come out depends on the run. Neither can trace
the circle exactly: it is a loop, and a continuous encoder to a one-number
code must cut it somewhere, so points near the cut are reconstructed across
the circle by both models and set the conditional model's floor (a mean
distance of about 0.02 to 0.04). The unconditional model pays for its bridge
only as far as training leaves points whose code falls on it, which varies
with the initial weights. At the defaults, the unconditional model's mean
distance was 1.0 to 5.1 times the conditional one's over seeds 0 to 7
(median 3.2; 2.5 for seed 0); the fraction of reconstructions off the
manifold separates the two models more consistently.

Outputs in WORKDIR:
    unconditional/, conditional/  each model's trainer workdir: checkpoints,
                                  metrics.json, TensorBoard events, run.json
    toy2d.json                    test MSE and distances to the manifold of
                                  both models, and their ratio
    toy2d_unconditional.png,      plots of the test points (light blue: arc,
    toy2d_conditional.png         light orange: circle), the true curves
                                  (dark grey) and the test reconstructions
                                  (red), with axes, a legend and each model's
                                  mean distance to the curves in its title
    toy2d_side_by_side.png        both plots: left unconditional, right
                                  conditional

Example (from the repository root):

    python -m launch.toy2d --workdir=runs/toy2d

Running the same command again resumes each model from its latest checkpoint
(and just rewrites the report if both are done); a workdir trained with other
settings is refused.
"""

import dataclasses
import os
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from launch import errors
from launch import flag_types
from launch.errors import ConfigError
from trainers import autoencoder as autoencoder_trainer
from trainers import base
from trainers import optimizers as optimizers_lib
from trainers import progress as progress_lib
from trainers import workdir as workdir_lib
from vae import atomic_files
from vae import autoencoder as autoencoder_lib
from vae import datasets
from vae import figures
from vae import pictures
from vae import toy2d

MODEL_NAMES = ("unconditional", "conditional")
SCHEDULES = ("constant", "cosine")
REPORT_FILE = "toy2d.json"

_WORKDIR = flag_types.DEFINE_workdir(
    "Directory for every output; rerunning with the same workdir resumes."
)
_EPOCHS = flags.DEFINE_integer(
    "epochs", 300, "Training epochs of each autoencoder.", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size",
    30,
    "Training batch size, at most the 2000 training points.",
    lower_bound=1,
)
_LEARNING_RATE = flag_types.DEFINE_learning_rate(1e-3, "Adam learning rate.")
_LEARNING_RATE_SCHEDULE = flags.DEFINE_enum(
    "learning_rate_schedule",
    "cosine",
    SCHEDULES,
    "constant: the reference's fixed rate; cosine: the same starting rate "
    "lowered along a half cosine to 0 by the last step, so that each curve is "
    "fitted closely at the end.",
)
_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the data, their order and the initial weights.", lower_bound=0
)
_HIDDEN_UNITS = flag_types.DEFINE_int_list(
    "hidden_units",
    [64, 64],
    "Hidden layer sizes of the encoder (the decoder mirrors them).",
)
_CODE_DIM = flags.DEFINE_integer("code_dim", 1, "Size of the code.", lower_bound=1)
_PROGRESS = flags.DEFINE_enum(
    "progress",
    "auto",
    progress_lib.PROGRESS_MODES,
    "auto: a progress bar on a terminal, log lines otherwise.",
)


@dataclasses.dataclass(frozen=True)
class Toy2dConfig:
    """Everything `run_experiment` needs, built from flags by `config_from_flags`."""

    workdir: str
    epochs: int = 300
    batch_size: int = 30
    learning_rate: float = 1e-3
    learning_rate_schedule: str = "cosine"
    seed: int = 0
    hidden_units: tuple[int, ...] = (64, 64)
    code_dim: int = 1
    progress: str = "auto"
    eval_batch_size: int = 500

    def model_config(
        self, name: str, num_classes: int
    ) -> autoencoder_lib.AutoencoderConfig:
        """The architecture of the model called `name` (see `MODEL_NAMES`)."""
        return autoencoder_lib.AutoencoderConfig(
            input_dim=2,
            hidden_units=tuple(self.hidden_units),
            code_dim=self.code_dim,
            activation="elu",
            num_classes=num_classes if name == "conditional" else 0,
        )

    def run_identity(self, name: str, num_classes: int) -> dict:
        """What must match for a model's workdir to be resumed by this config."""
        return {
            "experiment": "toy2d",
            "model": dataclasses.asdict(self.model_config(name, num_classes)),
            "optimizer": {
                "name": "adam",
                "learning_rate": self.learning_rate,
                "schedule": self.learning_rate_schedule,
                # The cosine reaches 0 at the last epoch, so another
                # length is another curve, not a continuation.
                **(
                    {"decay_epochs": self.epochs}
                    if self.learning_rate_schedule == "cosine"
                    else {}
                ),
            },
            "batch_size": self.batch_size,
            "seed": self.seed,
        }


def _check(config: Toy2dConfig, num_train: int) -> None:
    """Refuses unusable settings before any workdir is touched."""
    try:
        config.model_config("conditional", 2).validate()
        optimizers_lib.make_optimizer("adam", config.learning_rate)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if config.learning_rate_schedule not in SCHEDULES:
        raise ConfigError(
            f"learning_rate_schedule={config.learning_rate_schedule!r} is not "
            f"one of {SCHEDULES}."
        )
    if config.batch_size > num_train:
        raise ConfigError(
            f"--batch_size={config.batch_size} is larger than the {num_train} "
            "training points; expected at most that many so that an epoch has "
            "a full batch."
        )


def _data_source(config: Toy2dConfig, arrays: datasets.DatasetArrays) -> base.DataSource:
    def train(epoch: int, skip_batches: int):
        return datasets.train_batches(
            arrays.train,
            batch_size=config.batch_size,
            epoch=epoch,
            seed=config.seed,
            binarization="none",
            num_classes=arrays.num_classes,
            skip_batches=skip_batches,
        )

    def test():
        return datasets.eval_batches(
            arrays.test,
            batch_size=config.eval_batch_size,
            seed=config.seed,
            binarization="none",
            num_classes=arrays.num_classes,
        )

    return base.DataSource(
        train_batches=train,
        steps_per_epoch=datasets.steps_per_epoch(
            arrays.train.num_examples, config.batch_size
        ),
        batch_size=config.batch_size,
        eval_batches={"test": test},
    )


def train_model(
    config: Toy2dConfig, arrays: datasets.DatasetArrays, name: str
) -> tuple[autoencoder_lib.Autoencoder, base.TrainResult]:
    """Trains (or resumes) one autoencoder in WORKDIR/<name>."""
    workdir = os.path.join(config.workdir, name)
    workdir_lib.claim_workdir(workdir, config.run_identity(name, arrays.num_classes))
    # Initial weights come from TensorFlow's global generator; seeding it per
    # model makes each model's start independent of the other's training.
    tf.random.set_seed(config.seed)
    model = autoencoder_lib.Autoencoder(
        config.model_config(name, arrays.num_classes), name=name
    )
    data = _data_source(config, arrays)
    trainer_config = base.TrainerConfig(
        workdir=workdir,
        epochs=config.epochs,
        seed=config.seed,
        # One compiled call per epoch: Python runs once per epoch, not per step.
        steps_per_loop=data.steps_per_epoch,
        log_every_steps=data.steps_per_epoch,
        progress=config.progress,
    )
    decay_steps = (
        config.epochs * data.steps_per_epoch
        if config.learning_rate_schedule == "cosine"
        else 0
    )
    trainer = autoencoder_trainer.AutoencoderTrainer(
        model,
        optimizers_lib.make_optimizer(
            "adam", config.learning_rate, cosine_decay_steps=decay_steps
        ),
        trainer_config,
        data,
    )
    logging.info("Training the %s autoencoder in %s.", name, workdir)
    return model, trainer.train()


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    """What `run_experiment` returns.

    Attributes:
      report: the contents of WORKDIR/toy2d.json; None when stopped early.
      stop_signal: the signal number that stopped training (a checkpoint was
        written and rerunning resumes), else None.
    """

    report: dict[str, Any] | None
    stop_signal: int | None = None


def run_experiment(config: Toy2dConfig) -> ExperimentResult:
    """Trains both autoencoders and writes the report and pictures.

    Every check that can fail on user input runs before a workdir is touched.

    Returns:
        The report, or the signal that stopped training.

    Raises:
        ConfigError: an unusable setting.
        WorkdirConflictError: the workdir holds a run with other settings.
    """
    arrays = datasets.load_dataset("toy2d", seed=config.seed)
    _check(config, arrays.train.num_examples)
    tf.config.experimental.enable_op_determinism()
    test = arrays.test

    report: dict[str, Any] = {
        "config": dataclasses.asdict(config),
        "test_points": test.num_examples,
        # The noise floor: how far the test points themselves are from the
        # curves. A perfect projection onto the curves would score 0.
        "test_points_mean_distance_to_manifold": toy2d.manifold_distance_summary(
            test.images
        )["mean"],
    }
    panels = {}
    for name in MODEL_NAMES:
        model, result = train_model(config, arrays, name)
        if not result.completed:
            return ExperimentResult(report=None, stop_signal=result.stop_signal)
        reconstructions = autoencoder_trainer.reconstruct_points(
            model, test.images, test.labels
        )
        report[name] = toy2d.reconstruction_report(test.images, reconstructions)
        report[name]["train_wall_seconds"] = result.metrics["final"]["wall_seconds"]
        title = (
            f"{name} autoencoder: mean distance to the curves "
            f"{report[name]['mean_distance_to_manifold']:.3f}"
        )
        panels[title] = reconstructions
        pictures.save_png(
            os.path.join(config.workdir, f"toy2d_{name}.png"),
            figures.toy2d_picture(test.images, test.labels, {title: reconstructions}),
        )
        logging.info(
            "%s: test MSE %.5f, distance to the manifold mean %.4f, "
            "median %.4f, %.1f%% off the manifold.",
            name,
            report[name]["test_mse"],
            report[name]["mean_distance_to_manifold"],
            report[name]["median_distance_to_manifold"],
            100 * report[name]["fraction_off_manifold"],
        )
    pictures.save_png(
        os.path.join(config.workdir, "toy2d_side_by_side.png"),
        figures.toy2d_picture(test.images, test.labels, panels),
    )

    for statistic in ("mean", "median"):
        key = f"{statistic}_distance_to_manifold"
        # How many times further off the manifold the unconditional model's
        # reconstructions are; the experiment expects well above 1.
        report[f"{statistic}_distance_ratio_unconditional_to_conditional"] = report[
            "unconditional"
        ][key] / max(report["conditional"][key], 1e-12)
    atomic_files.write_json(os.path.join(config.workdir, REPORT_FILE), report)
    logging.info(
        "Unconditional / conditional mean distance to the manifold: %.2f. Report: %s.",
        report["mean_distance_ratio_unconditional_to_conditional"],
        os.path.join(config.workdir, REPORT_FILE),
    )
    return ExperimentResult(report=report)


def config_from_flags() -> Toy2dConfig:
    """Packs the parsed flags into a config; the only place that reads them."""
    return Toy2dConfig(
        workdir=_WORKDIR.value,
        epochs=_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        learning_rate_schedule=_LEARNING_RATE_SCHEDULE.value,
        seed=_SEED.value,
        hidden_units=tuple(_HIDDEN_UNITS.value),
        code_dim=_CODE_DIM.value,
        progress=_PROGRESS.value,
    )


def main(argv):
    errors.reject_positional_arguments(argv)
    with errors.exit_on_user_error():
        result = run_experiment(config_from_flags())
    if result.stop_signal is not None:
        sys.exit(128 + result.stop_signal)


def run_main():
    """Console-script entry point (`vae-toy2d`)."""
    app.run(main, flags_parser=errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
