r"""Trains a VAE on the ELBO: flags in, checkpoints, metrics and pictures out.

Examples (from the repository root):

    vae-train --flagfile=launch/configs/tf_tutorial_conv.flags \
        --data_dir=../shared/data/mnist --workdir=runs/tf_tutorial_conv

    python -m launch.train --dataset=fashion_mnist --architecture=mlp \
        --hidden_units=512,256 --latent_dim=16 --workdir=runs/fashion_mlp

Running the same command again resumes from the latest checkpoint; a workdir
that holds a different run is refused. SIGTERM or Ctrl-C finishes the current
loop of steps, writes a checkpoint and exits with 128 + the signal number.
"""

import sys
from typing import Optional

from absl import app
from absl import flags

from launch import evaluation_program
from launch import experiment
from launch import flag_types
from trainers import base
from trainers import losses
from trainers import optimizers as optimizers_lib
from trainers import progress as progress_lib
from vae import datasets
from vae import layers
from vae import models

# ----------------------------------------------------------------- data
_DATASET = flags.DEFINE_enum("dataset", "mnist", datasets.DATASET_NAMES,
                             "Dataset to train on.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None,
    "Directory with the dataset's four gzip IDX files (or a Keras-style "
    "<dataset>.npz). Unset: the Keras downloader is used (needs internet).")
_BINARIZATION = flags.DEFINE_enum(
    "binarization", "none", datasets.BINARIZATIONS,
    "none: grayscale in [0, 1]; static: pixels > 0.5 become 1 once; dynamic: "
    "each pixel is redrawn from Bernoulli(intensity) every epoch.")
_VALIDATION_SIZE = flags.DEFINE_integer(
    "validation_size", 0,
    "Training images held out as a validation split (evaluated each epoch).",
    lower_bound=0)
_ALLOW_DOWNLOAD = flags.DEFINE_boolean(
    "allow_download", True,
    "Fall back to the Keras downloader when --data_dir has no files.")

# ---------------------------------------------------------------- model
_ARCHITECTURE = flags.DEFINE_enum("architecture", "conv", models.ARCHITECTURES,
                                  "Network family of encoder and decoder.")
_LATENT_DIM = flags.DEFINE_integer("latent_dim", 2, "Latent dimensions.",
                                   lower_bound=1)
_CONDITIONAL = flags.DEFINE_boolean(
    "conditional", False,
    "Condition encoder and decoder on the one-hot label (a conditional VAE); "
    "the number of classes comes from the dataset.")
_CONDITIONING = flags.DEFINE_enum(
    "conditioning", "concat", models.CONDITIONINGS,
    "How a conv encoder reads the label: concat (joined to the flattened "
    "features) or label_maps (constant planes stacked onto the image "
    "channels). MLP encoders always concatenate.")
_HIDDEN_BATCH_NORM = flags.DEFINE_boolean(
    "hidden_batch_norm", False,
    "Batch normalisation after every hidden dense layer.")
_HIDDEN_DROPOUT_RATE = flags.DEFINE_float(
    "hidden_dropout_rate", 0.0, "Dropout after every hidden dense layer.",
    lower_bound=0.0, upper_bound=0.95)
_DECODER_ACTIVATION = flags.DEFINE_enum(
    "decoder_activation", None, layers.ACTIVATION_NAMES,
    "Activation of the decoder's hidden layers; unset: --activation.")
_LIKELIHOOD = flags.DEFINE_enum(
    "likelihood", "bernoulli", models.LIKELIHOODS,
    "Decoder distribution p(x|z): bernoulli (logits) or gaussian (means with "
    "a learned per-channel scale).")
_ACTIVATION = flags.DEFINE_enum("activation", "relu", layers.ACTIVATION_NAMES,
                                "Hidden-layer activation.")
_HIDDEN_UNITS = flag_types.DEFINE_int_list(
    "hidden_units", [64], "mlp: hidden layer sizes of the encoder (the "
    "decoder mirrors them).")
