"""The networks of a conditional VAE-GAN: an encoder, a decoder and a discriminator.

A VAE-GAN (Larsen et al., 2016, "Autoencoding beyond pixels using a learned similarity
metric", https://arxiv.org/abs/1512.09300) is a VAE whose decoder is also the generator
of a GAN. The discriminator both tells real images from decoded ones and supplies the
features of one of its hidden layers, `l`, in which a reconstruction is compared with
its input instead of pixel by pixel. The three networks, for images `[h, w, c]`:

* `Encoder`, `q(z|x, y)`: Conv2D(3x3, stride 2) -> MaxPool2D(2) -> Conv2D(3x3) ->
  flatten -> concat(one-hot label) -> Dense for each of `encoder_dense_units` (one of
  64 in the reference) -> Dense(2 * latent_dim), split into the mean and log-variance
  of a diagonal Gaussian.
* `Decoder`, `p(x|z, y)`: concat(z, label) -> Dense for each of `decoder_dense_units`
  (none in the reference) -> Dense(h/4 * w/4 * base channels) -> reshape ->
  UpSampling2D(2) -> Conv2D(5x5) -> Conv2D(3x3) -> UpSampling2D(2) -> Conv2D(5x5) to
  the image channels: per-pixel Bernoulli logits `[batch, h, w, c]`.
* `Discriminator`, `D(x, y)`: Conv2D(7x7, stride 2) -> MaxPool2D(2) -> label maps
  stacked onto the channels -> Conv2D(3x3) -> MaxPool2D(2) -> Conv2D(3x3) = the
  similarity layer `l` -> flatten -> Dense(1): a logit per image, and `l`'s features
  `[batch, h/8, w/8, similarity_channels]` (for h and w multiples of 8).

Every hidden layer is followed by [BatchNorm] -> activation -> Dropout, the order of the
reference (`dropout_in_encoder_decoder=False` keeps the dropout to the discriminator). The
kernel sizes above are the defaults of `decoder_kernel_sizes` and
`discriminator_kernel_sizes`. The networks are made of the blocks the VAE's are made of
(`vae.blocks`): the same encoder and decoder modules, label check, label vector and
label planes, and dense layers, with the VAE-GAN's layers in them. The architecture is
the one of reference 003 (a Keras CVAE+GAN on MNIST), with three deliberate differences:

1. The decoder returns logits, not `sigmoid(logits)`, so that the Bernoulli likelihood
   and the losses built on it are computed stably; `VaeGan.decode_mean` applies the
   sigmoid.
2. The similarity layer `l` lies on the discriminator's path to its output, as in
   Larsen et al. In the reference `l` is a side branch off the layer before it, which
   the discriminator's loss never trains, so the features the reconstruction is
   measured in would stay at their random initialisation.
3. `log_variance_clip` clips the log-variance once, in the encoder, so that the KL term
   and the samples use the same value. The reference clips the log-variance to
   [-2, 2] in its KL term but the log standard deviation (half of it) to [-2, 2] when
   sampling, so the two disagree whenever |log_variance| > 2.

Smaller ones: Keras' `LeakyReLU()` has slope 0.3 where `vae.layers`' "leaky_relu" has
0.2; the reference's batch norm has no scale (`scale=False`) where `vae.layers.BatchNorm`
learns one; and loc and log-variance come from one Dense(2 * latent_dim) rather than two
Dense(latent_dim) heads, the same function with the same number of parameters.

`VaeGan` offers the interface of `vae.models.VAE` (`prior`, `encode`, `decode`,
`decode_mean`, `sample`, `reconstruct`, `latent_dim`, `image_shape`, `num_classes`,
`is_conditional`, `config.likelihood`), so the evaluation, pictures and SavedModel export
code take it unchanged. It computes no losses; the VAE-GAN trainer in `trainers/` does.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import math
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from vae import blocks
from vae import config_dicts
from vae import layers
from vae import models

tfd = tfp.distributions

# The decoder upsamples twice by 2, so it starts from the image size divided by this.
DECODER_UPSAMPLING = 4


@dataclasses.dataclass(frozen=True)
class VaeGanConfig(config_dicts.ConfigRecord):
    """Everything needed to build a `VaeGan`; the defaults are reference 003's.

    Lists given for tuple fields are turned into tuples, so a config read from JSON or
    flags compares equal to one written in code. Call `validate()` to check the values
    (the `VaeGan` constructor does).

    Attributes:
        image_shape: `(height, width, channels)`; height and width multiples of 4.
        latent_dim: number of latent dimensions.
        num_classes: 0 for an unconditional model; K >= 2 for one whose three networks
            also read a one-hot label of K classes.
        encoder_filters: channels of the encoder's two convolutions.
        encoder_dense_units: sizes of the encoder's hidden dense layers, between the
            flattened features (and label) and Dense(2 * latent_dim); the reference
            has one of 64.
        decoder_dense_units: sizes of hidden dense layers between the latent code
            (and label) and the decoder's first feature map; none (the reference):
            the map is a linear function of z and the label.
        decoder_base_channels: channels of the decoder's first feature map, whose
            height and width are the image's divided by 4.
        decoder_filters: channels of the decoder's two hidden convolutions.
        decoder_kernel_sizes: kernel sizes of the decoder's three
            convolutions (the reference's 5, 3, 5).
        discriminator_filters: channels of the discriminator's two convolutions
            before the similarity layer.
        discriminator_kernel_sizes: kernel sizes of the discriminator's first
            convolution (stride 2), second convolution and similarity layer
            (the reference's 7, 3, 3).
        similarity_channels: channels of the similarity layer `l`.
        activation: hidden-layer activation, a name from `vae.layers.ACTIVATION_NAMES`.
        dropout_rate: dropout after every hidden layer, in [0, 1).
        dropout_in_encoder_decoder: False keeps dropout to the discriminator
            (the reference has it in all three networks; in the decoder it
            also perturbs every reconstruction the pixel term scores).
        batch_norm: batch normalisation after every hidden layer, before the activation.
        log_variance_clip: if positive, the encoder's log-variance is clipped to
            [-clip, clip]; 0 means no clipping (reference 003 uses 2).
        compute_dtype: "float32", or "bfloat16" for mixed precision (float32
            variables, bfloat16 arithmetic, float32 outputs).
    """

    image_shape: tuple[int, ...] = (28, 28, 1)
    latent_dim: int = 8
    num_classes: int = 10
    encoder_filters: tuple[int, ...] = (32, 64)
    encoder_dense_units: tuple[int, ...] = (64,)
    decoder_dense_units: tuple[int, ...] = ()
    decoder_base_channels: int = 128
    decoder_filters: tuple[int, ...] = (64, 32)
    decoder_kernel_sizes: tuple[int, ...] = (5, 3, 5)
    discriminator_filters: tuple[int, ...] = (128, 64)
    discriminator_kernel_sizes: tuple[int, ...] = (7, 3, 3)
    similarity_channels: int = 16
    activation: str = "leaky_relu"
    dropout_rate: float = 0.3
    dropout_in_encoder_decoder: bool = True
    batch_norm: bool = False
    log_variance_clip: float = 0.0
    compute_dtype: str = "float32"

    @property
    def likelihood(self) -> str:
        """Always "bernoulli": the decoder emits logits.

        A property, not a field, so it stays out of `to_dict()`; it is here because
        `vae.models.LatentVariableModel.decode` and the SavedModel export read it.
        """
        return "bernoulli"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VaeGanConfig:
        """Builds and validates a config from `to_dict()` output, such as a run record.

        Records written when `encoder_dense_units` and `decoder_dense_units` were one
        integer each, a layer's size (0: no decoder layer), read as the lists of sizes
        they are now, so that those runs still resume and load.

        Raises:
            ValueError: if `values` has a key that is not a field, or a bad value.
        """
        values = dict(values)
        for name in ("encoder_dense_units", "decoder_dense_units"):
            if config_dicts.is_int(values.get(name)):
                values[name] = (values[name],) if values[name] else ()
        return config_dicts.from_dict(cls, values)

    def validate(self) -> None:
        """Checks every field.

        Raises:
            ValueError: naming the first bad field, its value and what was expected.
        """
        if self.activation not in layers.ACTIVATION_NAMES:
            names = ", ".join(repr(name) for name in layers.ACTIVATION_NAMES)
            self._fail("activation", f"one of {names}")
        if self.compute_dtype not in layers.COMPUTE_DTYPES:
            names = ", ".join(repr(name) for name in layers.COMPUTE_DTYPES)
            self._fail("compute_dtype", f"one of {names}")
        self._require_num_classes()
        self._require_flag("batch_norm")
        self._require_flag("dropout_in_encoder_decoder")
        self._require_rate("dropout_rate")
        clip = self.log_variance_clip
        if not config_dicts.is_number(clip) or not math.isfinite(clip) or clip < 0:
            self._fail("log_variance_clip", "a finite number >= 0 (0: no clipping)")
        self._require_positive_ints(
            "latent_dim", "decoder_base_channels", "similarity_channels"
        )
        self._require_positive_int_tuples()
        for name in ("encoder_filters", "decoder_filters", "discriminator_filters"):
            if len(getattr(self, name)) != 2:
                self._fail(name, "exactly 2 channel counts, one per convolution")
        for name in ("decoder_kernel_sizes", "discriminator_kernel_sizes"):
            if len(getattr(self, name)) != 3:
                self._fail(name, "exactly 3 kernel sizes, one per convolution")
        if len(self.image_shape) != 3:
            self._fail("image_shape", "(height, width, channels)")
        height, width = self.image_shape[:2]
        if height % DECODER_UPSAMPLING or width % DECODER_UPSAMPLING:
            self._fail(
                "image_shape",
                f"(height, width, channels) with height and width multiples of "
                f"{DECODER_UPSAMPLING}, since the decoder upsamples twice by 2",
            )


def _after_layer(
    num_features: int, config: VaeGanConfig, name: str, dropout_rate: float
) -> list[Any]:
    """[BatchNorm] -> activation -> [Dropout], the block after every hidden layer."""
    return blocks.normalize_activate_drop(
        num_features,
        activation=config.activation,
        batch_norm=config.batch_norm,
        dropout_rate=dropout_rate,
        name=name,
    )


def _encoder_decoder_dropout(config: VaeGanConfig) -> float:
    return config.dropout_rate if config.dropout_in_encoder_decoder else 0.0


def _encoder_layers(config: VaeGanConfig) -> tuple[list[Any], int]:
    """The encoder's layers, and the index at which the label vector joins."""
    dropout_rate = _encoder_decoder_dropout(config)
    height, width, channels = config.image_shape
    first_filters, second_filters = config.encoder_filters
    stack = [
        layers.Conv2D(channels, first_filters, 3, 2, "SAME", name="conv_0"),
        *_after_layer(first_filters, config, "conv_0", dropout_rate),
        layers.MaxPool2D(2, "SAME", name="pool_0"),
        layers.Conv2D(first_filters, second_filters, 3, 1, "SAME", name="conv_1"),
        *_after_layer(second_filters, config, "conv_1", dropout_rate),
        layers.Flatten(name="flatten"),
    ]
    height, width = blocks.output_hw(stack, (height, width))
    # The label joins the flattened features, before the dense layers.
    label_index = len(stack)
    dense, size = blocks.dense_stack(
        height * width * second_filters + config.num_classes,
        config.encoder_dense_units,
        activation=config.activation,
        batch_norm=config.batch_norm,
        dropout_rate=dropout_rate,
        norm_before_activation=True,
    )
    stack += [
        *dense,
        layers.Dense(size, 2 * config.latent_dim, name="loc_and_log_variance"),
    ]
    return stack, label_index


def _decoder_layers(config: VaeGanConfig) -> list[Any]:
    """The decoder's layers, from `concat(z, label)` to per-pixel logits."""
    dropout_rate = _encoder_decoder_dropout(config)
    height, width, channels = config.image_shape
    base_shape = (
        height // DECODER_UPSAMPLING,
        width // DECODER_UPSAMPLING,
        config.decoder_base_channels,
    )
    first_filters, second_filters = config.decoder_filters
    first_kernel, second_kernel, output_kernel = config.decoder_kernel_sizes
    hidden_options = dict(
        activation=config.activation,
        batch_norm=config.batch_norm,
        dropout_rate=dropout_rate,
        norm_before_activation=True,
    )
    stack, size = blocks.dense_stack(
        config.latent_dim + config.num_classes,
        config.decoder_dense_units,
        **hidden_options,
    )
    return stack + [
        *blocks.dense_to_feature_map(size, base_shape, **hidden_options),
        layers.UpSampling2D(2, name="upsampling_0"),
        layers.Conv2D(
            base_shape[-1], first_filters, first_kernel, 1, "SAME", name="conv_0"
        ),
        *_after_layer(first_filters, config, "conv_0", dropout_rate),
        # The reference upsamples between this convolution and its activation.
        # Batch norm and the activation commute with nearest-neighbour
        # upsampling (every pixel is copied equally often, so batch statistics
        # do not change); dropout does not, so it stays after the upsampling.
        layers.Conv2D(
            first_filters, second_filters, second_kernel, 1, "SAME", name="conv_1"
        ),
        layers.UpSampling2D(2, name="upsampling_1"),
        *_after_layer(second_filters, config, "conv_1", dropout_rate),
        # No activation: logits, so that log-likelihoods are computed stably.
        layers.Conv2D(second_filters, channels, output_kernel, 1, "SAME", name="output"),
    ]


class Encoder(blocks.GaussianEncoder):
    """Maps images (and labels) to the mean and log-variance of q(z|x, y)."""

    def __init__(self, config: VaeGanConfig, name: str | None = "encoder"):
        """Builds every layer (and so every variable).

        Args:
            config: model configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `VaeGanConfig.validate`).
        """
        # The reference clips log-variance to [-2, 2] in its KL but log-stddev (half
        # of it) to [-2, 2] when sampling, which disagree beyond |2|; the encoder
        # clips once, so the KL term and the samples agree.
        super().__init__(
            config, _encoder_layers, log_variance_clip=config.log_variance_clip, name=name
        )


class Decoder(blocks.LatentDecoder):
    """Maps latent codes (and labels) to per-pixel Bernoulli logits."""

    def __init__(self, config: VaeGanConfig, name: str | None = "decoder"):
        """Builds every layer (and so every variable).

        Args:
            config: model configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `VaeGanConfig.validate`), including
                an image height or width that is not a multiple of 4.
        """
        super().__init__(config, _decoder_layers, name=name)


def _discriminator_layers(config: VaeGanConfig) -> tuple[list[Any], int]:
    """The discriminator's layers, and the index at which the label planes join."""
    channels = config.image_shape[-1]
    first_filters, second_filters = config.discriminator_filters
    first_kernel, second_kernel, similarity_kernel = config.discriminator_kernel_sizes
    dropout_rate = config.dropout_rate
    stack = [
        layers.Conv2D(channels, first_filters, first_kernel, 2, "SAME", name="conv_0"),
        layers.MaxPool2D(2, "SAME", name="pool_0"),
        *_after_layer(first_filters, config, "conv_0", dropout_rate),
    ]
    # The label enters here as constant planes, so every later layer sees it.
    label_index = len(stack)
    stack += [
        layers.Conv2D(
            first_filters + config.num_classes,
            second_filters,
            second_kernel,
            1,
            "SAME",
            name="conv_1",
        ),
        layers.MaxPool2D(2, "SAME", name="pool_1"),
        *_after_layer(second_filters, config, "conv_1", dropout_rate),
        layers.Conv2D(
            second_filters,
            config.similarity_channels,
            similarity_kernel,
            1,
            "SAME",
            name="similarity",
        ),
    ]
    # The features are similarity's pre-activation output. Unlike the reference,
    # whose output layer reads the layer before l (so l is a side branch its loss
    # never trains), l lies on the path to the output, as in Larsen et al., so the
    # discriminator learns the features reconstructions are measured in.
    height, width = blocks.output_hw(stack, config.image_shape[:2])
    stack += [
        *_after_layer(config.similarity_channels, config, "similarity", dropout_rate),
        layers.Flatten(name="flatten"),
        layers.Dense(height * width * config.similarity_channels, 1, name="output"),
    ]
    return stack, label_index


class Discriminator(blocks.LabelledStack):
    """Tells real images from decoded ones, and exposes the similarity features `l`."""

    def __init__(self, config: VaeGanConfig, name: str | None = "discriminator"):
        """Builds every layer (and so every variable).

        Args:
            config: model configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `VaeGanConfig.validate`).
        """
        super().__init__(config, _discriminator_layers, label_planes=True, name=name)
        names = [getattr(layer, "name", None) for layer in self.net.layers]
        # The features are the similarity layer's output: the layers up to it
        # make them, the layers after it score them.
        self._features_index = names.index("similarity") + 1
        self.features_shape = (
            *blocks.output_hw(
                self.net.layers[: self._features_index], self.image_shape[:2]
            ),
            config.similarity_channels,
        )

    @tf.Module.with_name_scope
    def __call__(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Scores a batch of images `[batch, height, width, channels]`, pixels in
        [0, 1], as `blocks.LabelledStack._apply` takes them.

        Returns:
            `(logits, features)`: float32 `[batch]`, the logit of "real", and float32
            `features_shape` per image, `[batch, ceil(height / 8), ceil(width / 8),
            similarity_channels]`, the similarity layer's pre-activation output.
        """
        features = self._apply(
            images, labels, is_training=is_training, seed=seed, stop=self._features_index
        )
        logits = self.net(
            features, is_training=is_training, seed=seed, start=self._features_index
        )
        return (
            tf.cast(tf.squeeze(logits, axis=-1), tf.float32),
            tf.cast(features, tf.float32),
        )


class VaeGan(models.LatentVariableModel):
    """A (conditional) VAE-GAN: a VAE's `encode`/`decode`/`sample`, and a critic.

    The three networks are sub-modules (`self.encoder`, `self.decoder`,
    `self.discriminator`), so each optimiser can take its own `trainable_variables`.
    Everything a VAE offers (`prior`, `encode`, `decode` as a Bernoulli over pixels,
    `decode_mean`, `sample`, `reconstruct`) comes from `vae.models.LatentVariableModel`;
    this class adds the discriminator. The model computes no losses.
    """

    def __init__(self, config: VaeGanConfig, name: str | None = None):
        """Builds the encoder, decoder and discriminator, with all their variables.

        Args:
            config: model configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `VaeGanConfig.validate`).
        """
        super().__init__(config, name=name)
        with self.name_scope:  # So variable names start with the model's name.
            self.encoder = Encoder(config)
            self.decoder = Decoder(config)
            self.discriminator = Discriminator(config)

    @tf.Module.with_name_scope
    def encoder_outputs(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns the encoder's `(loc, log_variance)`, each `[batch, latent_dim]`.

        The log-variance is clipped as `config.log_variance_clip` says; a trainer that
        writes the KL term in closed form uses these rather than `encode`.

        Args:
            images: float32 `[batch, *image_shape]`.
            labels: one-hot float32 `[batch, num_classes]` for a conditional model;
                None otherwise.
            is_training: passed to the encoder network.
            seed: optional stateless seed `[2]` for dropout in training.
        """
        return self.encoder(images, labels, is_training=is_training, seed=seed)

    @tf.Module.with_name_scope
    def discriminate(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns the discriminator's `(logits [batch], features)`.

        Args:
            images: float32 `[batch, *image_shape]`, real or decoded pixel values.
            labels: one-hot float32 `[batch, num_classes]` for a conditional model;
                None otherwise.
            is_training: passed to the discriminator network.
            seed: optional stateless seed `[2]` for dropout in training.

        Returns:
            float32 logits `[batch]` of "real", and the similarity features
            `[batch, *discriminator.features_shape]`.
        """
        return self.discriminator(images, labels, is_training=is_training, seed=seed)
