"""Tests of trainers/evaluation.py: the evaluation suite and its hook."""

import math
import os
import types

import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import evaluation
from vae import classifier as classifier_lib
from vae import models

_TINY_MODEL = testing_utils.mlp_config((28, 28, 1), (8,))
_SMALL_EVALUATION = evaluation.EvaluationConfig(
    num_importance_samples=20,
    likelihood_examples=12,
    chunk_size=7,
    num_generated=40,
    batch_size=16,
    seed=3,
)


def _binary_images(count, seed):
    return (np.random.default_rng(seed).random([count, 28, 28, 1]) < 0.3).astype(
        np.float32
    )


def _grayscale_images(count, seed):
    return np.random.default_rng(seed).random([count, 28, 28, 1]).astype(np.float32)


def _tiny_classifier():
    tf.random.set_seed(1)
    return classifier_lib.Classifier(
        classifier_lib.ClassifierConfig(filters=(2,), dense_units=6, dropout_rate=0.0)
    )


class EvaluateVaeTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tf.random.set_seed(0)
        cls.model = models.VAE(_TINY_MODEL)
        cls.classifier = _tiny_classifier()
        cls.test_images = _binary_images(30, seed=0)
        cls.results = evaluation.evaluate_vae(
            cls.model,
            test_images=cls.test_images,
            real_test_images=_grayscale_images(30, seed=1),
            real_reference_images=_grayscale_images(20, seed=2),
            classifier=cls.classifier,
            config=_SMALL_EVALUATION,
        )

    def test_reports_every_metric(self):
        self.assertCountEqual(
            self.results,
            [
                "test",
                "likelihood",
                "reconstruction_error",
                "samples",
                "real_data",
                "seconds",
            ],
        )
        self.assertCountEqual(
            self.results["seconds"],
            ["test_elbo", "likelihood", "reconstruction", "sample_quality"],
        )
        flat = evaluation.scalar_summaries(self.results)
        self.assertIn("likelihood/nll", flat)
        self.assertIn("real_data/frechet_distance", flat)
        for tag, value in flat.items():
            self.assertTrue(math.isfinite(value), tag)

    def test_elbo_is_reconstruction_plus_kl(self):
        test = self.results["test"]
        self.assertAllClose(-test["elbo"], test["reconstruction"] + test["kl"])
        self.assertGreater(test["kl"], 0.0)

    def test_likelihood_on_requested_subset_beats_its_elbo(self):
        likelihood = self.results["likelihood"]
        self.assertEqual(likelihood["examples"], 12)
        self.assertEqual(likelihood["num_samples"], 20)
        # The importance-sampled bound is tighter than the ELBO; an untrained
        # model's posterior is poor, so the gap is wide and the check firm.
        self.assertLess(likelihood["nll"], -likelihood["elbo_same_examples"])
        self.assertGreater(likelihood["nll_standard_error"], 0.0)

    def test_reconstruction_error_matches_direct_computation(self):
        means = self.model.encode(self.test_images).mean()
        reconstructions = np.clip(self.model.decode_mean(means).numpy(), 0.0, 1.0)
        self.assertAllClose(
            self.results["reconstruction_error"]["mean_squared_error"],
            np.mean((reconstructions - self.test_images) ** 2),
            rtol=1e-4,
        )
        clipped = np.clip(reconstructions, 1e-7, 1 - 1e-7)
        cross_entropy = -np.mean(
            self.test_images * np.log(clipped)
            + (1 - self.test_images) * np.log(1 - clipped)
        )
        self.assertAllClose(
            self.results["reconstruction_error"]["binary_cross_entropy"],
            cross_entropy,
            rtol=1e-3,
        )

    def test_same_seed_gives_same_numbers(self):
        again = evaluation.evaluate_vae(
            self.model,
            test_images=self.test_images,
            real_test_images=_grayscale_images(30, seed=1),
            real_reference_images=_grayscale_images(20, seed=2),
            classifier=self.classifier,
            config=_SMALL_EVALUATION,
        )
        self.assertEqual(
            evaluation.scalar_summaries(again), evaluation.scalar_summaries(self.results)
        )

    def test_skips_what_is_switched_off(self):
        results = evaluation.evaluate_vae(
            self.model,
            test_images=self.test_images,
            config=evaluation.EvaluationConfig(num_importance_samples=0, batch_size=16),
        )
        self.assertCountEqual(results, ["test", "reconstruction_error", "seconds"])

    def test_real_images_are_closer_to_real_than_noise(self):
        # The Frechet distance must tell real-like data from junk: with the
        # same classifier, images drawn like the reference are closer than
        # constant black images.
        reference = self.classifier.features(_grayscale_images(200, 5))
        near = evaluation.classifier_metrics(
            self.classifier,
            _grayscale_images(200, 6),
            reference_features=reference.numpy(),
            batch_size=50,
        )
        far = evaluation.classifier_metrics(
            self.classifier,
            np.zeros([200, 28, 28, 1], np.float32),
            reference_features=reference.numpy(),
            batch_size=50,
        )
        self.assertLess(near["frechet_distance"], far["frechet_distance"])

    def test_invalid_config_is_refused(self):
        with self.assertRaisesRegex(ValueError, "chunk_size must be >= 1"):
            evaluation.EvaluationConfig(chunk_size=0).validate()
        with self.assertRaisesRegex(ValueError, "num_importance_samples must be >= 0"):
            evaluation.EvaluationConfig(num_importance_samples=-1).validate()


