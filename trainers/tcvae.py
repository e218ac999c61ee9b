"""beta-TCVAE (Chen, Li, Grosse and Duvenaud 2018): the ELBO with its KL term
split into index-code mutual information, total correlation and dimension-wise
KL (see `trainers.total_correlation`), each with its own weight:

    loss = E[-log p(x|z)] + alpha I_q(x; z) + beta TC(q(z)) + gamma sum_d KL(q(z_d)||p(z_d))

alpha = gamma = 1 gives the paper's beta-TCVAE (beta on the total correlation
only); alpha = beta = gamma recovers the beta-VAE's objective in expectation.
The three terms are estimated on each step's batch with minibatch-weighted
("mws") or stratified ("mss") sampling, with N the number of training images.
Under tf.distribute each replica estimates them from its own rows of the batch
(M = the per-replica batch size), a consistent estimate like the single-device
one but with a smaller M; the reparameterisation noise of example i is the same
on any number of replicas (`example_noise`).

The reported ELBO is the ordinary single-sample ELBO -(distortion + log q(z|x)
- log p(z)), whatever the weights, so runs stay comparable with the ELBO
trainer's; the estimated terms are logged as "mutual_information",
"total_correlation" and "dimension_kl". With kl_warmup_epochs the weight on the
total correlation (beta) rises from 0 as the ELBO trainer's KL weight does.
"""

from collections.abc import Mapping
import dataclasses

import tensorflow as tf

from trainers import base
from trainers import elbo
from trainers import total_correlation
from vae import datasets


@dataclasses.dataclass(frozen=True)
class BetaTcvaeObjective(elbo.ElboObjective):
    """The ELBO objective plus the weights of the decomposed KL.

    `beta` (inherited) weighs the total correlation.
    """

    alpha: float = dataclasses.field(
        default=1.0,
        metadata={"help": "beta-TCVAE: weight of the index-code mutual information."},
    )
    gamma: float = dataclasses.field(
        default=1.0, metadata={"help": "beta-TCVAE: weight of the dimension-wise KL."}
    )
    tc_estimator: str = dataclasses.field(
        default="mws",
        metadata={
            "help": "beta-TCVAE: estimator of q(z) from the batch, "
            "minibatch-weighted (mws) or stratified (mss) "
            "sampling.",
            "choices": total_correlation.ESTIMATORS,
        },
    )

    def validate(self) -> None:
        super().validate()
        for name in ("alpha", "gamma"):
            value = getattr(self, name)
            if not value >= 0:  # Also rejects NaN.
                raise ValueError(f"--{name} must be >= 0; got {value}.")
        if self.tc_estimator not in total_correlation.ESTIMATORS:
            raise ValueError(
                f"--tc_estimator must be one of "
                f"{total_correlation.ESTIMATORS}; got {self.tc_estimator!r}."
            )


def tcvae_terms(
    model,
    images: tf.Tensor,
    *,
    noise: tf.Tensor,
    dataset_size,
    estimator: str,
    labels=None,
    seed=None,
    is_training: bool = True,
) -> dict:
    """Distortion and the decomposed KL of one batch, per example.

    Args:
      model: a VAE (`encode`, `decode`).
      images: [M, *image_shape].
      noise: standard normal [M, latent_dim]: z = loc + scale * noise.
      dataset_size: N.
      estimator: "mws" or "mss".
      labels: one-hot labels for a conditional model, else None.
      seed: stateless seed for dropout in training, or None.
      is_training: passed to the networks.

    Returns:
      `total_correlation.kl_decomposition`'s dict plus "distortion" [M].
    """
    encoder_seed = decoder_seed = None
    if seed is not None:
        encoder_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        decoder_seed = tf.random.experimental.stateless_fold_in(seed, 2)
    posterior = model.encode(images, labels, is_training=is_training, seed=encoder_seed)
    loc = posterior.mean()
    scale = posterior.stddev()
    z = loc + scale * noise
    likelihood = model.decode(z, labels, is_training=is_training, seed=decoder_seed)
    terms = total_correlation.kl_decomposition(
        z, loc, 2.0 * tf.math.log(scale), dataset_size=dataset_size, estimator=estimator
    )
    terms["distortion"] = -likelihood.log_prob(images)
    return terms


def tcvae_loss(terms: Mapping[str, tf.Tensor], *, alpha, beta, gamma) -> tf.Tensor:
    """Mean of distortion + alpha MI + beta TC + gamma dimension-wise KL."""
    return tf.reduce_mean(
        terms["distortion"]
        + alpha * terms["mutual_information"]
        + beta * terms["total_correlation"]
        + gamma * terms["dimension_kl"]
    )


class BetaTcvaeTrainer(elbo.ElboTrainer):
    """Trains a VAE on the beta-TCVAE objective with one optimiser."""

    objective_class = BetaTcvaeObjective

    def _dataset_size(self) -> int:
        """N: the images an epoch trains on (steps per epoch x batch size, the
        training split less the remainder the epoch drops)."""
        return int(self.data.steps_per_epoch) * int(self.data.batch_size)

    def train_step(self, batch, seed) -> base.Logs:
        images = batch["image"]
        objective = self.objective
        beta = self.kl_weight()
        noise = self.example_noise(seed, tf.shape(images)[0], [1, self.model.latent_dim])[
            :, 0
        ]
        variables = self.optimized_variables["vae"]
        with tf.GradientTape() as tape:
            terms = tcvae_terms(
                self.model,
                images,
                noise=noise,
                dataset_size=self._dataset_size(),
                estimator=objective.tc_estimator,
                labels=datasets.conditioning_labels(self.model, batch),
                seed=self.replica_seed(seed),
                is_training=True,
            )
            loss = tcvae_loss(
                terms, alpha=objective.alpha, beta=beta, gamma=objective.gamma
            )
        gradients = tape.gradient(loss, variables)
        self.optimizers["vae"].apply_gradients(zip(gradients, variables))
        rate = terms["log_qz_given_x"] - terms["log_pz"]
        return {
            "loss": loss,
            "elbo": -tf.reduce_mean(terms["distortion"] + rate),
            "reconstruction": tf.reduce_mean(terms["distortion"]),
            "kl": tf.reduce_mean(rate),
            "mutual_information": tf.reduce_mean(terms["mutual_information"]),
            "total_correlation": tf.reduce_mean(terms["total_correlation"]),
            "dimension_kl": tf.reduce_mean(terms["dimension_kl"]),
            "kl_weight": beta,
        }