_ENCODER_FILTERS = flag_types.DEFINE_int_list(
    "encoder_filters", [32, 64], "conv: channels of each encoder convolution.")
_ENCODER_STRIDES = flag_types.DEFINE_int_list(
    "encoder_strides", [2, 2], "conv: stride of each encoder convolution.")
_ENCODER_KERNEL_SIZE = flags.DEFINE_integer(
    "encoder_kernel_size", 3, "conv: encoder kernel size.", lower_bound=1)
_ENCODER_PADDING = flags.DEFINE_enum(
    "encoder_padding", "VALID", ("VALID", "SAME"),
    "conv: padding of the encoder convolutions.")
_ENCODER_DENSE_UNITS = flag_types.DEFINE_int_list(
    "encoder_dense_units", [], "conv: dense layers after flattening.")
_DECODER_DENSE_UNITS = flag_types.DEFINE_int_list(
    "decoder_dense_units", [], "conv: dense layers before the base feature "
    "map.")
_DECODER_BASE_CHANNELS = flags.DEFINE_integer(
    "decoder_base_channels", 32, "conv: channels of the decoder's first "
    "feature map (its size is the image size / product of decoder_strides).",
    lower_bound=1)
_DECODER_FILTERS = flag_types.DEFINE_int_list(
    "decoder_filters", [64, 32], "conv: channels of each upsampling "
    "transposed convolution.")
_DECODER_STRIDES = flag_types.DEFINE_int_list(
    "decoder_strides", [2, 2], "conv: stride of each transposed convolution.")
_DECODER_KERNEL_SIZE = flags.DEFINE_integer(
    "decoder_kernel_size", 3, "conv: decoder kernel size.", lower_bound=1)
_DECODER_OUTPUT = flags.DEFINE_enum(
    "decoder_output", "conv_transpose", models.DECODER_OUTPUTS,
    "conv: the last decoder layer (stride 1, to the image's channels).")

# ------------------------------------------------------------ objective
_KL = flags.DEFINE_enum(
    "kl", "analytic", losses.KL_ESTIMATORS,
    "KL(q(z|x) || p(z)): analytic (closed form) or mc (log q(z|x) - log p(z) "
    "at the sampled z).")
_BETA = flags.DEFINE_float("beta", 1.0, "Weight of the KL term in the loss.",
                           lower_bound=0.0)
_KL_WARMUP_EPOCHS = flags.DEFINE_float(
    "kl_warmup_epochs", 0.0,
    "Raise the KL weight linearly from 0 to --beta over this many epochs.",
    lower_bound=0.0)

# ------------------------------------------------------------- training
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adam",
                               optimizers_lib.OPTIMIZER_NAMES, "Optimiser.")
_LEARNING_RATE = flag_types.DEFINE_learning_rate(1e-3, "Learning rate.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Training batch size.",
                                   lower_bound=1)
_EVAL_BATCH_SIZE = flags.DEFINE_integer(
    "eval_batch_size", 500, "Batch size for evaluation.", lower_bound=1)
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs.",
                               lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of data order, noise and "
                             "initial weights.", lower_bound=0)
_STEPS_PER_LOOP = flags.DEFINE_integer(
    "steps_per_loop", 100, "Steps run inside one compiled call.",
    lower_bound=1)
_JIT_COMPILE = flags.DEFINE_boolean("jit_compile", False,
                                    "Compile the training step with XLA.")
_DETERMINISTIC = flags.DEFINE_boolean(
    "deterministic", True,
    "Make TensorFlow ops deterministic, so that a resumed run ends with the "
    "same weights as an uninterrupted one (costs some speed).")

# --------------------------------------------------------------- output
_WORKDIR = flag_types.DEFINE_workdir(
    "Directory for every output of the run; rerunning with the same workdir "
    "resumes.")
