"""The importance-weighted autoencoder trainer (IWAE), a plug-in trainer.

Burda, Grosse and Salakhutdinov (2016), "Importance Weighted Autoencoders":
the same model as the VAE, trained on the k-sample bound

    L_k(x) = E[ log (1/k) sum_i p(x, z_i) / q(z_i|x) ],  z_i ~ q(z|x),

which is the ELBO at k = 1 and rises towards log p(x) as k grows (the
derivation, and that of the doubly reparameterised gradient, are in
`trainers.iwae_losses`). Each step draws k reparameterised latents per
image, asks the model for log p(x|z), log p(z) and log q(z|x) at all of
them (`model.importance_terms`, so a VampPrior, a flow posterior or a
second latent layer are weighted correctly), and ascends the logsumexp.

Objective fields (command-line flags of the same name):
  --num_importance_samples_train=k  (k = 1 is the Monte Carlo ELBO)
  --iwae_gradient=standard|dreg     (DReG: Tucker et al., 2019, for the
                                     encoder of one Gaussian q layer)
and those of the ELBO objective (--beta and --kl_warmup_epochs anneal the
prior and posterior terms inside each weight; --kl is not used, every
weight is Monte Carlo).

Written as a user writes a plug-in: subclass `ElboTrainer`, set
`objective_class`, write `train_step(batch, seed)`.

    vae-train --trainer=iwae --num_importance_samples_train=5 ...
    vae-train --trainer=trainers.iwae:IwaeTrainer ...   (the same)

Logged: "loss" (-L_k with the KL weight), "iwae_bound" (L_k),
"elbo" (the mean of the k single-sample ELBOs, so the gap to the bound is
visible), "reconstruction", "kl" (their Monte Carlo averages),
"effective_sample_size" (1 / sum w~^2, in [1, k]) and "kl_weight". The
evaluation step reports the ELBO terms (Monte Carlo KL when the model has
no closed form) as the ELBO trainer does, so every workdir's "elbo" means
the same thing.
"""

from collections.abc import Mapping
import dataclasses

import tensorflow as tf

from trainers import base
from trainers import elbo
from trainers import iwae_losses
from trainers import losses
from vae import datasets


@dataclasses.dataclass(frozen=True)
class IwaeObjective(elbo.ElboObjective):
    """The ELBO objective plus the IWAE's k and gradient estimator."""

    num_importance_samples_train: int = dataclasses.field(
        default=5,
        metadata={
            "help": "k of the importance-weighted bound trained on (IWAE, "
            "Burda et al. 2016); 1 trains the Monte Carlo ELBO."
        },
    )
    iwae_gradient: str = dataclasses.field(
        default="standard",
        metadata={
            "help": "Encoder gradient of the bound: 'standard' (autodiff "
            "of the logsumexp) or 'dreg' (doubly reparameterised, "
            "Tucker et al. 2019; one Gaussian posterior layer, "
            "no flow, no KL warm-up, beta 1).",
            "choices": iwae_losses.IWAE_GRADIENTS,
        },
    )

    def validate(self) -> None:
        super().validate()
        k = self.num_importance_samples_train
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(
                f"--num_importance_samples_train must be a positive integer "
                f"(k of the IWAE bound), got {k!r}."
            )
        if self.iwae_gradient not in iwae_losses.IWAE_GRADIENTS:
            raise ValueError(
                f"--iwae_gradient must be one of "
                f"{', '.join(iwae_losses.IWAE_GRADIENTS)}, got "
                f"{self.iwae_gradient!r}."
            )
        if self.iwae_gradient == "dreg" and (self.beta != 1.0 or self.kl_warmup_epochs):
            raise ValueError(
                "--iwae_gradient=dreg estimates the gradient of the "
                "unannealed bound; expected --beta=1 and "
                f"--kl_warmup_epochs=0, got --beta={self.beta} and "
                f"--kl_warmup_epochs={self.kl_warmup_epochs}."
            )


class IwaeTrainer(elbo.ElboTrainer):
    """Trains any `vae.models.LatentVariableModel` on the IWAE bound."""

    objective_class = IwaeObjective

    def __init__(self, model, *args, **kwargs):
        super().__init__(model, *args, **kwargs)
        self.check_configs(model.config, self.objective)

    @classmethod
    def check_configs(cls, model_config, objective: IwaeObjective) -> None:
        """Refuses an objective the model cannot train with.

        DReG needs z = loc + scale * eps and log q(z|x) at fixed
        parameters, which one diagonal Gaussian gives (a VampPrior is
        fine: it is part of p) and a flow or a second layer does not.

        Raises:
          ValueError: naming the flags.
        """
        if objective.iwae_gradient == "dreg" and not getattr(
            model_config, "has_gaussian_posterior", True
        ):
            raise ValueError(
                "--iwae_gradient=dreg needs one diagonal Gaussian "
                "posterior layer; this model has a flow posterior "
                "(--posterior_flow) or two latent layers. Use "
                "--iwae_gradient=standard."
            )

    def _noise(self, seed, images):
        """Per-example N(0, I) noise [k, batch, noise_dim]."""
        k = self.objective.num_importance_samples_train
        noise = self.example_noise(seed, tf.shape(images)[0], [k, self.model.noise_dim])
        return tf.transpose(noise, [1, 0, 2])

    def train_step(self, batch: Mapping[str, tf.Tensor], seed: tf.Tensor) -> base.Logs:
        images = batch["image"]
        labels = datasets.conditioning_labels(self.model, batch)
        kl_weight = self.kl_weight()
        variables = self.optimized_variables["vae"]
        noise = self._noise(seed, images)
        network_seed = self.replica_seed(seed)
        if self.objective.iwae_gradient == "dreg":
            bound, gradients, terms = iwae_losses.dreg_gradients(
                self.model,
                images,
                noise,
                variables,
                labels=labels,
                is_training=True,
                seed=network_seed,
            )
            log_weights = iwae_losses.annealed_log_weights(terms)
            loss = -tf.reduce_mean(bound)
        else:
            with tf.GradientTape() as tape:
                terms = self.model.importance_terms(
                    images, labels, noise=noise, is_training=True, seed=network_seed
                )
                log_weights = iwae_losses.annealed_log_weights(terms, kl_weight)
                bound = iwae_losses.iwae_bound(log_weights)
                loss = -tf.reduce_mean(bound)
            gradients = tape.gradient(loss, variables)
        self.optimizers["vae"].apply_gradients(zip(gradients, variables))
        rate = terms.log_posterior - terms.log_prior
        return {
            "loss": loss,
            "iwae_bound": tf.reduce_mean(bound),
            "elbo": -tf.reduce_mean(-terms.log_likelihood + rate),
            "reconstruction": -tf.reduce_mean(terms.log_likelihood),
            "kl": tf.reduce_mean(rate),
            "effective_sample_size": tf.reduce_mean(
                iwae_losses.effective_sample_size(log_weights)
            ),
            "kl_weight": kl_weight,
        }

    def eval_step(self, batch: Mapping[str, tf.Tensor]) -> base.Logs:
        """Per-example ELBO terms: closed-form KL where the model has one
        (whatever --kl says, since no weight of the bound uses it), else
        the Monte Carlo KL over all the latents."""
        kl = "analytic" if self.model.has_analytic_kl else "mc"
        terms = losses.elbo_terms(
            self.model,
            batch["image"],
            labels=datasets.conditioning_labels(self.model, batch),
            kl_estimator=kl,
            seed=self.next_eval_seed(),
            is_training=False,
        )
        return {"elbo": terms.elbo, "reconstruction": terms.distortion, "kl": terms.rate}
