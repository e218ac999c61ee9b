r"""Trains a (conditional) VAE-GAN: flags in, checkpoints, metrics and pictures out.

Examples (from the repository root):

    vae-train-vaegan --flagfile=launch/configs/cvae_gan.flags \
        --data_dir=../shared/data/mnist --workdir=runs/cvae_gan

    python -m launch.train_vaegan --dataset=fashion_mnist --latent_dim=16 \
        --feature_loss=gaussian --workdir=runs/fashion_vaegan

The model is `vae.vaegan.VaeGan` (encoder, decoder and a discriminator whose
inner layer measures reconstructions), trained by
`trainers.vaegan.VaeGanTrainer` with one optimiser per network. Everything
else is vae-train's: the data, loop, output and evaluation flags
(launch/common_flags.py), resuming from the latest checkpoint, refusing a
workdir that holds a different run (a vae-train run included), the pictures,
`metrics.json` (its test ELBO is the decoder's Bernoulli ELBO, which the
VAE-GAN does not train on) and the SavedModel export; vae-evaluate and
vae-generate take its workdir. `--strategy` trains on several GPUs or
machines, as for vae-train. SIGTERM, SIGUSR1 or Ctrl-C finishes the current
loop of steps, writes a checkpoint and exits with 128 + the signal number.
A bad flag value stops the program with one paragraph naming it and exit
status 2.
"""

from absl import app
from absl import flags

from launch import common_flags
from launch import errors
from launch import experiment
from launch import flag_types
from trainers import optimizers as optimizers_lib
from trainers import vaegan as vaegan_trainer
from vae import layers
from vae import vaegan

# Data, loop, output and evaluation flags, and --latent_dim and --conditional,
# are shared with vae-train; the defaults here are reference 003's.
_TRAINING = common_flags.TrainingFlags(batch_size=64, latent_dim=8,
                                       conditional=True)
flags.adopt_module_key_flags(common_flags)

# ---------------------------------------------------------------- model
_ENCODER_FILTERS = flag_types.DEFINE_int_list(
    "encoder_filters", [32, 64], "Channels of the encoder's two "
    "convolutions.")
_ENCODER_DENSE_UNITS = flags.DEFINE_integer(
    "encoder_dense_units", 64, "Units of the encoder's hidden dense layer.",
    lower_bound=1)
_DECODER_DENSE_UNITS = flags.DEFINE_integer(
    "decoder_dense_units", 0, "Units of a hidden dense layer at the start of "
    "the decoder, before the dense layer to its first feature map (0, the "
    "reference: none).", lower_bound=0)
_DECODER_BASE_CHANNELS = flags.DEFINE_integer(
    "decoder_base_channels", 128, "Channels of the decoder's first feature "
    "map (a quarter of the image's height and width).", lower_bound=1)
_DECODER_FILTERS = flag_types.DEFINE_int_list(
    "decoder_filters", [64, 32], "Channels of the decoder's two hidden "
    "convolutions.")
_DECODER_KERNEL_SIZES = flag_types.DEFINE_int_list(
    "decoder_kernel_sizes", [5, 3, 5], "Kernel sizes of the decoder's three "
    "convolutions.")
_DISCRIMINATOR_FILTERS = flag_types.DEFINE_int_list(
    "discriminator_filters", [128, 64], "Channels of the discriminator's two "
    "convolutions before its similarity layer.")
_DISCRIMINATOR_KERNEL_SIZES = flag_types.DEFINE_int_list(
    "discriminator_kernel_sizes", [7, 3, 3], "Kernel sizes of the "
    "discriminator's first convolution (stride 2), second convolution and "
    "similarity layer.")
_SIMILARITY_CHANNELS = flags.DEFINE_integer(
    "similarity_channels", 16, "Channels of the discriminator layer in whose "
    "features reconstructions are measured.", lower_bound=1)
_ACTIVATION = flags.DEFINE_enum(
    "activation", "leaky_relu", layers.ACTIVATION_NAMES,
    "Hidden-layer activation of all three networks.")
_DROPOUT_RATE = flags.DEFINE_float(
    "dropout_rate", 0.3, "Dropout after every hidden layer.", lower_bound=0.0,
    upper_bound=0.95)
_DROPOUT_IN_ENCODER_DECODER = flags.DEFINE_boolean(
    "dropout_in_encoder_decoder", True, "Dropout in the encoder and decoder "
    "too (the reference); false: in the discriminator only.")
_BATCH_NORM = flags.DEFINE_boolean(
    "batch_norm", False, "Batch normalisation after every hidden layer.")
_LOG_VARIANCE_CLIP = flags.DEFINE_float(
    "log_variance_clip", 0.0, "Clip the encoder's log-variance to [-c, c] "
    "(0: no clipping; reference 003 uses 2).", lower_bound=0.0)

# ------------------------------------------------------------ objective
_GAMMA = flags.DEFINE_float(
    "gamma", 1.0, "Weight of the feature reconstruction loss against the GAN "
    "loss in the decoder's objective.", lower_bound=0.0)
_PIXEL_WEIGHT = flags.DEFINE_float(
    "pixel_weight", 0.0, "Weight of a pixel reconstruction term (Bernoulli "
    "-log p(x|z)) in the encoder's and the decoder's losses; 0 (Larsen et "
    "al., reference 003): none.", lower_bound=0.0)
_GENERATOR_LOSS = flags.DEFINE_enum(
    "generator_loss", "minimax", vaegan_trainer.GENERATOR_LOSSES,
    "The decoder's adversarial term: minimax (-L_GAN, Larsen et al. and "
    "reference 003), non_saturating (-log D of its images) or "
    "feature_matching (the batch mean of its prior images' layer-l features "
    "matched to the real images', Salimans et al. 2016).")
