"""A VAE with two stochastic layers: p(x|z1) p(z1|z2) p(z2), q(z1|x) q(z2|z1).

The two-stochastic-layer models of Burda, Grosse and Salakhutdinov (2016),
"Importance Weighted Autoencoders" (section 5: two-layer VAE and IWAE on
MNIST, 82.90 nats for the two-layer IWAE with k = 50), the setting the ladder
VAE (Sonderby et al., 2016) improves on. Here the image layer is the
convolutional trunk of `vae.networks` and the upper layer is a small MLP:

    generative:  z2 ~ N(0, I)                          [top_latent_dim]
                 z1 ~ N(mu_p(z2), diag sigma_p^2(z2))  [latent_dim]
                 x  ~ p(x|z1), the conv decoder
    inference:   z1 ~ q(z1|x) = N(mu(x), diag sigma^2(x)), the conv encoder
                 z2 ~ q(z2|z1) = N(mu_q(z1), diag sigma_q^2(z1))

(bottom-up inference, as in the IWAE paper). With both layers drawn by
reparameterisation, z1 = mu(x) + sigma(x) eps1 and z2 = mu_q(z1) +
sigma_q(z1) eps2, one importance weight over the pair is

    log w = log p(x|z1) + log p(z1|z2) + log p(z2)
            - log q(z1|x) - log q(z2|z1),

and everything that holds for one layer holds with z = (z1, z2): the ELBO is
E_q[log w] = E[log p(x|z1)] - E[log q(z1|x) + log q(z2|z1) - log p(z1|z2) -
log p(z2)], i.e. distortion -log p(x|z1) and a Monte Carlo rate over both
layers; the k-sample bound and the importance-sampled log p(x) are
logmeanexp of k such weights. `importance_terms` returns the three parts
(log p(x|z1), the joint prior log p(z1|z2) + log p(z2), the joint posterior
log q(z1|x) + log q(z2|z1)) from a standard normal noise of size
`latent_dim + top_latent_dim` (eps1 first), so the ELBO, IWAE and NLL code
of the one-layer VAE serves unchanged.

The marginal p(z1) = E_p(z2)[p(z1|z2)] has no closed form, so `prior()` is
not available; `sample` and `prior_latents` draw z2, then z1 given z2.
`encode` is q(z1|x) and `decode` p(x|z1), so reconstructions, the latent
pictures and the export see the image layer (latent_dim = dim z1).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
import tensorflow_probability as tfp

from vae import layers
from vae import models
from vae import networks

tfd = tfp.distributions


@dataclasses.dataclass(frozen=True)
class TwoLevelConfig(models.ModelConfig):
    """A `ModelConfig` for the image layer, plus the top layer.

    Attributes:
        top_latent_dim: dimensions of z2.
        top_hidden_units: hidden layer sizes of the MLPs of q(z2|z1) and
            p(z1|z2).
    """

    top_latent_dim: int = dataclasses.field(
        default=16,
        metadata={
            "help": "Dimensions of the top latent layer z2 of the two-level model."
        },
    )
    top_hidden_units: tuple[int, ...] = dataclasses.field(
        default=(128,),
        metadata={"help": "Hidden layer sizes of the MLPs q(z2|z1) and p(z1|z2)."},
    )

    @property
    def has_analytic_kl(self) -> bool:
        return False

    @property
    def has_gaussian_posterior(self) -> bool:
        return False  # q(z1|x) q(z2|z1), two layers.

    def validate(self) -> None:
        super().validate()
        self._require_positive_ints("top_latent_dim")
        if self.prior != "standard":
            self._fail(
                "prior",
                "'standard' for the two-level model (its prior is p(z1|z2) p(z2))",
            )
        if self.posterior_flow != "none":
            self._fail("posterior_flow", "'none' for the two-level model")
        if self.num_classes:
            self._fail("num_classes", "0: the two-level model is unconditional")


class GaussianMLP(tf.Module):
    """Dense layers from `[n, input_dim]` to a diagonal Gaussian over `output_dim`."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        hidden_units,
        activation: str,
        name: str | None = None,
    ):
        super().__init__(name=name)
        with self.name_scope:
            self.hidden = []
            size = input_dim
            for index, units in enumerate(hidden_units):
                self.hidden.append(
                    layers.Dense(size, units, activation, name=f"dense_{index}")
                )
                size = units
            self.output = layers.Dense(
                size, 2 * output_dim, None, name="loc_and_log_variance"
            )

    def __call__(self, inputs: tf.Tensor) -> tfd.MultivariateNormalDiag:
        """The Gaussian for `inputs` `[..., input_dim]`; batch shape `[...]`."""
        leading = tf.shape(inputs)[:-1]
        x = tf.reshape(inputs, [-1, inputs.shape[-1]])
        for layer in self.hidden:
            x = layer(x)
        loc, log_variance = tf.split(self.output(x), 2, axis=-1)
        shape = tf.concat([leading, tf.shape(loc)[-1:]], axis=0)
        return tfd.MultivariateNormalDiag(
            loc=tf.reshape(loc, shape),
            scale_diag=tf.reshape(tf.exp(0.5 * log_variance), shape),
        )


