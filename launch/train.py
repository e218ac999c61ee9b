r"""Trains a VAE on the ELBO: flags in, checkpoints, metrics and pictures out.

Examples (from the repository root):

    vae-train --flagfile=launch/configs/tf_tutorial_conv.flags \
        --data_dir=../shared/data/mnist --workdir=runs/tf_tutorial_conv

    python -m launch.train --dataset=fashion_mnist --architecture=mlp \
        --hidden_units=512,256 --latent_dim=16 --workdir=runs/fashion_mlp

Running the same command again resumes from the latest checkpoint; a workdir
that holds a different run is refused. SIGTERM, SIGUSR1 or Ctrl-C finishes the
current loop of steps, writes a checkpoint and exits with 128 + the signal
number. `--strategy=mirrored` trains on every GPU of the machine,
`--strategy=multi_worker` on several machines (README: "Running on several
GPUs, nodes and clusters"; launch/submit.py writes Slurm scripts).
"""

from absl import app
from absl import flags

from launch import common_flags
from launch import errors
from launch import experiment
from launch import flag_types
from trainers import losses
from trainers import optimizers as optimizers_lib
from vae import layers
from vae import models

# Data, loop, output and evaluation flags, and --latent_dim and --conditional,
# are shared with vae-train-vaegan.
_TRAINING = common_flags.TrainingFlags(batch_size=32, latent_dim=2,
                                       conditional=False)
flags.adopt_module_key_flags(common_flags)

# ---------------------------------------------------------------- model
_ARCHITECTURE = flags.DEFINE_enum("architecture", "conv", models.ARCHITECTURES,
                                  "Network family of encoder and decoder.")
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
    "Decoder distribution p(x|z): bernoulli (logits; for binary data), "
    "gaussian (means with a learned per-channel scale) or "
    "continuous_bernoulli (logits; a density on [0, 1], for gray or colour "
    "intensities).")
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

# ------------------------------------------------------------ optimiser
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adam",
                               optimizers_lib.OPTIMIZER_NAMES, "Optimiser.")
_LEARNING_RATE = flag_types.DEFINE_learning_rate(1e-3, "Learning rate.")


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
    model = models.ModelConfig(
        architecture=_ARCHITECTURE.value, image_shape=_TRAINING.image_shape(),
        latent_dim=_TRAINING.latent_dim.value, likelihood=_LIKELIHOOD.value,
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
        num_classes=_TRAINING.num_classes(),
        conditioning=_CONDITIONING.value,
        hidden_batch_norm=_HIDDEN_BATCH_NORM.value,
        hidden_dropout_rate=_HIDDEN_DROPOUT_RATE.value,
        decoder_activation=_DECODER_ACTIVATION.value or "")
    return _TRAINING.program_config(
        model, kl_estimator=_KL.value, beta=_BETA.value,
        kl_warmup_epochs=_KL_WARMUP_EPOCHS.value, optimizer=_OPTIMIZER.value,
        learning_rate=_LEARNING_RATE.value)


main = common_flags.train_main(config_from_flags)


def run_main():
    """Console-script entry point (`vae-train`)."""
    app.run(main, flags_parser=errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
