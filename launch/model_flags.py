"""The model flags of the training program, per model config class.

The model flags of `vae-train` depend on the trainer's model config class
(`trainers.registry`): the VAE's (`vae.models.ModelConfig`) and the
VAE-GAN's (`vae.vaegan.VaeGanConfig`) have hand-written flags with their own
help and checks, defined here once the trainer is known; a plug-in's own
model config class gets those of the class it extends, and a flag of the
same name for each field they do not cover (`launch.config_flags`). The
latent size, the conditioning and the image shape are shared flags
(`launch.common_flags`). A flag that both model configs have means the same
in both (a list of layer sizes, a list of channels, ...); only its default
may differ, and the dense-layer flags are written once for both.
"""

from collections.abc import Callable
import dataclasses
from typing import Any

from absl import flags

from launch import config_flags
from launch import flag_types
from vae import layers
from vae import models
from vae import vaegan

# Fields every model config has, set from the shared flags and the data.
SHARED_FIELDS = ("image_shape", "latent_dim", "num_classes", "compute_dtype")


def _define_dense_units(encoder_default: list[int], scope: str) -> None:
    """--encoder_dense_units and --decoder_dense_units, written once so that
    they mean the same, lists of layer sizes, whichever model reads them."""
    flag_types.DEFINE_int_list(
        "encoder_dense_units",
        encoder_default,
        f"{scope}Sizes of the encoder's hidden dense layers, after its "
        "convolutions are flattened (and the label joined); empty: none.",
    )
    flag_types.DEFINE_int_list(
        "decoder_dense_units",
        [],
        f"{scope}Sizes of the decoder's hidden dense layers, between the "
        "latent code (and label) and the dense layer to its first feature "
        "map; empty: none.",
    )


def _define_vae_flags() -> None:
    flags.DEFINE_enum(
        "architecture",
        "conv",
        models.ARCHITECTURES,
        "Network family of encoder and decoder.",
    )
    flags.DEFINE_enum(
        "conditioning",
        "concat",
        models.CONDITIONINGS,
        "How a conv encoder reads the label: concat (joined to the flattened "
        "features) or label_maps (constant planes stacked onto the image "
        "channels). MLP encoders always concatenate.",
    )
    flags.DEFINE_boolean(
        "hidden_batch_norm", False, "Batch normalisation after every hidden dense layer."
    )
    flags.DEFINE_float(
        "hidden_dropout_rate",
        0.0,
        "Dropout after every hidden dense layer.",
        lower_bound=0.0,
        upper_bound=0.95,
    )
    flags.DEFINE_enum(
        "decoder_activation",
        None,
        layers.ACTIVATION_NAMES,
        "Activation of the decoder's hidden layers; unset: --activation.",
    )
    flags.DEFINE_enum(
        "likelihood",
        "bernoulli",
        models.LIKELIHOODS,
        "Decoder distribution p(x|z): bernoulli (logits; for binary data), "
        "gaussian (means with a learned per-channel scale) or "
        "continuous_bernoulli (logits; a density on [0, 1], for gray or "
        "colour intensities).",
    )
    flags.DEFINE_enum(
        "activation", "relu", layers.ACTIVATION_NAMES, "Hidden-layer activation."
    )
    flag_types.DEFINE_int_list(
        "hidden_units",
        [64],
        "mlp: hidden layer sizes of the encoder (the decoder mirrors them).",
    )
    flag_types.DEFINE_int_list(
        "encoder_filters", [32, 64], "conv: channels of each encoder convolution."
    )
    flag_types.DEFINE_int_list(
        "encoder_strides", [2, 2], "conv: stride of each encoder convolution."
    )
    flags.DEFINE_integer(
        "encoder_kernel_size", 3, "conv: encoder kernel size.", lower_bound=1
    )
    flags.DEFINE_enum(
        "encoder_padding",
        "VALID",
        ("VALID", "SAME"),
        "conv: padding of the encoder convolutions.",
    )
    _define_dense_units([], "conv: ")
    flags.DEFINE_integer(
        "decoder_base_channels",
        32,
        "conv: channels of the decoder's first "
        "feature map (its size is the image size / product of "
        "decoder_strides).",
        lower_bound=1,
    )
    flag_types.DEFINE_int_list(
        "decoder_filters",
        [64, 32],
        "conv: channels of each upsampling transposed convolution.",
    )
    flag_types.DEFINE_int_list(
        "decoder_strides", [2, 2], "conv: stride of each transposed convolution."
    )
    flags.DEFINE_integer(
        "decoder_kernel_size", 3, "conv: decoder kernel size.", lower_bound=1
    )
    flags.DEFINE_enum(
        "decoder_output",
        "conv_transpose",
        models.DECODER_OUTPUTS,
        "conv: the last decoder layer (stride 1, to the image's channels).",
    )

    def list_length_validator(filters_flag, strides_flag):
        flags.register_multi_flags_validator(
            [filters_flag, strides_flag],
            lambda values: len(values[filters_flag]) == len(values[strides_flag]),
            message=f"--{strides_flag} needs one stride per entry of --{filters_flag}.",
        )

    list_length_validator("encoder_filters", "encoder_strides")
    list_length_validator("decoder_filters", "decoder_strides")


