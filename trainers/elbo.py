"""The ELBO trainer: maximises the evidence lower bound of a VAE.

One step draws z ~ q(z|x) with the reparameterisation trick, measures the
distortion -log p(x|z) and the rate KL(q(z|x) || p(z)) (closed form or the
single-sample Monte Carlo estimate, see `trainers.losses`), and takes a
gradient step on distortion + beta * rate. All numbers are in nats per image;
the reported ELBO is -(distortion + rate) whatever beta is, so runs with
different KL weights stay comparable.
"""

import dataclasses
import math
from typing import Any, Mapping, Optional, Sequence

import tensorflow as tf

from trainers import base
from trainers import losses


@dataclasses.dataclass(frozen=True)
class ElboConfig:
    """The objective.

    Attributes:
      kl_estimator: "analytic" (closed form) or "mc" (log q(z|x) - log p(z)
        at the sampled z).
      beta: weight of the KL term in the training loss.
      kl_warmup_steps: the weight rises linearly from 0 to `beta` over this
        many steps (0: no warm-up).
    """

    kl_estimator: str = "analytic"
    beta: float = 1.0
    kl_warmup_steps: int = 0

    def validate(self) -> None:
        if self.kl_estimator not in losses.KL_ESTIMATORS:
            raise ValueError(f"ElboConfig.kl_estimator must be one of "
                             f"{losses.KL_ESTIMATORS}, got "
                             f"{self.kl_estimator!r}.")
        # Also rejects NaN and inf: either makes every loss non-finite.
        if not 0 <= self.beta < math.inf:
            raise ValueError(f"ElboConfig.beta must be a finite number >= 0, "
                             f"got {self.beta}.")
        if self.kl_warmup_steps < 0:
            raise ValueError("ElboConfig.kl_warmup_steps must be >= 0, got "
                             f"{self.kl_warmup_steps}.")


class ElboTrainer(base.Trainer):
    """Trains a VAE on the (beta-weighted) negative ELBO with one optimiser.

    Args:
      model: a VAE (`encode`, `decode`, `prior`).
      optimizer: updates all of `model.trainable_variables`.
      config: loop settings.
      data: batches with an "image" entry of shape [batch, *image_shape],
        and for a conditional model (`model.is_conditional`) a one-hot
        "label_onehot" entry [batch, num_classes].
      elbo_config: the objective.
      hooks: epoch-end hooks.
      name: module name.
      strategy: see `base.Trainer`.
    """

    def __init__(self, model: tf.Module, optimizer: Any,
                 config: base.TrainerConfig, data: base.DataSource,
                 elbo_config: ElboConfig = ElboConfig(),
                 hooks: Sequence[base.Hook] = (),
                 name: Optional[str] = None,
                 strategy: Optional[tf.distribute.Strategy] = None):
        elbo_config.validate()
        super().__init__(
            model=model,
            optimizers={"vae": (optimizer, model.trainable_variables)},
            config=config, data=data, hooks=hooks, name=name,
            strategy=strategy)
        self.elbo_config = elbo_config

    def kl_weight(self) -> tf.Tensor:
        """The KL weight at the current global step (after warm-up: beta)."""
        return losses.linear_warmup(self.global_step, self.elbo_config.beta,
                                    self.elbo_config.kl_warmup_steps)

    def train_step(self, batch: Mapping[str, tf.Tensor]) -> base.Logs:
        images = batch["image"]
        kl_weight = self.kl_weight()
        variables = self.optimized_variables["vae"]
        seed = self.next_seed()
        # Example i's latent draw depends on its place in the global batch,
        # not on the replica that holds it; dropout masks need only differ
        # between replicas.
        latent_noise = self.replica_rows(
            lambda num_examples: losses.standard_latent_noise(
                num_examples, self.model.latent_dim, seed),
            tf.shape(images)[0])
        with tf.GradientTape() as tape:
            terms = losses.elbo_terms(
                self.model, images, labels=self.labels(batch),
                kl_estimator=self.elbo_config.kl_estimator,
                seed=self.replica_seed(seed), latent_noise=latent_noise,
                is_training=True)
            loss = losses.weighted_negative_elbo(terms, kl_weight)
        gradients = tape.gradient(loss, variables)
        self.optimizers["vae"].apply_gradients(zip(gradients, variables))
        return {
            "loss": loss,
            "elbo": tf.reduce_mean(terms.elbo),
            "reconstruction": tf.reduce_mean(terms.distortion),
            "kl": tf.reduce_mean(terms.rate),
            "kl_weight": kl_weight,
        }

    def eval_step(self, batch: Mapping[str, tf.Tensor]) -> base.Logs:
        terms = losses.elbo_terms(
            self.model, batch["image"], labels=self.labels(batch),
            kl_estimator=self.elbo_config.kl_estimator,
            seed=self.next_eval_seed(), is_training=False)
        return {
            "elbo": terms.elbo,
            "reconstruction": terms.distortion,
            "kl": terms.rate,
        }
