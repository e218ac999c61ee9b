"""The FactorVAE model: a VAE plus the discriminator that estimates its total
correlation (Kim and Mnih 2018, "Disentangling by Factorising").

The discriminator is an MLP on codes z [batch, latent_dim] with one logit out,
l(z) = log D(z) / (1 - D(z)), where D(z) is the probability that z was drawn from
q(z) rather than from the product of its marginals (see
`trainers.total_correlation`). The paper uses 6 hidden layers of 1000 leaky-ReLU
units (slope 0.2), the default here. The VAE part is `vae.models.VAE` unchanged,
so evaluation, pictures and export treat a FactorVAE as a VAE; the trainer gives
`vae_variables` and `discriminator.trainable_variables` to two optimisers.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from vae import layers
from vae import models


@dataclasses.dataclass(frozen=True)
class FactorVaeConfig(models.ModelConfig):
    """`models.ModelConfig` plus the discriminator's shape.

    Attributes:
        discriminator_units: hidden layer sizes of the discriminator MLP.
        discriminator_activation: their activation, from `layers.ACTIVATION_NAMES`.
    """

    discriminator_units: tuple[int, ...] = dataclasses.field(
        default=(1000, 1000, 1000, 1000, 1000, 1000),
        metadata={
            "help": "Hidden layer sizes of the FactorVAE discriminator "
            "(Kim and Mnih: six of 1000)."
        },
    )
    discriminator_activation: str = dataclasses.field(
        default="leaky_relu",
        metadata={
            "help": "Activation of the discriminator's hidden layers.",
            "choices": layers.ACTIVATION_NAMES,
        },
    )

    def validate(self) -> None:
        super().validate()
        self._check_choice("discriminator_activation", layers.ACTIVATION_NAMES)


class FactorVAE(models.VAE):
    """A VAE (`encoder`, `decoder`) with a code discriminator (`discriminator`)."""

    def __init__(self, config: FactorVaeConfig, name: str | None = None):
        """Builds the VAE and the discriminator, with all their variables.

        Raises:
            ValueError: if `config` is invalid.
        """
        super().__init__(config, name=name)
        hidden = []
        size = config.latent_dim
        with self.name_scope:
            for index, units in enumerate(config.discriminator_units):
                hidden.append(
                    layers.Dense(
                        size,
                        units,
                        config.discriminator_activation,
                        name=f"discriminator_{index}",
                    )
                )
                size = units
            hidden.append(layers.Dense(size, 1, name="discriminator_logit"))
            self.discriminator = layers.Sequential(hidden, name="discriminator")

    @property
    def vae_variables(self) -> tuple[tf.Variable, ...]:
        """The encoder's and decoder's trainable variables (not the
        discriminator's)."""
        return tuple(self.encoder.trainable_variables) + tuple(
            self.decoder.trainable_variables
        )

    def discriminate(self, z: tf.Tensor) -> tf.Tensor:
        """l(z): float32 [batch] logits that z [batch, latent_dim] came from q(z)."""
        return tf.squeeze(self.discriminator(z), axis=-1)


__all__ = ("FactorVAE", "FactorVaeConfig")
