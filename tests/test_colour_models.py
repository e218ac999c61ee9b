"""Every model family on C channels and other image sizes; the continuous
Bernoulli likelihood; colour in the pictures, the export and user images.

Tiny models on 8x8 to 12x12 images; one optimisation step at most.
"""

import dataclasses
import os
import types

from absl.testing import parameterized
import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import hooks
from vae import export
from vae import generation
from vae import models
from vae import vaegan

_conv_config = testing_utils.tiny_conv_config


def _mlp_config(image_shape, **overrides):
    return testing_utils.mlp_config(image_shape, (8,), **overrides)


def _continuous_bernoulli_log_density(x, logits):
    """NumPy reference: log C(lambda) + x log lambda + (1 - x) log(1 - lambda)."""
    probability = 1.0 / (1.0 + np.exp(-logits))
    normaliser = np.where(
        np.abs(probability - 0.5) < 1e-3,
        2.0,
        2.0 * np.arctanh(1.0 - 2.0 * probability) / (1.0 - 2.0 * probability),
    )
    return (
        np.log(normaliser) + x * np.log(probability) + (1.0 - x) * np.log1p(-probability)
    )


def _continuous_bernoulli_mean(logits):
    probability = 1.0 / (1.0 + np.exp(-logits))
    return probability / (2.0 * probability - 1.0) + 1.0 / (
        2.0 * np.arctanh(1.0 - 2.0 * probability)
    )


class ShapesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.product(
        likelihood=models.LIKELIHOODS,
        family=[
            ("conv", (8, 8, 3)),
            ("conv", (8, 12, 2)),
            ("conv", (12, 12, 1)),
            ("mlp", (10, 7, 3)),
            ("mlp", (5, 5, 1)),
        ],
        num_classes=[0, 3],
    )
    def test_decoder_follows_the_data(self, likelihood, family, num_classes):
        architecture, image_shape = family
        build = _conv_config if architecture == "conv" else _mlp_config
        model = models.VAE(
            build(image_shape, likelihood=likelihood, num_classes=num_classes)
        )
        batch = 4
        images = tf.random.stateless_uniform([batch, *image_shape], seed=[1, 2])
        labels = tf.one_hot([0, 1, 2, 0], 3) if num_classes else None
        posterior = model.encode(images, labels)
        self.assertEqual(posterior.batch_shape, [batch])
        likelihood_distribution = model.decode(posterior.sample(seed=[3, 4]), labels)
        self.assertEqual(likelihood_distribution.event_shape, image_shape)
        self.assertEqual(likelihood_distribution.log_prob(images).shape, [batch])
        samples = model.sample(batch, labels, seed=[5, 6])
        self.assertEqual(samples.shape, [batch, *image_shape])
        if likelihood != "gaussian":
            self.assertAllInRange(samples, 0.0, 1.0)
        # The reconstruction term's gradient reaches every variable.
        with tf.GradientTape() as tape:
            code = model.encode(images, labels).sample(seed=[9, 10])
            loss = -tf.reduce_mean(model.decode(code, labels).log_prob(images))
        gradients = tape.gradient(loss, model.trainable_variables)
        self.assertNotIn(None, gradients)
        self.assertTrue(all(np.isfinite(g.numpy()).all() for g in gradients))

    def test_conv_size_must_divide_by_the_decoder_strides(self):
        with self.assertRaisesRegex(ValueError, r"divisible by 4.*\(10, 10, 3\)"):
            _conv_config((10, 10, 3)).validate()

    def test_vaegan_takes_colour(self):
        model = vaegan.VaeGan(
            dataclasses.replace(
                testing_utils.TINY_VAEGAN, image_shape=(8, 8, 3), num_classes=2
            )
        )
        labels = tf.one_hot([0, 1], 2)
        images = tf.random.stateless_uniform([2, 8, 8, 3], seed=[1, 1])
        self.assertEqual(model.reconstruct(images, labels).shape, [2, 8, 8, 3])
        self.assertEqual(model.sample(2, labels, seed=[2, 2]).shape, [2, 8, 8, 3])


class ContinuousBernoulliTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.model = models.VAE(_mlp_config((3, 3, 2), likelihood="continuous_bernoulli"))
        self.latent = tf.random.stateless_normal([4, 2], seed=[1, 2])
        self.images = tf.random.stateless_uniform([4, 3, 3, 2], seed=[3, 4])

    def test_log_prob_and_mean_match_the_formulas(self):
        logits = self.model.decoder(self.latent).numpy().astype(np.float64)
        distribution = self.model.decode(self.latent)
        expected = _continuous_bernoulli_log_density(
            self.images.numpy().astype(np.float64), logits
        ).sum(axis=(1, 2, 3))
        self.assertAllClose(
            distribution.log_prob(self.images), expected, rtol=1e-4, atol=1e-4
        )
        self.assertAllClose(
            self.model.decode_mean(self.latent),
            _continuous_bernoulli_mean(logits),
            atol=1e-5,
        )
        self.assertAllClose(
            distribution.mean(), self.model.decode_mean(self.latent), atol=1e-6
        )

    def test_density_integrates_to_one(self):
        # Unlike the Bernoulli's, whose "density" on [0, 1] does not.
        grid = np.linspace(0.0005, 0.9995, 1000)
        for logit in (-4.0, 0.3, 2.5):
            density = np.exp(_continuous_bernoulli_log_density(grid, logit))
            self.assertAllClose(density.mean(), 1.0, atol=1e-3)

    def test_no_scale_variable(self):
        self.assertIsNone(self.model.decoder.log_scale)

    def test_export_round_trip(self):
        export_dir = os.path.join(self.create_tempdir().full_path, "export")
        export.export_saved_model(self.model, export_dir)
        loaded = export.SavedModelVae(export_dir)
        self.assertAllClose(
            loaded.decode(self.latent).log_prob(self.images),
            self.model.decode(self.latent).log_prob(self.images),
            atol=1e-4,
        )
        self.assertAllClose(
            loaded.decode_mean(self.latent),
            self.model.decode_mean(self.latent),
            atol=1e-6,
        )


class ColourPicturesTest(tf.test.TestCase):
    def test_hook_writes_rgb_pictures(self):
        tf.random.set_seed(0)
        model = models.VAE(_conv_config((8, 8, 3), likelihood="continuous_bernoulli"))
        workdir = self.create_tempdir().full_path
        trainer = types.SimpleNamespace(
            model=model,
            global_step=tf.Variable(0, dtype=tf.int64),
            summary_writer=tf.summary.create_file_writer(
                os.path.join(workdir, "tensorboard")
            ),
            history=[],
        )
        images = np.random.default_rng(0).uniform(size=(6, 8, 8, 3))
        hook = hooks.VaePictures(
            workdir=workdir,
            images=images,
            labels=np.zeros(6, int),
            num_classes=1,
            num_samples=4,
            manifold_grid_size=3,
        )
        hook.on_epoch_end(trainer, 0, {})
        for name in ("reconstructions", "samples", "manifold"):
            picture = iio.imread(os.path.join(workdir, "images", f"{name}_epoch_001.png"))
            self.assertEqual(picture.ndim, 3, name)
            self.assertEqual(picture.shape[-1], 3, name)
        self.assertTrue(
            os.path.exists(
                os.path.join(workdir, "images", "latent_scatter_epoch_001.png")
            )
        )


class ColourUserImagesTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.directory = self.create_tempdir().full_path

    def write(self, name, pixels):
        path = os.path.join(self.directory, name)
        iio.imwrite(path, pixels)
        return path

    def test_rgb_image_is_read_as_is(self):
        pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)
        loaded = generation.load_image(self.write("a.png", pixels), (8, 8, 3))
        self.assertEqual(loaded.dtype, np.float32)
        self.assertAllClose(loaded, pixels / 255.0)
        self.assertAllClose(
            generation.load_image(self.write("b.png", pixels), (8, 8, 3), invert="true"),
            1.0 - pixels / 255.0,
        )

    def test_gray_or_other_size_needs_resize(self):
        gray = np.full((12, 12), 51, np.uint8)
        path = self.write("gray.png", gray)
        with self.assertRaisesRegex(
            generation.ImageError, "1 channel.*8x8 RGB.*--resize"
        ):
            generation.load_image(path, (8, 8, 3))
        loaded = generation.load_image(path, (8, 8, 3), resize=True)
        self.assertEqual(loaded.shape, (8, 8, 3))
        self.assertAllClose(loaded, np.full((8, 8, 3), 0.2), atol=1e-6)

    def test_other_channel_counts_are_refused(self):
        path = self.write("c.png", np.zeros((8, 8, 3), np.uint8))
        with self.assertRaisesRegex(generation.ImageError, r"\(8, 8, 2\)"):
            generation.load_image(path, (8, 8, 2))


if __name__ == "__main__":
    tf.test.main()