def _define_vaegan_flags() -> None:
    flag_types.DEFINE_int_list(
        "encoder_filters", [32, 64], "Channels of the encoder's two convolutions."
    )
    _define_dense_units([64], "")
    flags.DEFINE_integer(
        "decoder_base_channels",
        128,
        "Channels of the decoder's first feature "
        "map (a quarter of the image's height and width).",
        lower_bound=1,
    )
    flag_types.DEFINE_int_list(
        "decoder_filters", [64, 32], "Channels of the decoder's two hidden convolutions."
    )
    flag_types.DEFINE_int_list(
        "decoder_kernel_sizes",
        [5, 3, 5],
        "Kernel sizes of the decoder's three convolutions.",
    )
    flag_types.DEFINE_int_list(
        "discriminator_filters",
        [128, 64],
        "Channels of the discriminator's two convolutions before its similarity layer.",
    )
    flag_types.DEFINE_int_list(
        "discriminator_kernel_sizes",
        [7, 3, 3],
        "Kernel sizes of the "
        "discriminator's first convolution (stride 2), second convolution and "
        "similarity layer.",
    )
    flags.DEFINE_integer(
        "similarity_channels",
        16,
        "Channels of the discriminator layer in whose "
        "features reconstructions are measured.",
        lower_bound=1,
    )
    flags.DEFINE_enum(
        "activation",
        "leaky_relu",
        layers.ACTIVATION_NAMES,
        "Hidden-layer activation of all three networks.",
    )
    flags.DEFINE_float(
        "dropout_rate",
        0.3,
        "Dropout after every hidden layer.",
        lower_bound=0.0,
        upper_bound=0.95,
    )
    flags.DEFINE_boolean(
        "dropout_in_encoder_decoder",
        True,
        "Dropout in the encoder and decoder "
        "too (the reference); false: in the discriminator only.",
    )
    flags.DEFINE_boolean(
        "batch_norm", False, "Batch normalisation after every hidden layer."
    )
    flags.DEFINE_float(
        "log_variance_clip",
        0.0,
        "Clip the encoder's log-variance to [-c, c] "
        "(0: no clipping; reference 003 uses 2).",
        lower_bound=0.0,
    )


# Config class -> the function defining its hand-written flags.
_HAND_WRITTEN: dict[type, Callable[[], None]] = {
    models.ModelConfig: _define_vae_flags,
    vaegan.VaeGanConfig: _define_vaegan_flags,
}


def define(config_class: type) -> Callable[..., Any]:
    """Defines the model flags of `config_class`.

    Returns:
      `read(**shared) -> config_class`: the config from the parsed flags and
      `shared`, the values of `SHARED_FIELDS` (from the shared flags).
    """
    before = set(flags.FLAGS)
    for known_class in config_class.__mro__:
        if known_class in _HAND_WRITTEN:
            _HAND_WRITTEN[known_class]()
            break
    field_names = {field.name for field in dataclasses.fields(config_class)}
    hand_written = tuple(
        name for name in set(flags.FLAGS) - before if name in field_names
    )
    generated = config_flags.define_fields(
        config_class, skip=(*SHARED_FIELDS, *hand_written)
    )

    def read(**shared: Any) -> Any:
        values = config_flags.read_fields((*hand_written, *generated))
        if "decoder_activation" in hand_written:
            # Unset means "as --activation", which the config writes as "".
            values["decoder_activation"] = values["decoder_activation"] or ""
        return config_class(**values, **shared)

    return read
