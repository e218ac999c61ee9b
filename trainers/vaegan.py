"""The VAE-GAN trainer: three players, alternating updates, adaptive balance.

Larsen et al. (2016), "Autoencoding beyond pixels using a learned similarity
metric", train a VAE whose reconstruction is measured in the features of a
GAN discriminator's inner layer l rather than in pixels, so the decoder is
pushed towards images that look real instead of towards the blurry pixel
average. Three players learn, each with its own optimiser, loss and
variables (see `trainers.losses` for the terms):

    encoder:        L_enc = L_prior + L_dis_llike [+ w * L_pixel]
    decoder:        L_dec = gamma * L_dis_llike [+ w * L_pixel] - L_GAN
    discriminator:  L_dis = L_GAN

(the pixel term, weight `pixel_weight`, is an option beyond Larsen et al.,
see `losses.pixel_reconstruction_loss`, as is replacing the decoder's -L_GAN
by the non-saturating -log D term, `generator_loss`).

One training step (one batch) is one iteration of reference 003's loop:

1. up to `d_steps` discriminator updates, stopping early as soon as an
   update's L_GAN falls below `d_threshold` (the discriminator is good
   enough);
2. up to `g_steps` encoder+decoder updates, stopping early as soon as an
   update's L_GAN rises above `g_threshold` (the generator fools it enough).

With `schedule="simultaneous"` an iteration is instead one forward pass
from which all three players step at once, each on the gradient of its own
loss at the parameters before any step (the TensorFlow DCGAN tutorial's
scheme): no balancing, and one forward pass per batch instead of two. A
prior weight of 0 in `gan_weights` leaves prior-decoded images out of the
game altogether (neither made nor discriminated).

L_GAN is measured in the same forward pass as the update it belongs to
(before that update's step), as in the reference. The loops are
`tf.while_loop`s on tensors, so the balancing decisions happen inside the
compiled step and never retrace it. With several replicas (a
`tf.distribute` strategy), every update runs on all of them and every
decision reads L_GAN averaged over them, so all replicas take the same
branch (see `VaeGanTrainer.distributed_train_step`). Each discriminator update decodes a fresh
prior draw; the updates of one iteration share the batch (the reference
draws a new batch for every update; here the data order stays the base
loop's, one batch per step, which keeps resume exact).

Units. L_GAN here is the mean cross-entropy per image (chance level
log 2 = 0.693), so the default thresholds 1.0 and 0.4 bracket chance and the
balancing acts. The reference sums over its batch of 64 and divides by 784,
which scales every loss by 64/784; its 1.0 and 0.4 are 12.25 and 4.9 per
image, where the discriminator almost always stops after one update and the
generator almost always takes three (`d_threshold=12.25, g_threshold=4.9`
reproduce that). L_prior and L_dis_llike are per image too (summed over
latent dimensions and feature elements), so the three losses keep the
reference's relative weights.

The encoder and decoder updates of one generator step share one forward pass
but each gets the gradient of its own loss from its own tape: the encoder
never sees -L_GAN, the decoder never sees L_prior, and the discriminator's
variables are in neither list (implementations that minimise one summed loss
over all variables get this wrong).
"""

from collections.abc import Mapping, Sequence
import contextlib
import dataclasses
import math
from typing import Any

import tensorflow as tf

from trainers import base
from trainers import losses
from trainers import optimizers as optimizers_lib
from vae import datasets
from vae import vaegan as vaegan_models

PLAYERS = ("encoder", "decoder", "discriminator")
FEATURE_LOSSES = losses.FEATURE_LOSSES
GENERATOR_LOSSES = ("minimax", "non_saturating", "feature_matching")
SCHEDULES = ("alternating", "simultaneous")


