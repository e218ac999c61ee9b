"""Tests for trainers/distribute.py and the trainers under MirroredStrategy.

The MirroredStrategy cases run in a process of their own
(tests/distribute_cases.py), which splits the CPU into two logical devices
before TensorFlow starts; this process only reads their results.
"""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
import tf_keras

from tests import testing_utils
from trainers import distribute


class FakeStrategyExtended:
    def __init__(self, should_checkpoint):
        self.should_checkpoint = should_checkpoint


class FakeStrategy:
    """Just enough of a strategy for the role and batch checks."""

    def __init__(self, num_replicas, should_checkpoint=True):
        self.num_replicas_in_sync = num_replicas
        self.extended = FakeStrategyExtended(should_checkpoint)


class ReplicaAveragingOptimizerTest(tf.test.TestCase):
    def test_update_uses_gradients_divided_by_replicas(self):
        variable = tf.Variable([1.0, 2.0])
        sgd = tf_keras.optimizers.SGD(0.5)
        averaging = distribute.ReplicaAveragingOptimizer(sgd, 4)
        averaging.apply_gradients([(tf.constant([4.0, -8.0]), variable)])
        # One replica here, so nothing is summed: the step is 0.5 * g / 4.
        self.assertAllClose(variable.numpy(), [0.5, 3.0])
        self.assertEqual(int(averaging.iterations.numpy()), 1)
        self.assertIs(averaging.wrapped, sgd)

    def test_sparse_and_missing_gradients(self):
        table = tf.Variable([[1.0], [1.0], [1.0]])
        unused = tf.Variable(5.0)
        averaging = distribute.ReplicaAveragingOptimizer(tf_keras.optimizers.SGD(1.0), 2)
        sparse = tf.IndexedSlices(
            tf.constant([[2.0]]), tf.constant([1]), tf.constant([3, 1])
        )
        averaging.apply_gradients([(sparse, table), (None, unused)])
        self.assertAllClose(table.numpy(), [[1.0], [0.0], [1.0]])
        self.assertEqual(float(unused.numpy()), 5.0)

    def test_one_replica_keeps_the_optimiser_itself(self):
        sgd = tf_keras.optimizers.SGD(0.1)
        self.assertIs(
            distribute.averaging_over_replicas(sgd, tf.distribute.get_strategy()), sgd
        )
        self.assertIsInstance(
            distribute.averaging_over_replicas(sgd, FakeStrategy(2)),
            distribute.ReplicaAveragingOptimizer,
        )

    def test_wrapper_does_not_pass_special_names_on(self):
        averaging = distribute.ReplicaAveragingOptimizer(tf_keras.optimizers.SGD(0.1), 2)
        self.assertFalse(hasattr(averaging, "__deepcopy__"))
        self.assertAllClose(float(averaging.learning_rate), 0.1)


class RolesAndChecksTest(tf.test.TestCase):
    def test_default_strategy_is_one_chief_worker(self):
        strategy = tf.distribute.get_strategy()
        self.assertTrue(distribute.is_chief(strategy))
        self.assertEqual(distribute.task(strategy), ("worker", 0))
        self.assertEqual(distribute.num_workers(strategy), 1)
        self.assertFalse(distribute.is_chief(FakeStrategy(2, False)))

    def test_batch_must_split_evenly(self):
        distribute.check_batch_divides(FakeStrategy(4), 32)
        with self.assertRaisesRegex(ValueError, "batch size 30 .* 4 replicas"):
            distribute.check_batch_divides(FakeStrategy(4), 30)

    def test_variables_of_the_default_strategy_pass(self):
        distribute.check_created_in_scope(
            tf.distribute.get_strategy(),
            [
                ("the model", [tf.Variable(1.0)]),
                distribute.optimizer_variables("sgd", tf_keras.optimizers.SGD(0.1)),
            ],
        )


def _run_case(case, output, *arguments, timeout=600):
    result = subprocess.run(
        [sys.executable, "-m", "tests.distribute_cases", case, output, *arguments],
        cwd=testing_utils.REPO_ROOT,
        env=testing_utils.program_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr[-4000:])
    with open(output) as stream:
        return json.load(stream)


