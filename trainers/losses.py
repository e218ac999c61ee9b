"""Loss terms of the evidence lower bound, as pure functions.

For a VAE with prior p(z), decoder p(x|z) and encoder q(z|x), the evidence
lower bound (ELBO) of one image x is

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x).

Following Alemi et al. (2018), "Fixing a Broken ELBO", the two terms are named
for what they measure:

* distortion: -E_q[log p(x|z)], the reconstruction cost in nats, estimated
    with one reparameterised sample z ~ q(z|x) (Kingma & Welling, 2014);
* rate: KL(q(z|x) || p(z)), the information the code carries about x, either
    in closed form (both are diagonal Gaussians) or as the single-sample Monte
    Carlo estimate log q(z|x) - log p(z) at the same z.

A model whose KL has no closed form (a VampPrior, a flow posterior, two
latent layers: `model.has_analytic_kl` False) takes only the Monte Carlo
rate, over all its latents, from the log-densities the model itself
reports (`model.importance_terms`).

Both estimators of the rate have the same expectation; the Monte Carlo one is
what the TensorFlow convolutional-VAE tutorial optimises, the analytic one has
lower variance. A KL weight ``beta`` (Higgins et al., 2017) scales the rate in
the training loss only: the reported ELBO always uses weight 1.

All functions here take and return per-example tensors of shape [batch]; the
trainers average them.
"""

from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

KL_ESTIMATORS = ("analytic", "mc")


class ElboTerms(NamedTuple):
    """Per-example terms of the ELBO, each of shape [batch], in nats."""

    distortion: tf.Tensor
    rate: tf.Tensor

    @property
    def elbo(self) -> tf.Tensor:
        return -(self.distortion + self.rate)


def analytic_kl(posterior: tfd.Distribution, prior: tfd.Distribution) -> tf.Tensor:
    """KL(posterior || prior) in closed form, shape [batch]."""
    return tfd.kl_divergence(posterior, prior)


def monte_carlo_kl(
    posterior: tfd.Distribution, prior: tfd.Distribution, latent_sample: tf.Tensor
) -> tf.Tensor:
    """Single-sample estimate log q(z|x) - log p(z) at `latent_sample`.

    Args:
        posterior: q(z|x) with batch shape [batch] and event shape [latent_dim].
        prior: p(z) with event shape [latent_dim].
        latent_sample: z drawn from `posterior`, shape [batch, latent_dim].

    Returns:
        The estimate, shape [batch]. Unbiased for the KL; can be negative.
    """
    return posterior.log_prob(latent_sample) - prior.log_prob(latent_sample)


def kl_divergence(
    posterior: tfd.Distribution,
    prior: tfd.Distribution,
    latent_sample: tf.Tensor,
    estimator: str,
) -> tf.Tensor:
    """The rate term with the named estimator ("analytic" or "mc")."""
    if estimator == "analytic":
        return analytic_kl(posterior, prior)
    if estimator == "mc":
        return monte_carlo_kl(posterior, prior, latent_sample)
    raise ValueError(
        f"Unknown KL estimator {estimator!r}; expected one of {KL_ESTIMATORS}."
    )