class ResumableLikelihoodTest(tf.test.TestCase):
    """The NLL estimate saves its progress and resumes to the same numbers."""

    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.model = models.VAE(_TINY_MODEL)
        self.images = _binary_images(50, seed=4)
        self.settings = dict(num_samples=9, chunk_size=4, batch_size=20, seed=5)

    def _progress(self, key=None):
        path = os.path.join(self.get_temp_dir(), "nll-progress.npz")
        return evaluation.LikelihoodProgress(path, key or {"model": "tiny"})

    def test_interrupted_estimate_resumes_to_the_uninterrupted_numbers(self):
        straight = evaluation.negative_log_likelihood(
            self.model, self.images, **self.settings
        )
        progress = self._progress()
        if os.path.exists(progress.path):
            os.remove(progress.path)  # get_temp_dir() is shared by the class.
        batches = []
        with self.assertRaises(evaluation.EvaluationInterrupted) as caught:
            evaluation.negative_log_likelihood(
                self.model,
                self.images,
                **self.settings,
                progress=progress,
                stop_requested=lambda: batches.append(1) or len(batches) >= 2,
            )
        self.assertEqual((caught.exception.done, caught.exception.total), (40, 50))
        self.assertLen(progress.load(), 40)
        resumed = evaluation.negative_log_likelihood(
            self.model, self.images, **self.settings, progress=progress
        )
        self.assertEqual(resumed, straight)

    def test_progress_of_another_estimate_is_ignored(self):
        self._progress({"model": "other"}).save(np.full([40], -1.0))
        self.assertLen(self._progress().load(), 0)
        # Not started over with the other's values: the estimate is its own.
        result = evaluation.negative_log_likelihood(
            self.model, self.images, **self.settings, progress=self._progress()
        )
        self.assertGreater(result["nll"], 1.0)
        self.assertEqual(result["examples"], 50)


class _FakeTrainer:
    """What the hook reads of a trainer."""

    def __init__(self, model, epochs, logdir):
        self.model = model
        self.config = types.SimpleNamespace(epochs=epochs)
        self.global_step = tf.Variable(0, dtype=tf.int64)
        self.summary_writer = tf.summary.create_file_writer(logdir)


