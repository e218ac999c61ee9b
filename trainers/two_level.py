"""The trainer of the two-stochastic-layer VAE, a plug-in trainer.

The model is `vae.hierarchical.TwoLevelVAE` (p(x|z1) p(z1|z2) p(z2) with
q(z1|x) q(z2|z1); its derivation is in that module). It is trained on the
importance-weighted bound over both layers, which at the default k = 1 is
the ELBO with the Monte Carlo rate over both layers, and with
--num_importance_samples_train=k > 1 the two-layer IWAE of Burda et al.
(2016). The step is the IWAE trainer's: the model supplies log p(x|z1),
log p(z1|z2) + log p(z2) and log q(z1|x) + log q(z2|z1) for per-example
noise of `latent_dim + top_latent_dim` dimensions.

This trainer only declares its model and config; everything else is the
IWAE trainer's:

    vae-train --trainer=two_level --top_latent_dim=16 ...
    vae-train --trainer=trainers.two_level:TwoLevelTrainer ...
"""

import dataclasses

from trainers import iwae
from vae import hierarchical


@dataclasses.dataclass(frozen=True)
class TwoLevelObjective(iwae.IwaeObjective):
    """The IWAE objective with k = 1 (the two-level ELBO) by default."""

    num_importance_samples_train: int = dataclasses.field(
        default=1,
        metadata={
            "help": "k of the importance-weighted bound over both latent "
            "layers; 1 trains the two-level ELBO."
        },
    )

    def validate(self) -> None:
        super().validate()
        if self.iwae_gradient == "dreg":
            # Known here, so refused with the flags, before any work.
            raise ValueError(
                "--iwae_gradient=dreg needs one diagonal Gaussian posterior "
                "layer, and the two-level model has two; use "
                "--iwae_gradient=standard."
            )


class TwoLevelTrainer(iwae.IwaeTrainer):
    """Trains a `vae.hierarchical.TwoLevelVAE`."""

    model_class = hierarchical.TwoLevelVAE
    model_config_class = hierarchical.TwoLevelConfig
    objective_class = TwoLevelObjective
