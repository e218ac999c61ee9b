"""The ELBO trainer: maximises the evidence lower bound of a VAE.

One step draws z ~ q(z|x) with the reparameterisation trick, measures the
distortion -log p(x|z) and the rate KL(q(z|x) || p(z)) (closed form or the
single-sample Monte Carlo estimate, see `trainers.losses`), and takes a
gradient step on distortion + beta * rate. All numbers are in nats per image;
the reported ELBO is -(distortion + rate) whatever beta is, so runs with
different KL weights stay comparable.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import math
from typing import Any

import tensorflow as tf

from trainers import base
from trainers import losses
from trainers import optimizers as optimizers_lib
from vae import datasets
from vae import models


@dataclasses.dataclass(frozen=True)
class ElboObjective:
    """The objective and its optimiser, as a run sets them (each field is a
    flag of `vae-train` of the same name).

    Attributes:
      kl: how KL(q(z|x) || p(z)) is estimated: "analytic" (closed form) or
        "mc" (log q(z|x) - log p(z) at the sampled z).
      beta: weight of the KL term in the training loss.
      kl_warmup_epochs: the weight rises linearly from 0 to `beta` over this
        many epochs (0: no warm-up).
      optimizer: optimiser name (`trainers.optimizers.OPTIMIZER_NAMES`).
      learning_rate: its step size.
      learning_rate_decay_epochs: 0 keeps the rate constant; E > 0 lowers it
        along a half cosine to 0 over the first E epochs (and keeps it at 0
        after them), so a run sized to a budget ends on small steps.
    """

    kl: str = dataclasses.field(
        default="analytic",
        metadata={
            "choices": losses.KL_ESTIMATORS,
            "help": "KL(q(z|x) || p(z)): analytic (closed form) or mc "
            "(log q(z|x) - log p(z) at the sampled z).",
        },
    )
    beta: float = dataclasses.field(
        default=1.0, metadata={"help": "Weight of the KL term in the loss."}
    )
    kl_warmup_epochs: float = dataclasses.field(
        default=0.0,
        metadata={
            "help": "Raise the KL weight linearly from 0 to --beta over this many epochs."
        },
    )
    optimizer: str = dataclasses.field(
        default="adam",
        metadata={"choices": optimizers_lib.OPTIMIZER_NAMES, "help": "Optimiser."},
    )
    learning_rate: float = dataclasses.field(
        default=1e-3, metadata={"help": "Learning rate."}
    )
    learning_rate_decay_epochs: float = dataclasses.field(
        default=0.0,
        metadata={
            "help": "Lower the learning rate along a half cosine to 0 over this "
            "many epochs (0: a constant rate)."
        },
    )

    def validate(self) -> None:
        """Raises ValueError naming the first bad field (as its flag)."""
        if self.kl not in losses.KL_ESTIMATORS:
            raise ValueError(
                f"--kl must be one of {losses.KL_ESTIMATORS}, got {self.kl!r}."
            )
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"--beta must be a finite number >= 0, got {self.beta}.")
        if not (self.kl_warmup_epochs >= 0 and math.isfinite(self.kl_warmup_epochs)):
            raise ValueError(
                "--kl_warmup_epochs must be a finite number "
                f">= 0, got {self.kl_warmup_epochs}."
            )
        optimizers_lib.check_settings(
            self.optimizer, self.learning_rate, what="--learning_rate"
        )
        if not (
            self.learning_rate_decay_epochs >= 0
            and math.isfinite(self.learning_rate_decay_epochs)
        ):
            raise ValueError(
                "--learning_rate_decay_epochs must be a finite number >= 0 "
                f"(0 keeps the rate constant), got {self.learning_rate_decay_epochs}."
            )

    def make_optimizer(self, steps_per_epoch: int):
        """The optimiser these fields name, its schedule counted in the
        optimiser's own updates (one per training step)."""
        decay_steps = 0
        if self.learning_rate_decay_epochs > 0:
            decay_steps = max(
                1, int(round(self.learning_rate_decay_epochs * steps_per_epoch))
            )
        return optimizers_lib.make_optimizer(
            self.optimizer, self.learning_rate, cosine_decay_steps=decay_steps
        )


