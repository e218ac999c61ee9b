"""The VampPrior: a prior that is a mixture of the encoder's own posteriors.

Tomczak and Welling (2018), "VAE with a VampPrior" (AISTATS). The ELBO averaged
over the data,

    E_x[ELBO(x)] = E_x E_q(z|x)[log p(x|z)] - E_x[KL(q(z|x) || p(z))],

has, for a fixed encoder, the prior that maximises it equal to the aggregated
posterior q(z) = (1/N) sum_n q(z|x_n): the KL term is
E_x[KL(q(z|x) || p(z))] = I_q(x; z) + KL(q(z) || p(z)), and only the last part
depends on p. The aggregated posterior over the whole training set is too
expensive and overfits, so the VampPrior replaces the N training images with
K learned pseudo-inputs u_1..u_K:

    p(z) = (1/K) sum_k q(z | u_k)
         = (1/K) sum_k N(z; mu(u_k), diag(sigma^2(u_k))),

    log p(z) = logsumexp_k log N(z; mu(u_k), diag(sigma^2(u_k))) - log K.

The pseudo-inputs are trained with the model (they are parameters of p, and
the encoder that maps them is shared with q, so its weights receive gradients
from both). Here a pseudo-input is `sigmoid(v_k)` for an unconstrained
variable v_k of the image's shape, so it stays in the pixel range [0, 1] the
encoder was built for (the paper clips a linear map of a one-hot vector with a
hard tanh to [0, 1]; the sigmoid does the same job with gradients everywhere).

The KL between a Gaussian and this mixture has no closed form, so a model with
a VampPrior is trained with the Monte Carlo KL, log q(z|x) - log p(z) at the
sampled z (`--kl=mc`). Sampling from p(z) picks a component uniformly, then
draws from its Gaussian.

The density is normalised for any pseudo-inputs (each component is a
normalised Gaussian and the weights sum to one); `tests/test_priors.py`
checks the formula above against a hand computation and the normalisation by
quadrature in one and two dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

# The pseudo-inputs start near the middle of the pixel range, spread a little
# so that the components differ: sigmoid(N(0, 0.5)) lies mostly in [0.3, 0.7].
_INITIAL_SPREAD = 0.5


class PseudoInputs(tf.Module):
    """K learned images in [0, 1]: `sigmoid(variables)`, `[K, *image_shape]`."""

    def __init__(
        self,
        num_pseudo_inputs: int,
        image_shape: tuple[int, ...],
        seed: int = 0,
        name: str | None = "pseudo_inputs",
    ):
        """Creates the unconstrained variable.

        Args:
            num_pseudo_inputs: K.
            image_shape: shape of one image.
            seed: seeds the initial values, so a model built twice is the same.
            name: module name.
        """
        super().__init__(name=name)
        with self.name_scope:
            self.logits = tf.Variable(
                _INITIAL_SPREAD
                * tf.random.stateless_normal(
                    [num_pseudo_inputs, *image_shape], seed=[seed, 16]
                ),
                name="logits",
            )

    def __call__(self) -> tf.Tensor:
        """The pseudo-inputs, float32 `[K, *image_shape]` in (0, 1)."""
        return tf.sigmoid(self.logits)


class _UniformGaussianMixture(tfd.MixtureSameFamily):
    """`tfd.MixtureSameFamily` whose log-density never forms `[n, K, latent_dim]`.

    TFP's mixture broadcasts z `[n, 1, d]` against the components `[K, d]`,
    which for an NLL chunk (n = 250 samples x 500 images, K = 500, d = 32) is
    8 GB. Expanding the square,

        sum_d ((z_d - mu_kd) / s_kd)^2
            = sum_d z_d^2 / s_kd^2 - 2 sum_d z_d mu_kd / s_kd^2 + sum_d mu_kd^2 / s_kd^2,

    turns it into two `[n, d] x [d, K]` matrix products and an `[n, K]`
    result. The expansion cancels terms of size (z / s)^2, so it is done in
    float64, which keeps the rounding far below a thousandth of a nat.
    """

    def _log_prob(self, x):
        components = self.components_distribution
        loc = tf.cast(components.loc, tf.float64)  # [K, d]
        precision = tf.cast(components.scale.diag_part(), tf.float64) ** -2
        z = tf.cast(x, tf.float64)
        leading = tf.shape(z)[:-1]
        flat = tf.reshape(z, [-1, tf.shape(z)[-1]])  # [n, d]
        squared = (
            tf.matmul(tf.square(flat), precision, transpose_b=True)
            - 2.0 * tf.matmul(flat, loc * precision, transpose_b=True)
            + tf.reduce_sum(tf.square(loc) * precision, axis=-1)
        )
        dim = tf.cast(tf.shape(loc)[-1], tf.float64)
        log_normaliser = 0.5 * (
            tf.reduce_sum(tf.math.log(precision), axis=-1) - dim * math.log(2.0 * math.pi)
        )  # [K]
        num_components = tf.cast(tf.shape(loc)[0], tf.float64)
        log_density = tf.reduce_logsumexp(
            log_normaliser - 0.5 * squared, axis=-1
        ) - tf.math.log(num_components)
        return tf.cast(tf.reshape(log_density, leading), x.dtype)


def mixture_of_posteriors(loc: tf.Tensor, scale: tf.Tensor) -> tfd.Distribution:
    """The uniform mixture of K diagonal Gaussians.

    Args:
        loc: float32 `[K, latent_dim]`, the components' means.
        scale: float32 `[K, latent_dim]`, their standard deviations.

    Returns:
        A distribution with event shape `[latent_dim]` and no batch shape, whose
        `log_prob(z)` for `z` of shape `[..., latent_dim]` is
        `logsumexp_k log N(z; loc_k, scale_k^2) - log K`, shape `[...]`.
    """
    num_components = tf.shape(loc)[0]
    return _UniformGaussianMixture(
        mixture_distribution=tfd.Categorical(logits=tf.zeros([num_components])),
        components_distribution=tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale),
    )


def vamp_prior(
    encode: Callable[[tf.Tensor], tfd.MultivariateNormalDiag], pseudo_inputs: PseudoInputs
) -> tfd.Distribution:
    """p(z) = (1/K) sum_k q(z | u_k), with q the encoder (evaluation mode).

    Args:
        encode: maps images `[K, *image_shape]` to the diagonal Gaussian q(z|u)
            with batch shape `[K]`.
        pseudo_inputs: the K pseudo-inputs u_k.

    Returns:
        See `mixture_of_posteriors`.
    """
    components = encode(pseudo_inputs())
    return mixture_of_posteriors(components.loc, components.scale.diag_part())


def prior_latents(
    prior: tfd.Distribution, noise: tf.Tensor, seed: tf.Tensor
) -> tf.Tensor:
    """Draws from a mixture prior with the Gaussian noise given.

    z = loc_c + scale_c * noise with component c drawn uniformly from `seed`; so
    pictures that keep their noise fixed over training (the sample grid) show
    the same draw of the same components as the prior moves.

    Args:
        prior: a `mixture_of_posteriors`.
        noise: float32 standard normal `[n, latent_dim]`.
        seed: int32 `[2]` stateless seed for the component indices.

    Returns:
        float32 `[n, latent_dim]`.
    """
    components = prior.components_distribution
    num_components = tf.shape(components.loc)[0]
    index = tf.random.stateless_uniform(
        tf.shape(noise)[:1], seed=seed, minval=0, maxval=num_components, dtype=tf.int32
    )
    loc = tf.gather(components.loc, index)
    scale = tf.gather(components.scale.diag_part(), index)
    return loc + scale * noise