def elbo_terms(
    model,
    images: tf.Tensor,
    *,
    kl_estimator: str,
    seed: tf.Tensor,
    is_training: bool,
    labels: tf.Tensor | None = None,
    latent_noise: tf.Tensor | None = None,
) -> ElboTerms:
    """Distortion and rate of a VAE on a batch of images.

    For a conditional VAE (labels given) these are the terms of the
    conditional ELBO of log p(x|y), with q(z|x, y) and p(x|z, y).

    Args:
        model: a VAE exposing `encode(x, labels) -> q(z|x)`,
          `decode(z, labels) -> p(x|z)` and `prior() -> p(z)`.
        images: [batch, *image_shape].
        kl_estimator: "analytic" or "mc".
        seed: a stateless seed, int32/int64 tensor of shape [2], for the
          reparameterised sample; the same seed gives the same z. Dropout
          masks in training come from seeds folded from it.
        is_training: passed to the networks (batch norm, dropout).
        labels: one-hot [batch, num_classes] for a conditional model, else
          None.
        latent_noise: optional standard normal noise [batch, latent_dim];
          given, the sample is loc + scale * noise instead of a draw from
          `seed` (the trainers pass noise drawn for the global batch, so
          that it does not depend on the number of replicas).

    Returns:
        ElboTerms with fields of shape [batch].
    """
    if not getattr(model, "has_analytic_kl", True):
        return _monte_carlo_elbo_terms(
            model,
            images,
            kl_estimator=kl_estimator,
            seed=seed,
            is_training=is_training,
            labels=labels,
            latent_noise=latent_noise,
        )
    encoder_seed = decoder_seed = None
    if is_training:
        encoder_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        decoder_seed = tf.random.experimental.stateless_fold_in(seed, 2)
    posterior = model.encode(images, labels, is_training=is_training, seed=encoder_seed)
    if latent_noise is None:
        latent_sample = posterior.sample(seed=seed)
    else:
        # The posterior is a loc-scale transform of a standard normal.
        latent_sample = posterior.bijector.forward(latent_noise)
    likelihood = model.decode(
        latent_sample, labels, is_training=is_training, seed=decoder_seed
    )
    distortion = -likelihood.log_prob(images)
    rate = kl_divergence(posterior, model.prior(), latent_sample, kl_estimator)
    return ElboTerms(distortion=distortion, rate=rate)


def _monte_carlo_elbo_terms(
    model, images, *, kl_estimator, seed, is_training, labels, latent_noise
) -> ElboTerms:
    """`elbo_terms` of a model whose KL has no closed form.

    A learned prior, a flow posterior or a second latent layer: the model
    gives log p(x|z), log p(z) and log q(z|x) at one draw
    (`importance_terms`, see `vae.models.LatentVariableModel`), and the rate
    is the Monte Carlo estimate log q(z|x) - log p(z), over all the latents.
    """
    if kl_estimator != "mc":
        raise ValueError(
            f"--kl={kl_estimator} needs a closed-form KL, which this model "
            "does not have (its prior is learned, its posterior a flow or "
            "it has several latent layers); expected --kl=mc."
        )
    if latent_noise is None:
        latent_noise = standard_latent_noise(tf.shape(images)[0], model.noise_dim, seed)
    terms = model.importance_terms(
        images, labels, noise=latent_noise[tf.newaxis], is_training=is_training, seed=seed
    )
    return ElboTerms(
        distortion=-terms.log_likelihood[0],
        rate=terms.log_posterior[0] - terms.log_prior[0],
    )


def standard_latent_noise(
    num_examples: tf.Tensor, latent_dim: int, seed: tf.Tensor
) -> tf.Tensor:
    """N(0, I) noise [num_examples, latent_dim], drawn from `seed` exactly as
    `posterior.sample(seed=seed)` draws it for a diagonal Gaussian posterior
    of that many examples (so passing it as `elbo_terms`' `latent_noise`
    gives the sample that `seed` alone gives)."""
    shape = tf.stack([num_examples, latent_dim])
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros(shape), scale_diag=tf.ones(shape)
    ).sample(seed=seed)


def weighted_negative_elbo(terms: ElboTerms, kl_weight) -> tf.Tensor:
    """Training loss: mean over the batch of distortion + kl_weight * rate."""
    return tf.reduce_mean(terms.distortion + kl_weight * terms.rate)


def linear_warmup(step: tf.Tensor, final_value: float, warmup_steps: int) -> tf.Tensor:
    """A value that rises linearly from 0 at step 0 to `final_value`.

    With warmup_steps == 0 the value is `final_value` from the first step.
    Used for the KL weight: starting with a small weight keeps the encoder from
    collapsing onto the prior before the decoder has learnt anything
    (Bowman et al., 2016; Sønderby et al., 2016).
    """
    final_value = tf.constant(final_value, tf.float32)
    if warmup_steps <= 0:
        return final_value
    fraction = tf.cast(step, tf.float32) / float(warmup_steps)
    return final_value * tf.minimum(1.0, fraction)


