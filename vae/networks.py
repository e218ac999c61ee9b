"""Encoder and decoder networks of the VAE and the CVAE, built from a `ModelConfig`.

The encoder maps images `[batch, *image_shape]` to the parameters of a diagonal Gaussian
`q(z|x)`, `(loc, log_variance)`, each `[batch, latent_dim]`. The decoder maps latent codes
`[batch, latent_dim]` to per-pixel parameters `[batch, *image_shape]`: Bernoulli logits or
Gaussian means, depending on `config.likelihood`. Turning these numbers into
distributions is `vae.models.VAE`'s job.

Two families:

* "mlp": flatten -> Dense(h, activation) for h in hidden_units -> Dense(2 * latent_dim);
  the decoder mirrors it, Dense(h, activation) for h in reversed(hidden_units) ->
  Dense(prod(image_shape)) -> reshape. Works for any `image_shape`, including the
  2-D points `(2,)` of the toy data.
* "conv": Conv2D(f, kernel, stride s, padding, activation) for each (f, s) ->
  flatten -> Dense(u, activation) for u in encoder_dense_units -> Dense(2 * latent_dim).
  The decoder starts with Dense(u, activation) for u in decoder_dense_units ->
  Dense(h0 * w0 * decoder_base_channels, activation) -> reshape to
  `[h0, w0, decoder_base_channels]`, where `(h0, w0)` is the image size divided by the
  product of `decoder_strides` -> Conv2DTranspose(f, kernel, stride s, SAME, activation)
  for each (f, s) -> a last stride-1 SAME layer to the image channels with no
  activation, a Conv2DTranspose or a Conv2D as `decoder_output` says.

Conditioning. With `config.num_classes > 0` the networks also take a one-hot label
`[batch, num_classes]` (a conditional VAE, Sohn et al., 2015): the decoder reads
`concat(z, label)`; the encoder reads the label concatenated to the flattened image
(mlp, and conv with `conditioning="concat"`, where it joins after the convolutions) or,
with `conditioning="label_maps"` (conv only), as `num_classes` constant image planes
stacked onto the input channels, so every convolution sees it (as the VAE-GAN of
reference 003 does). An unconditional model is the same code with no label, and its
variables are exactly those of a model built before conditioning existed, so old
checkpoints still load.

Hidden dense layers are blocks: Dense(h, activation), then BatchNorm when
`hidden_batch_norm`, then Dropout(`hidden_dropout_rate`) when it is positive (the order
of reference 000's MLP CVAE). The decoder's activation is `decoder_activation` when
set (000 uses LeakyReLU there), else `activation`.

The networks are `vae.blocks`' encoder and decoder modules (which the VAE-GAN's are too)
holding the layers above; the encoder emits loc and log-variance from one
Dense(2 * latent_dim) layer, which `vae.blocks.GaussianEncoder` splits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import tensorflow as tf

from vae import blocks
from vae import layers

if TYPE_CHECKING:  # Only for annotations: vae.models imports this module.
    from vae.models import ModelConfig


def _dense_layers(
    input_size: int, units: tuple[int, ...], activation: str, config: ModelConfig
) -> tuple[list[tf.Module], int]:
    """Dense(h, activation) -> [BatchNorm] -> [Dropout] for each h, as the config asks."""
    return blocks.dense_stack(
        input_size,
        units,
        activation=activation,
        batch_norm=config.hidden_batch_norm,
        dropout_rate=config.hidden_dropout_rate,
        norm_before_activation=False,
    )


def _encoder_layers(config: ModelConfig) -> tuple[list[tf.Module], int]:
    """Builds the encoder trunk, ending with Dense(2 * latent_dim).

    Returns:
        The layers, and the index of the layer before which a label joins (0 when it
        enters as image planes).
    """
    stack: list[tf.Module] = []
    label_size = config.num_classes
    if config.architecture == "mlp":
        stack.append(layers.Flatten(name="flatten"))
        label_index = len(stack)
        dense, size = _dense_layers(
            math.prod(config.image_shape) + label_size,
            config.hidden_units,
            config.activation,
            config,
        )
        stack += dense
    else:
        height, width, channels = config.image_shape
        label_maps = config.conditioning == "label_maps"
        if label_maps:
            channels += label_size
        for index, (filters, stride) in enumerate(
            zip(config.encoder_filters, config.encoder_strides)
        ):
            stack.append(
                layers.Conv2D(
                    channels,
                    filters,
                    config.encoder_kernel_size,
                    stride,
                    config.encoder_padding,
                    config.activation,
                    name=f"conv_{index}",
                )
            )
            channels = filters
        height, width = blocks.output_hw(stack, (height, width))
        stack.append(layers.Flatten(name="flatten"))
        label_index = 0 if label_maps else len(stack)
        dense, size = _dense_layers(
            height * width * channels + (0 if label_maps else label_size),
            config.encoder_dense_units,
            config.activation,
            config,
        )
        stack += dense
    stack.append(layers.Dense(size, 2 * config.latent_dim, name="loc_and_log_variance"))
    return stack, label_index


def decoder_base_shape(config: ModelConfig) -> tuple[int, int, int]:
    """Shape `(h0, w0, decoder_base_channels)` that the conv decoder starts from.

    Args:
        config: a "conv" model configuration with a 3-D `image_shape`.

    Returns:
        `(height // prod(decoder_strides), width // prod(decoder_strides),
        decoder_base_channels)`.

    Raises:
        ValueError: if the image height or width is not divisible by the product of
            `decoder_strides`, since the transposed convolutions could then not end at
            the image size.
    """
    height, width = config.image_shape[0], config.image_shape[1]
    upsampling = math.prod(config.decoder_strides)
    if height % upsampling or width % upsampling:
        raise ValueError(
            f"The conv decoder upsamples by the product of decoder_strides "
            f"{tuple(config.decoder_strides)} = {upsampling}, so the image height and width "
            f"must both be divisible by {upsampling}; image_shape "
            f"{tuple(config.image_shape)} is not. Change decoder_strides or image_shape."
        )
    return height // upsampling, width // upsampling, config.decoder_base_channels


def _decoder_layers(config: ModelConfig) -> list[tf.Module]:
    """Builds the decoder, ending with a layer that emits `[batch, *image_shape]`.

    Its input is z, or `concat(z, label)` for a conditional model.
    """
    size = config.latent_dim + config.num_classes
    activation = config.decoder_activation or config.activation
    if config.architecture == "mlp":
        stack, size = _dense_layers(
            size, tuple(reversed(config.hidden_units)), activation, config
        )
        stack.append(layers.Dense(size, math.prod(config.image_shape), name="output"))
        stack.append(layers.Reshape(config.image_shape, name="reshape"))
        return stack

    base_shape = decoder_base_shape(config)
    channels = base_shape[-1]
    stack, size = _dense_layers(size, config.decoder_dense_units, activation, config)
    # Unlike the hidden dense layers, this one has no batch norm or dropout.
    stack += blocks.dense_to_feature_map(
        size,
        base_shape,
        activation=activation,
        batch_norm=False,
        dropout_rate=0.0,
        norm_before_activation=False,
    )
    for index, (filters, stride) in enumerate(
        zip(config.decoder_filters, config.decoder_strides)
    ):
        stack.append(
            layers.Conv2DTranspose(
                channels,
                filters,
                config.decoder_kernel_size,
                stride,
                "SAME",
                activation,
                name=f"conv_transpose_{index}",
            )
        )
        channels = filters
    output_layer = (
        layers.Conv2DTranspose
        if config.decoder_output == "conv_transpose"
        else layers.Conv2D
    )
    stack.append(
        output_layer(
            channels,
            config.image_shape[-1],
            config.decoder_kernel_size,
            1,
            "SAME",
            None,
            name="output",
        )
    )
    return stack


class Encoder(blocks.GaussianEncoder):
    """Maps images to the mean and log-variance of a diagonal Gaussian over the latents."""

    def __init__(self, config: ModelConfig, name: str | None = "encoder"):
        """Builds every layer (and so every variable).

        Args:
            config: model configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `ModelConfig.validate`).
        """
        super().__init__(
            config,
            _encoder_layers,
            label_planes=config.conditioning == "label_maps",
            name=name,
        )


class Decoder(blocks.LatentDecoder):
    """Maps latent codes to per-pixel logits (Bernoulli) or means (Gaussian).

    With the Gaussian likelihood the decoder also owns `log_scale`, a trainable
    per-channel log standard deviation `[image_shape[-1]]` that starts at 0 (scale 1),
    so the decoder's optimiser trains it with the rest of the decoder; for the Bernoulli
    likelihood `log_scale` is None.
    """

    def __init__(self, config: ModelConfig, name: str | None = "decoder"):
        """Builds every layer (and so every variable).

        Args:
            config: model configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `ModelConfig.validate`), including a
                conv image size not divisible by the product of `decoder_strides`.
        """
        super().__init__(config, _decoder_layers, name=name)
        with self.name_scope:  # So the variable's name reads "decoder/log_scale".
            self.log_scale = (
                tf.Variable(tf.zeros([self.image_shape[-1]]), name="log_scale")
                if config.likelihood == "gaussian"
                else None
            )


def build_encoder(config: ModelConfig) -> Encoder:
    """Returns the encoder `images [batch, *image_shape] -> (loc, log_variance)`.

    Args:
        config: model configuration.

    Raises:
        ValueError: if `config` is invalid (see `ModelConfig.validate`).
    """
    return Encoder(config)


def build_decoder(config: ModelConfig) -> Decoder:
    """Returns the decoder `z [batch, latent_dim] -> [batch, *image_shape]`.

    Args:
        config: model configuration.

    Raises:
        ValueError: if `config` is invalid (see `ModelConfig.validate`), including a conv
            image size not divisible by the product of `decoder_strides`.
    """
    return Decoder(config)