class MirroredStrategyTest(tf.test.TestCase):
    """Default strategy vs MirroredStrategy over two logical CPUs, at the
    same global batch."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        output = os.path.join(testing_utils.private_temp_dir(), "mirrored.json")
        cls.results = _run_case("mirrored", output)
        cls.default = cls.results["default"]
        cls.mirrored = cls.results["mirrored"]

    def test_two_replicas(self):
        self.assertEqual(self.results["num_replicas"], 2)

    def test_sgd_regression_follows_the_same_trajectory(self):
        # Plain SGD: if the replicas' gradients were summed rather than
        # averaged, the steps would double and the weights would differ.
        default, mirrored = (self.default["regression"], self.mirrored["regression"])
        self.assertAllClose(mirrored["loss"], default["loss"], rtol=1e-5)
        self.assertAllClose(mirrored["weights"], default["weights"], rtol=1e-5)
        self.assertAllClose(mirrored["test"], default["test"], rtol=1e-5)
        self.assertEqual(mirrored["steps"], 1.0)  # int logs are averaged

    def test_adam_autoencoder_follows_the_same_trajectory(self):
        default, mirrored = (self.default["autoencoder"], self.mirrored["autoencoder"])
        self.assertAllClose(mirrored["train_mse"], default["train_mse"], rtol=1e-4)
        self.assertAllClose(mirrored["test_mse"], default["test_mse"], rtol=1e-4)
        for mine, theirs in zip(mirrored["weights"], default["weights"]):
            self.assertAllClose(mine, theirs, rtol=1e-4, atol=1e-5)
        self.assertEqual(mirrored["global_step"], default["global_step"])

    def test_vaegan_balances_on_the_mean_over_replicas(self):
        # Replica 0 alone would see L_GAN 0.2 (discriminator: stop after
        # one update; generator: go on), replica 1 alone 3.0 (the reverse).
        # The mean, 1.6, gives three of each, on both replicas and on one
        # device with the whole batch.
        for train in (self.default["vaegan"]["train"], self.mirrored["vaegan"]["train"]):
            self.assertEqual(train["discriminator_updates"], 3.0)
            self.assertEqual(train["generator_updates"], 3.0)
            self.assertAllClose(train["gan"], 1.6)
        self.assertTrue(np.isfinite(self.mirrored["vaegan"]["test_elbo"]))

    def test_vaegan_simultaneous_schedule_matches_one_device(self):
        # One step of each network per batch, its gradients summed over the
        # replicas: the same training as one device with the whole batch.
        default, mirrored = (
            self.default["vaegan_simultaneous"],
            self.mirrored["vaegan_simultaneous"],
        )
        for train in (default["train"], mirrored["train"]):
            self.assertEqual(train["discriminator_updates"], 1.0)
            self.assertEqual(train["generator_updates"], 1.0)
        for key in ("gan", "prior", "dis_llike", "decoder_loss"):
            self.assertAllClose(
                mirrored["train"][key], default["train"][key], rtol=1e-4, atol=1e-6
            )
        self.assertAllClose(mirrored["test_elbo"], default["test_elbo"], rtol=1e-4)

    def test_sampled_latents_follow_the_one_device_trajectory(self):
        # Example i of a global batch gets the same latent noise on one
        # device as on two, so a VAE without batch norm or dropout trains
        # the same up to float rounding.
        default, mirrored = (self.default["plain_elbo"], self.mirrored["plain_elbo"])
        self.assertAllClose(mirrored["train_elbo"], default["train_elbo"], rtol=1e-4)
        self.assertAllClose(mirrored["test_elbo"], default["test_elbo"], rtol=1e-4)
        # The VAE-GAN's draws too (its toy model has no dropout).
        self.assertAllClose(
            self.mirrored["vaegan"]["test_elbo"],
            self.default["vaegan"]["test_elbo"],
            rtol=1e-4,
        )

    def test_replicas_share_the_seed_and_split_the_global_noise(self):
        (one_device,) = self.default["plain_elbo"]["replica_draws"]
        first, second = self.mirrored["plain_elbo"]["replica_draws"]
        # The generator's stream does not depend on the strategy.
        self.assertEqual(first["seed"], second["seed"])
        self.assertEqual(first["seed"], one_device["seed"])
        # Dropout seeds differ between replicas; one device keeps its seed.
        self.assertNotEqual(first["replica_seed"], second["replica_seed"])
        self.assertEqual(one_device["replica_seed"], one_device["seed"])
        # Each replica holds its own rows of the same global draw.
        self.assertAllClose(first["noise"] + second["noise"], one_device["noise"])
        self.assertNotAllClose(first["noise"], second["noise"])

    def test_regularised_elbo_run_repeats(self):
        run = self.mirrored["elbo"]
        # Deterministic all the same: a second run gives the same numbers.
        self.assertEqual(run["train_elbo"], self.mirrored["elbo_again"]["train_elbo"])
        self.assertGreater(run["train_elbo"][1], run["train_elbo"][0])
        # Batch norm's moving statistics stay the same on both replicas.
        self.assertNotEmpty(run["moving_mean_copies"])
        for copies in run["moving_mean_copies"]:
            self.assertAllClose(copies[0], copies[1])

    def test_run_started_on_one_device_resumes_on_two(self):
        resumed = self.mirrored["resumed_autoencoder"]
        self.assertTrue(resumed["completed"])
        self.assertAllClose(
            resumed["train_mse"], self.default["autoencoder"]["train_mse"], rtol=1e-4
        )

    def test_model_outside_the_scope_and_odd_batch_are_refused(self):
        self.assertRegex(
            self.mirrored["outside_scope_error"],
            "not created under the scope.*MirroredStrategy",
        )
        self.assertRegex(
            self.mirrored["odd_batch_error"],
            "batch size 7 does not split evenly over the 2 replicas",
        )


if __name__ == "__main__":
    tf.test.main()