class EvaluationHookTest(tf.test.TestCase):
    def test_runs_every_n_epochs_and_after_the_last(self):
        tf.random.set_seed(0)
        trainer = _FakeTrainer(
            models.VAE(_TINY_MODEL), epochs=5, logdir=self.get_temp_dir()
        )
        hook = evaluation.EvaluationHook(
            every_epochs=2,
            test_images=_binary_images(20, 0),
            real_test_images=_grayscale_images(20, 1),
            real_reference_images=_grayscale_images(20, 2),
            classifier=_tiny_classifier(),
            config=_SMALL_EVALUATION,
        )
        records = []
        for epoch in range(5):
            trainer.global_step.assign(10 * (epoch + 1))
            record = {"epoch": epoch + 1}
            hook.on_epoch_end(trainer, epoch, record)
            records.append(record)
        evaluated = [record["epoch"] for record in records if "evaluation" in record]
        self.assertEqual(evaluated, [2, 4, 5])
        # The real-data row is measured once and repeated.
        self.assertEqual(
            records[1]["evaluation"]["real_data/classifier_score"],
            records[4]["evaluation"]["real_data/classifier_score"],
        )
        self.assertIn("likelihood/nll", records[4]["evaluation"])

        trainer.summary_writer.flush()
        tags = set()
        for name in os.listdir(self.get_temp_dir()):
            for event in tf.compat.v1.train.summary_iterator(
                os.path.join(self.get_temp_dir(), name)
            ):
                tags.update((value.tag, event.step) for value in event.summary.value)
        self.assertIn(("evaluation/likelihood/nll", 40), tags)
        self.assertIn(("evaluation/samples/frechet_distance", 50), tags)

    def test_rejects_non_positive_period(self):
        with self.assertRaisesRegex(ValueError, "every_epochs must be >= 1"):
            evaluation.EvaluationHook(every_epochs=0, test_images=_binary_images(2, 0))


if __name__ == "__main__":
    tf.test.main()


class _LabelEchoClassifier:
    """A stand-in classifier that reads the label off a marked pixel.

    Used with a decoder whose output marks pixel (0, label): the metrics must
    then be 100% when the model follows its label.
    """

    def features(self, images):
        return tf.reshape(images, [tf.shape(images)[0], -1])[:, :10]

    def logits(self, images):
        return 10.0 * images[:, 0, :10, 0]


class _LabelDrawingVae:
    """A conditional 'VAE' whose decoder draws pixel (0, label) white."""

    num_classes = 10
    is_conditional = True
    latent_dim = 2
    image_shape = (28, 28, 1)

    def __init__(self, follow_label=True):
        self._model = models.VAE(
            testing_utils.mlp_config((28, 28, 1), (4,), num_classes=10)
        )
        self.follow_label = follow_label

    def prior(self):
        return self._model.prior()

    def encode(self, images, labels=None, *, is_training=False, seed=None):
        return self._model.encode(images, labels, is_training=is_training, seed=seed)

    def decode(self, z, labels=None, *, is_training=False, seed=None):
        return self._model.decode(z, labels, is_training=is_training, seed=seed)

    def decode_mean(self, z, labels=None, *, is_training=False):
        drawn = labels if self.follow_label else tf.roll(labels, 1, axis=-1)
        row = tf.pad(drawn, [[0, 0], [0, 18]])
        image = tf.concat([row[:, None, :], tf.zeros([tf.shape(z)[0], 27, 28])], axis=1)
        return image[..., None]


class ConditionalEvaluationTest(tf.test.TestCase):
    def evaluate(self, model):
        return evaluation.evaluate_vae(
            model,
            test_images=_binary_images(20, 0),
            test_labels=np.arange(20) % 10,
            real_test_images=_grayscale_images(20, 1),
            classifier=_LabelEchoClassifier(),
            config=evaluation.EvaluationConfig(
                num_importance_samples=5,
                likelihood_examples=4,
                num_generated=30,
                style_transfer_examples=7,
                batch_size=16,
            ),
        )

    def test_accuracies_are_one_when_the_model_follows_labels(self):
        results = self.evaluate(_LabelDrawingVae())
        for group in ("conditional_accuracy", "style_transfer_accuracy"):
            self.assertEqual(results[group]["overall"], 1.0)
            self.assertEqual(results[group]["per_label"], [1.0] * 10)
        self.assertEqual(results["conditional_accuracy"]["per_label_count"], [3] * 10)
        self.assertEqual(results["style_transfer_accuracy"]["per_label_count"], [7] * 10)
        flat = evaluation.scalar_summaries(results)
        self.assertEqual(flat["style_transfer_accuracy/label_9"], 1.0)

    def test_accuracies_are_zero_when_the_model_ignores_labels(self):
        results = self.evaluate(_LabelDrawingVae(follow_label=False))
        self.assertEqual(results["conditional_accuracy"]["overall"], 0.0)
        self.assertEqual(results["style_transfer_accuracy"]["overall"], 0.0)

    def test_conditional_model_needs_test_labels(self):
        with self.assertRaisesRegex(ValueError, "needs test_labels"):
            evaluation.evaluate_vae(_LabelDrawingVae(), test_images=_binary_images(4, 0))
