"""Tests for trainers/vaegan.py: three players, their updates and the balance."""

import dataclasses

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import base
from trainers import optimizers
from trainers import vaegan as vaegan_trainer
from vae import datasets
from vae import vaegan

IMAGE_SHAPE = (8, 8, 1)
NUM_CLASSES = 3
BATCH_SIZE = 6
NUM_TRAIN = 24
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE
# The shared tiny VAE-GAN, for this file's images and classes.
TINY = testing_utils.TINY_VAEGAN


def _split(num_examples, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    images = rng.integers(0, 60, size=(num_examples, *IMAGE_SHAPE))
    for label in range(NUM_CLASSES):  # A bright row per class.
        images[labels == label, 2 * label] += 180
    return datasets.ArraySplit(
        images=images.astype(np.uint8), labels=labels.astype(np.int64)
    )


def _data_source(seed=0):
    return testing_utils.array_data_source(
        _split(NUM_TRAIN, 1),
        _split(8, 2),
        batch_size=BATCH_SIZE,
        eval_batch_size=4,
        binarization="none",
        num_classes=NUM_CLASSES,
        seed=seed,
    )


class ScheduledVaeGan(vaegan.VaeGan):
    """A VAE-GAN whose discriminator loss the test dictates, update by update.

    The trainer calls `discriminate` three times per update: real images,
    reconstructions, prior-decoded images. Update i returns logits +s_i for
    the real call and -s_i for the two fake ones, so its L_GAN is
    softplus(-s_i) exactly whatever the weights; the layer-l features are the
    real network's.
    """

    def __init__(self, config, scores):
        super().__init__(config)
        self.scores = tf.Variable(scores, dtype=tf.float32, trainable=False)
        self.calls = tf.Variable(0, trainable=False)

    @property
    def updates(self):
        return int(self.calls.numpy()) // 3

    def discriminate(self, images, labels=None, *, is_training=False, seed=None):
        logits, features = super().discriminate(
            images, labels, is_training=is_training, seed=seed
        )
        score = tf.gather(
            self.scores, tf.minimum(self.calls // 3, self.scores.shape[0] - 1)
        )
        sign = tf.where(self.calls % 3 == 0, 1.0, -1.0)
        self.calls.assign_add(1)
        # Keeps the discriminator's variables in the graph (zero gradient).
        return sign * score + 0.0 * logits, features


def _loss_for_score(score):
    return float(np.log1p(np.exp(-score)))


class VaeGanTrainerTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)

    def _trainer(
        self,
        model=None,
        *,
        objective=vaegan_trainer.VaeGanObjective(),
        optimizer="rmsprop",
        learning_rate=1e-3,
        epochs=1,
        workdir=None,
    ):
        model = model or vaegan.VaeGan(TINY)
        config = testing_utils.looped_trainer_config(
            workdir or self.create_tempdir().full_path, epochs=epochs
        )
        return vaegan_trainer.VaeGanTrainer(
            model,
            {
                player: optimizers.make_optimizer(optimizer, learning_rate)
                for player in vaegan_trainer.PLAYERS
            },
            config,
            _data_source(),
            objective=objective,
        )

    def _batch(self, trainer):
        return next(iter(trainer.data.train_batches(0, 0)))

    @staticmethod
    def _snapshot(module):
        return [variable.numpy().copy() for variable in module.trainable_variables]

    def _changed(self, before, module):
        return [
            not np.array_equal(old, new.numpy())
            for old, new in zip(before, module.trainable_variables)
        ]

    def test_each_update_changes_only_its_own_players_variables(self):
        trainer = self._trainer()
        model, batch = trainer.model, self._batch(trainer)
        labels = batch["label_onehot"]
        seed = tf.constant([1, 2])

        before = {
            player: self._snapshot(getattr(model, player))
            for player in vaegan_trainer.PLAYERS
        }
        trainer.discriminator_update(batch["image"], labels, seed)
        self.assertTrue(all(self._changed(before["discriminator"], model.discriminator)))
        for player in ("encoder", "decoder"):
            self.assertFalse(any(self._changed(before[player], getattr(model, player))))

        before = {
            player: self._snapshot(getattr(model, player))
            for player in vaegan_trainer.PLAYERS
        }
        trainer.generator_update(batch["image"], labels, seed)
        self.assertFalse(any(self._changed(before["discriminator"], model.discriminator)))
        for player in ("encoder", "decoder"):
            self.assertTrue(any(self._changed(before[player], getattr(model, player))))

    def test_real_images_and_reconstructions_share_dropout_masks(self):
        # The same image as "real" and as "reconstruction" must give the same
        # layer-l features in training (dropout on), or the feature loss has
        # a floor of mask noise; the prior pass draws masks of its own.
        trainer = self._trainer()
        batch = self._batch(trainer)
        images, labels = batch["image"], batch["label_onehot"]
        (
            real_logits,
            reconstruction_logits,
            prior_logits,
            real_features,
            reconstruction_features,
            _,
        ) = trainer._discriminate_all(
            images, images, images, labels, is_training=True, seed=tf.constant([4, 2])
        )
        self.assertAllEqual(real_features, reconstruction_features)
        self.assertAllEqual(real_logits, reconstruction_logits)
        self.assertNotAllClose(real_logits, prior_logits)

    @parameterized.parameters(
        (0.0, "minimax"),
        (0.5, "minimax"),
        (0.5, "non_saturating"),
        (0.5, "feature_matching"),
        (0.5, "non_saturating", (1.0, 1.0, 0.0)),
    )
    def test_each_player_gets_the_gradient_of_its_own_loss(
        self, pixel_weight, generator_loss, gan_weights=(1.0, 1.0, 2.0)
    ):
        # With SGD at rate 1 an update moves each variable by exactly minus
        # its gradient, so the applied steps can be compared with gradients
        # of L_enc and L_dec computed separately by hand.
        trainer = self._trainer(
            optimizer="sgd",
            learning_rate=1.0,
            objective=vaegan_trainer.VaeGanObjective(
                pixel_weight=pixel_weight,
                generator_loss=generator_loss,
                gan_weights=gan_weights,
            ),
        )
        model, batch = trainer.model, self._batch(trainer)
        images, labels = batch["image"], batch["label_onehot"]
        seed = tf.constant([5, 6])
        gamma = trainer.objective.gamma

        def expected_gradients(loss_fn, variables):
            with tf.GradientTape() as tape:
                terms = {
                    key: tf.reduce_mean(value)
                    for key, value in trainer.loss_terms(
                        images, labels, seed, is_training=True
                    ).items()
                }
                loss = loss_fn(terms)
            return tape.gradient(loss, variables)

        encoder_gradients = expected_gradients(
            lambda t: t["prior"] + t["dis_llike"] + pixel_weight * t["pixel"],
            model.encoder.trainable_variables,
        )

        def adversarial(terms):
            if generator_loss == "minimax":
                return -terms["gan"]
            if generator_loss == "feature_matching":
                return terms["feature_matching"]
            return terms["gan_non_saturating"]

        decoder_gradients = expected_gradients(
            lambda t: gamma * t["dis_llike"] + pixel_weight * t["pixel"] + adversarial(t),
            model.decoder.trainable_variables,
        )
        before = {
            player: self._snapshot(getattr(model, player))
            for player in ("encoder", "decoder")
        }
        trainer.generator_update(images, labels, seed)
        for player, gradients in (
            ("encoder", encoder_gradients),
            ("decoder", decoder_gradients),
        ):
            module = getattr(model, player)
            for old, new, gradient in zip(
                before[player], module.trainable_variables, gradients
            ):
                self.assertAllClose(old - new.numpy(), gradient, atol=1e-5, rtol=1e-4)
        # The decoder's gradient is not the encoder's loss's: L_prior does
        # not reach it, and -L_GAN does.
        prior_only = expected_gradients(
            lambda t: t["prior"], model.decoder.trainable_variables
        )
        self.assertTrue(all(gradient is None for gradient in prior_only))

    def test_balancing_stops_exactly_when_a_threshold_is_crossed(self):
        # Scores per discriminate call -> (D updates, G updates).
        # D stops at the first update whose L_GAN < 1.0 (score > -0.5413);
        # G stops at the first whose L_GAN > 0.4 (score < 0.7098). All cases
        # run through one trace of the step: only tensors change between
        # them.
        cases = [
            ([3.0, 3.0, 3.0, 3.0], 1, 3),  # D at once, G all three.
            ([-3.0, 3.0, -3.0], 2, 1),  # D second, G first.
            ([-3.0, -3.0, -3.0, 3.0, -3.0], 3, 2),  # D all, G second.
            # Just above 1.0 the discriminator goes on, just below 0.4 the
            # generator does.
            ([-0.5414, -0.5412, 0.7099, -3.0], 2, 2),
        ]
        model = ScheduledVaeGan(TINY, [0.0] * 6)
        trainer = self._trainer(model)
        step = tf.function(trainer.train_step)
        batch = self._batch(trainer)
        for scores, expected_d, expected_g in cases:
            model.scores.assign(scores + [scores[-1]] * (6 - len(scores)))
            model.calls.assign(0)
            trainer.discriminator_update_count.assign(0)
            trainer.generator_update_count.assign(0)
            logs = step(batch, tf.constant([0, 0]))
            self.assertEqual(float(logs["discriminator_updates"]), expected_d)
            self.assertEqual(float(logs["generator_updates"]), expected_g)
            self.assertEqual(model.updates, expected_d + expected_g)
            # The logged L_GAN is the last generator update's.
            self.assertAllClose(
                float(logs["gan"]),
                _loss_for_score(scores[expected_d + expected_g - 1]),
                rtol=1e-5,
            )
            self.assertEqual(int(trainer.discriminator_update_count.numpy()), expected_d)
            self.assertAllClose(
                float(logs["discriminator_share"]), expected_d / (expected_d + expected_g)
            )
        self.assertEqual(step.experimental_get_tracing_count(), 1)

    def test_simultaneous_schedule_steps_all_three_from_one_forward_pass(self):
        # SGD at rate 1: each player moves by minus the gradient of its own
        # loss, all three taken at the parameters before any step.
        trainer = self._trainer(
            optimizer="sgd",
            learning_rate=1.0,
            objective=vaegan_trainer.VaeGanObjective(
                pixel_weight=0.5,
                generator_loss="non_saturating",
                schedule="simultaneous",
                d_steps=1,
                g_steps=1,
            ),
        )
        model, batch = trainer.model, self._batch(trainer)
        images, labels = batch["image"], batch["label_onehot"]
        seed = tf.constant([7, 8])
        variables = {
            player: getattr(model, player).trainable_variables
            for player in vaegan_trainer.PLAYERS
        }
        with tf.GradientTape(persistent=True) as tape:
            terms = {
                key: tf.reduce_mean(value)
                for key, value in trainer.loss_terms(
                    images, labels, seed, is_training=True
                ).items()
            }
            own_loss = dict(
                encoder=terms["prior"] + terms["dis_llike"] + 0.5 * terms["pixel"],
                decoder=terms["dis_llike"]
                + 0.5 * terms["pixel"]
                + terms["gan_non_saturating"],
                discriminator=terms["gan"],
            )
        expected = {
            player: tape.gradient(own_loss[player], variables[player])
            for player in vaegan_trainer.PLAYERS
        }
        before = {
            player: self._snapshot(getattr(model, player))
            for player in vaegan_trainer.PLAYERS
        }
        logs = trainer.joint_update(images, labels, seed)
        self.assertAllClose(logs["gan"], terms["gan"], rtol=1e-5)
        for player in vaegan_trainer.PLAYERS:
            for old, new, gradient in zip(
                before[player], variables[player], expected[player]
            ):
                self.assertAllClose(old - new.numpy(), gradient, atol=1e-5, rtol=1e-4)

    def test_simultaneous_schedule_takes_one_update_of_each_side(self):
        # Scores that would keep the alternating loops going for three
        # updates each (D loses, G loses): the simultaneous schedule still
        # takes exactly one forward pass and one step of each side per batch.
        model = ScheduledVaeGan(
            TINY,
            [-3.0] * 4 * STEPS_PER_EPOCH,
        )
        trainer = self._trainer(
            model,
            objective=vaegan_trainer.VaeGanObjective(
                schedule="simultaneous", d_steps=1, g_steps=1
            ),
        )
        step = tf.function(trainer.train_step)
        for batch in trainer.data.train_batches(0, 0):
            logs = step(batch, tf.constant([0, 0]))
            self.assertEqual(float(logs["discriminator_updates"]), 1.0)
            self.assertEqual(float(logs["generator_updates"]), 1.0)
            self.assertAllClose(float(logs["gan"]), _loss_for_score(-3.0), rtol=1e-5)
        self.assertEqual(model.updates, STEPS_PER_EPOCH)
        self.assertEqual(int(trainer.discriminator_update_count.numpy()), STEPS_PER_EPOCH)
        self.assertEqual(int(trainer.generator_update_count.numpy()), STEPS_PER_EPOCH)
        self.assertEqual(float(logs["discriminator_share"]), 0.5)
        for player in vaegan_trainer.PLAYERS:
            self.assertEqual(
                int(trainer.optimizers[player].iterations.numpy()), STEPS_PER_EPOCH
            )

    def test_a_prior_weight_of_zero_decodes_no_prior_images(self):
        model = vaegan.VaeGan(TINY)
        calls = {"decoder": 0, "discriminate": 0}
        decoder, discriminate = model.decoder, model.discriminate

        def counted(name, function):
            def call(*args, **kwargs):
                calls[name] += 1
                return function(*args, **kwargs)

            return call

        model.discriminate = counted("discriminate", discriminate)
        trainer = self._trainer(
            model, objective=vaegan_trainer.VaeGanObjective(gan_weights=(1.0, 1.0, 0.0))
        )
        trainer.model.decoder = counted("decoder", decoder)
        batch = self._batch(trainer)
        images, labels = batch["image"], batch["label_onehot"]
        seed = tf.constant([1, 2])
        # Evaluation mode: no dropout, so the passes can be redone by hand.
        terms = trainer.loss_terms(images, labels, seed, is_training=False)
        self.assertEqual(calls, {"decoder": 1, "discriminate": 2})
        # The two discriminator passes it made are the whole of L_GAN:
        # (softplus(-real) + softplus(reconstruction)) / 2.
        loc, log_variance = model.encoder_outputs(images, labels)
        latent = loc + tf.exp(0.5 * log_variance) * tf.random.stateless_normal(
            loc.shape, seed=tf.random.experimental.stateless_fold_in(seed, 2)
        )
        reconstructions = tf.sigmoid(decoder(latent, labels))
        real_logits, _ = discriminate(images, labels)
        fake_logits, _ = discriminate(reconstructions, labels)
        self.assertAllClose(
            terms["gan"],
            (tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)) / 2,
            rtol=1e-5,
        )
        self.assertAllEqual(terms["feature_matching"], np.zeros([BATCH_SIZE]))

    def test_the_edge_scores_straddle_the_thresholds(self):
        self.assertGreater(_loss_for_score(-0.5414), 1.0)
        self.assertLess(_loss_for_score(-0.5412), 1.0)
        self.assertLess(_loss_for_score(0.7099), 0.4)

    def test_balancing_never_retraces_the_step(self):
        # Two epochs whose iterations take different numbers of updates run
        # on one trace of the step: the decisions are tensors, not Python.
        model = ScheduledVaeGan(
            TINY,
            [-3.0, 3.0, 3.0, -3.0, 3.0, 3.0, 3.0] * 10,
        )
        trainer = self._trainer(model, epochs=2)
        result = trainer.train()
        self.assertTrue(result.completed)
        self.assertEqual(trainer._step_fn.experimental_get_tracing_count(), 1)
        updates = [
            record["train"]["discriminator_updates"]
            for record in result.metrics["epochs"]
        ]
        self.assertTrue(all(1.0 <= value <= 3.0 for value in updates))

    def test_training_logs_and_evaluation(self):
        trainer = self._trainer(epochs=2)
        result = trainer.train()
        record = result.metrics["epochs"][-1]
        self.assertEqual(
            set(record["train"]),
            {
                "prior",
                "dis_llike",
                "pixel",
                "gan",
                "gan_non_saturating",
                "feature_matching",
                "encoder_loss",
                "decoder_loss",
                "discriminator_updates",
                "generator_updates",
                "discriminator_share",
            },
        )
        self.assertEqual(
            set(record["test"]),
            {
                "elbo",
                "reconstruction",
                "kl",
                "prior",
                "dis_llike",
                "pixel",
                "gan",
                "gan_non_saturating",
                "feature_matching",
            },
        )
        for value in list(record["train"].values()) + list(record["test"].values()):
            self.assertTrue(np.isfinite(value))
        self.assertAllClose(record["test"]["kl"], record["test"]["prior"], rtol=1e-4)
        self.assertAllClose(
            record["test"]["elbo"],
            -(record["test"]["pixel"] + record["test"]["prior"]),
            rtol=1e-4,
        )
        total = int(
            trainer.discriminator_update_count.numpy()
            + trainer.generator_update_count.numpy()
        )
        self.assertBetween(total, 2 * 2 * STEPS_PER_EPOCH, 6 * 2 * STEPS_PER_EPOCH)

    def test_resume_continues_exactly(self):
        workdir = self.create_tempdir().full_path
        reference = self._trainer(epochs=2)
        reference.train()

        tf.random.set_seed(0)
        first = self._trainer(epochs=1, workdir=workdir)
        first.train()
        tf.random.set_seed(0)
        resumed = self._trainer(epochs=2, workdir=workdir)
        resumed.train()

        for a, b in zip(reference.model.variables, resumed.model.variables):
            self.assertAllClose(a, b, atol=1e-6)
        for player in vaegan_trainer.PLAYERS:
            self.assertEqual(
                int(reference.optimizers[player].iterations.numpy()),
                int(resumed.optimizers[player].iterations.numpy()),
            )
        self.assertEqual(
            int(reference.discriminator_update_count.numpy()),
            int(resumed.discriminator_update_count.numpy()),
        )
        self.assertEqual(
            int(reference.generator_update_count.numpy()),
            int(resumed.generator_update_count.numpy()),
        )

    def test_optimizers_must_name_the_three_players(self):
        with self.assertRaisesRegex(ValueError, "one optimiser for each"):
            vaegan_trainer.VaeGanTrainer(
                vaegan.VaeGan(TINY),
                {"encoder": optimizers.make_optimizer("sgd", 0.1)},
                base.TrainerConfig(workdir=self.create_tempdir().full_path, epochs=1),
                _data_source(),
            )

    @parameterized.parameters(
        dict(d_steps=0),
        dict(g_steps=0),
        dict(feature_loss="pixels"),
        dict(gamma=-1.0),
        dict(pixel_weight=-0.1),
        dict(gamma=float("inf")),
        dict(pixel_weight=float("inf")),
        dict(generator_loss="hinge"),
        dict(d_threshold=float("nan")),
        dict(schedule="round_robin"),
        # The simultaneous schedule takes one step of each player.
        dict(schedule="simultaneous"),
        dict(schedule="simultaneous", d_steps=1, g_steps=2),
        dict(gan_weights=(1.0, 1.0)),
        dict(optimizer="adagrad"),
        dict(decoder_learning_rate=0.0),
        dict(encoder_learning_rate=float("inf")),
    )
    def test_objective_validation(self, **fields):
        with self.assertRaisesRegex(ValueError, "|".join(fields)):
            vaegan_trainer.VaeGanObjective(**fields).validate()

    def test_unconditional_variant_trains(self):
        model = vaegan.VaeGan(dataclasses.replace(TINY, num_classes=0))
        trainer = self._trainer(model)
        result = trainer.train()
        self.assertTrue(np.isfinite(result.metrics["final"]["test"]["gan"]))


if __name__ == "__main__":
    tf.test.main()
