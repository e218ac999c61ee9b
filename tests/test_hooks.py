"""Tests for trainers/hooks.py: the per-epoch pictures of a VAE."""

import glob
import os
import types

import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from trainers import hooks
from vae import models

# 8x8 -> 3x3 -> 1x1 in the encoder, 2x2 -> 4x4 -> 8x8 in the decoder.
SMALL_CONV = models.ModelConfig(
    image_shape=(8, 8, 1), latent_dim=2, encoder_filters=(4, 8),
    encoder_strides=(2, 2), decoder_base_channels=4, decoder_filters=(8, 4),
    decoder_strides=(2, 2))
PICTURE_NAMES = ("reconstructions", "samples", "manifold", "latent_scatter")
NUM_IMAGES = 12
NUM_SAMPLES = 9
GRID_SIZE = 4


def _fake_trainer(model, workdir):
    """The attributes of a Trainer that a hook may use."""
    return types.SimpleNamespace(
        model=model,
        global_step=tf.Variable(0, dtype=tf.int64),
        summary_writer=tf.summary.create_file_writer(
            os.path.join(workdir, "tensorboard")))


def _perturb(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.decoder.trainable_variables:
        variable.assign_add(rng.normal(0.0, 0.5, variable.shape)
                            .astype(np.float32))


def _read_tags(event_dir):
    tags = []
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.extend((value.tag, event.step) for value in event.summary.value)
    return tags


class VaePicturesTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        rng = np.random.default_rng(0)
        self.images = rng.uniform(size=(NUM_IMAGES, 8, 8, 1)).astype(np.float32)
        self.labels = np.arange(NUM_IMAGES) % 3
        self.workdir = self.create_tempdir().full_path
        self.model = models.VAE(SMALL_CONV)
        self.trainer = _fake_trainer(self.model, self.workdir)
        self.image_dir = os.path.join(self.workdir, "images")

    def _hook(self, seed=0):
        return hooks.VaePictures(
            workdir=self.workdir, images=self.images, labels=self.labels,
            num_classes=3, num_reconstructions=4, num_samples=NUM_SAMPLES,
            manifold_grid_size=GRID_SIZE, num_scatter_points=NUM_IMAGES,
            seed=seed)

    def _png(self, name, epoch_number):
        return iio.imread(os.path.join(
            self.image_dir, f"{name}_epoch_{epoch_number:03d}.png"))

    def test_writes_every_picture_and_a_gif_frame_per_epoch(self):
        hook = self._hook()
        hook.on_epoch_end(self.trainer, 0, {})
        self.assertCountEqual(
            os.listdir(self.image_dir),
            [f"{name}_epoch_001.png" for name in PICTURE_NAMES]
            + ["samples.gif"])

        _perturb(self.model, seed=1)  # Training changed the model.
        self.trainer.global_step.assign(5)
        hook.on_epoch_end(self.trainer, 1, {})
        self.assertCountEqual(
            os.listdir(self.image_dir),
            [f"{name}_epoch_{number:03d}.png" for name in PICTURE_NAMES
             for number in (1, 2)] + ["samples.gif"])

        # 9 samples in a 3x3 grid of 8x8 tiles with 2-pixel padding.
        samples = self._png("samples", 1)
        self.assertEqual(samples.dtype, np.uint8)
        self.assertEqual(samples.shape, (3 * 8 + 4 * 2, 3 * 8 + 4 * 2))
        # The manifold is GRID_SIZE x GRID_SIZE seamless tiles.
        self.assertEqual(self._png("manifold", 1).shape,
                         (GRID_SIZE * 8, GRID_SIZE * 8))
        # Four originals above their four reconstructions.
        reconstructions = self._png("reconstructions", 2)
        self.assertEqual(reconstructions.shape, (2 * 8 + 3 * 2, 4 * 8 + 5 * 2))
        self.assertEqual(self._png("latent_scatter", 1).shape[-1], 3)

        frames = iio.imread(os.path.join(self.image_dir, "samples.gif"),
                            index=None)
        self.assertLen(frames, 2)
        self.assertFalse(np.array_equal(self._png("samples", 1),
                                        self._png("samples", 2)))
        for frame, number in zip(frames, (1, 2)):
            expected = self._png("samples", number)
            # Grayscale PNGs come back from the GIF as RGB(A) frames.
            self.assertAllEqual(np.asarray(frame)[..., 0], expected)

    def test_originals_are_shown_in_the_reconstruction_grid(self):
        hook = self._hook()
        hook.on_epoch_end(self.trainer, 0, {})
        grid = self._png("reconstructions", 1)
        first_original = np.round(self.images[0, :, :, 0] * 255)
        self.assertAllClose(grid[2:10, 2:10], first_original, atol=1)
        expected = self.model.reconstruct(self.images[:1]).numpy()[0, :, :, 0]
        self.assertAllClose(grid[12:20, 2:10], expected * 255, atol=1)

    def test_samples_use_the_same_prior_noise_every_epoch(self):
        hook = self._hook(seed=4)
        hook.on_epoch_end(self.trainer, 0, {})
        hook.on_epoch_end(self.trainer, 1, {})
        # Same model, same noise: identical sample grids (and the others).
        for name in PICTURE_NAMES:
            self.assertAllEqual(self._png(name, 1), self._png(name, 2),
                                msg=name)
        # The grid does depend on the noise: another seed draws other samples.
        other_dir = self.create_tempdir().full_path
        other = hooks.VaePictures(
            workdir=other_dir, images=self.images, labels=self.labels,
            num_classes=3, num_samples=NUM_SAMPLES,
            manifold_grid_size=GRID_SIZE, seed=5)
        other.on_epoch_end(_fake_trainer(self.model, other_dir), 0, {})
        other_samples = iio.imread(
            os.path.join(other_dir, "images", "samples_epoch_001.png"))
        self.assertFalse(np.array_equal(other_samples, self._png("samples", 1)))

    def test_pictures_go_to_tensorboard_at_the_global_step(self):
        hook = self._hook()
        self.trainer.global_step.assign(7)
        hook.on_epoch_end(self.trainer, 0, {})
        self.trainer.summary_writer.flush()
        event_dir = os.path.join(self.workdir, "tensorboard")
        self.assertNotEmpty(glob.glob(os.path.join(
            event_dir, "events.out.tfevents.*")))
        tags = _read_tags(event_dir)
        self.assertCountEqual(tags,
                              [(f"images/{name}", 7) for name in PICTURE_NAMES])


if __name__ == "__main__":
    tf.test.main()


class ConditionalPicturesTest(tf.test.TestCase):

    def test_per_label_manifolds_scatters_gifs_and_style_transfer(self):
        tf.random.set_seed(0)
        model = models.VAE(models.ModelConfig(
            architecture="mlp", image_shape=(8, 8, 1), latent_dim=2,
            hidden_units=(4,), num_classes=3))
        workdir = self.create_tempdir().full_path
        trainer = _fake_trainer(model, workdir)
        rng = np.random.default_rng(0)
        labels = np.arange(NUM_IMAGES) % 3
        hook = hooks.VaePictures(
            workdir=workdir,
            images=rng.uniform(size=(NUM_IMAGES, 8, 8, 1)).astype(np.float32),
            labels=labels, num_classes=3, num_samples=6,
            manifold_grid_size=GRID_SIZE, style_source_label=2,
            num_style_examples=3)
        for epoch in range(2):
            trainer.global_step.assign(epoch + 1)
            # GIF writers drop repeated frames: make the epochs differ.
            _perturb(model, epoch)
            hook.on_epoch_end(trainer, epoch, {})
        image_dir = os.path.join(workdir, "images")
        names = set(os.listdir(image_dir))
        for label in range(3):
            self.assertIn(f"manifold_label_{label}_epoch_002.png", names)
            self.assertIn(f"latent_scatter_label_{label}_epoch_002.png", names)
            self.assertLen(iio.imread(os.path.join(
                image_dir, f"manifold_label_{label}.gif"), index=None), 2)
        self.assertNotIn("manifold_epoch_001.png", names)
        # Samples: one column per label, 6 // 3 = 2 rows.
        samples = iio.imread(os.path.join(image_dir, "samples_epoch_001.png"))
        self.assertEqual(samples.shape[:2], (2 + 2 * 10, 2 + 3 * 10))
        # Style transfer: the three label-2 sources on top, then one row per
        # label; the row of label 2 is their reconstruction.
        grid = iio.imread(os.path.join(image_dir,
                                       "style_transfer_epoch_002.png"))
        self.assertEqual(grid.shape[:2], (2 + 4 * 10, 2 + 3 * 10))
        sources = hook.images[labels == 2][:3]
        one_hot = tf.one_hot([2, 2, 2], 3)
        reconstruction = model.reconstruct(sources, one_hot).numpy()
        row_of_label_2 = grid[2 + 3 * 10:2 + 3 * 10 + 8, 2:2 + 8]
        self.assertAllClose(row_of_label_2 / 255.0, reconstruction[0, ..., 0],
                            atol=1 / 255.0 + 1e-6)
