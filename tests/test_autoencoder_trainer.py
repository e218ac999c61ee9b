"""Tests for trainers/autoencoder.py: the MSE trainer and reconstruct_points."""

import json
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import autoencoder as autoencoder_trainer
from trainers import optimizers
from vae import autoencoder

BATCH_SIZE = 20
NUM_TRAIN = 200
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE
TINY = autoencoder.AutoencoderConfig(hidden_units=(16,), code_dim=1)


def _data_source(train, test):
    # 60 test points in batches of 25: the last batch is padded.
    return testing_utils.array_data_source(
        train,
        test,
        batch_size=BATCH_SIZE,
        eval_batch_size=25,
        binarization="none",
        num_classes=2,
    )


class SquaredErrorTest(tf.test.TestCase):
    def test_matches_numpy(self):
        points = np.array([[0.0, 1.0], [2.0, -1.0]], np.float32)
        reconstructions = np.array([[1.0, 1.0], [0.0, 2.0]], np.float32)
        self.assertAllClose(
            autoencoder_trainer.squared_error_per_example(points, reconstructions),
            [0.5, (4.0 + 9.0) / 2],
        )


class AutoencoderTrainerTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.train_split, self.test_split = testing_utils.toy2d_splits(NUM_TRAIN)

    def _trainer(
        self, num_classes, epochs=3, trainer_class=autoencoder_trainer.AutoencoderTrainer
    ):
        model = autoencoder.Autoencoder(
            autoencoder.AutoencoderConfig(
                hidden_units=(16,), code_dim=1, num_classes=num_classes
            )
        )
        config = testing_utils.looped_trainer_config(
            self.create_tempdir().full_path,
            epochs=epochs,
            seed=0,
            steps_per_loop=STEPS_PER_EPOCH,
        )
        return trainer_class(
            model,
            optimizers.make_optimizer("adam", 1e-2),
            config,
            _data_source(self.train_split, self.test_split),
        )

    @parameterized.named_parameters(("unconditional", 0), ("conditional", 2))
    def test_loss_decreases(self, num_classes):
        trainer = self._trainer(num_classes)
        before = trainer.evaluate()["test"]["mse"]
        result = trainer.train()
        self.assertTrue(result.completed)
        self.assertEqual(result.global_step, 3 * STEPS_PER_EPOCH)
        history = result.metrics["epochs"]
        self.assertLess(history[-1]["train"]["mse"], history[0]["train"]["mse"])
        self.assertLess(result.metrics["final"]["test"]["mse"], 0.7 * before)
        with open(os.path.join(trainer.config.workdir, "metrics.json")) as stream:
            self.assertEqual(set(json.load(stream)["final"]["test"]), {"mse"})

    @parameterized.named_parameters(("unconditional", 0), ("conditional", 2))
    def test_eval_mse_is_the_mean_over_real_points(self, num_classes):
        trainer = self._trainer(num_classes)
        reconstructions = autoencoder_trainer.reconstruct_points(
            trainer.model, self.test_split.images, self.test_split.labels
        )
        expected = np.mean((self.test_split.images - reconstructions) ** 2)
        # Padding rows would pull the mean towards the zero input's error.
        self.assertAllClose(trainer.evaluate()["test"]["mse"], expected, rtol=1e-5)

    def test_train_step_updates_every_variable(self):
        trainer = self._trainer(num_classes=2)
        before = [v.numpy() for v in trainer.model.trainable_variables]
        batch = next(
            iter(_data_source(self.train_split, self.test_split).train_batches(0, 0))
        )
        logs = trainer.train_step(batch, tf.constant([1, 2], tf.int32))
        self.assertEqual(set(logs), {"mse"})
        for old, variable in zip(before, trainer.model.trainable_variables):
            self.assertNotAllClose(old, variable.numpy(), msg=variable.name)

    def test_subclass_can_add_logs(self):

        class CodeScaleTrainer(autoencoder_trainer.AutoencoderTrainer):
            def train_step(self, batch, seed):
                logs = super().train_step(batch, seed)
                code = self.model.encode(batch["image"])
                logs["code_std"] = tf.math.reduce_std(code)
                return logs

        result = self._trainer(
            num_classes=0, epochs=1, trainer_class=CodeScaleTrainer
        ).train()
        train_logs = result.metrics["final"]["train"]
        self.assertEqual(set(train_logs), {"mse", "code_std"})
        self.assertGreater(train_logs["code_std"], 0.0)


class ReconstructPointsTest(tf.test.TestCase):
    def test_reconstruct_points_passes_labels_to_a_conditional_model(self):
        tf.random.set_seed(1)
        model = autoencoder.Autoencoder(
            autoencoder.AutoencoderConfig(hidden_units=(4,), num_classes=2)
        )
        points = np.array([[0.1, 0.2], [1.0, -0.3]], np.float32)
        labels = np.array([1, 0])
        self.assertAllClose(
            autoencoder_trainer.reconstruct_points(model, points, labels),
            model.reconstruct(points, tf.one_hot(labels, 2)),
        )


if __name__ == "__main__":
    tf.test.main()