class ElboTrainer(base.Trainer):
    """Trains a VAE on the (beta-weighted) negative ELBO with one optimiser.

    Args:
      model: a VAE (`encode`, `decode`, `prior`).
      optimizer: updates all of `model.trainable_variables`: a Keras
        optimiser (`keras.optimizers.Adam(1e-3)`) or one from
        `trainers.optimizers.make_optimizer`.
      config: loop settings.
      data: batches with an "image" entry of shape [batch, *image_shape],
        and for a conditional model (`model.is_conditional`) a one-hot
        "label_onehot" entry [batch, num_classes].
      objective: the objective (its optimiser fields are not read here: the
        optimiser is given); by default `objective_class()`.
      hooks: epoch-end hooks.
      name: module name.
      strategy: see `base.Trainer`.
    """

    model_class = models.VAE
    model_config_class = models.ModelConfig
    objective_class = ElboObjective

    def __init__(
        self,
        model: tf.Module,
        optimizer: Any,
        config: base.TrainerConfig,
        data: base.DataSource,
        objective: ElboObjective | None = None,
        hooks: Sequence[base.Hook] = (),
        name: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        if objective is None:
            objective = self.objective_class()
        objective.validate()
        super().__init__(
            model=model,
            optimizers=self.players(model, optimizer),
            config=config,
            data=data,
            hooks=hooks,
            name=name,
            strategy=strategy,
        )
        self.objective = objective
        self.kl_warmup_steps = int(
            round(objective.kl_warmup_epochs * data.steps_per_epoch)
        )

    @staticmethod
    def players(model: tf.Module, optimizer: Any) -> dict[str, tuple[Any, Any]]:
        """What each optimiser updates: here one optimiser, every variable. A
        trainer with more players (FactorVAE's discriminator) names each."""
        return {"vae": (optimizer, model.trainable_variables)}

    @classmethod
    def check_configs(cls, model_config: Any, objective: ElboObjective) -> None:
        """Refuses the closed-form KL for a model that has none (a learned
        prior, a flow posterior)."""
        if objective.kl == "analytic" and not getattr(
            model_config, "has_analytic_kl", True
        ):
            raise ValueError(
                "--kl=analytic needs a closed-form KL(q(z|x) || p(z)), which "
                "this model does not have (a VampPrior, a flow posterior or "
                "two latent layers); expected --kl=mc."
            )

    @classmethod
    def from_objective(
        cls,
        model: tf.Module,
        objective: ElboObjective,
        config: base.TrainerConfig,
        data: base.DataSource,
        hooks: Sequence[base.Hook] = (),
    ) -> "ElboTrainer":
        """The trainer with a new optimiser made from the objective's
        `optimizer`, `learning_rate` and `learning_rate_decay_epochs` (what
        `vae-train` builds)."""
        return cls(
            model,
            objective.make_optimizer(data.steps_per_epoch),
            config,
            data,
            objective=objective,
            hooks=hooks,
        )

    def kl_weight(self) -> tf.Tensor:
        """The KL weight at the current global step (after warm-up: beta)."""
        return losses.linear_warmup(
            self.global_step, self.objective.beta, self.kl_warmup_steps
        )

    def train_step(self, batch: Mapping[str, tf.Tensor], seed: tf.Tensor) -> base.Logs:
        images = batch["image"]
        kl_weight = self.kl_weight()
        variables = self.optimized_variables["vae"]
        # Example i's latent draw depends on its place in the global batch,
        # not on the replica that holds it; dropout masks need only differ
        # between replicas. (This draw is `posterior.sample(seed)`'s, which
        # the ELBO has always used, rather than `example_noise`'s.)
        latent_noise = self.example_rows(
            lambda num_examples: losses.standard_latent_noise(
                num_examples, self.model.latent_dim, seed
            ),
            tf.shape(images)[0],
        )
        with tf.GradientTape() as tape:
            terms = losses.elbo_terms(
                self.model,
                images,
                labels=datasets.conditioning_labels(self.model, batch),
                kl_estimator=self.objective.kl,
                seed=self.replica_seed(seed),
                latent_noise=latent_noise,
                is_training=True,
            )
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
            self.model,
            batch["image"],
            labels=datasets.conditioning_labels(self.model, batch),
            kl_estimator=self.objective.kl,
            seed=self.next_eval_seed(),
            is_training=False,
        )
        return {
            "elbo": terms.elbo,
            "reconstruction": terms.distortion,
            "kl": terms.rate,
        }