@dataclasses.dataclass(frozen=True)
class VaeGanObjective:
    """The losses and the balancing of the three players.

    Attributes:
      gamma: weight of L_dis_llike against -L_GAN in the decoder's loss.
      pixel_weight: weight of a pixel reconstruction term, L_pixel (the
        Bernoulli -log p(x|z)), added to both the encoder's and the
        decoder's loss; 0 (Larsen et al., reference 003) leaves it out.
      generator_loss: the decoder's adversarial term: "minimax", -L_GAN
        (Larsen et al., reference 003), or "non_saturating", the
        -log D form (`losses.non_saturating_generator_loss`).
      feature_loss: "gaussian" (Larsen et al.) or "sigmoid_cross_entropy"
        (reference 003); see `losses.feature_reconstruction_loss`.
      gan_weights: weights of real, reconstructed and prior-decoded images in
        L_GAN (the reference's 1, 1, 2).
      d_steps: at most this many discriminator updates per iteration.
      g_steps: at most this many encoder+decoder updates per iteration.
      d_threshold: discriminator updates stop once L_GAN < this.
      g_threshold: encoder+decoder updates stop once L_GAN > this.
      schedule: "alternating" (the reference): the balanced discriminator
        updates, then the balanced encoder+decoder updates, each with its
        own forward pass; or "simultaneous": one forward pass per batch
        from which all three players take their step (as the TensorFlow
        DCGAN tutorial trains), with d_steps = g_steps = 1 and no
        balancing (the thresholds are not read).
      optimizer: optimiser name (`trainers.optimizers`), used by all three
        players.
      encoder_learning_rate, decoder_learning_rate,
        discriminator_learning_rate: each player's step size.
    """

    gamma: float = dataclasses.field(
        default=1.0,
        metadata={
            "help": "Weight of the feature reconstruction loss against the GAN "
            "loss in the decoder's objective."
        },
    )
    pixel_weight: float = dataclasses.field(
        default=0.0,
        metadata={
            "help": "Weight of a pixel reconstruction term (Bernoulli -log "
            "p(x|z)) in the encoder's and the decoder's losses; 0 "
            "(Larsen et al., reference 003): none."
        },
    )
    generator_loss: str = dataclasses.field(
        default="minimax",
        metadata={
            "choices": GENERATOR_LOSSES,
            "help": "The decoder's adversarial term: minimax (-L_GAN, Larsen et "
            "al. and reference 003), non_saturating (-log D of its "
            "images) or feature_matching (the batch mean of its prior "
            "images' layer-l features matched to the real images', "
            "Salimans et al. 2016).",
        },
    )
    feature_loss: str = dataclasses.field(
        default="gaussian",
        metadata={
            "choices": FEATURE_LOSSES,
            "help": "How a reconstruction's discriminator features are compared "
            "with the input's: gaussian (Larsen et al.) or "
            "sigmoid_cross_entropy (reference 003).",
        },
    )
    gan_weights: tuple[float, float, float] = dataclasses.field(
        default=(1.0, 1.0, 2.0),
        metadata={
            "help": "Weights of real, reconstructed and prior-decoded images "
            "in the GAN loss (reference 003: 1,1,2); a prior weight "
            "of 0 leaves images decoded from prior draws out of the "
            "game, so neither the discriminator nor the decoder's "
            "adversarial term sees them."
        },
    )
    d_steps: int = dataclasses.field(
        default=3, metadata={"help": "At most this many discriminator updates per batch."}
    )
    g_steps: int = dataclasses.field(
        default=3,
        metadata={"help": "At most this many encoder+decoder updates per batch."},
    )
    d_threshold: float = dataclasses.field(
        default=1.0,
        metadata={
            "help": "Discriminator updates stop once the GAN loss (mean "
            "cross-entropy per image) falls below this."
        },
    )
    g_threshold: float = dataclasses.field(
        default=0.4,
        metadata={
            "help": "Encoder+decoder updates stop once the GAN loss rises above this."
        },
    )
    schedule: str = dataclasses.field(
        default="alternating",
        metadata={
            "choices": SCHEDULES,
            "help": "alternating (reference 003): balanced discriminator "
            "updates, then balanced encoder+decoder updates, each with "
            "its own forward pass; simultaneous: all three networks step "
            "from one forward pass per batch (needs --d_steps=1 "
            "--g_steps=1; the thresholds are not used).",
        },
    )
    optimizer: str = dataclasses.field(
        default="rmsprop",
        metadata={
            "choices": optimizers_lib.OPTIMIZER_NAMES,
            "help": "Optimiser of each of the three networks.",
        },
    )
    encoder_learning_rate: float = dataclasses.field(
        default=1e-3, metadata={"help": "Learning rate of the encoder."}
    )
    decoder_learning_rate: float = dataclasses.field(
        default=3e-4, metadata={"help": "Learning rate of the decoder."}
    )
    discriminator_learning_rate: float = dataclasses.field(
        default=1e-3, metadata={"help": "Learning rate of the discriminator."}
    )

    def __post_init__(self):
        if isinstance(self.gan_weights, list):
            object.__setattr__(self, "gan_weights", tuple(self.gan_weights))

    def validate(self) -> None:
        """Raises ValueError naming the first bad field."""
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"--generator_loss must be one of "
                f"{GENERATOR_LOSSES}, got "
                f"{self.generator_loss!r}."
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"--schedule must be one of {SCHEDULES}, got {self.schedule!r}."
            )
        if self.schedule == "simultaneous" and (self.d_steps, self.g_steps) != (1, 1):
            raise ValueError(
                "--schedule 'simultaneous' takes exactly one "
                "step of every player per batch, so it needs d_steps = "
                f"g_steps = 1; got d_steps={self.d_steps}, "
                f"g_steps={self.g_steps}."
            )
        if self.generator_loss == "feature_matching" and not (
            len(self.gan_weights) == 3 and self.gan_weights[2] > 0
        ):
            raise ValueError(
                "--generator_loss 'feature_matching' matches "
                "the features of images decoded from prior draws, so it needs "
                "a positive prior weight in gan_weights; got "
                f"{self.gan_weights}."
            )
        if self.feature_loss not in FEATURE_LOSSES:
            raise ValueError(
                f"--feature_loss must be one of "
                f"{FEATURE_LOSSES}, got {self.feature_loss!r}."
            )
        for name in ("gamma", "pixel_weight"):
            # Also rejects NaN and inf: either makes every loss non-finite.
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(
                    f"--{name} must be a finite number >= 0, got {getattr(self, name)}."
                )
        for name in ("d_steps", "g_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name} must be an integer >= 1, got {value!r}.")
        for name in ("d_threshold", "g_threshold"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}.")
        if (
            len(self.gan_weights) != 3
            or min(self.gan_weights) < 0
            or sum(self.gan_weights) <= 0
        ):
            raise ValueError(
                "--gan_weights must be three "
                "non-negative weights with a positive sum, got "
                f"{self.gan_weights}."
            )
        for player in PLAYERS:
            optimizers_lib.check_settings(
                self.optimizer,
                getattr(self, f"{player}_learning_rate"),
                what=f"--{player}_learning_rate",
            )

    def learning_rates(self) -> Mapping[str, float]:
        """Player ("encoder", "decoder", "discriminator") -> step size."""
        return {player: getattr(self, f"{player}_learning_rate") for player in PLAYERS}

    def make_optimizers(self) -> Mapping[str, Any]:
        """Player -> a new optimiser of `optimizer` at its learning rate."""
        return {
            player: optimizers_lib.make_optimizer(self.optimizer, rate)
            for player, rate in self.learning_rates().items()
        }


