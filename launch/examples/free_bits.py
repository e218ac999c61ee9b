"""A user's own trainer in a file of its own: the ELBO with free bits.

Free bits (Kingma et al., 2016, "Improved Variational Inference with Inverse
Autoregressive Flow", section 3.2 of its appendix) keep every latent
dimension in use: the KL term of each dimension, averaged over the batch, is
not penalised below `free_bits` nats, so the encoder is not pushed to switch
a dimension off before the decoder has learnt to use it:

    loss = E[-log p(x|z)] + beta * sum_d max(free_bits, E[KL_d])

where KL_d = (mu_d^2 + sigma_d^2 - 1) / 2 - log sigma_d is the closed-form
KL of dimension d of q(z|x) from the standard normal prior. The reported
ELBO is still the plain ELBO.

Nothing in the framework knows this file. Every program takes it from the
Python path (from the repository root):

    PYTHONPATH=launch/examples vae-train --trainer=free_bits:FreeBitsTrainer \
        --free_bits=0.5 --data_dir=../shared/data/mnist \
        --workdir=runs/free_bits
    vae-evaluate --workdir=runs/free_bits   # also with PYTHONPATH set

`--free_bits` is a flag because it is a field of the trainer's objective.
"""

import dataclasses
import math

import tensorflow as tf

from trainers import elbo
from vae import datasets


@dataclasses.dataclass(frozen=True)
class FreeBitsObjective(elbo.ElboObjective):
    """The ELBO trainer's objective and one field more."""

    free_bits: float = dataclasses.field(
        default=0.25,
        metadata={
            "help": "Nats of KL per latent dimension (batch mean) that cost nothing."
        },
    )

    def validate(self) -> None:
        super().validate()
        if not (self.free_bits >= 0 and math.isfinite(self.free_bits)):
            raise ValueError(
                f"--free_bits must be a finite number >= 0, got {self.free_bits}."
            )


class FreeBitsTrainer(elbo.ElboTrainer):
    """`ElboTrainer` with the KL of each dimension floored at free bits."""

    objective_class = FreeBitsObjective

    def train_step(self, batch, seed):
        images, labels = batch["image"], datasets.conditioning_labels(self.model, batch)
        variables = self.optimized_variables["vae"]
        noise = self.example_noise(seed, tf.shape(images)[0], [self.model.latent_dim])
        with tf.GradientTape() as tape:
            posterior = self.model.encode(images, labels, is_training=True)
            mean, stddev = posterior.mean(), posterior.stddev()
            z = mean + stddev * noise
            distortion = -self.model.decode(z, labels, is_training=True).log_prob(images)
            kl_per_dimension = 0.5 * (
                tf.square(mean) + tf.square(stddev) - 1.0
            ) - tf.math.log(stddev)
            floored_kl = tf.reduce_sum(
                tf.maximum(
                    self.objective.free_bits, tf.reduce_mean(kl_per_dimension, axis=0)
                )
            )
            loss = tf.reduce_mean(distortion) + self.kl_weight() * floored_kl
        gradients = tape.gradient(loss, variables)
        self.optimizers["vae"].apply_gradients(zip(gradients, variables))
        kl = tf.reduce_mean(tf.reduce_sum(kl_per_dimension, axis=1))
        return {
            "loss": loss,
            "elbo": -(tf.reduce_mean(distortion) + kl),
            "reconstruction": tf.reduce_mean(distortion),
            "kl": kl,
            "floored_kl": floored_kl,
        }