# ---------------------------------------------------------------------------
# The VAE-GAN of Larsen et al. (2016), "Autoencoding beyond pixels using a
# learned similarity metric". Its three players each minimise their own loss:
#
#   encoder:        L_enc = L_prior + L_dis_llike
#   decoder:        L_dec = gamma * L_dis_llike - L_GAN
#   discriminator:  L_dis = L_GAN
#
# where L_prior is the KL of q(z|x) to N(0, I), L_dis_llike measures the
# reconstruction in the features of an inner discriminator layer l instead of
# in pixels, and L_GAN is the discriminator's cross-entropy over real images,
# reconstructions and images decoded from prior draws. Every function takes
# logits, never probabilities: log(sigmoid(a)) = -softplus(-a) and
# log(1 - sigmoid(a)) = -softplus(a) are finite for any a, where the
# reference's log(D + 1e-10) saturates at -23 and passes no gradient once D
# is certain.

FEATURE_LOSSES = ("gaussian", "sigmoid_cross_entropy")


def prior_kl(loc: tf.Tensor, log_variance: tf.Tensor) -> tf.Tensor:
    """L_prior: KL(N(loc, exp(log_variance)) || N(0, I)) in closed form.

    Args:
        loc: [batch, latent_dim].
        log_variance: [batch, latent_dim].

    Returns:
        [batch], in nats: 0.5 * sum(exp(lv) + loc^2 - 1 - lv).
    """
    return 0.5 * tf.reduce_sum(
        tf.exp(log_variance) + tf.square(loc) - 1.0 - log_variance, axis=-1
    )


