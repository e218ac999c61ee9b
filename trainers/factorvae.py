"""FactorVAE (Kim and Mnih 2018, "Disentangling by Factorising"): two players.

    VAE:            L_vae = E[-log p(x|z)] + KL(q(z|x) || p(z)) + gamma E_q(z) l(z)
    discriminator:  L_D   = E_q(z) softplus(-l(z)) + E_perm softplus(l(z~))

l(z) is the discriminator's logit that z came from q(z) rather than from the
product of its marginals; gamma E l(z) is the density-ratio estimate of the
total correlation TC(q(z)) (see `trainers.total_correlation`). z~ are the
batch's codes with every dimension permuted independently across the batch
(`permute_dims`), an approximate sample of prod_d q(z_d).

One step is one forward pass: encode the batch, draw z, decode, discriminate z
and z~; then each player takes the gradient of its own loss on its own tape,
which watches only its own variables (the VAE's tape never sees the
discriminator's weights, the discriminator's loss reads z through
`tf.stop_gradient`), and both gradients are taken before either optimiser
steps. Kim and Mnih's Algorithm 1 draws a second batch for the permuted codes;
permuting the same batch, as disentanglement_lib does, keeps one batch per step
and so the framework's exact resume. The VAE's optimiser is the objective's
(`optimizer`, `learning_rate`); the discriminator's is Adam with
`discriminator_learning_rate` and the paper's beta1 = 0.5, beta2 = 0.9.

Under tf.distribute each replica permutes its own rows, with its own seed
(`replica_seed`), so a code is only ever paired with codes of the same replica:
the permuted batch is still a sample of the product of the marginals, drawn
from M / replicas codes instead of M. The reparameterisation noise of example i
is the same on any number of replicas (`example_noise`).
"""

import dataclasses

import tensorflow as tf
import tf_keras

from trainers import base
from trainers import elbo
from trainers import losses
from trainers import total_correlation
from vae import datasets
from vae import factorvae

DISCRIMINATOR_BETAS = (0.5, 0.9)


@dataclasses.dataclass(frozen=True)
class FactorVaeObjective(elbo.ElboObjective):
    """The ELBO objective plus the total-correlation penalty and the
    discriminator's step size."""

    gamma: float = dataclasses.field(
        default=35.0,
        metadata={
            "help": "FactorVAE: weight of the total correlation "
            "estimated by the discriminator."
        },
    )
    discriminator_learning_rate: float = dataclasses.field(
        default=1e-4,
        metadata={
            "help": "FactorVAE: step size of the discriminator's Adam "
            "(beta1 0.5, beta2 0.9)."
        },
    )

    def validate(self) -> None:
        super().validate()
        if not self.gamma >= 0:  # Also rejects NaN.
            raise ValueError(f"--gamma must be >= 0; got {self.gamma}.")
        if not self.discriminator_learning_rate > 0:
            raise ValueError(
                f"--discriminator_learning_rate must be positive; got "
                f"{self.discriminator_learning_rate}."
            )


class FactorVaeTrainer(elbo.ElboTrainer):
    """Trains a `vae.factorvae.FactorVAE`: the VAE and its discriminator."""

    model_class = factorvae.FactorVAE
    model_config_class = factorvae.FactorVaeConfig
    objective_class = FactorVaeObjective

    @staticmethod
    def players(model, optimizers):
        """`optimizers` (the constructor's `optimizer`) maps "vae" and
        "discriminator" to their optimisers; each updates its own variables."""
        return {
            "vae": (optimizers["vae"], model.vae_variables),
            "discriminator": (
                optimizers["discriminator"],
                model.discriminator.trainable_variables,
            ),
        }

    @classmethod
    def from_objective(cls, model, objective, config, data, hooks=()):
        return cls(
            model,
            make_optimizers(objective, data.steps_per_epoch),
            config,
            data,
            objective=objective,
            hooks=hooks,
        )

    def loss_terms(self, batch, seed) -> dict:
        """Per-example terms of one forward pass, each [batch]."""
        images = batch["image"]
        labels = datasets.conditioning_labels(self.model, batch)
        model = self.model
        noise = self.example_noise(seed, tf.shape(images)[0], [1, model.latent_dim])[:, 0]
        dropout = self.replica_seed(seed)
        posterior = model.encode(
            images,
            labels,
            is_training=True,
            seed=tf.random.experimental.stateless_fold_in(dropout, 1),
        )
        z = posterior.bijector.forward(noise)
        likelihood = model.decode(
            z,
            labels,
            is_training=True,
            seed=tf.random.experimental.stateless_fold_in(dropout, 2),
        )
        codes = tf.stop_gradient(z)
        permuted = total_correlation.permute_dims(
            codes, tf.random.experimental.stateless_fold_in(dropout, 3)
        )
        return {
            "distortion": -likelihood.log_prob(images),
            "rate": losses.kl_divergence(posterior, model.prior(), z, self.objective.kl),
            "tc_logits": model.discriminate(z),
            "real_logits": model.discriminate(codes),
            "permuted_logits": model.discriminate(permuted),
        }

    def train_step(self, batch, seed) -> base.Logs:
        objective = self.objective
        kl_weight = self.kl_weight()
        variables = self.optimized_variables
        with (
            tf.GradientTape(watch_accessed_variables=False) as vae_tape,
            tf.GradientTape(watch_accessed_variables=False) as d_tape,
        ):
            vae_tape.watch(variables["vae"])
            d_tape.watch(variables["discriminator"])
            terms = self.loss_terms(batch, seed)
            total_correlation_estimate = tf.reduce_mean(terms["tc_logits"])
            vae_loss = (
                tf.reduce_mean(terms["distortion"] + kl_weight * terms["rate"])
                + objective.gamma * total_correlation_estimate
            )
            d_loss = total_correlation.discriminator_loss(
                terms["real_logits"], terms["permuted_logits"]
            )
        # Both gradients at the parameters before either step.
        gradients = {
            "vae": vae_tape.gradient(vae_loss, variables["vae"]),
            "discriminator": d_tape.gradient(d_loss, variables["discriminator"]),
        }
        for player in ("vae", "discriminator"):
            self.optimizers[player].apply_gradients(
                zip(gradients[player], variables[player])
            )
        probabilities = tf.sigmoid(
            tf.concat([terms["real_logits"], -terms["permuted_logits"]], axis=0)
        )
        return {
            "loss": vae_loss,
            "elbo": -tf.reduce_mean(terms["distortion"] + terms["rate"]),
            "reconstruction": tf.reduce_mean(terms["distortion"]),
            "kl": tf.reduce_mean(terms["rate"]),
            "kl_weight": kl_weight,
            "total_correlation": total_correlation_estimate,
            "discriminator_loss": d_loss,
            # Share of codes the discriminator classifies right.
            "discriminator_accuracy": tf.reduce_mean(
                tf.cast(probabilities > 0.5, tf.float32)
            ),
        }


def make_optimizers(objective: FactorVaeObjective, steps_per_epoch: int) -> dict:
    """The two players' optimisers (the VAE's with the objective's schedule;
    the discriminator's rate stays constant)."""
    return {
        "vae": objective.make_optimizer(steps_per_epoch),
        "discriminator": tf_keras.optimizers.Adam(
            objective.discriminator_learning_rate,
            beta_1=DISCRIMINATOR_BETAS[0],
            beta_2=DISCRIMINATOR_BETAS[1],
        ),
    }
