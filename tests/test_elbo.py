"""Tests for trainers/elbo.py: the ELBO trainer on tiny synthetic images."""

import json
import os

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import base
from trainers import elbo
from trainers import losses
from trainers import optimizers
from vae import datasets
from vae import models

IMAGE_SHAPE = (4, 4, 1)
NUM_TRAIN = 64
BATCH_SIZE = 16
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE
MODEL_CONFIG = testing_utils.mlp_config(IMAGE_SHAPE, (16,))
TRAIN_KEYS = {"loss", "elbo", "reconstruction", "kl", "kl_weight"}
EVAL_KEYS = {"elbo", "reconstruction", "kl"}


def _synthetic_split(num_examples: int, seed: int) -> datasets.ArraySplit:
    return testing_utils.two_class_split(num_examples, seed, IMAGE_SHAPE)


def _data_source(
    train: datasets.ArraySplit,
    test: datasets.ArraySplit,
    eval_batch_size: int = 8,
    seed: int = 0,
) -> base.DataSource:
    return testing_utils.array_data_source(
        train,
        test,
        batch_size=BATCH_SIZE,
        eval_batch_size=eval_batch_size,
        binarization="static",
        num_classes=2,
        seed=seed,
    )


class ElboTrainerTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.train_split = _synthetic_split(NUM_TRAIN, seed=1)
        self.test_split = _synthetic_split(10, seed=2)

    def _trainer(
        self,
        *,
        epochs,
        objective=elbo.ElboObjective(),
        learning_rate=1e-2,
        trainer_class=elbo.ElboTrainer,
        eval_batch_size=8,
    ):
        model = models.VAE(MODEL_CONFIG)
        config = testing_utils.looped_trainer_config(
            self.create_tempdir().full_path,
            epochs=epochs,
            steps_per_loop=STEPS_PER_EPOCH,
        )
        return trainer_class(
            model=model,
            optimizer=optimizers.make_optimizer("adam", learning_rate),
            config=config,
            data=_data_source(
                self.train_split, self.test_split, eval_batch_size=eval_batch_size
            ),
            objective=objective,
        )

    @parameterized.parameters("analytic", "mc")
    def test_training_lowers_the_loss(self, kl_estimator):
        trainer = self._trainer(epochs=6, objective=elbo.ElboObjective(kl=kl_estimator))
        result = trainer.train()
        self.assertTrue(result.completed)
        self.assertEqual(result.global_step, 6 * STEPS_PER_EPOCH)
        epochs = result.metrics["epochs"]
        self.assertLen(epochs, 6)
        first, last = epochs[0]["train"], epochs[-1]["train"]
        # 16 binary pixels start near 16 * log 2 = 11 nats; the two patterns
        # are easy to learn.
        self.assertLess(last["loss"], first["loss"] - 1.0)
        self.assertLess(last["reconstruction"], first["reconstruction"])
        self.assertGreater(last["elbo"], first["elbo"])
        self.assertGreater(
            result.metrics["final"]["test"]["elbo"], epochs[0]["test"]["elbo"]
        )

    def test_logs_have_the_documented_keys(self):
        trainer = self._trainer(epochs=1)
        result = trainer.train()
        (record,) = result.metrics["epochs"]
        self.assertEqual(set(record["train"]), TRAIN_KEYS)
        self.assertEqual(set(record["test"]), EVAL_KEYS)
        self.assertEqual(record["epoch"], 1)
        self.assertEqual(record["global_step"], STEPS_PER_EPOCH)
        # One train_step outside the loop returns scalar tensors.
        batch = next(iter(trainer.data.train_batches(0, 0)))
        logs = trainer.train_step(batch, tf.constant([1, 2], tf.int32))
        self.assertEqual(set(logs), TRAIN_KEYS)
        for key, value in logs.items():
            self.assertEqual(value.shape, (), msg=key)
        # With beta 1 the loss is the negative ELBO, step by step and averaged.
        train = record["train"]
        self.assertNear(train["loss"], -train["elbo"], 1e-3)
        self.assertNear(train["elbo"], -(train["reconstruction"] + train["kl"]), 1e-3)
        with open(os.path.join(trainer.config.workdir, "metrics.json")) as f:
            self.assertEqual(json.load(f), result.metrics)

    def test_beta_weights_kl_in_loss_but_not_in_elbo(self):
        trainer = self._trainer(epochs=2, objective=elbo.ElboObjective(beta=0.25))
        result = trainer.train()
        for record in result.metrics["epochs"]:
            train = record["train"]
            self.assertAllClose(train["kl_weight"], 0.25)
            self.assertNear(
                train["loss"], train["reconstruction"] + 0.25 * train["kl"], 1e-3
            )
            self.assertNear(train["elbo"], -(train["reconstruction"] + train["kl"]), 1e-3)
            # kl > 0, so a weight below 1 makes the loss smaller than -elbo.
            self.assertLess(train["loss"], -train["elbo"])
        self.assertAllClose(trainer.kl_weight(), 0.25)

    def test_kl_warmup_raises_weight_linearly_per_step(self):
        beta, warmup_steps = 2.0, 2 * STEPS_PER_EPOCH
        trainer = self._trainer(
            epochs=3,
            objective=elbo.ElboObjective(
                beta=beta, kl_warmup_epochs=warmup_steps / STEPS_PER_EPOCH
            ),
        )
        self.assertAllClose(trainer.kl_weight(), 0.0)
        result = trainer.train()
        # Step s (0-based) uses beta * min(1, s / warmup_steps); each epoch
        # logs the average over its steps.
        expected = []
        for epoch in range(3):
            steps = np.arange(epoch * STEPS_PER_EPOCH, (epoch + 1) * STEPS_PER_EPOCH)
            expected.append(np.mean(beta * np.minimum(1.0, steps / warmup_steps)))
        logged = [record["train"]["kl_weight"] for record in result.metrics["epochs"]]
        self.assertAllClose(logged, expected, atol=1e-6)
        self.assertAllClose(logged[-1], beta)
        self.assertAllClose(trainer.kl_weight(), beta)

    @parameterized.parameters("analytic", "mc")
    def test_evaluation_reports_negative_sum_of_terms(self, kl_estimator):
        # 10 test images in batches of 4: the last batch has 2 padding rows.
        trainer = self._trainer(
            epochs=1, eval_batch_size=4, objective=elbo.ElboObjective(kl=kl_estimator)
        )
        trainer.train()
        results = trainer.evaluate()
        self.assertEqual(set(results), {"test"})
        test = results["test"]
        self.assertEqual(set(test), EVAL_KEYS)
        self.assertNear(test["elbo"], -(test["reconstruction"] + test["kl"]), 1e-4)
        self.assertGreater(test["reconstruction"], 0.0)
        # Evaluation noise restarts every time: the same numbers twice.
        self.assertEqual(trainer.evaluate(), results)
        if kl_estimator == "analytic":
            # The closed-form KL is deterministic: it must be the mean over
            # exactly the 10 real images, padding excluded.
            images = datasets.binarize_numpy(self.test_split.images, "static", seed=0)
            model = trainer.model
            kl = losses.analytic_kl(
                model.encode(tf.constant(images)), model.prior()
            ).numpy()
            self.assertNear(test["kl"], float(np.mean(kl)), 1e-4)

    def test_subclass_extending_train_step_gets_its_metric_logged(self):

        class KlPerDimTrainer(elbo.ElboTrainer):
            def train_step(self, batch, seed):
                logs = super().train_step(batch, seed)
                logs["kl_per_dim"] = logs["kl"] / self.model.latent_dim
                return logs

        trainer = self._trainer(epochs=2, trainer_class=KlPerDimTrainer)
        result = trainer.train()
        self.assertTrue(result.completed)
        with open(os.path.join(trainer.config.workdir, "metrics.json")) as f:
            metrics = json.load(f)
        self.assertLen(metrics["epochs"], 2)
        for record in metrics["epochs"]:
            train = record["train"]
            self.assertEqual(set(train), TRAIN_KEYS | {"kl_per_dim"})
            self.assertNear(
                train["kl_per_dim"], train["kl"] / MODEL_CONFIG.latent_dim, 1e-5
            )
        self.assertIn("kl_per_dim", metrics["final"]["train"])