class VaeGanTrainer(base.Trainer):
    """Trains a `vae.vaegan.VaeGan` (or anything with its interface).

    Args:
      model: has `encoder`, `decoder` and `discriminator` sub-modules and
        `encoder_outputs`, `decoder`, `discriminate`, `latent_dim`,
        `is_conditional`, and the VAE interface (`encode`, `decode`,
        `prior`) for evaluation.
      optimizers: "encoder", "decoder", "discriminator" -> a tf-keras
        optimiser; each updates only its own sub-module's variables.
      config: loop settings.
      data: batches with "image" [batch, h, w, c] in [0, 1], and
        "label_onehot" [batch, num_classes] for a conditional model.
      objective: losses and balancing.
      hooks: epoch-end hooks.
      name: module name.
      strategy: see `base.Trainer`.
    """

    model_class = vaegan_models.VaeGan
    model_config_class = vaegan_models.VaeGanConfig
    objective_class = VaeGanObjective
    # Reference 003's batch, latent size and conditioning.
    flag_defaults = {"batch_size": 64, "latent_dim": 8, "conditional": True}

    def __init__(
        self,
        model: tf.Module,
        optimizers: Mapping[str, Any],
        config: base.TrainerConfig,
        data: base.DataSource,
        objective: VaeGanObjective = VaeGanObjective(),
        hooks: Sequence[base.Hook] = (),
        name: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        objective.validate()
        if set(optimizers) != set(PLAYERS):
            raise ValueError(
                f"VaeGanTrainer needs one optimiser for each of "
                f"{PLAYERS}; got {sorted(optimizers)}."
            )
        super().__init__(
            model=model,
            optimizers={
                player: (optimizers[player], getattr(model, player).trainable_variables)
                for player in PLAYERS
            },
            config=config,
            data=data,
            hooks=hooks,
            name=name,
            strategy=strategy,
        )
        self.objective = objective
        # How many updates each side has taken over the whole run: the
        # balancing's state, checkpointed so that the running share of
        # discriminator updates continues across a resume.
        with self.strategy.scope():
            self.discriminator_update_count = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="discriminator_update_count"
            )
            self.generator_update_count = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="generator_update_count"
            )
        self.track_in_checkpoint(
            discriminator_update_count=self.discriminator_update_count,
            generator_update_count=self.generator_update_count,
        )

    @classmethod
    def from_objective(
        cls,
        model: tf.Module,
        objective: VaeGanObjective,
        config: base.TrainerConfig,
        data: base.DataSource,
        hooks: Sequence[base.Hook] = (),
    ) -> "VaeGanTrainer":
        """The trainer with one new optimiser per player, as the objective's
        `optimizer` and learning rates say."""
        return cls(
            model,
            objective.make_optimizers(),
            config,
            data,
            objective=objective,
            hooks=hooks,
        )

    # ------------------------------------------------------------- forward
    def _discriminate_all(
        self, images, reconstructions, prior_images, labels, *, is_training: bool, seed
    ):
        """The discriminator on real, reconstructed and prior images.

        Real images and their reconstructions go through the discriminator
        with the same seed, so in training both see the same dropout masks:
        their layer-l features then differ only because the images do.
        (With independent masks, as one pass over both would draw, the
        feature distance has a floor of pure dropout noise that no code can
        lower, and the encoder learns to carry nothing: its KL fell to ~0.05
        nats within 200 iterations on MNIST.)

        Returns:
          (real, reconstruction, prior) logits, each [batch], and the layer-l
          features of the real images, the reconstructions and the prior
          images; the prior ones are None when `prior_images` is (no pass).
        """
        shared_seed = tf.random.experimental.stateless_fold_in(seed, 0)
        prior_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        real_logits, real_features = self.model.discriminate(
            images, labels, is_training=is_training, seed=shared_seed
        )
        reconstruction_logits, reconstruction_features = self.model.discriminate(
            reconstructions, labels, is_training=is_training, seed=shared_seed
        )
        if prior_images is None:
            return (
                real_logits,
                reconstruction_logits,
                None,
                real_features,
                reconstruction_features,
                None,
            )
        prior_logits, prior_features = self.model.discriminate(
            prior_images, labels, is_training=is_training, seed=prior_seed
        )
        return (
            real_logits,
            reconstruction_logits,
            prior_logits,
            real_features,
            reconstruction_features,
            prior_features,
        )

    def loss_terms(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None,
        seed: tf.Tensor,
        *,
        is_training: bool,
    ) -> dict:
        """Every per-example loss term for one batch.

        Args:
          images: [batch, h, w, c] in [0, 1].
          labels: one-hot [batch, num_classes], or None.
          seed: stateless seed [2] for the latent draws and dropout, the
            same on every replica in training (the step's).
          is_training: passed to the networks.

        Returns:
          "prior", "dis_llike", "pixel", "gan", "gan_non_saturating", each
          [batch].
        """

        def part_seed(index):
            return tf.random.experimental.stateless_fold_in(seed, index)

        batch_size = tf.shape(images)[0]

        def latent_noise(index):
            def draw(num_examples):
                return tf.random.stateless_normal(
                    [num_examples, self.model.latent_dim], seed=part_seed(index)
                )

            # In training, example i's draws depend on its place in the
            # global batch, not on the replica that holds it (see
            # `base.Trainer.replica_rows`); evaluation runs on one device.
            if is_training:
                return self.example_rows(draw, batch_size)
            return draw(batch_size)

        def dropout_seed(index):
            # Masks only need to differ between replicas.
            if is_training:
                return self.replica_seed(part_seed(index))
            return part_seed(index)

        loc, log_variance = self.model.encoder_outputs(
            images, labels, is_training=is_training, seed=dropout_seed(1)
        )
        latent = loc + tf.exp(0.5 * log_variance) * latent_noise(2)
        prior_latent = latent_noise(3)
        reconstruction_logits = self.model.decoder(
            latent, labels, is_training=is_training, seed=dropout_seed(4)
        )
        # The discriminator reads pixel intensities, as the decoder's sigmoid
        # output gives them in the reference.
        reconstructions = tf.sigmoid(reconstruction_logits)
        # With a prior weight of 0 no loss reads prior-decoded images, so
        # they are not made (a decoder and a discriminator pass fewer).
        uses_prior_images = self.objective.gan_weights[2] > 0
        prior_images = (
            tf.sigmoid(
                self.model.decoder(
                    prior_latent, labels, is_training=is_training, seed=dropout_seed(5)
                )
            )
            if uses_prior_images
            else None
        )
        (
            real_logits,
            fake_logits,
            prior_logits,
            real_features,
            reconstruction_features,
            prior_features,
        ) = self._discriminate_all(
            images,
            reconstructions,
            prior_images,
            labels,
            is_training=is_training,
            seed=dropout_seed(6),
        )
        if uses_prior_images:
            feature_matching = losses.mean_feature_matching_loss(
                real_features, prior_features
            )
        else:
            prior_logits = tf.zeros_like(real_logits)  # Weighted by 0.
            feature_matching = tf.constant(0.0)  # Refused by the objective.
        return {
            "prior": losses.prior_kl(loc, log_variance),
            "dis_llike": losses.feature_reconstruction_loss(
                real_features, reconstruction_features, self.objective.feature_loss
            ),
            "pixel": losses.pixel_reconstruction_loss(images, reconstruction_logits),
            "gan": losses.gan_loss(
                real_logits, fake_logits, prior_logits, self.objective.gan_weights
            ),
            "gan_non_saturating": losses.non_saturating_generator_loss(
                fake_logits, prior_logits, self.objective.gan_weights
            ),
            # One value for the whole batch, repeated so that every term has
            # the same shape and batch means.
            "feature_matching": tf.fill([batch_size], feature_matching),
        }

    # ------------------------------------------------------------- updates
    def discriminator_update(
        self, images: tf.Tensor, labels: tf.Tensor | None, seed: tf.Tensor
    ) -> tf.Tensor:
        """One discriminator step on L_dis = L_GAN; returns that L_GAN."""
        return self._update(images, labels, seed, players=("discriminator",))["gan"]

    def player_losses(
        self, terms: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """L_enc and L_dec from the batch means of `loss_terms`."""
        pixel = self.objective.pixel_weight * terms["pixel"]
        encoder_loss = terms["prior"] + terms["dis_llike"] + pixel
        adversarial = {
            "minimax": lambda: -terms["gan"],
            "non_saturating": lambda: terms["gan_non_saturating"],
            "feature_matching": lambda: terms["feature_matching"],
        }[self.objective.generator_loss]()
        decoder_loss = self.objective.gamma * terms["dis_llike"] + pixel + adversarial
        return encoder_loss, decoder_loss

    def generator_update(
        self, images: tf.Tensor, labels: tf.Tensor | None, seed: tf.Tensor
    ) -> dict:
        """One simultaneous encoder step on L_enc and decoder step on L_dec.

        Returns:
          Batch means of every `loss_terms` term, "encoder_loss" and
          "decoder_loss", measured before the step.
        """
        return self._update(images, labels, seed, players=("encoder", "decoder"))

    def joint_update(
        self, images: tf.Tensor, labels: tf.Tensor | None, seed: tf.Tensor
    ) -> dict:
        """The "simultaneous" schedule's step: from one forward pass, the
        discriminator steps on L_GAN, the encoder on L_enc and the decoder
        on L_dec, each with its own tape and variables, all from the
        parameters as they were before any of the three steps.

        Returns:
          As `generator_update`.
        """
        return self._update(images, labels, seed, players=PLAYERS)

    def _update(self, images, labels, seed, players) -> dict:
        """Steps `players`, each on the gradient of its own loss only: one
        tape per player, watching only that player's variables (the other
        networks run forward, get no gradient, and the tapes keep nothing
        of them)."""
        with contextlib.ExitStack() as stack:
            tapes = {}
            for player in players:
                tapes[player] = stack.enter_context(
                    tf.GradientTape(watch_accessed_variables=False)
                )
                tapes[player].watch(self.optimized_variables[player])
            terms = {
                key: tf.reduce_mean(value)
                for key, value in self.loss_terms(
                    images, labels, seed, is_training=True
                ).items()
            }
            encoder_loss, decoder_loss = self.player_losses(terms)
        player_loss = dict(
            encoder=encoder_loss, decoder=decoder_loss, discriminator=terms["gan"]
        )
        # Every gradient is taken before any step is applied.
        gradients = {
            player: tape.gradient(player_loss[player], self.optimized_variables[player])
            for player, tape in tapes.items()
        }
        for player in players:
            self.optimizers[player].apply_gradients(
                zip(gradients[player], self.optimized_variables[player])
            )
        return dict(terms, encoder_loss=encoder_loss, decoder_loss=decoder_loss)

    # ---------------------------------------------------------------- step
    def train_step(self, batch: Mapping[str, tf.Tensor], seed: tf.Tensor) -> base.Logs:
        """One iteration on the whole of `batch`, called outside any replica
        (the loop calls `distributed_train_step` instead; with one device
        the two are the same)."""
        return self.distributed_train_step(batch, seed)

    def distributed_train_step(self, batch: Any, seed: tf.Tensor) -> base.Logs:
        """One iteration: the balanced discriminator and generator updates.

        The balancing loops run here, in cross-replica context, rather than in
        a per-replica `train_step`: every update synchronises the replicas
        (the optimisers sum their gradients), which MirroredStrategy cannot
        do inside a replica's `tf.while_loop`. So each update runs on every
        replica through `self.strategy.run`, and each decision to go on reads
        L_GAN averaged over the replicas: every replica takes the same branch,
        and the decision is the one a single device would take on the whole
        batch. With one replica this is exactly the single-device iteration.

        Args:
          batch: the batch, distributed over the replicas.
          seed: the step's seed, the same on every replica; each replica
            keeps its own rows of the noise drawn from it.

        Returns:
          Batch means (over the replicas too) of the last generator update's
          "prior", "dis_llike", "pixel", "gan", "encoder_loss",
          "decoder_loss", the iteration's "discriminator_updates" and
          "generator_updates", and the run's "discriminator_share" of all
          updates so far.
        """
        strategy = self.strategy
        objective = self.objective

        def on_every_replica(update, side: int):
            def replica_update(replica_batch, index):
                fold_in = tf.random.experimental.stateless_fold_in
                return update(
                    replica_batch["image"],
                    datasets.conditioning_labels(self.model, replica_batch),
                    fold_in(fold_in(seed, side), index),
                )

            return lambda index: strategy.run(replica_update, args=(batch, index))

        if objective.schedule == "simultaneous":
            generator_logs = self.mean_over_replicas(
                on_every_replica(self.joint_update, 2)(tf.constant(0))
            )
            return self._count_updates(generator_logs, tf.constant(1), tf.constant(1))

        discriminator_update = on_every_replica(self.discriminator_update, 0)
        generator_update = on_every_replica(self.generator_update, 1)

        def discriminator_continues(count, last_gan):
            return tf.logical_and(
                count < objective.d_steps, last_gan >= objective.d_threshold
            )

        def discriminator_body(count, last_gan):
            del last_gan
            return count + 1, self.mean_over_replicas(discriminator_update(count))

        discriminator_updates, _ = tf.while_loop(
            discriminator_continues,
            discriminator_body,
            (tf.constant(0), tf.constant(float("inf"))),
        )

        def generator_continues(count, logs):
            return tf.logical_and(
                count < objective.g_steps, logs["gan"] <= objective.g_threshold
            )

        def generator_body(count, logs):
            del logs
            return count + 1, self.mean_over_replicas(generator_update(count))

        # Before the first update nothing is measured: L_GAN starts below any
        # threshold so that the loop runs at least once.
        no_logs = {
            key: tf.constant(0.0)
            for key in (
                "prior",
                "dis_llike",
                "pixel",
                "gan_non_saturating",
                "feature_matching",
                "encoder_loss",
                "decoder_loss",
            )
        }
        generator_updates, generator_logs = tf.while_loop(
            generator_continues,
            generator_body,
            (tf.constant(0), dict(no_logs, gan=tf.constant(-1.0))),
        )

        return self._count_updates(
            generator_logs, discriminator_updates, generator_updates
        )

    def _count_updates(
        self, generator_logs, discriminator_updates, generator_updates
    ) -> base.Logs:
        """Adds one iteration's updates to the run's counts; the step's logs."""
        self.discriminator_update_count.assign_add(
            tf.cast(discriminator_updates, tf.int64)
        )
        self.generator_update_count.assign_add(tf.cast(generator_updates, tf.int64))
        total = tf.cast(
            self.discriminator_update_count + self.generator_update_count, tf.float32
        )
        return dict(
            generator_logs,
            discriminator_updates=tf.cast(discriminator_updates, tf.float32),
            generator_updates=tf.cast(generator_updates, tf.float32),
            discriminator_share=tf.cast(self.discriminator_update_count, tf.float32)
            / total,
        )

    def eval_step(self, batch: Mapping[str, tf.Tensor]) -> base.Logs:
        images = batch["image"]
        labels = datasets.conditioning_labels(self.model, batch)
        values = self.loss_terms(images, labels, self.next_eval_seed(), is_training=False)
        # The ELBO of the decoder read as a Bernoulli likelihood (one latent
        # draw, analytic KL), so that VAE-GAN runs report the numbers VAE
        # runs do: L_pixel and L_prior are its two terms. The VAE-GAN does
        # not train on it (unless pixel_weight is 1), so expect it to be
        # worse than a VAE's.
        values.update(
            elbo=-(values["pixel"] + values["prior"]),
            reconstruction=values["pixel"],
            kl=values["prior"],
        )
        return values