class TwoLevelVAE(models.LatentVariableModel):
    """The two-stochastic-layer VAE of the module docstring.

    Sub-modules: `encoder` (q(z1|x)), `decoder` (p(x|z1)), `top_encoder`
    (q(z2|z1)) and `top_decoder` (p(z1|z2)).
    """

    def __init__(self, config: TwoLevelConfig, name: str | None = None):
        super().__init__(config, name=name)
        self.top_latent_dim = config.top_latent_dim
        with self.name_scope:
            self.encoder = networks.build_encoder(config)
            self.decoder = networks.build_decoder(config)
            self.top_encoder = GaussianMLP(
                config.latent_dim,
                config.top_latent_dim,
                config.top_hidden_units,
                config.activation,
                name="top_encoder",
            )
            self.top_decoder = GaussianMLP(
                config.top_latent_dim,
                config.latent_dim,
                config.top_hidden_units,
                config.activation,
                name="top_decoder",
            )

    @property
    def has_analytic_kl(self) -> bool:
        return False

    @property
    def noise_dim(self) -> int:
        return self.latent_dim + self.top_latent_dim

    def top_prior(self) -> tfd.Distribution:
        """p(z2) = N(0, I) over `top_latent_dim`."""
        return tfd.MultivariateNormalDiag(loc=tf.zeros([self.top_latent_dim]))

    def prior(self) -> tfd.Distribution:
        raise NotImplementedError(
            "TwoLevelVAE has no closed-form prior p(z1); use importance_terms for "
            "densities and sample or prior_latents for draws."
        )

    def importance_terms(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        noise: tf.Tensor,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
        posterior: tfd.Distribution | None = None,
    ) -> models.LatentTerms:
        """The log-densities over both layers; see the module docstring.

        Args:
            images: float32 `[batch, *image_shape]`.
            labels: must be None.
            noise: standard normal `[k, batch, latent_dim + top_latent_dim]`.
            is_training, seed: as for `LatentVariableModel.importance_terms`.
            posterior: q(z1|x) if already computed.

        Returns:
            `LatentTerms` `[k, batch]`: log p(x|z1), log p(z1|z2) + log p(z2),
            log q(z1|x) + log q(z2|z1).
        """
        encoder_seed, decoder_seed = models._network_seeds(seed, is_training)
        if posterior is None:
            posterior = self.encode(
                images, labels, is_training=is_training, seed=encoder_seed
            )
        bottom_noise = noise[..., : self.latent_dim]
        top_noise = noise[..., self.latent_dim :]
        z1 = posterior.bijector.forward(bottom_noise)
        top_posterior = self.top_encoder(z1)
        z2 = top_posterior.bijector.forward(top_noise)
        log_posterior = posterior.log_prob(z1) + top_posterior.log_prob(z2)
        log_prior = self.top_decoder(z2).log_prob(z1) + self.top_prior().log_prob(z2)
        log_likelihood = models.decoded_log_likelihood(
            self, z1, images, labels, is_training=is_training, seed=decoder_seed
        )
        return models.LatentTerms(log_likelihood, log_prior, log_posterior)

    def prior_latents(self, noise: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        """z1 = mu_p(z2) + sigma_p(z2) * noise with z2 ~ N(0, I) drawn from `seed`.

        Args:
            noise: standard normal `[n, latent_dim]`.
            seed: stateless `[2]` seed for z2; None: `[0, 0]`.

        Returns:
            float32 `[n, latent_dim]`, draws of the marginal p(z1).
        """
        seed = tf.constant([0, 0], tf.int32) if seed is None else seed
        z2 = tf.random.stateless_normal(
            tf.stack([tf.shape(noise)[0], self.top_latent_dim]), seed=seed
        )
        return self.top_decoder(z2).bijector.forward(noise)

    @tf.Module.with_name_scope
    def sample(
        self,
        num: int,
        labels: tf.Tensor | None = None,
        *,
        seed: int | tf.Tensor | None = None,
    ) -> tf.Tensor:
        """Decodes `num` draws of z2 -> z1 to the means of p(x|z1)."""
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        elif isinstance(seed, int):
            seed = tf.constant([seed, 0], tf.int32)
        noise = tf.random.stateless_normal(
            [num, self.latent_dim], seed=tf.random.experimental.stateless_fold_in(seed, 1)
        )
        return self.decode_mean(
            self.prior_latents(noise, tf.random.experimental.stateless_fold_in(seed, 2)),
            labels,
        )