_FEATURE_LOSS = flags.DEFINE_enum(
    "feature_loss", "gaussian", vaegan_trainer.FEATURE_LOSSES,
    "How a reconstruction's discriminator features are compared with the "
    "input's: gaussian (Larsen et al.) or sigmoid_cross_entropy (reference "
    "003).")
_GAN_WEIGHTS = flags.DEFINE_list(
    "gan_weights", ["1", "1", "2"], "Weights of real, reconstructed and "
    "prior-decoded images in the GAN loss (reference 003: 1,1,2); a prior "
    "weight of 0 leaves images decoded from prior draws out of the game, so "
    "neither the discriminator nor the decoder's adversarial term sees them.")
flags.register_validator(
    "gan_weights",
    lambda values: _parse_gan_weights(values) is not None,
    message="--gan_weights must be three non-negative numbers with a positive "
    "sum, for real, reconstructed and prior-decoded images, e.g. 1,1,2.")


def _parse_gan_weights(values):
    """The three weights as floats, or None if they are not valid."""
    try:
        weights = tuple(float(value) for value in values)
    except ValueError:
        return None
    if len(weights) != 3 or min(weights) < 0 or not sum(weights) > 0:
        return None
    return weights


_D_STEPS = flags.DEFINE_integer(
    "d_steps", 3, "At most this many discriminator updates per batch.",
    lower_bound=1)
_G_STEPS = flags.DEFINE_integer(
    "g_steps", 3, "At most this many encoder+decoder updates per batch.",
    lower_bound=1)
_D_THRESHOLD = flags.DEFINE_float(
    "d_threshold", 1.0, "Discriminator updates stop once the GAN loss (mean "
    "cross-entropy per image) falls below this.", lower_bound=0.0)
_G_THRESHOLD = flags.DEFINE_float(
    "g_threshold", 0.4, "Encoder+decoder updates stop once the GAN loss rises "
    "above this.", lower_bound=0.0)
_SCHEDULE = flags.DEFINE_enum(
    "schedule", "alternating", vaegan_trainer.SCHEDULES,
    "alternating (reference 003): balanced discriminator updates, then "
    "balanced encoder+decoder updates, each with its own forward pass; "
    "simultaneous: all three networks step from one forward pass per batch "
    "(needs --d_steps=1 --g_steps=1; the thresholds are not used).")

# ----------------------------------------------------------- optimisers
_OPTIMIZER = flags.DEFINE_enum(
    "optimizer", "rmsprop", optimizers_lib.OPTIMIZER_NAMES,
    "Optimiser of each of the three networks.")
_ENCODER_LEARNING_RATE = flag_types.DEFINE_learning_rate(
    1e-3, "Learning rate of the encoder.", name="encoder_learning_rate")
_DECODER_LEARNING_RATE = flag_types.DEFINE_learning_rate(
    3e-4, "Learning rate of the decoder.", name="decoder_learning_rate")
_DISCRIMINATOR_LEARNING_RATE = flag_types.DEFINE_learning_rate(
    1e-3, "Learning rate of the discriminator.",
    name="discriminator_learning_rate")


def config_from_flags() -> experiment.TrainProgramConfig:
    """Packs the parsed flags into a config; the only place that reads them."""
    model = vaegan.VaeGanConfig(
        image_shape=_TRAINING.image_shape(),
        latent_dim=_TRAINING.latent_dim.value,
        num_classes=_TRAINING.num_classes(),
        encoder_filters=tuple(_ENCODER_FILTERS.value),
        encoder_dense_units=_ENCODER_DENSE_UNITS.value,
        decoder_dense_units=_DECODER_DENSE_UNITS.value,
        decoder_base_channels=_DECODER_BASE_CHANNELS.value,
        decoder_filters=tuple(_DECODER_FILTERS.value),
        decoder_kernel_sizes=tuple(_DECODER_KERNEL_SIZES.value),
        discriminator_filters=tuple(_DISCRIMINATOR_FILTERS.value),
        discriminator_kernel_sizes=tuple(_DISCRIMINATOR_KERNEL_SIZES.value),
        similarity_channels=_SIMILARITY_CHANNELS.value,
        activation=_ACTIVATION.value, dropout_rate=_DROPOUT_RATE.value,
        dropout_in_encoder_decoder=_DROPOUT_IN_ENCODER_DECODER.value,
        batch_norm=_BATCH_NORM.value,
        log_variance_clip=_LOG_VARIANCE_CLIP.value)
    program = experiment.VaeGanProgram(
        objective=vaegan_trainer.VaeGanObjective(
            gamma=_GAMMA.value, pixel_weight=_PIXEL_WEIGHT.value,
            generator_loss=_GENERATOR_LOSS.value,
            feature_loss=_FEATURE_LOSS.value,
            gan_weights=_parse_gan_weights(_GAN_WEIGHTS.value),
            d_steps=_D_STEPS.value, g_steps=_G_STEPS.value,
            d_threshold=_D_THRESHOLD.value, g_threshold=_G_THRESHOLD.value,
            schedule=_SCHEDULE.value),
        optimizer=_OPTIMIZER.value,
        encoder_learning_rate=_ENCODER_LEARNING_RATE.value,
        decoder_learning_rate=_DECODER_LEARNING_RATE.value,
        discriminator_learning_rate=_DISCRIMINATOR_LEARNING_RATE.value)
    return _TRAINING.program_config(model, vaegan=program)


main = common_flags.train_main(config_from_flags)


def run_main():
    """Console-script entry point (`vae-train-vaegan`)."""
    app.run(main, flags_parser=errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
