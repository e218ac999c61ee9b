"""Tests for trainers/classification.py: the classifier trainer and its cache."""

import glob
import json
import os
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import base
from trainers import classification
from trainers import optimizers
from vae import classifier
from vae import datasets

IMAGE_SHAPE = (8, 8, 1)
BATCH_SIZE = 16
NUM_TRAIN = 96
SMALL = classifier.ClassifierConfig(
    image_shape=IMAGE_SHAPE, num_classes=2, filters=(4,), dense_units=8, dropout_rate=0.25
)
# The cache tests read fake 28x28 MNIST files; this classifier is tiny to train on them.
TINY_MNIST = classifier.ClassifierConfig(filters=(2,), dense_units=4)
TINY_RECIPE = classification.TrainingRecipe(epochs=1, batch_size=10)


def _separable_split(num_examples: int, seed: int) -> datasets.ArraySplit:
    return testing_utils.two_class_split(
        num_examples, seed, IMAGE_SHAPE, noise=60, brightness=180
    )


class ClassificationTrainerTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.train_split = _separable_split(NUM_TRAIN, seed=1)
        # 30 test images in batches of 8: the last batch has 2 padding rows.
        self.test_split = _separable_split(30, seed=2)

    def _trainer(self, *, epochs, config=SMALL, label_smoothing=0.0, learning_rate=1e-2):
        data = testing_utils.array_data_source(
            self.train_split,
            self.test_split,
            batch_size=BATCH_SIZE,
            eval_batch_size=8,
            binarization="none",
            num_classes=2,
        )
        return classification.ClassificationTrainer(
            classifier.Classifier(config),
            optimizers.make_optimizer("adam", learning_rate),
            base.TrainerConfig(
                workdir=self.create_tempdir().full_path,
                epochs=epochs,
                seed=3,
                progress="none",
            ),
            data,
            label_smoothing=label_smoothing,
        )

    def test_learns_a_separable_task(self):
        trainer = self._trainer(epochs=5)
        before = trainer.evaluate()["test"]
        result = trainer.train()
        self.assertTrue(result.completed)
        epochs = result.metrics["epochs"]
        self.assertEqual(set(epochs[0]["train"]), {"loss", "accuracy"})
        self.assertEqual(set(epochs[0]["test"]), {"accuracy", "cross_entropy"})
        final = result.metrics["final"]["test"]
        self.assertGreaterEqual(final["accuracy"], 0.95)
        self.assertLess(final["cross_entropy"], before["cross_entropy"] / 2)
        self.assertLess(epochs[-1]["train"]["loss"], epochs[0]["train"]["loss"])

    def test_evaluation_is_exact_over_real_rows(self):
        trainer = self._trainer(epochs=1)
        results = trainer.evaluate()["test"]
        images = self.test_split.images.astype(np.float32) / 255.0
        logits = trainer.model.logits(images).numpy()
        labels = self.test_split.labels
        expected_accuracy = np.mean(np.argmax(logits, axis=-1) == labels)
        log_probabilities = logits - np.log(
            np.sum(np.exp(logits), axis=-1, keepdims=True)
        )
        expected_cross_entropy = -np.mean(log_probabilities[np.arange(30), labels])
        self.assertNear(results["accuracy"], expected_accuracy, 1e-6)
        self.assertNear(results["cross_entropy"], expected_cross_entropy, 1e-5)

    @parameterized.parameters(0.0, 0.2)
    def test_train_step_loss_is_smoothed_cross_entropy(self, label_smoothing):
        # Without dropout the step's logits are the evaluation logits before the update.
        config = classifier.ClassifierConfig(
            image_shape=IMAGE_SHAPE,
            num_classes=2,
            filters=(4,),
            dense_units=8,
            dropout_rate=0.0,
        )
        trainer = self._trainer(epochs=1, config=config, label_smoothing=label_smoothing)
        batch = next(iter(trainer.data.train_batches(0, 0)))
        logits = trainer.model.logits(batch["image"]).numpy()
        targets = (
            batch["label_onehot"].numpy() * (1 - label_smoothing) + label_smoothing / 2
        )
        log_probabilities = logits - np.log(
            np.sum(np.exp(logits), axis=-1, keepdims=True)
        )
        expected = -np.mean(np.sum(targets * log_probabilities, axis=-1))
        before = [v.numpy() for v in trainer.model.trainable_variables]
        logs = trainer.train_step(batch, tf.constant([1, 2], tf.int32))
        self.assertNear(float(logs["loss"]), expected, 1e-5)
        self.assertNear(
            float(logs["accuracy"]),
            np.mean(np.argmax(logits, -1) == batch["label"].numpy()),
            1e-6,
        )
        after = [v.numpy() for v in trainer.model.trainable_variables]
        self.assertTrue(all(np.any(b != a) for b, a in zip(before, after)))

    @parameterized.parameters(-0.1, 1.0, float("nan"))
    def test_bad_label_smoothing_is_refused(self, label_smoothing):
        with self.assertRaisesRegex(ValueError, "label_smoothing must be in"):
            self._trainer(epochs=1, label_smoothing=label_smoothing)


class TrainingRecipeTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("epochs", dict(epochs=0), "epochs"),
        ("batch_size", dict(batch_size=2.5), "batch_size"),
        ("learning_rate", dict(learning_rate=0.0), "learning_rate"),
        ("smoothing", dict(label_smoothing=1.0), "label_smoothing"),
    )
    def test_validate_names_the_bad_field(self, overrides, field):
        with self.assertRaisesRegex(ValueError, rf"TrainingRecipe\.{field} must be"):
            classification.TrainingRecipe(**overrides).validate()


class LoadOrTrainClassifierTest(tf.test.TestCase):
    """The cache logic; most tests stub the training loop out to stay fast.

    `ClassificationTrainer.train` is wrapped to count trainings. While
    `self.real_training` is False the wrapper returns a finished result at once,
    leaving the classifier at its initial weights; everything else (data
    loading, the trainer, weights, info.json, renames) runs for real.
    """

    def setUp(self):
        super().setUp()
        self.data_dir = self.create_tempdir().full_path
        testing_utils.write_fake_mnist(self.data_dir, num_train=20, num_test=7)
        self.cache_dir = os.path.join(self.create_tempdir().full_path, "cache")
        self.num_trainings = 0
        self.real_training = False
        original_train = classification.ClassificationTrainer.train

        def counting_train(trainer):
            self.num_trainings += 1
            if self.real_training:
                return original_train(trainer)
            final = {
                "train": {"accuracy": 0.5, "loss": 1.0},
                "test": {"accuracy": 0.25, "cross_entropy": 2.0},
                "total_train_seconds": 0.0,
                "wall_seconds": 0.0,
            }
            return base.TrainResult(
                completed=True,
                stop_signal=None,
                global_step=0,
                metrics={"epochs": [final], "final": final},
            )

        patcher = mock.patch.object(
            classification.ClassificationTrainer,
            "train",
            autospec=True,
            side_effect=counting_train,
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def _load(self, **overrides):
        kwargs = dict(config=TINY_MNIST, recipe=TINY_RECIPE, seed=0, progress="none")
        kwargs.update(overrides)
        return classification.load_or_train_classifier(
            "mnist", self.data_dir, self.cache_dir, **kwargs
        )

    def test_second_call_loads_the_same_weights_without_training(self):
        self.real_training = True
        trained, info = self._load()
        self.assertEqual(self.num_trainings, 1)
        self.assertFalse(info["from_cache"])
        self.assertBetween(info["test_accuracy"], 0.0, 1.0)
        self.assertEqual(info["dataset"], "mnist")
        self.assertEqual(
            classifier.ClassifierConfig.from_dict(info["classifier_config"]), TINY_MNIST
        )
        entry = info["path"]
        self.assertEqual(os.path.dirname(entry), self.cache_dir)
        with open(os.path.join(entry, "info.json")) as stream:
            on_disk = json.load(stream)
        self.assertEqual(on_disk["test_accuracy"], info["test_accuracy"])
        self.assertFalse(os.path.exists(entry + ".partial"))

        loaded, cached_info = self._load()
        self.assertEqual(self.num_trainings, 1)
        self.assertTrue(cached_info["from_cache"])
        self.assertEqual(cached_info["path"], entry)
        self.assertEqual(cached_info["test_accuracy"], info["test_accuracy"])
        images = tf.random.stateless_uniform([3, 28, 28, 1], seed=[0, 1])
        self.assertAllEqual(loaded.logits(images), trained.logits(images))
        self.assertEqual(self._load()[1]["test_accuracy"], info["test_accuracy"])
        self.assertEqual(self.num_trainings, 1)

    def test_different_seed_config_or_recipe_get_their_own_entries(self):
        paths = {
            self._load()[1]["path"],
            self._load(seed=1)[1]["path"],
            self._load(config=classifier.ClassifierConfig(filters=(3,), dense_units=4))[
                1
            ]["path"],
            self._load(
                recipe=classification.TrainingRecipe(
                    epochs=1, batch_size=10, learning_rate=1e-2
                )
            )[1]["path"],
        }
        self.assertLen(paths, 4)
        self.assertEqual(self.num_trainings, 4)
        self.assertTrue(self._load(seed=1)[1]["from_cache"])
        self.assertEqual(self.num_trainings, 4)

    def test_cache_hit_reads_no_data(self):
        self._load()
        for name in datasets.IDX_FILE_NAMES.values():
            os.remove(os.path.join(self.data_dir, name))
        _, info = self._load()
        self.assertTrue(info["from_cache"])

    def test_key_depends_on_every_input(self):
        key = classification.cache_key("mnist", TINY_MNIST, TINY_RECIPE, 0)
        self.assertStartsWith(key, "mnist-")
        self.assertEqual(
            key, classification.cache_key("mnist", TINY_MNIST, TINY_RECIPE, 0)
        )
        others = [
            classification.cache_key("fashion_mnist", TINY_MNIST, TINY_RECIPE, 0),
            classification.cache_key(
                "mnist", classifier.ClassifierConfig(), TINY_RECIPE, 0
            ),
            classification.cache_key(
                "mnist", TINY_MNIST, classification.TrainingRecipe(), 0
            ),
            classification.cache_key("mnist", TINY_MNIST, TINY_RECIPE, 7),
        ]
        self.assertNotIn(key, others)
        self.assertLen(set(others), 4)

    def test_corrupt_entries_are_retrained_with_a_warning(self):
        entry = self._load()[1]["path"]
        weights = os.path.join(entry, "weights")

        def truncate_weights():
            for path in glob.glob(os.path.join(weights, "*.data-*")):
                with open(path, "r+b") as stream:
                    stream.truncate(10)

        def remove_weights():
            for name in os.listdir(weights):
                os.remove(os.path.join(weights, name))

        def write_other_shape():
            other = classifier.Classifier(
                classifier.ClassifierConfig(filters=(3,), dense_units=4)
            )
            tf.train.Checkpoint(model=other).write(os.path.join(weights, "classifier"))

        # name -> (damage, what the warning must say).
        corruptions = {
            "garbage info.json": (
                lambda: _write(os.path.join(entry, "info.json"), "{not json"),
                "not valid JSON",
            ),
            "info of another entry": (
                lambda: _write(
                    os.path.join(entry, "info.json"), json.dumps({"cache_key": "mnist-0"})
                ),
                "does not describe",
            ),
            "truncated weights": (truncate_weights, "cannot be restored"),
            "missing weights": (remove_weights, "cannot be restored"),
            "weights of another shape": (write_other_shape, "cannot be restored"),
        }
        for number, (what, (corrupt, reason)) in enumerate(corruptions.items(), start=2):
            with self.subTest(what):
                corrupt()
                with self.assertLogs(level="WARNING") as logs:
                    _, info = self._load()
                self.assertIn(
                    f"Ignoring the classifier cache entry {entry}", logs.output[0]
                )
                self.assertIn(reason, logs.output[0])
                self.assertFalse(info["from_cache"])
                self.assertEqual(self.num_trainings, number)
                # The replacement is a good entry.
                self.assertTrue(self._load()[1]["from_cache"])
                self.assertEqual(self.num_trainings, number)

    def test_crash_before_publishing_leaves_no_entry(self):
        with mock.patch.object(
            classification.atomic_files, "write_json", side_effect=OSError("disk full")
        ):
            with self.assertRaisesRegex(OSError, "disk full"):
                self._load()
        key = classification.cache_key("mnist", TINY_MNIST, TINY_RECIPE, 0)
        self.assertFalse(os.path.exists(os.path.join(self.cache_dir, key)))
        _, info = self._load()
        self.assertFalse(info["from_cache"])
        self.assertEqual(os.path.basename(info["path"]), key)
        self.assertFalse(os.path.exists(info["path"] + ".partial"))

    def test_unusable_partial_training_is_discarded(self):
        key = classification.cache_key("mnist", TINY_MNIST, TINY_RECIPE, 0)
        # A crash left a training checkpoint whose data file is garbage.
        partial = os.path.join(self.cache_dir, key + ".partial", "training")
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=classifier.Classifier(TINY_MNIST)),
            os.path.join(partial, "checkpoints"),
            max_to_keep=1,
        )
        prefix = manager.save()
        _write(prefix + ".data-00000-of-00001", "not a checkpoint")
        with self.assertLogs(level="WARNING") as logs:
            _, info = self._load()
        self.assertIn("Discarding the unusable partial", "\n".join(logs.output))
        self.assertFalse(info["from_cache"])

    def test_interrupted_training_raises_and_publishes_nothing(self):
        stopped = base.TrainResult(
            completed=False, stop_signal=15, global_step=1, metrics={}
        )
        with mock.patch.object(
            classification.ClassificationTrainer, "train", return_value=stopped
        ):
            with self.assertRaisesRegex(
                classification.TrainingInterruptedError, "signal 15.*resumes"
            ):
                self._load()
        self.assertEqual(
            [
                name
                for name in os.listdir(self.cache_dir)
                if not name.endswith((".lock", ".partial"))
            ],
            [],
        )

    def test_bad_requests_are_clear_errors(self):
        with self.assertRaisesRegex(ValueError, "image datasets only.*'toy2d'"):
            classification.load_or_train_classifier("toy2d", None, self.cache_dir)
        with self.assertRaisesRegex(
            ValueError, r"images of shape \(8, 8, 1\).*\(28, 28, 1\)"
        ):
            self._load(config=SMALL)
        with self.assertRaisesRegex(ValueError, "TrainingRecipe.epochs"):
            self._load(recipe=classification.TrainingRecipe(epochs=0))
        with self.assertRaisesRegex(datasets.DataNotFoundError, "does-not-exist"):
            classification.load_or_train_classifier(
                "mnist",
                os.path.join(self.data_dir, "does-not-exist"),
                self.cache_dir,
                config=TINY_MNIST,
                recipe=TINY_RECIPE,
            )
        self.assertEqual(self.num_trainings, 0)

    def test_default_config_matches_the_image_datasets(self):
        for name in ("mnist", "fashion_mnist"):
            config = classification.default_classifier_config(name)
            self.assertEqual(config.image_shape, (28, 28, 1))
            self.assertEqual(config.num_classes, 10)


def _write(path, text):
    with open(path, "w") as stream:
        stream.write(text)


if __name__ == "__main__":
    tf.test.main()