_LOG_EVERY_STEPS = flags.DEFINE_integer(
    "log_every_steps", 100, "TensorBoard scalars every this many steps.",
    lower_bound=1)
_CHECKPOINT_EVERY_STEPS = flags.DEFINE_integer(
    "checkpoint_every_steps", 0,
    "Also checkpoint mid-epoch this often (0: at epoch ends only).",
    lower_bound=0)
_KEEP_CHECKPOINTS = flags.DEFINE_integer(
    "keep_checkpoints", 3, "Checkpoints kept in WORKDIR/checkpoints.",
    lower_bound=1)
_PROGRESS = flags.DEFINE_enum(
    "progress", "auto", progress_lib.PROGRESS_MODES,
    "auto: a progress bar on a terminal, log lines otherwise.")
_PICTURES = flags.DEFINE_boolean("pictures", True,
                                 "Write per-epoch pictures to WORKDIR/images.")
_MANIFOLD_GRID_SIZE = flags.DEFINE_integer(
    "manifold_grid_size", 20, "The latent manifold picture is N x N images.",
    lower_bound=1)
_EXPORT = flags.DEFINE_boolean(
    "export", True, "Export a SavedModel to WORKDIR/export when training "
    "completes.")

# ----------------------------------------------------------- evaluation
_EVALUATE_EVERY_EPOCHS = flags.DEFINE_integer(
    "evaluate_every_epochs", 0,
    "Run the evaluation suite (importance-sampled NLL, reconstruction error, "
    "Frechet distance, classifier score) every N epochs and after the last; "
    "results go to metrics.json and TensorBoard. 0: never.", lower_bound=0)
_EVAL_NUM_IMPORTANCE_SAMPLES = flags.DEFINE_integer(
    "eval_num_importance_samples", 100,
    "k of the NLL estimate during training (0 skips it); vae-evaluate does "
    "the expensive k=1000/5000 estimates.", lower_bound=0, upper_bound=100000)
_EVAL_LIKELIHOOD_EXAMPLES = flags.DEFINE_integer(
    "eval_likelihood_examples", 500,
    "Test images the NLL is estimated on during training (0: all).",
    lower_bound=0)
_EVAL_NUM_GENERATED = flags.DEFINE_integer(
    "eval_num_generated", 5000,
    "Prior samples for the sample-quality metrics during training.",
    lower_bound=2)
_EVAL_SAMPLE_QUALITY = flags.DEFINE_boolean(
    "eval_sample_quality", True,
    "Include the classifier-based metrics (the classifier is trained once "
    "per dataset and cached).")
_CLASSIFIER_DIR = flag_types.DEFINE_classifier_dir()


@flags.multi_flags_validator(
    ["binarization", "dataset"],
    message="--binarization must be none for --dataset=toy2d (its points "
    "are real-valued, not pixel intensities).")
def _check_binarization(flag_values):
    return (flag_values["dataset"] != "toy2d"
            or flag_values["binarization"] == "none")


def _list_length_validator(filters_flag, strides_flag):
    @flags.multi_flags_validator(
        [filters_flag, strides_flag],
        message=f"--{strides_flag} needs one stride per entry of "
        f"--{filters_flag}.")
    def _check(flag_values):
        return len(flag_values[filters_flag]) == len(flag_values[strides_flag])
    return _check


_list_length_validator("encoder_filters", "encoder_strides")
_list_length_validator("decoder_filters", "decoder_strides")


