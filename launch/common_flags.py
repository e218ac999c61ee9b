"""The flags every trainer shares, and the config pieces built from them.

`vae-train` (launch/train.py) reads its data, loop, output and evaluation
settings, and the latent size and conditioning, from these flags whatever
the trainer; the trainer adds its model and objective flags. The program
creates one `TrainingFlags` at import time and calls
`TrainingFlags.program_config` to pack everything into an
`experiment.TrainProgramConfig`. `train_main` is the program's `main`.
"""

from collections.abc import Callable, Sequence
import dataclasses
import sys

from absl import flags
import tensorflow as tf

from launch import cluster
from launch import errors
from launch import evaluation_program
from launch import exit_codes
from launch import experiment
from launch import flag_types
from launch import multi_worker
from trainers import base
from trainers import nonfinite as nonfinite_lib
from trainers import progress as progress_lib
from trainers import stop_signals
from vae import datasets
from vae import image_folders

# --checkpoint_every_seconds when unset in a multi-worker run.
MULTI_WORKER_CHECKPOINT_SECONDS = 300.0


class TrainingFlags:
    """Defines the shared flags (once per program) and reads them back.

    Args:
      batch_size: default of --batch_size.
      latent_dim: default of --latent_dim.
      conditional: default of --conditional.
    """

    def __init__(self, *, batch_size: int, latent_dim: int, conditional: bool):
        # ------------------------------------------------------------ data
        self.dataset = flags.DEFINE_enum(
            "dataset", "mnist", datasets.DATASET_NAMES, "Dataset to train on."
        )
        self.data_dir = flags.DEFINE_string(
            "data_dir",
            None,
            "mnist, fashion_mnist: directory with the dataset's four gzip IDX "
            "files (or a Keras-style <dataset>.npz); unset: the Keras "
            "downloader is used (needs internet). idx: directory with four "
            "IDX files (train-images-*, train-labels-*, t10k-images-* or "
            "test-images-*, t10k-labels-* or test-labels-*). npz: a "
            "Keras-style .npz file (or a directory holding one). folder: the "
            "image folder (PNG, JPEG, BMP; one subfolder per class, or the "
            "images directly inside; optional train/ and test/).",
        )
        self.binarization = flags.DEFINE_enum(
            "binarization",
            "none",
            datasets.BINARIZATIONS,
            "none: grayscale in [0, 1]; static: pixels > 0.5 become 1 once; "
            "dynamic: each pixel is redrawn from Bernoulli(intensity) every "
            "epoch.",
        )
        self.validation_size = flags.DEFINE_integer(
            "validation_size",
            0,
            "Training images held out as a validation split (evaluated each epoch).",
            lower_bound=0,
        )
        self.allow_download = flags.DEFINE_boolean(
            "allow_download",
            True,
            "Fall back to the Keras downloader when --data_dir has no files.",
        )
        flags.register_multi_flags_validator(
            ["binarization", "dataset"],
            lambda values: (
                values["dataset"] != "toy2d" or values["binarization"] == "none"
            ),
            message="--binarization must be none for --dataset=toy2d (its "
            "points are real-valued, not pixel intensities).",
        )
        self.image_size = flag_types.DEFINE_int_list(
            "image_size",
            [],
            "folder, idx, npz: resize every image to N x N (one value) or "
            "H,W (two values) with tf.image.resize, bilinear with "
            "antialiasing (a filter as wide as the scale factor when "
            "shrinking); the aspect ratio is not kept. Unset: keep the "
            "images' size (a folder's images must then all have one size).",
        )
        self.channels = flags.DEFINE_enum(
            "channels",
            "auto",
            ("auto", "1", "3"),
            "folder, idx, npz: 1 (grayscale; colour by ITU-R 601 luma) or 3 "
            "(RGB; gray repeated). auto: a folder is gray when every image "
            "is gray, RGB otherwise; IDX and npz data stay as stored.",
        )
        self.test_fraction = flags.DEFINE_float(
            "test_fraction",
            0.1,
            "folder without train/ and test/ subfolders: the share of each "
            "class held out as the test split (the images whose relative "
            "paths have the smallest SHA-256 digests, the same in every "
            "run).",
        )
        self.non_image_files = flags.DEFINE_enum(
            "non_image_files",
            "skip",
            image_folders.NON_IMAGE_POLICIES,
            "folder: skip (with a warning) or refuse files that are not "
            "PNG, JPEG or BMP images by their extension.",
        )
        self.train_subset = flags.DEFINE_integer(
            "train_subset",
            0,
            "dsprites only: train on this many of its images (a fixed "
            "random subset of those outside the test split); 0: all "
            "727,280, 3 GB in memory.",
            lower_bound=0,
        )
        self.data_cache_dir = flags.DEFINE_string(
            "data_cache_dir",
            None,
            "folder: where converted image folders are cached, keyed by "
            "their files and the conversion; unset: $VAE_CACHE_DIR/datasets, "
            "or ~/.cache/vae-framework/datasets.",
        )
        flags.register_validator(
            "image_size",
            lambda value: len(value) <= 2,
            message="--image_size takes one value (N for N x N) or two (height,width).",
        )
        flags.register_validator(
            "test_fraction",
            lambda value: 0 < value < 1,
            message="--test_fraction must lie strictly between 0 and 1.",
        )
        flags.register_multi_flags_validator(
            ["dataset", "image_size", "channels"],
            lambda values: (
                values["dataset"] in datasets.DATA_DEFINED_DATASETS
                or (not values["image_size"] and values["channels"] == "auto")
            ),
            message="--image_size and --channels convert the images of "
            f"--dataset={', '.join(datasets.DATA_DEFINED_DATASETS)}; mnist, "
            "fashion_mnist and toy2d have a fixed shape (read MNIST's IDX "
            "files with --dataset=idx to convert them).",
        )

        # ----------------------------------------------------------- model
        self.latent_dim = flags.DEFINE_integer(
            "latent_dim", latent_dim, "Latent dimensions.", lower_bound=1
        )
        self.conditional = flags.DEFINE_boolean(
            "conditional",
            conditional,
            "Condition the networks on the one-hot label (a conditional "
            "model); the number of classes comes from the dataset.",
        )

        # ------------------------------------------------------------ loop
        self.batch_size = flags.DEFINE_integer(
            "batch_size", batch_size, "Training batch size.", lower_bound=1
        )
        self.eval_batch_size = flags.DEFINE_integer(
            "eval_batch_size", 500, "Batch size for evaluation.", lower_bound=1
        )
        self.epochs = flags.DEFINE_integer(
            "epochs", 10, "Training epochs.", lower_bound=1
        )
        self.seed = flags.DEFINE_integer(
            "seed", 0, "Seed of data order, noise and initial weights.", lower_bound=0
        )
        self.steps_per_loop = flags.DEFINE_integer(
            "steps_per_loop", 100, "Steps run inside one compiled call.", lower_bound=1
        )
        self.jit_compile = flags.DEFINE_boolean(
            "jit_compile", False, "Compile the training step with XLA."
        )
        self.mixed_precision = flags.DEFINE_boolean(
            "mixed_precision",
            False,
            "Compute the networks in bfloat16 with float32 variables and "
            "float32 losses (for GPUs and TPUs with bfloat16 units; no loss "
            "scaling is needed, unlike float16). Slower on CPUs without "
            "bfloat16 instructions.",
        )
        self.strategy = flags.DEFINE_enum(
            "strategy",
            "default",
            cluster.STRATEGIES,
            "default: one device. mirrored: every visible GPU of this "
            "machine, each taking an equal share of every batch. "
            "multi_worker: one process per machine (each with its GPUs), "
            "the cluster read from TF_CONFIG or else from the Slurm job "
            "step. --batch_size is the global batch, split over all "
            "replicas.",
        )
        self.deterministic = flags.DEFINE_boolean(
            "deterministic",
            True,
            "Make TensorFlow ops deterministic, so that a resumed run ends "
            "with the same weights as an uninterrupted one (costs some "
            "speed).",
        )

        # ---------------------------------------------------------- output
        self.workdir = flag_types.DEFINE_workdir(
            "Directory for every output of the run; rerunning with the same "
            "workdir resumes."
        )
        self.log_every_steps = flags.DEFINE_integer(
            "log_every_steps",
            100,
            "TensorBoard scalars every this many steps.",
            lower_bound=1,
        )
        self.checkpoint_every_steps = flags.DEFINE_integer(
            "checkpoint_every_steps",
            0,
            "Also checkpoint mid-epoch this often (0: at epoch ends only).",
            lower_bound=0,
        )
        self.checkpoint_every_seconds = flags.DEFINE_float(
            "checkpoint_every_seconds",
            None,
            "Also checkpoint mid-epoch once this many seconds have passed "
            "since the last checkpoint (0: never by time). Unset: "
            f"{MULTI_WORKER_CHECKPOINT_SECONDS:.0f} with "
            "--strategy=multi_worker, so a lost worker costs minutes rather "
            "than an epoch; 0 otherwise.",
            lower_bound=0.0,
        )
        self.keep_checkpoints = flags.DEFINE_integer(
            "keep_checkpoints",
            3,
            "Checkpoints kept in WORKDIR/checkpoints.",
            lower_bound=1,
        )
        self.on_nonfinite = flags.DEFINE_enum(
            "on_nonfinite",
            "stop",
            nonfinite_lib.ON_NONFINITE_MODES,
            "When a step makes the loss, another logged value or a weight "
            "NaN or infinite: stop (end the run with exit status "
            f"{exit_codes.DIVERGED}, the last good checkpoint kept as the "
            "latest; nothing is saved or exported after the bad step) or "
            "skip_step (undo that step's update and go on; the count is "
            "logged and written to metrics.json).",
        )
        self.progress = flags.DEFINE_enum(
            "progress",
            "auto",
            progress_lib.PROGRESS_MODES,
            "auto: a progress bar on a terminal, log lines otherwise.",
        )
        self.pictures = flags.DEFINE_boolean(
            "pictures", True, "Write per-epoch pictures to WORKDIR/images."
        )
        self.manifold_grid_size = flags.DEFINE_integer(
            "manifold_grid_size",
            20,
            "The latent manifold picture is N x N images.",
            lower_bound=1,
        )
        self.export = flags.DEFINE_boolean(
            "export",
            True,
            "Export a SavedModel to WORKDIR/export when training completes.",
        )

        # ------------------------------------------------------ evaluation
        self.evaluate_every_epochs = flags.DEFINE_integer(
            "evaluate_every_epochs",
            0,
            "Run the evaluation suite (importance-sampled NLL, reconstruction "
            "error, Frechet distance, classifier score) every N epochs and "
            "after the last; results go to metrics.json and TensorBoard. 0: "
            "never.",
            lower_bound=0,
        )
        self.eval_num_importance_samples = flags.DEFINE_integer(
            "eval_num_importance_samples",
            100,
            "k of the NLL estimate during training (0 skips it); vae-evaluate "
            "does the expensive k=1000/5000 estimates.",
            lower_bound=0,
            upper_bound=100000,
        )
        self.eval_likelihood_examples = flags.DEFINE_integer(
            "eval_likelihood_examples",
            500,
            "Test images the NLL is estimated on during training (0: all).",
            lower_bound=0,
        )
        self.eval_num_generated = flags.DEFINE_integer(
            "eval_num_generated",
            5000,
            "Prior samples for the sample-quality metrics during training.",
            lower_bound=2,
        )
        self.eval_sample_quality = flags.DEFINE_boolean(
            "eval_sample_quality",
            True,
            "Include the classifier-based metrics (the classifier is trained "
            "once per dataset and cached).",
        )
        self.classifier_dir = flag_types.DEFINE_classifier_dir()

    def image_shape(self) -> tuple[int, ...] | None:
        """The shape of one example of --dataset, or `experiment.FROM_DATA`
        where only the files can tell (folder, idx, npz without both
        --image_size and --channels)."""
        if self.dataset.value in datasets.EXAMPLE_SHAPES:
            return datasets.EXAMPLE_SHAPES[self.dataset.value]
        image_size = image_folders.normalize_image_size(self.image_size.value)
        channels = self._channels()
        if image_size and channels:
            return (*image_size, channels)
        return experiment.FROM_DATA

    def num_classes(self) -> int | None:
        """Classes the model is conditioned on: 0 without --conditional;
        `experiment.FROM_DATA` where the files tell (folder, idx, npz)."""
        if not self.conditional.value:
            return 0
        return datasets.NUM_CLASSES.get(self.dataset.value, experiment.FROM_DATA)

    def _channels(self) -> int:
        """--channels as a number; 0 for auto."""
        return 0 if self.channels.value == "auto" else int(self.channels.value)

    def data_config(self) -> experiment.DataConfig:
        return experiment.DataConfig(
            dataset=self.dataset.value,
            data_dir=self.data_dir.value,
            binarization=self.binarization.value,
            validation_size=self.validation_size.value,
            allow_download=self.allow_download.value,
            image_size=image_folders.normalize_image_size(self.image_size.value),
            channels=self._channels(),
            test_fraction=self.test_fraction.value,
            cache_dir=(
                self.data_cache_dir.value or flag_types.default_cache_dir("datasets")
            ),
            non_image_files=self.non_image_files.value,
            train_subset=self.train_subset.value,
        )

    def trainer_config(self) -> base.TrainerConfig:
        return base.TrainerConfig(
            workdir=self.workdir.value,
            epochs=self.epochs.value,
            seed=self.seed.value,
            steps_per_loop=self.steps_per_loop.value,
            jit_compile=self.jit_compile.value,
            log_every_steps=self.log_every_steps.value,
            checkpoint_every_steps=self.checkpoint_every_steps.value,
            checkpoint_every_seconds=(
                self.checkpoint_every_seconds.value
                if self.checkpoint_every_seconds.value is not None
                else MULTI_WORKER_CHECKPOINT_SECONDS
                if self.strategy.value == "multi_worker"
                else 0.0
            ),
            max_checkpoints_to_keep=self.keep_checkpoints.value,
            progress=self.progress.value,
            on_nonfinite=self.on_nonfinite.value,
        )

    def evaluation_config(self) -> evaluation_program.TrainingEvaluationConfig | None:
        """Evaluation during training; None without --evaluate_every_epochs."""
        if not self.evaluate_every_epochs.value:
            return None
        return evaluation_program.TrainingEvaluationConfig(
            every_epochs=self.evaluate_every_epochs.value,
            num_importance_samples=self.eval_num_importance_samples.value,
            likelihood_examples=self.eval_likelihood_examples.value,
            num_generated=self.eval_num_generated.value,
            sample_quality=self.eval_sample_quality.value,
            classifier_dir=self.classifier_dir.value,
        )

    def program_config(
        self, model, *, trainer_name: str, objective
    ) -> experiment.TrainProgramConfig:
        """The whole run: the shared flags, plus `model` (a model config),
        the trainer's name and its objective."""
        compute_dtype = "bfloat16" if self.mixed_precision.value else "float32"
        return experiment.TrainProgramConfig(
            data=self.data_config(),
            model=dataclasses.replace(model, compute_dtype=compute_dtype),
            batch_size=self.batch_size.value,
            eval_batch_size=self.eval_batch_size.value,
            trainer=self.trainer_config(),
            deterministic=self.deterministic.value,
            pictures=self.pictures.value,
            manifold_grid_size=self.manifold_grid_size.value,
            export=self.export.value,
            evaluation=self.evaluation_config(),
            strategy=self.strategy.value,
            trainer_name=trainer_name,
            objective=objective,
        )