def pixel_reconstruction_loss(images: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """L_pixel: -log p(x | z) of a Bernoulli decoder, per image.

    Not a term of Larsen et al.'s VAE-GAN, whose reconstruction is measured
    only in discriminator features; the CVAE-GAN of Bao et al. (2017,
    "CVAE-GAN: fine-grained image generation through asymmetric training")
    keeps a pixel term beside the feature one, which ties the code to the
    image and so keeps the encoder from carrying nothing.

    Args:
        images: [batch, ...] pixel intensities in [0, 1] (the targets).
        logits: [batch, ...] the decoder's logits for their reconstructions.

    Returns:
        [batch], in nats, summed over the pixels.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    axes = list(range(1, images.shape.rank))
    return tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(
            labels=images, logits=tf.convert_to_tensor(logits, tf.float32)
        ),
        axis=axes,
    )


def feature_reconstruction_loss(
    real_features: tf.Tensor, reconstructed_features: tf.Tensor, form: str
) -> tf.Tensor:
    """L_dis_llike: how far a reconstruction is from its image at layer l.

    The real image's features are the target and pass no gradient.

    Args:
        real_features: [batch, ...], layer l (pre-activation) of the real
            images.
        reconstructed_features: the same layer for their reconstructions.
        form: "gaussian": -log N(real | reconstructed, I) up to a constant,
            0.5 * the summed squared difference (Larsen et al.'s form);
            "sigmoid_cross_entropy": the cross-entropy between the sigmoids
            of the two, summed, with the real ones as soft targets (the form
            reference 003 trains with). Its minimum is the targets' entropy,
            not 0.

    Returns:
        [batch], summed over the feature dimensions.
    """
    target = tf.stop_gradient(tf.convert_to_tensor(real_features, tf.float32))
    reconstructed_features = tf.convert_to_tensor(reconstructed_features, tf.float32)
    axes = list(range(1, target.shape.rank))
    if form == "gaussian":
        return 0.5 * tf.reduce_sum(
            tf.math.squared_difference(reconstructed_features, target), axis=axes
        )
    if form == "sigmoid_cross_entropy":
        return tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.sigmoid(target), logits=reconstructed_features
            ),
            axis=axes,
        )
    raise ValueError(f"Unknown feature loss {form!r}; expected one of {FEATURE_LOSSES}.")


def gan_loss(
    real_logits: tf.Tensor,
    reconstruction_logits: tf.Tensor,
    prior_logits: tf.Tensor,
    weights: tuple[float, float, float] = (1.0, 1.0, 2.0),
) -> tf.Tensor:
    """L_GAN: the discriminator's cross-entropy, real vs. both kinds of fake.

    -(w_r log D(x) + w_x log(1 - D(x~)) + w_p log(1 - D(x_p))) / (w_r + w_x
    + w_p), with D = sigmoid(logits), x~ a reconstruction and x_p an image
    decoded from a prior draw. The reference weights them 1, 1, 2, so real
    and fake images count equally; a discriminator that cannot tell them
    apart (D = 1/2 everywhere) scores log 2 = 0.693.

    Args:
        real_logits: [batch] discriminator logits of real images.
        reconstruction_logits: [batch] logits of reconstructions.
        prior_logits: [batch] logits of prior-decoded images.
        weights: (w_r, w_x, w_p), non-negative with a positive sum.

    Returns:
        [batch], in nats.
    """
    real_logits, reconstruction_logits, prior_logits = (
        tf.convert_to_tensor(logits, tf.float32)
        for logits in (real_logits, reconstruction_logits, prior_logits)
    )
    real_weight, reconstruction_weight, prior_weight = weights
    total = real_weight + reconstruction_weight + prior_weight
    return (
        real_weight * tf.nn.softplus(-real_logits)
        + reconstruction_weight * tf.nn.softplus(reconstruction_logits)
        + prior_weight * tf.nn.softplus(prior_logits)
    ) / total


def non_saturating_generator_loss(
    reconstruction_logits: tf.Tensor,
    prior_logits: tf.Tensor,
    weights: tuple[float, float, float] = (1.0, 1.0, 2.0),
) -> tf.Tensor:
    """The decoder's adversarial term in Goodfellow et al.'s (2014)
    non-saturating form: -(w_x log D(x~) + w_p log D(x_p)) / (w_r + w_x + w_p).

    Minimising -L_GAN (the minimax form of Larsen et al. and reference 003)
    gives the decoder a gradient of log(1 - D), which vanishes once the
    discriminator rejects its images with confidence, exactly when the
    decoder most needs one; -log D gives the strongest gradient there. The
    two share their fixed point. Same weights and scale as `gan_loss`.

    Args:
        reconstruction_logits: [batch] discriminator logits of
            reconstructions.
        prior_logits: [batch] logits of prior-decoded images.
        weights: (w_r, w_x, w_p) as for `gan_loss`.

    Returns:
        [batch], in nats.
    """
    reconstruction_logits, prior_logits = (
        tf.convert_to_tensor(logits, tf.float32)
        for logits in (reconstruction_logits, prior_logits)
    )
    _, reconstruction_weight, prior_weight = weights
    return (
        reconstruction_weight * tf.nn.softplus(-reconstruction_logits)
        + prior_weight * tf.nn.softplus(-prior_logits)
    ) / sum(weights)


def mean_feature_matching_loss(
    real_features: tf.Tensor, generated_features: tf.Tensor
) -> tf.Tensor:
    """Mean feature matching (Salimans et al., 2016; Bao et al., 2017).

    0.5 * || mean_batch f(x) - mean_batch f(x_p) ||^2 over the discriminator's
    layer-l features: the decoder matches the statistics of real images in
    the discriminator's eyes instead of chasing whatever the discriminator
    currently scores highest, which -log D rewards even when every z draws
    the same most typical digit (the loss of variety that the Frechet
    distance sees). The real features are the target and pass no gradient.

    Args:
        real_features: [batch, ...] layer-l features of real images.
        generated_features: [batch', ...] the same layer for decoded images.

    Returns:
        A scalar: it compares two batches, so it has no per-example value.
    """
    real_mean = tf.stop_gradient(
        tf.reduce_mean(tf.convert_to_tensor(real_features, tf.float32), axis=0)
    )
    generated_mean = tf.reduce_mean(
        tf.convert_to_tensor(generated_features, tf.float32), axis=0
    )
    return 0.5 * tf.reduce_sum(tf.math.squared_difference(generated_mean, real_mean))
