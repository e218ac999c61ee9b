"""The flags every training program shares, and the config pieces built from
them.

`vae-train` (launch/train.py) and `vae-train-vaegan` (launch/train_vaegan.py)
read their data, loop, output and evaluation settings, and the latent size and
conditioning, from the same flags with the same names and meanings. Each
program creates one `TrainingFlags` at import time, choosing its own defaults
for the few flags whose best value depends on the model (batch size, latent
size, conditioning), then defines its model and objective flags beside it and
calls `TrainingFlags.program_config` to pack everything into an
`experiment.TrainProgramConfig`. `train_main` is the `main` both programs run.
"""

import sys
from typing import Callable, Optional, Sequence

from absl import app
from absl import flags

from launch import errors
from launch import evaluation_program
from launch import experiment
from launch import flag_types
from trainers import base
from trainers import progress as progress_lib
from vae import datasets


class TrainingFlags:
    """Defines the shared flags (once per program) and reads them back.

    Args:
      batch_size: default of --batch_size.
      latent_dim: default of --latent_dim.
      conditional: default of --conditional.
    """

    def __init__(self, *, batch_size: int, latent_dim: int,
                 conditional: bool):
        # ------------------------------------------------------------ data
        self.dataset = flags.DEFINE_enum(
            "dataset", "mnist", datasets.DATASET_NAMES, "Dataset to train on.")
        self.data_dir = flags.DEFINE_string(
            "data_dir", None,
            "Directory with the dataset's four gzip IDX files (or a "
            "Keras-style <dataset>.npz). Unset: the Keras downloader is used "
            "(needs internet).")
        self.binarization = flags.DEFINE_enum(
            "binarization", "none", datasets.BINARIZATIONS,
            "none: grayscale in [0, 1]; static: pixels > 0.5 become 1 once; "
            "dynamic: each pixel is redrawn from Bernoulli(intensity) every "
            "epoch.")
        self.validation_size = flags.DEFINE_integer(
            "validation_size", 0, "Training images held out as a validation "
            "split (evaluated each epoch).", lower_bound=0)
        self.allow_download = flags.DEFINE_boolean(
            "allow_download", True,
            "Fall back to the Keras downloader when --data_dir has no files.")
        flags.register_multi_flags_validator(
            ["binarization", "dataset"],
            lambda values: (values["dataset"] != "toy2d"
                            or values["binarization"] == "none"),
            message="--binarization must be none for --dataset=toy2d (its "
            "points are real-valued, not pixel intensities).")

        # ----------------------------------------------------------- model
        self.latent_dim = flags.DEFINE_integer(
            "latent_dim", latent_dim, "Latent dimensions.", lower_bound=1)
        self.conditional = flags.DEFINE_boolean(
            "conditional", conditional,
            "Condition the networks on the one-hot label (a conditional "
            "model); the number of classes comes from the dataset.")

        # ------------------------------------------------------------ loop
        self.batch_size = flags.DEFINE_integer(
            "batch_size", batch_size, "Training batch size.", lower_bound=1)
        self.eval_batch_size = flags.DEFINE_integer(
            "eval_batch_size", 500, "Batch size for evaluation.",
            lower_bound=1)
        self.epochs = flags.DEFINE_integer("epochs", 10, "Training epochs.",
                                           lower_bound=1)
        self.seed = flags.DEFINE_integer(
            "seed", 0, "Seed of data order, noise and initial weights.",
            lower_bound=0)
        self.steps_per_loop = flags.DEFINE_integer(
            "steps_per_loop", 100, "Steps run inside one compiled call.",
            lower_bound=1)
        self.jit_compile = flags.DEFINE_boolean(
            "jit_compile", False, "Compile the training step with XLA.")
        self.deterministic = flags.DEFINE_boolean(
            "deterministic", True,
            "Make TensorFlow ops deterministic, so that a resumed run ends "
            "with the same weights as an uninterrupted one (costs some "
            "speed).")

        # ---------------------------------------------------------- output
        self.workdir = flag_types.DEFINE_workdir(
            "Directory for every output of the run; rerunning with the same "
            "workdir resumes.")
        self.log_every_steps = flags.DEFINE_integer(
            "log_every_steps", 100,
            "TensorBoard scalars every this many steps.", lower_bound=1)
        self.checkpoint_every_steps = flags.DEFINE_integer(
            "checkpoint_every_steps", 0,
            "Also checkpoint mid-epoch this often (0: at epoch ends only).",
            lower_bound=0)
        self.keep_checkpoints = flags.DEFINE_integer(
            "keep_checkpoints", 3, "Checkpoints kept in WORKDIR/checkpoints.",
            lower_bound=1)
        self.progress = flags.DEFINE_enum(
            "progress", "auto", progress_lib.PROGRESS_MODES,
            "auto: a progress bar on a terminal, log lines otherwise.")
        self.pictures = flags.DEFINE_boolean(
            "pictures", True, "Write per-epoch pictures to WORKDIR/images.")
        self.manifold_grid_size = flags.DEFINE_integer(
            "manifold_grid_size", 20,
            "The latent manifold picture is N x N images.", lower_bound=1)
        self.export = flags.DEFINE_boolean(
            "export", True, "Export a SavedModel to WORKDIR/export when "
            "training completes.")

        # ------------------------------------------------------ evaluation
        self.evaluate_every_epochs = flags.DEFINE_integer(
            "evaluate_every_epochs", 0,
            "Run the evaluation suite (importance-sampled NLL, reconstruction "
            "error, Frechet distance, classifier score) every N epochs and "
            "after the last; results go to metrics.json and TensorBoard. 0: "
            "never.", lower_bound=0)
        self.eval_num_importance_samples = flags.DEFINE_integer(
            "eval_num_importance_samples", 100,
            "k of the NLL estimate during training (0 skips it); vae-evaluate "
            "does the expensive k=1000/5000 estimates.", lower_bound=0,
            upper_bound=100000)
        self.eval_likelihood_examples = flags.DEFINE_integer(
            "eval_likelihood_examples", 500,
            "Test images the NLL is estimated on during training (0: all).",
            lower_bound=0)
        self.eval_num_generated = flags.DEFINE_integer(
            "eval_num_generated", 5000,
            "Prior samples for the sample-quality metrics during training.",
            lower_bound=2)
        self.eval_sample_quality = flags.DEFINE_boolean(
            "eval_sample_quality", True,
            "Include the classifier-based metrics (the classifier is trained "
            "once per dataset and cached).")
        self.classifier_dir = flag_types.DEFINE_classifier_dir()

    def image_shape(self) -> tuple[int, ...]:
        """The shape of one example of --dataset."""
        return (2,) if self.dataset.value == "toy2d" else (28, 28, 1)

    def num_classes(self) -> int:
        """Classes the model is conditioned on: 0 without --conditional."""
        if not self.conditional.value:
            return 0
        return datasets.NUM_CLASSES[self.dataset.value]

    def data_config(self) -> experiment.DataConfig:
        return experiment.DataConfig(
            dataset=self.dataset.value, data_dir=self.data_dir.value,
            binarization=self.binarization.value,
            validation_size=self.validation_size.value,
            allow_download=self.allow_download.value)

    def trainer_config(self) -> base.TrainerConfig:
        return base.TrainerConfig(
            workdir=self.workdir.value, epochs=self.epochs.value,
            seed=self.seed.value, steps_per_loop=self.steps_per_loop.value,
            jit_compile=self.jit_compile.value,
            log_every_steps=self.log_every_steps.value,
            checkpoint_every_steps=self.checkpoint_every_steps.value,
            max_checkpoints_to_keep=self.keep_checkpoints.value,
            progress=self.progress.value)

    def evaluation_config(
            self) -> Optional[evaluation_program.TrainingEvaluationConfig]:
        """Evaluation during training; None without --evaluate_every_epochs."""
        if not self.evaluate_every_epochs.value:
            return None
        return evaluation_program.TrainingEvaluationConfig(
            every_epochs=self.evaluate_every_epochs.value,
            num_importance_samples=self.eval_num_importance_samples.value,
            likelihood_examples=self.eval_likelihood_examples.value,
            num_generated=self.eval_num_generated.value,
            sample_quality=self.eval_sample_quality.value,
            classifier_dir=self.classifier_dir.value)

    def program_config(self, model,
                       **objective) -> experiment.TrainProgramConfig:
        """The whole run: the shared flags, plus `model` (a model config) and
        the program's objective fields of `TrainProgramConfig`."""
        return experiment.TrainProgramConfig(
            data=self.data_config(), model=model,
            batch_size=self.batch_size.value,
            eval_batch_size=self.eval_batch_size.value,
            trainer=self.trainer_config(),
            deterministic=self.deterministic.value,
            pictures=self.pictures.value,
            manifold_grid_size=self.manifold_grid_size.value,
            export=self.export.value, evaluation=self.evaluation_config(),
            **objective)


def train_main(config_from_flags: Callable[[], experiment.TrainProgramConfig]
               ) -> Callable[[Sequence[str]], None]:
    """The `main` of a training program that packs its flags with
    `config_from_flags`.

    A mistake in what the user asked for ends the program with one paragraph
    on stderr and exit status 2; a run stopped by a signal exits with 128 +
    the signal number.
    """

    def main(argv: Sequence[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError("Unexpected arguments: " + " ".join(argv[1:]))
        try:
            result = experiment.run_training(
                config_from_flags(),
                flags_text=flags.FLAGS.flags_into_string())
        except errors.USER_ERRORS as error:
            errors.report_user_error(error)
            sys.exit(2)
        if not result.completed:
            sys.exit(128 + result.stop_signal)

    return main