def train_main(
    config_from_flags: Callable[[], experiment.TrainProgramConfig],
) -> Callable[[Sequence[str]], None]:
    """The `main` of a training program that packs its flags with
    `config_from_flags`.

    A mistake in what the user asked for ends the program with one paragraph
    on stderr and exit status 2 (so does a workdir that cannot be written,
    a full disk included); a run that diverges exits with
    `exit_codes.DIVERGED`; a run stopped by a signal exits with 128 +
    the signal number (`exit_codes.stopped_by`; SIGUSR1 gives
    `exit_codes.REQUEUE`, on which launch/submit.py's scripts requeue).
    """

    def main(argv: Sequence[str]) -> None:
        # Before any work (the console scripts install them even before
        # TensorFlow loads, see launch/entry_points.py).
        stop_signals.install_for_process()
        errors.reject_positional_arguments(argv)
        try:
            result = experiment.run_training(
                config_from_flags(), flags_text=flags.FLAGS.flags_into_string()
            )
        except errors.USER_ERRORS as error:
            errors.report_user_error(error)
            sys.exit(exit_codes.USER_ERROR)
        except nonfinite_lib.NonFiniteError as error:
            errors.report_user_error(error)
            sys.exit(exit_codes.DIVERGED)
        except (OSError, tf.errors.OpError) as error:
            # A workdir that fills up or stops being writable mid-run
            # (metrics, pictures, logs, TensorBoard); a failed checkpoint is
            # reported by USER_ERRORS above. Anything else is a bug.
            message = errors.disk_error_message(error)
            if message is None:
                raise
            errors.report_user_error(message)
            sys.exit(exit_codes.USER_ERROR)
        except multi_worker.LostWorkerError as error:
            multi_worker.exit_reporting(error)
        if not result.completed:
            sys.exit(exit_codes.stopped_by(result.stop_signal))

    return main
