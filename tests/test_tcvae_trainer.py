"""Tests for trainers/tcvae.py: the beta-TCVAE step against its estimator."""

import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import optimizers
from trainers import tcvae
from trainers import total_correlation
from vae import datasets
from vae import models

IMAGE_SHAPE = (4, 4, 1)
BATCH_SIZE = 8
NUM_TRAIN = 32
TINY = testing_utils.mlp_config(IMAGE_SHAPE, (8,), latent_dim=3)


def data_source(seed=0):
    """32 random binary 4x4 images in batches of 8, 8 test images."""
    rng = np.random.default_rng(seed)

    def split(n):
        return datasets.ArraySplit(
            (rng.random((n, *IMAGE_SHAPE)) < 0.5).astype(np.uint8) * 255,
            np.zeros(n, np.int64),
        )

    train, test = split(NUM_TRAIN), split(8)
    return testing_utils.array_data_source(
        train,
        test,
        batch_size=BATCH_SIZE,
        eval_batch_size=4,
        binarization="none",
        num_classes=1,
        seed=seed,
    )


class BetaTcvaeTrainerTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)

    def _trainer(
        self,
        objective=tcvae.BetaTcvaeObjective(),
        *,
        epochs=1,
        workdir=None,
        optimizer=None,
    ):
        config = testing_utils.looped_trainer_config(
            workdir or self.create_tempdir().full_path, epochs=epochs
        )
        if optimizer is None:
            return tcvae.BetaTcvaeTrainer.from_objective(
                models.VAE(TINY), objective, config, data_source()
            )
        return tcvae.BetaTcvaeTrainer(
            models.VAE(TINY), optimizer, config, data_source(), objective=objective
        )

    def test_step_takes_the_gradient_of_the_weighted_decomposition(self):
        # SGD at rate 1 moves each variable by minus its gradient, which is
        # recomputed here from the estimator of trainers.total_correlation
        # written out on the same batch and noise.
        objective = tcvae.BetaTcvaeObjective(
            alpha=0.5, beta=6.0, gamma=2.0, tc_estimator="mss"
        )
        trainer = self._trainer(
            objective, optimizer=optimizers.make_optimizer("sgd", 1.0)
        )
        model = trainer.model
        batch = next(iter(trainer.data.train_batches(0, 0)))
        images = batch["image"]
        seed = tf.constant([7, 8])
        noise = tf.random.stateless_normal([BATCH_SIZE, 1, 3], seed)[:, 0]
        with tf.GradientTape() as tape:
            posterior = model.encode(images)
            loc, scale = posterior.mean(), posterior.stddev()
            z = loc + scale * noise
            distortion = -model.decode(z).log_prob(images)
            terms = total_correlation.kl_decomposition(
                z, loc, 2 * tf.math.log(scale), dataset_size=NUM_TRAIN, estimator="mss"
            )
            loss = tf.reduce_mean(
                distortion
                + 0.5 * terms["mutual_information"]
                + 6.0 * terms["total_correlation"]
                + 2.0 * terms["dimension_kl"]
            )
        gradients = tape.gradient(loss, model.trainable_variables)
        before = [v.numpy().copy() for v in model.trainable_variables]
        logs = trainer.train_step(batch, seed)
        self.assertAllClose(logs["loss"], loss, rtol=1e-5)
        self.assertAllClose(
            logs["total_correlation"],
            tf.reduce_mean(terms["total_correlation"]),
            rtol=1e-5,
        )
        for old, variable, gradient in zip(before, model.trainable_variables, gradients):
            self.assertAllClose(old - variable.numpy(), gradient, atol=1e-5, rtol=1e-4)
        # The three terms add up to the single-sample KL that the logged
        # ELBO uses.
        self.assertAllClose(
            logs["mutual_information"] + logs["total_correlation"] + logs["dimension_kl"],
            logs["kl"],
            atol=1e-4,
        )

    def test_equal_weights_are_the_beta_vae_loss_in_the_mean(self):
        # alpha = beta = gamma: the decomposition sums back to the
        # single-sample KL, so the loss is distortion + beta (log q - log p).
        trainer = self._trainer(tcvae.BetaTcvaeObjective(alpha=3.0, beta=3.0, gamma=3.0))
        batch = next(iter(trainer.data.train_batches(0, 0)))
        logs = trainer.train_step(batch, tf.constant([1, 2]))
        self.assertAllClose(
            logs["loss"], logs["reconstruction"] + 3.0 * logs["kl"], rtol=1e-5
        )

    def test_trains_evaluates_and_resumes_exactly(self):
        reference = self._trainer(epochs=2)
        result = reference.train()
        final = result.metrics["final"]
        self.assertTrue(np.isfinite(final["test"]["elbo"]))
        workdir = self.create_tempdir().full_path
        tf.random.set_seed(0)
        self._trainer(epochs=1, workdir=workdir).train()
        tf.random.set_seed(0)
        resumed = self._trainer(epochs=2, workdir=workdir)
        resumed.train()
        for a, b in zip(reference.model.variables, resumed.model.variables):
            self.assertAllClose(a, b, atol=1e-6)

    def test_objective_validation(self):
        for fields, fragment in (
            ({"alpha": -1.0}, "--alpha"),
            ({"gamma": float("nan")}, "--gamma"),
            ({"tc_estimator": "exact"}, "--tc_estimator"),
        ):
            with self.assertRaisesRegex(ValueError, fragment):
                tcvae.BetaTcvaeObjective(**fields).validate()


if __name__ == "__main__":
    tf.test.main()
