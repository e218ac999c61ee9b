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

from collections.abc import Sequence
import dataclasses
import math
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

from vae import config_dicts
from vae import flows
from vae import layers
from vae import networks
from vae import priors

tfd = tfp.distributions

ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
DECODER_OUTPUTS = ("conv_transpose", "conv")
CONDITIONINGS = ("concat", "label_maps")
PRIORS = ("standard", "vamp")
POSTERIOR_FLOWS = ("none", "iaf")


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
        prior: "standard" (N(0, I)) or "vamp", the VampPrior of `vae.priors` (a
            mixture of the encoder's posteriors at learned pseudo-inputs; train it
            with the Monte Carlo KL). Unconditional models only.
        num_pseudo_inputs: "vamp" only: K, the number of pseudo-inputs.
        posterior_flow: "none" (diagonal Gaussian q(z|x)) or "iaf", the inverse
            autoregressive flow of `vae.flows` on top of it (Monte Carlo KL).
        flow_steps: "iaf" only: number of flow steps.
        flow_hidden_units: "iaf" only: hidden layer sizes of each step's MADE.
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
    # The defaults below mean "as before": a run recorded before these options
    # existed reads back as the model it trained.
    prior: str = dataclasses.field(
        default="standard",
        metadata={
            "help": "Prior p(z): 'standard' normal, or 'vamp' (a mixture of the "
            "encoder's posteriors at learned pseudo-inputs, Tomczak and "
            "Welling 2018; needs --kl=mc).",
            "choices": PRIORS,
        },
    )
    num_pseudo_inputs: int = dataclasses.field(
        default=500,
        metadata={"help": "Number of pseudo-inputs of the VampPrior (--prior=vamp)."},
    )
    posterior_flow: str = dataclasses.field(
        default="none",
        metadata={
            "help": "Flow on top of the Gaussian q(z|x): 'none', or 'iaf' (inverse "
            "autoregressive flow, Kingma et al. 2016; needs --kl=mc).",
            "choices": POSTERIOR_FLOWS,
        },
    )
    flow_steps: int = dataclasses.field(
        default=2,
        metadata={
            "help": "Steps of the inverse autoregressive flow (--posterior_flow=iaf)."
        },
    )
    flow_hidden_units: tuple[int, ...] = dataclasses.field(
        default=(256, 256),
        metadata={"help": "Hidden layer sizes of each flow step's MADE network."},
    )

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
        self._require_positive_ints(
            "latent_dim",
            "encoder_kernel_size",
            "decoder_kernel_size",
            "decoder_base_channels",
        )
        self._require_positive_int_tuples()
        self._check_choice("prior", PRIORS)
        self._check_choice("posterior_flow", POSTERIOR_FLOWS)
        self._require_positive_ints("num_pseudo_inputs", "flow_steps")
        if self.prior == "vamp" and self.num_classes:
            self._fail(
                "prior",
                "'standard' for a conditional model (num_classes > 0): "
                "the VampPrior's pseudo-inputs carry no label",
            )
        if not self.image_shape:
            self._fail("image_shape", "a non-empty tuple of positive integers")
        if self.architecture == "conv":
            self._validate_conv()

    @property
    def has_analytic_kl(self) -> bool:
        """Whether KL(q(z|x) || p(z)) has a closed form for this model: a Gaussian
        posterior (no flow) and the standard prior. Otherwise only `--kl=mc`."""
        return self.prior == "standard" and self.posterior_flow == "none"

    @property
    def has_gaussian_posterior(self) -> bool:
        """Whether q(z|x) is one diagonal Gaussian (what DReG needs)."""
        return self.posterior_flow == "none"

    def _validate_conv(self) -> None:
        if len(self.image_shape) != 3:
            self._fail("image_shape", "(height, width, channels) for architecture 'conv'")
        if len(self.encoder_strides) != len(self.encoder_filters):
            self._fail(
                "encoder_strides",
                f"one stride per encoder filter ({len(self.encoder_filters)} values, "
                f"as in encoder_filters={self.encoder_filters})",
            )
        if len(self.decoder_strides) != len(self.decoder_filters):
            self._fail(
                "decoder_strides",
                f"one stride per decoder filter ({len(self.decoder_filters)} values, "
                f"as in decoder_filters={self.decoder_filters})",
            )
        height, width = self.image_shape[:2]
        for stride in self.encoder_strides:
            height = layers.conv_output_size(
                height, self.encoder_kernel_size, stride, self.encoder_padding
            )
            width = layers.conv_output_size(
                width, self.encoder_kernel_size, stride, self.encoder_padding
            )
            if height < 1 or width < 1:
                raise ValueError(
                    f"ModelConfig: the encoder convolutions (encoder_filters="
                    f"{self.encoder_filters}, encoder_strides={self.encoder_strides}, "
                    f"encoder_kernel_size={self.encoder_kernel_size}, encoder_padding="
                    f"{self.encoder_padding!r}) shrink image_shape={self.image_shape} to "
                    "nothing; expected every feature map to keep at least 1x1 pixels. "
                    "Use fewer or smaller strides, a smaller kernel or SAME padding."
                )
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
            loc=tf.zeros([self.latent_dim]), scale_diag=tf.ones([self.latent_dim])
        )

    @tf.Module.with_name_scope
    def encode(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
    ) -> tfd.MultivariateNormalDiag:
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
        loc, log_variance = self.encoder(
            images, labels, is_training=is_training, seed=seed
        )
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.exp(0.5 * log_variance))

    @tf.Module.with_name_scope
    def decode(
        self,
        z: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
    ) -> tfd.Distribution:
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
    def decode_mean(
        self, z: tf.Tensor, labels: tf.Tensor | None = None, *, is_training: bool = False
    ) -> tf.Tensor:
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

    # -- Importance weights, for the IWAE bound, the Monte Carlo ELBO and the NLL.
    # A model with other latents (a flow posterior, a learned prior, two layers)
    # overrides `has_analytic_kl`, `noise_dim` and `importance_terms`; the trainers
    # and `vae.likelihood` only call these.

    @property
    def has_analytic_kl(self) -> bool:
        """Whether KL(q(z|x) || p(z)) has a closed form (Gaussian q, N(0, I) prior)."""
        return True

    @property
    def noise_dim(self) -> int:
        """Size of the standard normal noise `importance_terms` turns into latents."""
        return self.latent_dim

    def posterior_latents(
        self, posterior: tfd.MultivariateNormalDiag, noise: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Reparameterised draws from q(z|x) and their log-density.

        Args:
            posterior: `encode`'s q(z|x), batch shape `[batch]`.
            noise: standard normal `[k, batch, latent_dim]`.

        Returns:
            `(z, log_q)`: float32 `[k, batch, latent_dim]` and `[k, batch]`.
        """
        z = posterior.bijector.forward(noise)  # loc + scale * noise
        return z, posterior.log_prob(z)

    def importance_terms(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        noise: tf.Tensor,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
        posterior: tfd.Distribution | None = None,
    ) -> LatentTerms:
        """The three log-densities of the importance weights at k latents per image.

        log w = log p(x|z) + log p(z) - log q(z|x); the ELBO's distortion is
        -log p(x|z) and its Monte Carlo rate log q(z|x) - log p(z) (k = 1).

        Args:
            images: float32 `[batch, *image_shape]`.
            labels: one-hot `[batch, num_classes]` for a conditional model, else None.
            noise: standard normal `[k, batch, noise_dim]`; the latents are a
                deterministic, differentiable function of it.
            is_training: passed to the networks.
            seed: stateless `[2]` seed for dropout in training (folded with 1 for
                the encoder and 2 for the decoder, as `trainers.losses` does).
            posterior: `encode(images, labels)` if already computed (evaluation
                mode only); None: computed here.

        Returns:
            `LatentTerms`, each float32 `[k, batch]`.
        """
        encoder_seed, decoder_seed = _network_seeds(seed, is_training)
        if posterior is None:
            posterior = self.encode(
                images, labels, is_training=is_training, seed=encoder_seed
            )
        z, log_posterior = self.posterior_latents(posterior, noise)
        log_prior = self.prior().log_prob(z)
        log_likelihood = decoded_log_likelihood(
            self, z, images, labels, is_training=is_training, seed=decoder_seed
        )
        return LatentTerms(log_likelihood, log_prior, log_posterior)

    def log_importance_weights(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        num_samples: int,
        seed: tf.Tensor,
        posterior: tfd.Distribution | None = None,
    ) -> tf.Tensor:
        """log w of `num_samples` draws per image, float64 `[num_samples, batch]`.

        The noise is drawn from `seed` exactly as `posterior.sample(num_samples,
        seed=seed)` draws it, so a plain VAE's weights are those of
        `vae.likelihood.log_importance_weights`. Networks in evaluation mode.
        """
        noise = standard_noise(num_samples, tf.shape(images)[0], self.noise_dim, seed)
        terms = self.importance_terms(images, labels, noise=noise, posterior=posterior)
        return terms.log_weights()

    def prior_latents(self, noise: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        """Draws from p(z) with the standard normal `noise` `[n, latent_dim]`.

        The standard prior's draw is the noise itself; a mixture prior also picks
        components from `seed`. Pictures keep their noise fixed over training and
        pass it here, so they show draws of the model's own prior.
        """
        del seed  # One Gaussian: nothing else to draw.
        return noise

    @tf.Module.with_name_scope
    def sample(
        self,
        num: int,
        labels: tf.Tensor | None = None,
        *,
        seed: int | tf.Tensor | None = None,
    ) -> tf.Tensor:
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
    def reconstruct(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        target_labels: tf.Tensor | None = None,
    ) -> tf.Tensor:
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


class LatentTerms(NamedTuple):
    """log p(x|z), log p(z) and log q(z|x) at k latents per image, each `[k, batch]`.

    For a model with several latent layers, `log_prior` and `log_posterior` are
    the joint densities of all of them.
    """

    log_likelihood: tf.Tensor
    log_prior: tf.Tensor
    log_posterior: tf.Tensor

    def log_weights(self) -> tf.Tensor:
        """log w = log p(x|z) + log p(z) - log q(z|x), added in float64 `[k, batch]`.

        The terms are hundreds of nats for MNIST; float64 keeps the sum's rounding
        far below the Monte Carlo error.
        """
        return (
            tf.cast(self.log_likelihood, tf.float64)
            + tf.cast(self.log_prior, tf.float64)
            - tf.cast(self.log_posterior, tf.float64)
        )


def _network_seeds(
    seed: tf.Tensor | None, is_training: bool
) -> tuple[tf.Tensor | None, tf.Tensor | None]:
    """Dropout seeds of the encoder and decoder, folded from `seed` in training."""
    if not is_training or seed is None:
        return None, None
    return (
        tf.random.experimental.stateless_fold_in(seed, 1),
        tf.random.experimental.stateless_fold_in(seed, 2),
    )


def standard_noise(
    num_samples: int, batch_size: tf.Tensor, dim: int, seed: tf.Tensor
) -> tf.Tensor:
    """N(0, I) noise `[num_samples, batch_size, dim]` drawn from a stateless seed.

    The draw of `tfd.MultivariateNormalDiag(...).sample(num_samples, seed=seed)`
    for a batch of `batch_size` Gaussians in `dim` dimensions, of which it is the
    standardised noise.
    """
    shape = tf.stack([batch_size, dim])
    return tfd.MultivariateNormalDiag(loc=tf.zeros(shape)).sample(num_samples, seed=seed)


def decoded_log_likelihood(
    model: LatentVariableModel,
    z: tf.Tensor,
    images: tf.Tensor,
    labels: tf.Tensor | None = None,
    *,
    is_training: bool = False,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """log p(x|z) for k latents per image, with one decoder call on all of them.

    Args:
        model: has `decode(z, labels, is_training=..., seed=...)`.
        z: float32 `[k, batch, latent_dim]`.
        images: float32 `[batch, *image_shape]`.
        labels: one-hot `[batch, num_classes]` or None.
        is_training, seed: passed to the decoder.

    Returns:
        float32 `[k, batch]`.
    """
    num_samples, batch_size = tf.shape(z)[0], tf.shape(z)[1]
    flat_z = tf.reshape(z, tf.stack([num_samples * batch_size, tf.shape(z)[2]]))
    # Row i * batch + b is image b, matching the row-major flattening of z.
    flat_images = tf.reshape(
        tf.repeat(images[tf.newaxis], num_samples, axis=0),
        tf.concat([[num_samples * batch_size], tf.shape(images)[1:]], axis=0),
    )
    flat_labels = None
    if labels is not None:
        flat_labels = tf.reshape(
            tf.repeat(labels[tf.newaxis], num_samples, axis=0),
            tf.stack([num_samples * batch_size, tf.shape(labels)[1]]),
        )
    likelihood = model.decode(flat_z, flat_labels, is_training=is_training, seed=seed)
    return tf.reshape(
        likelihood.log_prob(flat_images), tf.stack([num_samples, batch_size])
    )


class VAE(LatentVariableModel):
    """Variational autoencoder: `encode` returns q(z|x), `decode` returns p(x|z).

    The encoder and decoder are sub-modules (`self.encoder`, `self.decoder`), so each
    optimiser can take its own `trainable_variables`. The model computes no losses.

    Options (see `ModelConfig`): `prior="vamp"` makes `prior()` the VampPrior of
    `vae.priors` over `self.pseudo_inputs`; `posterior_flow="iaf"` puts the inverse
    autoregressive flow `self.flow` of `vae.flows` after the Gaussian q(z|x), so
    that the posterior's draws are `posterior_latents`' (`encode` still returns the
    Gaussian base, whose mean `reconstruct` decodes). Either makes the KL Monte Carlo
    only (`has_analytic_kl` False). With the defaults the model and its variables
    are exactly those of a VAE built before the options existed.
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
            self.pseudo_inputs = None
            self.flow = None
            if config.prior == "vamp":
                self.pseudo_inputs = priors.PseudoInputs(
                    config.num_pseudo_inputs, self.image_shape
                )
            if config.posterior_flow == "iaf":
                self.flow = flows.InverseAutoregressiveFlow(
                    config.latent_dim,
                    context_dim=2 * config.latent_dim,
                    num_steps=config.flow_steps,
                    hidden_units=config.flow_hidden_units,
                    activation=config.activation,
                )

    @property
    def has_analytic_kl(self) -> bool:
        return self.pseudo_inputs is None and self.flow is None

    @tf.Module.with_name_scope
    def prior(self) -> tfd.Distribution:
        """p(z): N(0, I), or the VampPrior (1/K) sum_k q(z|u_k) (see `vae.priors`)."""
        if self.pseudo_inputs is None:
            return super().prior()
        # Evaluation mode: the prior is a density, not a dropout draw.
        return priors.vamp_prior(lambda images: self.encode(images), self.pseudo_inputs)

    def posterior_latents(
        self, posterior: tfd.MultivariateNormalDiag, noise: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """As `LatentVariableModel.posterior_latents`, through the flow if any.

        With the flow, z0 = loc + scale * noise, z = flow(z0; h) with context
        h = (loc, log scale), and log q(z|x) = log q0(z0|x) - log |det dz/dz0|.
        """
        base_latents, log_base = super().posterior_latents(posterior, noise)
        if self.flow is None:
            return base_latents, log_base
        context = tf.concat(
            [posterior.loc, tf.math.log(posterior.scale.diag_part())], axis=-1
        )
        context = tf.broadcast_to(
            context,
            tf.concat([tf.shape(base_latents)[:-1], tf.shape(context)[-1:]], axis=0),
        )
        latents, log_det = self.flow(base_latents, context)
        return latents, log_base - log_det

    def prior_latents(self, noise: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        if self.pseudo_inputs is None:
            return noise
        seed = tf.constant([0, 0], tf.int32) if seed is None else seed
        return priors.prior_latents(self.prior(), noise, seed)


def prior_draws(model: tf.Module, noise, seed: int = 0) -> tf.Tensor:
    """Draws from `model`'s prior p(z) made from standard normal `noise` `[n, dim]`.

    The noise itself for a standard normal prior and for objects without
    `prior_latents` (a loaded SavedModel); a VampPrior's or a two-level model's
    own draw otherwise (see `LatentVariableModel.prior_latents`), with `seed`
    choosing the rest of the draw (mixture components, the top layer).
    """
    noise = tf.convert_to_tensor(noise, tf.float32)
    if not hasattr(model, "prior_latents"):
        return noise
    return model.prior_latents(noise, tf.constant([seed, 0], tf.int32))


def num_parameters(module: tf.Module) -> int:
    """Returns the number of scalars in `module`'s trainable variables."""
    return sum(math.prod(variable.shape) for variable in module.trainable_variables)