def config_from_flags() -> experiment.TrainProgramConfig:
    """Packs the parsed flags into a config; the only place that reads them."""
    image_shape = (2,) if _DATASET.value == "toy2d" else (28, 28, 1)
    model = models.ModelConfig(
        architecture=_ARCHITECTURE.value, image_shape=image_shape,
        latent_dim=_LATENT_DIM.value, likelihood=_LIKELIHOOD.value,
        activation=_ACTIVATION.value, hidden_units=tuple(_HIDDEN_UNITS.value),
        encoder_filters=tuple(_ENCODER_FILTERS.value),
        encoder_strides=tuple(_ENCODER_STRIDES.value),
        encoder_kernel_size=_ENCODER_KERNEL_SIZE.value,
        encoder_padding=_ENCODER_PADDING.value,
        encoder_dense_units=tuple(_ENCODER_DENSE_UNITS.value),
        decoder_dense_units=tuple(_DECODER_DENSE_UNITS.value),
        decoder_base_channels=_DECODER_BASE_CHANNELS.value,
        decoder_filters=tuple(_DECODER_FILTERS.value),
        decoder_strides=tuple(_DECODER_STRIDES.value),
        decoder_kernel_size=_DECODER_KERNEL_SIZE.value,
        decoder_output=_DECODER_OUTPUT.value,
        num_classes=(datasets.NUM_CLASSES[_DATASET.value]
                     if _CONDITIONAL.value else 0),
        conditioning=_CONDITIONING.value,
        hidden_batch_norm=_HIDDEN_BATCH_NORM.value,
        hidden_dropout_rate=_HIDDEN_DROPOUT_RATE.value,
        decoder_activation=_DECODER_ACTIVATION.value or "")
    return experiment.TrainProgramConfig(
        data=experiment.DataConfig(dataset=_DATASET.value, data_dir=_DATA_DIR.value,
                        binarization=_BINARIZATION.value,
                        validation_size=_VALIDATION_SIZE.value,
                        allow_download=_ALLOW_DOWNLOAD.value),
        model=model, kl_estimator=_KL.value, beta=_BETA.value,
        kl_warmup_epochs=_KL_WARMUP_EPOCHS.value, optimizer=_OPTIMIZER.value,
        learning_rate=_LEARNING_RATE.value, batch_size=_BATCH_SIZE.value,
        eval_batch_size=_EVAL_BATCH_SIZE.value,
        trainer=base.TrainerConfig(
            workdir=_WORKDIR.value, epochs=_EPOCHS.value, seed=_SEED.value,
            steps_per_loop=_STEPS_PER_LOOP.value,
            jit_compile=_JIT_COMPILE.value,
            log_every_steps=_LOG_EVERY_STEPS.value,
            checkpoint_every_steps=_CHECKPOINT_EVERY_STEPS.value,
            max_checkpoints_to_keep=_KEEP_CHECKPOINTS.value,
            progress=_PROGRESS.value),
        deterministic=_DETERMINISTIC.value, pictures=_PICTURES.value,
        manifold_grid_size=_MANIFOLD_GRID_SIZE.value, export=_EXPORT.value,
        evaluation=_training_evaluation_config())


def _training_evaluation_config(
) -> Optional[evaluation_program.TrainingEvaluationConfig]:
    if not _EVALUATE_EVERY_EPOCHS.value:
        return None
    return evaluation_program.TrainingEvaluationConfig(
        every_epochs=_EVALUATE_EVERY_EPOCHS.value,
        num_importance_samples=_EVAL_NUM_IMPORTANCE_SAMPLES.value,
        likelihood_examples=_EVAL_LIKELIHOOD_EXAMPLES.value,
        num_generated=_EVAL_NUM_GENERATED.value,
        sample_quality=_EVAL_SAMPLE_QUALITY.value,
        classifier_dir=_CLASSIFIER_DIR.value)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError("Unexpected arguments: " + " ".join(argv[1:]))
    config = config_from_flags()
    try:
        result = experiment.run_training(
            config, flags_text=flags.FLAGS.flags_into_string())
    except experiment.USER_ERRORS as error:
        experiment.report_user_error(error)
        sys.exit(2)
    if not result.completed:
        sys.exit(128 + result.stop_signal)


def run_main():
    """Console-script entry point (`vae-train`)."""
    app.run(main)


if __name__ == "__main__":
    run_main()
