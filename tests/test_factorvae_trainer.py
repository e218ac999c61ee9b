"""Tests for vae/factorvae.py and trainers/factorvae.py: two players, each on
its own loss, tape, variables and optimiser."""

import numpy as np
import tensorflow as tf
import tf_keras

from tests import test_tcvae_trainer
from tests import testing_utils
from trainers import factorvae as factorvae_trainer
from trainers import total_correlation
from vae import factorvae

TINY = factorvae.FactorVaeConfig(
    architecture="mlp",
    image_shape=test_tcvae_trainer.IMAGE_SHAPE,
    latent_dim=3,
    hidden_units=(8,),
    discriminator_units=(16, 16),
)


class FactorVaeTrainerTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)

    def _trainer(
        self,
        objective=factorvae_trainer.FactorVaeObjective(),
        *,
        epochs=1,
        workdir=None,
        optimizers=None,
    ):
        config = testing_utils.looped_trainer_config(
            workdir or self.create_tempdir().full_path, epochs=epochs
        )
        model = factorvae.FactorVAE(TINY)
        data = test_tcvae_trainer.data_source()
        if optimizers is None:
            return factorvae_trainer.FactorVaeTrainer.from_objective(
                model, objective, config, data
            )
        return factorvae_trainer.FactorVaeTrainer(
            model, optimizers, config, data, objective=objective
        )

    def test_model_splits_its_variables_between_the_players(self):
        model = factorvae.FactorVAE(TINY)
        vae_ids = {id(v) for v in model.vae_variables}
        d_ids = {id(v) for v in model.discriminator.trainable_variables}
        self.assertEmpty(vae_ids & d_ids)
        self.assertEqual(vae_ids | d_ids, {id(v) for v in model.trainable_variables})
        # Two hidden layers and the logit layer, weights and biases.
        self.assertLen(d_ids, 6)
        self.assertEqual(model.discriminate(tf.zeros([5, 3])).shape, [5])

    def test_each_player_steps_on_the_gradient_of_its_own_loss(self):
        # SGD at rate 1 for both: each variable moves by minus the gradient
        # of its own player's loss, computed here separately.
        objective = factorvae_trainer.FactorVaeObjective(gamma=10.0)
        trainer = self._trainer(
            objective,
            optimizers={
                "vae": tf_keras.optimizers.SGD(1.0),
                "discriminator": tf_keras.optimizers.SGD(1.0),
            },
        )
        model = trainer.model
        batch = next(iter(trainer.data.train_batches(0, 0)))
        seed = tf.constant([3, 9])

        def gradients_of(loss_fn, variables):
            with tf.GradientTape() as tape:
                loss = loss_fn(trainer.loss_terms(batch, seed))
            return loss, tape.gradient(loss, variables)

        vae_loss, vae_gradients = gradients_of(
            lambda t: (
                tf.reduce_mean(t["distortion"] + t["rate"])
                + 10.0 * tf.reduce_mean(t["tc_logits"])
            ),
            model.vae_variables,
        )
        d_loss, d_gradients = gradients_of(
            lambda t: total_correlation.discriminator_loss(
                t["real_logits"], t["permuted_logits"]
            ),
            model.discriminator.trainable_variables,
        )
        # The discriminator's loss does not reach the VAE (codes enter it
        # through stop_gradient), and the VAE's loss does reach D: so a
        # single summed loss would move D wrongly.
        _, leak = gradients_of(
            lambda t: total_correlation.discriminator_loss(
                t["real_logits"], t["permuted_logits"]
            ),
            model.vae_variables,
        )
        self.assertTrue(all(gradient is None for gradient in leak))
        _, reach = gradients_of(
            lambda t: tf.reduce_mean(t["tc_logits"]),
            model.discriminator.trainable_variables,
        )
        self.assertTrue(any(np.abs(g).max() > 0 for g in reach))

        before = {
            "vae": [v.numpy().copy() for v in model.vae_variables],
            "discriminator": [
                v.numpy().copy() for v in model.discriminator.trainable_variables
            ],
        }
        logs = trainer.train_step(batch, seed)
        self.assertAllClose(logs["loss"], vae_loss, rtol=1e-5)
        self.assertAllClose(logs["discriminator_loss"], d_loss, rtol=1e-5)
        for player, variables, gradients in (
            ("vae", model.vae_variables, vae_gradients),
            ("discriminator", model.discriminator.trainable_variables, d_gradients),
        ):
            for old, variable, gradient in zip(before[player], variables, gradients):
                self.assertAllClose(
                    old - variable.numpy(), gradient, atol=1e-5, rtol=1e-4, msg=player
                )

    def test_discriminator_learns_to_tell_correlated_codes(self):
        # Codes whose two dimensions are equal are easy to tell from their
        # permutation; after some steps D's loss falls well below log 4
        # (chance: softplus(0) twice).
        model = factorvae.FactorVAE(TINY)
        optimizer = tf_keras.optimizers.Adam(1e-2)
        seed = tf.constant([1, 1])
        first = None
        for step in range(100):
            x = tf.random.stateless_normal([64, 1], seed + [step, 0])
            codes = tf.concat([x, x, tf.zeros_like(x)], axis=1)
            permuted = total_correlation.permute_dims(codes, seed + [0, step])
            with tf.GradientTape() as tape:
                loss = total_correlation.discriminator_loss(
                    model.discriminate(codes), model.discriminate(permuted)
                )
            variables = model.discriminator.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            first = float(loss) if first is None else first
        self.assertAllClose(first, 2 * np.log(2), atol=0.1)
        self.assertLess(float(loss), 0.8)

    def test_trains_evaluates_and_resumes_exactly(self):
        reference = self._trainer(epochs=2)
        final = reference.train().metrics["final"]
        self.assertTrue(np.isfinite(final["test"]["elbo"]))
        workdir = self.create_tempdir().full_path
        tf.random.set_seed(0)
        self._trainer(epochs=1, workdir=workdir).train()
        tf.random.set_seed(0)
        resumed = self._trainer(epochs=2, workdir=workdir)
        resumed.train()
        for a, b in zip(reference.model.variables, resumed.model.variables):
            self.assertAllClose(a, b, atol=1e-6)
        for player in ("vae", "discriminator"):
            self.assertEqual(
                int(reference.optimizers[player].iterations.numpy()),
                int(resumed.optimizers[player].iterations.numpy()),
            )
            self.assertEqual(int(resumed.optimizers[player].iterations.numpy()), 8)

    def test_objective_validation(self):
        for fields, fragment in (
            ({"gamma": -1.0}, "--gamma"),
            ({"discriminator_learning_rate": 0.0}, "--discriminator_learning_rate"),
        ):
            with self.assertRaisesRegex(ValueError, fragment):
                factorvae_trainer.FactorVaeObjective(**fields).validate()


if __name__ == "__main__":
    tf.test.main()
