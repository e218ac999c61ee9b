"""The variational autoencoder: a model configuration and a `tf.Module` of distributions.

Following the TFP examples, the model is written in terms of distributions:

* the prior `p(z) = N(0, I)` over `latent_dim` dimensions (`VAE.prior`);
* the encoder `q(z|x) = N(loc(x), diag(exp(log_variance(x))))` (`VAE.encode`);
* the decoder `p(x|z)`, independent over every pixel and channel (`VAE.decode`):
  Bernoulli with logits from the decoder network, Normal with means from the decoder
  network and a learned per-channel scale, or continuous Bernoulli with logits from
  the decoder network.

Which likelihood fits which data: the Bernoulli is a distribution over {0, 1}, so it
is the likelihood of binarized images; used on gray levels (as many tutorials do) its
log-probability is a cross-entropy, not the log-density of the data, and the ELBO is
then no bound on a likelihood of them. For gray or colour intensities in [0, 1] the
continuous Bernoulli (Loaiza-Ganem and Cunningham, 2019, "The continuous Bernoulli:
fixing a pervasive error in variational autoencoders") is the Bernoulli's shape made
a normalised density on [0, 1], `C(lambda) lambda^x (1 - lambda)^(1 - x)`; the
Gaussian is the other usual choice. Its mean is not `lambda = sigmoid(logits)` but
`lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda))`, which is what pictures and
reconstructions show.

The evidence lower bound a trainer maximises is then

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))
            = -(distortion + rate),

estimated with a reparameterised draw `z = loc + scale * eps`, `eps ~ N(0, I)`, so that
gradients reach the encoder through the sample (Kingma and Welling, 2014, "Auto-Encoding
Variational Bayes"; Alemi et al., 2018, "Fixing a Broken ELBO", for rate and distortion).
This module only defines the distributions; losses live in `trainers/`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from vae import config_dicts
from vae import layers
from vae import networks

tfd = tfp.distributions

ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
DECODER_OUTPUTS = ("conv_transpose", "conv")
CONDITIONINGS = ("concat", "label_maps")


@dataclasses.dataclass(frozen=True)
class ModelConfig(config_dicts.ConfigRecord):
    """Everything needed to build a `VAE`; see `vae.networks` for how it is read.

    The defaults describe the convolutional VAE of the TensorFlow tutorial on 28x28x1
    images with a 2-D latent space. Lists given for tuple fields are turned into tuples,
    so a config read from JSON or flags compares equal to one written in code. Call
    `validate()` to check the values (the `VAE` constructor does).

    Attributes:
        architecture: "mlp" or "conv".
        image_shape: shape of one example: `(height, width, channels)` for "conv", any
            shape for "mlp" (for example `(2,)` for 2-D points).
        latent_dim: number of latent dimensions.
        likelihood: "bernoulli" (decoder emits logits; for binary data), "gaussian"
            (decoder emits means, with a learned per-channel scale) or
            "continuous_bernoulli" (decoder emits logits; a density on [0, 1], for
            gray or colour intensities).
        activation: hidden-layer activation, a name from `vae.layers.ACTIVATION_NAMES`.
        hidden_units: "mlp" only: hidden layer sizes of the encoder (reversed in the
            decoder).
        encoder_filters: "conv" only: channels of each encoder convolution.
        encoder_strides: "conv" only: stride of each encoder convolution.
        encoder_kernel_size: "conv" only: kernel size of the encoder convolutions.
        encoder_padding: "conv" only: "SAME" or "VALID" for the encoder convolutions.
        encoder_dense_units: "conv" only: dense layers after flattening, before the
            final Dense(2 * latent_dim).
        decoder_dense_units: "conv" only: dense layers before the one that produces the
            base feature map.
        decoder_base_channels: "conv" only: channels of the base feature map, whose
            height and width are the image's divided by the product of decoder_strides.
        decoder_filters: "conv" only: channels of each upsampling transposed convolution.
        decoder_strides: "conv" only: stride of each upsampling transposed convolution.
        decoder_kernel_size: "conv" only: kernel size of every decoder convolution.
        decoder_output: "conv" only: the last layer, "conv_transpose" or "conv".
        num_classes: 0 for an unconditional VAE; K > 0 for a conditional VAE whose
            encoder and decoder also read a one-hot label of K classes.
        conditioning: how a conv encoder reads the label: "concat" (joined to the
            flattened features after the convolutions) or "label_maps" (K constant
            planes stacked onto the image channels). MLP encoders always concatenate.
        hidden_batch_norm: batch normalisation after every hidden dense layer.
        hidden_dropout_rate: dropout after every hidden dense layer, in [0, 1).
        decoder_activation: activation of the decoder's hidden layers; "" means
            `activation`.
        compute_dtype: "float32", or "bfloat16" for mixed precision: the networks
            compute in bfloat16 with float32 variables, and return float32 (for
            GPUs and TPUs with bfloat16 units; slower on CPUs without them).
    """

    architecture: str = "conv"
    image_shape: tuple[int, ...] = (28, 28, 1)
    latent_dim: int = 2
    likelihood: str = "bernoulli"
    activation: str = "relu"
    hidden_units: tuple[int, ...] = (64,)
    encoder_filters: tuple[int, ...] = (32, 64)
    encoder_strides: tuple[int, ...] = (2, 2)
    encoder_kernel_size: int = 3
    encoder_padding: str = "VALID"
    encoder_dense_units: tuple[int, ...] = ()
    decoder_dense_units: tuple[int, ...] = ()
    decoder_base_channels: int = 32
    decoder_filters: tuple[int, ...] = (64, 32)
    decoder_strides: tuple[int, ...] = (2, 2)
    decoder_kernel_size: int = 3
    decoder_output: str = "conv_transpose"
    num_classes: int = 0
    conditioning: str = "concat"
    hidden_batch_norm: bool = False
    hidden_dropout_rate: float = 0.0
    decoder_activation: str = ""
    compute_dtype: str = "float32"

    def validate(self) -> None:
        """Checks every field.

        Raises:
            ValueError: naming the first bad field, its value and what was expected.
        """
        self._check_choice("architecture", ARCHITECTURES)
        self._check_choice("likelihood", LIKELIHOODS)
        self._check_choice("activation", layers.ACTIVATION_NAMES)
        self._check_choice("encoder_padding", layers.PADDINGS)
        self._check_choice("decoder_output", DECODER_OUTPUTS)
        self._check_choice("conditioning", CONDITIONINGS)
        self._check_choice("compute_dtype", layers.COMPUTE_DTYPES)
        if self.decoder_activation:
            self._check_choice("decoder_activation", layers.ACTIVATION_NAMES)
        self._require_num_classes()
        self._require_flag("hidden_batch_norm")
        self._require_rate("hidden_dropout_rate")
        self._require_positive_ints("latent_dim", "encoder_kernel_size",
                                    "decoder_kernel_size", "decoder_base_channels")
        self._require_positive_int_tuples()
        if not self.image_shape:
            self._fail("image_shape", "a non-empty tuple of positive integers")
        if self.architecture == "conv":
            self._validate_conv()

    def _validate_conv(self) -> None:
        if len(self.image_shape) != 3:
            self._fail("image_shape", "(height, width, channels) for architecture 'conv'")
        if len(self.encoder_strides) != len(self.encoder_filters):
            self._fail("encoder_strides",
                       f"one stride per encoder filter ({len(self.encoder_filters)} values, "
                       f"as in encoder_filters={self.encoder_filters})")
        if len(self.decoder_strides) != len(self.decoder_filters):
            self._fail("decoder_strides",
                       f"one stride per decoder filter ({len(self.decoder_filters)} values, "
                       f"as in decoder_filters={self.decoder_filters})")
        height, width = self.image_shape[:2]
        for stride in self.encoder_strides:
            height = layers.conv_output_size(height, self.encoder_kernel_size, stride,
                                             self.encoder_padding)
            width = layers.conv_output_size(width, self.encoder_kernel_size, stride,
                                            self.encoder_padding)
            if height < 1 or width < 1:
                raise ValueError(
                    f"ModelConfig: the encoder convolutions (encoder_filters="
                    f"{self.encoder_filters}, encoder_strides={self.encoder_strides}, "
                    f"encoder_kernel_size={self.encoder_kernel_size}, encoder_padding="
                    f"{self.encoder_padding!r}) shrink image_shape={self.image_shape} to "
                    "nothing; expected every feature map to keep at least 1x1 pixels. "
                    "Use fewer or smaller strides, a smaller kernel or SAME padding.")
        networks.decoder_base_shape(self)  # Raises if the decoder cannot reach the size.

    def _check_choice(self, name: str, choices: Sequence[str]) -> None:
        if getattr(self, name) not in choices:
            self._fail(name, "one of " + ", ".join(repr(choice) for choice in choices))


class LatentVariableModel(tf.Module):
    """What every model with a Gaussian code shares: prior, q(z|x), p(x|z), sampling.

    A subclass builds, in its constructor, `self.config` (with `latent_dim`,
    `image_shape`, `num_classes` and `likelihood`), `self.latent_dim`,
    `self.image_shape`, and two sub-modules: `self.encoder`, mapping
    `(images, labels)` to `(loc, log_variance)`, and `self.decoder`, mapping
    `(z, labels)` to Bernoulli logits or Gaussian means (with a `log_scale`
    variable for the Gaussian). The VAE and the VAE-GAN are such models, so the
    evaluation, the pictures and the SavedModel export take either.
    """

    def __init__(self, config, name: str | None = None):
        """Validates `config` and keeps it; a subclass then builds its networks.

        Args:
            config: a model config with `validate()`, `latent_dim` and `image_shape`.
            name: module name.

        Raises:
            ValueError: if `config` is invalid.
        """
        super().__init__(name=name)
        config.validate()
        self.config = config
        self.latent_dim = config.latent_dim
        self.image_shape = tuple(config.image_shape)

    @property
    def num_classes(self) -> int:
        """Classes the model is conditioned on; 0 for an unconditional VAE."""
        return self.config.num_classes

    @property
    def is_conditional(self) -> bool:
        return self.config.num_classes > 0

    @tf.Module.with_name_scope
    def prior(self) -> tfd.Distribution:
        """Returns p(z), a standard normal with event shape `[latent_dim]`.

        The prior does not depend on the label: a conditional VAE models p(x|y)
        as the integral of p(x|z, y) p(z) over z.
        """
        return tfd.MultivariateNormalDiag(
            loc=tf.zeros([self.latent_dim]), scale_diag=tf.ones([self.latent_dim]))

    @tf.Module.with_name_scope
    def encode(self, images: tf.Tensor, labels: tf.Tensor | None = None, *,
               is_training: bool = False,
               seed: tf.Tensor | None = None) -> tfd.MultivariateNormalDiag:
        """Returns q(z|x), or q(z|x, y) for a conditional model.

        Args:
            images: float32 `[batch, *image_shape]`.
            labels: one-hot float32 `[batch, num_classes]` for a conditional model;
                None otherwise.
            is_training: passed to the encoder network.
            seed: optional stateless seed `[2]` for dropout in training.

        Returns:
            A diagonal Gaussian with batch shape `[batch]` and event shape `[latent_dim]`;
            its samples are reparameterised, so gradients flow through them.

        Raises:
            ValueError: labels missing for a conditional model, given to an
                unconditional one, or of the wrong shape.
        """
        loc, log_variance = self.encoder(images, labels, is_training=is_training,
                                         seed=seed)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.exp(0.5 * log_variance))

    @tf.Module.with_name_scope
    def decode(self, z: tf.Tensor, labels: tf.Tensor | None = None, *,
               is_training: bool = False, seed: tf.Tensor | None = None) -> tfd.Distribution:
        """Returns p(x|z) (or p(x|z, y)), independent over the image dimensions.

        Args:
            z: float32 `[batch, latent_dim]`.
            labels: one-hot float32 `[batch, num_classes]` for a conditional model;
                None otherwise.
            is_training: passed to the decoder network.
            seed: optional stateless seed `[2]` for dropout in training.

        Returns:
            A distribution with batch shape `[batch]` and event shape `image_shape`:
            Bernoulli from the decoder's logits (float32 samples), Normal with the
            decoder's outputs as means and `exp(decoder.log_scale)` as per-channel
            scale, or continuous Bernoulli from the decoder's logits.
        """
        outputs = self.decoder(z, labels, is_training=is_training, seed=seed)
        return self._pixel_distribution(outputs)

    def _pixel_distribution(self, outputs: tf.Tensor) -> tfd.Distribution:
        """p(x|z) from the decoder's outputs `[batch, *image_shape]`."""
        if self.config.likelihood == "bernoulli":
            pixels = tfd.Bernoulli(logits=outputs, dtype=tf.float32)
        elif self.config.likelihood == "continuous_bernoulli":
            pixels = tfd.ContinuousBernoulli(logits=outputs)
        else:
            pixels = tfd.Normal(loc=outputs, scale=tf.exp(self.decoder.log_scale))
        return tfd.Independent(pixels, reinterpreted_batch_ndims=len(self.image_shape))

    @tf.Module.with_name_scope
    def decode_mean(self, z: tf.Tensor, labels: tf.Tensor | None = None, *,
                    is_training: bool = False) -> tf.Tensor:
        """Returns the mean of p(x|z): pixel probabilities or Gaussian means.

        Args:
            z: float32 `[batch, latent_dim]`.
            labels: one-hot float32 `[batch, num_classes]` for a conditional model;
                None otherwise.
            is_training: passed to the decoder network.

        Returns:
            float32 `[batch, *image_shape]`; in [0, 1] for the Bernoulli and
            continuous Bernoulli likelihoods.
        """
        outputs = self.decoder(z, labels, is_training=is_training)
        if self.config.likelihood == "bernoulli":
            return tf.sigmoid(outputs)
        if self.config.likelihood == "continuous_bernoulli":
            return tfd.ContinuousBernoulli(logits=outputs).mean()
        return outputs

    @tf.Module.with_name_scope
    def sample(self, num: int, labels: tf.Tensor | None = None, *,
               seed: int | tf.Tensor | None = None) -> tf.Tensor:
        """Decodes `num` draws from the prior to their means (not noisy pixel draws).

        Args:
            num: number of samples.
            labels: one-hot float32 `[num, num_classes]`, the label of each sample,
                for a conditional model; None otherwise.
            seed: None, an int, or a stateless `[2]` seed, as TFP's `sample` takes.

        Returns:
            float32 `[num, *image_shape]`.
        """
        z = self.prior().sample(num, seed=seed)
        return self.decode_mean(z, labels)

    @tf.Module.with_name_scope
    def reconstruct(self, images: tf.Tensor, labels: tf.Tensor | None = None,
                    target_labels: tf.Tensor | None = None) -> tf.Tensor:
        """Decodes the mean of q(z|x) to the mean of p(x|z).

        For a conditional model, `target_labels` (default: `labels`) choose the label
        the code is decoded with: decoding with another label than the image's own
        is style transfer, the code carrying the style and the label the class.

        Args:
            images: float32 `[batch, *image_shape]`.
            labels: one-hot labels of `images` for a conditional model, else None.
            target_labels: one-hot labels to decode with; None: `labels`.

        Returns:
            float32 `[batch, *image_shape]`.
        """
        code = self.encode(images, labels).mean()
        return self.decode_mean(code, labels if target_labels is None else target_labels)


class VAE(LatentVariableModel):
    """Variational autoencoder: `encode` returns q(z|x), `decode` returns p(x|z).

    The encoder and decoder are sub-modules (`self.encoder`, `self.decoder`), so each
    optimiser can take its own `trainable_variables`. The model computes no losses.
    """

    def __init__(self, config: ModelConfig, name: str | None = None):
        """Builds the encoder and decoder, with all their variables.

        Args:
            config: model configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `ModelConfig.validate`).
        """
        super().__init__(config, name=name)
        with self.name_scope:  # So variable names start with the model's name.
            self.encoder = networks.build_encoder(config)
            self.decoder = networks.build_decoder(config)


def num_parameters(module: tf.Module) -> int:
    """Returns the number of scalars in `module`'s trainable variables."""
    return sum(math.prod(variable.shape) for variable in module.trainable_variables)