class OptimizerKindsTest(tf.test.TestCase):
    """The trainer takes Keras 3 optimisers as well as tf-keras ones."""

    def _train(self, optimizer, workdir, epochs):
        tf.random.set_seed(0)
        model = models.VAE(MODEL_CONFIG)
        split = _synthetic_split(NUM_TRAIN, seed=1)
        trainer = elbo.ElboTrainer(
            model,
            optimizer,
            base.TrainerConfig(
                workdir=workdir,
                epochs=epochs,
                seed=3,
                steps_per_loop=STEPS_PER_EPOCH,
                progress="none",
            ),
            _data_source(split, _synthetic_split(10, seed=2)),
        )
        return trainer.train().metrics

    def test_keras_3_adam_trains_and_resumes_exactly(self):
        workdir = self.create_tempdir().full_path
        self._train(keras.optimizers.Adam(1e-2), workdir, epochs=1)
        resumed = self._train(keras.optimizers.Adam(1e-2), workdir, epochs=2)
        straight = self._train(
            keras.optimizers.Adam(1e-2), self.create_tempdir().full_path, epochs=2
        )
        first, last = (record["train"]["loss"] for record in straight["epochs"])
        self.assertLess(last, first)
        self.assertEqual(resumed["final"]["test"], straight["final"]["test"])

    def test_an_object_that_is_no_optimiser_is_refused_naming_it(self):
        with self.assertRaisesRegex(
            ValueError,
            r"'vae'.*'adam'.*not a usable optimiser.*"
            r"apply_gradients",
        ):
            self._train("adam", self.create_tempdir().full_path, epochs=1)


class ElboObjectiveTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("estimator", dict(kl="exact"), r"--kl.*'exact'"),
        ("negative_beta", dict(beta=-0.5), r"--beta.*-0\.5"),
        ("infinite_beta", dict(beta=float("inf")), r"--beta.*inf"),
        ("nan_beta", dict(beta=float("nan")), r"--beta.*nan"),
        ("negative_warmup", dict(kl_warmup_epochs=-3.0), r"--kl_warmup_epochs.*-3"),
        ("optimizer", dict(optimizer="adagrad"), r"adagrad"),
        ("zero_rate", dict(learning_rate=0.0), r"--learning_rate.*0"),
        ("infinite_rate", dict(learning_rate=float("inf")), r"--learning_rate.*inf"),
        (
            "negative_decay",
            dict(learning_rate_decay_epochs=-1.0),
            r"--learning_rate_decay_epochs.*-1",
        ),
        (
            "nan_decay",
            dict(learning_rate_decay_epochs=float("nan")),
            r"--learning_rate_decay_epochs.*nan",
        ),
    )
    def test_validate_rejects_bad_values(self, fields, message):
        config = elbo.ElboObjective(**fields)
        with self.assertRaisesRegex(ValueError, message):
            config.validate()

    @parameterized.parameters(
        dict(kl="analytic"),
        dict(kl="mc"),
        dict(beta=0.0),
        dict(beta=4.0),
        dict(kl_warmup_epochs=0.0),
        dict(kl_warmup_epochs=2.5),
        dict(optimizer="sgd", learning_rate=3.0),
        dict(learning_rate_decay_epochs=12.5),
    )
    def test_validate_accepts_good_values(self, **fields):
        elbo.ElboObjective(**fields).validate()

    @parameterized.parameters(
        # (decay epochs, the rate in force at each of the first 6 updates)
        # with 4 steps per epoch: 0.5 epochs are 2 updates, 1 epoch 4.
        (0.0, [0.1] * 6),
        (0.5, [0.1, 0.05, 0.0, 0.0, 0.0, 0.0]),
        (1.0, [0.05 * (1 + np.cos(np.pi * step / 4)) for step in range(4)] + [0.0] * 2),
    )
    def test_the_optimiser_decays_over_the_given_epochs(self, epochs, rates):
        optimizer = elbo.ElboObjective(
            optimizer="sgd", learning_rate=0.1, learning_rate_decay_epochs=epochs
        ).make_optimizer(steps_per_epoch=4)
        # SGD on loss = w moves w by exactly the rate in force.
        weight = tf.Variable(0.0)
        moves = []
        for _ in range(6):
            before = float(weight.numpy())
            optimizer.apply_gradients([(tf.constant(1.0), weight)])
            moves.append(before - float(weight.numpy()))
        self.assertAllClose(moves, rates, atol=1e-7)

    def test_from_objective_counts_the_decay_in_the_data_s_epochs(self):
        split = _synthetic_split(NUM_TRAIN, seed=0)
        model = models.VAE(MODEL_CONFIG)
        trainer = elbo.ElboTrainer.from_objective(
            model,
            elbo.ElboObjective(
                optimizer="sgd", learning_rate=0.1, learning_rate_decay_epochs=1.0
            ),
            base.TrainerConfig(
                workdir=os.path.join(self.create_tempdir().full_path, "run"), epochs=1
            ),
            _data_source(split, split),
        )
        optimizer = trainer.optimizers["vae"]
        rates = []
        for _ in range(STEPS_PER_EPOCH + 1):
            optimizer.apply_gradients(
                (tf.zeros_like(variable), variable)
                for variable in model.trainable_variables
            )
            rates.append(float(optimizer.learning_rate))
        # The rate each update used: down the half cosine over one epoch of
        # STEPS_PER_EPOCH updates, then 0.
        expected = [
            0.05 * (1 + np.cos(np.pi * step / STEPS_PER_EPOCH))
            for step in range(STEPS_PER_EPOCH)
        ] + [0.0]
        self.assertAllClose(rates, expected, atol=1e-7)

    def test_trainer_rejects_bad_config_before_building(self):
        model = models.VAE(MODEL_CONFIG)
        workdir = os.path.join(self.create_tempdir().full_path, "run")
        split = _synthetic_split(BATCH_SIZE, seed=0)
        with self.assertRaisesRegex(ValueError, r"beta.*-1"):
            elbo.ElboTrainer(
                model=model,
                optimizer=optimizers.make_optimizer("sgd", 0.1),
                config=base.TrainerConfig(workdir=workdir, epochs=1),
                data=_data_source(split, split),
                objective=elbo.ElboObjective(beta=-1.0),
            )
        self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
    tf.test.main()
