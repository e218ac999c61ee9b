"""Epoch-end hooks that turn a VAE's state into pictures.

Pictures are written after evaluation, outside the compiled training loop, so
they never slow down the steps. Every picture goes to `WORKDIR/images/` as a
PNG (per epoch, so a run's progress can be browsed) and to TensorBoard.
"""

import glob
import os
from typing import Any, Mapping

import imageio.v2 as imageio
import numpy as np
import tensorflow as tf

from vae import pictures


class VaePictures:
    """Per-epoch reconstructions, samples, latent manifold and latent scatter.

    Files written for epoch e (1-based, zero-padded to 3 digits):
      reconstructions_epoch_EEE.png  originals above their reconstructions
      samples_epoch_EEE.png          decoded fixed prior noise (same z every
                                     epoch, so the grids show learning)
      manifold_epoch_EEE.png         the first two latent dims over Gaussian
                                     quantiles, the others at 0
      latent_scatter_epoch_EEE.png   posterior means of test images (first
                                     two dims), coloured by label
      samples.gif                    all sample grids so far, one per epoch

    Args:
      workdir: the run's workdir; pictures go to its `images/` folder.
      images: test images [n, height, width, channels] in [0, 1] (as the
        model sees them).
      labels: their integer labels [n].
      num_classes: number of labels (for the scatter's colours).
      num_reconstructions: originals shown in the reconstruction grid.
      num_samples: prior samples in the sample grid (a square number looks
        best).
      manifold_grid_size: the manifold is grid_size x grid_size images.
      num_scatter_points: test images encoded for the latent scatter.
      seed: fixes the prior noise of the sample grid.
    """

    def __init__(self, *, workdir: str, images: np.ndarray,
                 labels: np.ndarray, num_classes: int,
                 num_reconstructions: int = 16, num_samples: int = 64,
                 manifold_grid_size: int = 20,
                 num_scatter_points: int = 5000, seed: int = 0):
        self.image_dir = os.path.join(workdir, "images")
        self.images = np.asarray(images, np.float32)
        self.labels = np.asarray(labels)
        self.num_classes = num_classes
        self.num_reconstructions = min(num_reconstructions, len(self.images))
        self.num_samples = num_samples
        self.manifold_grid_size = manifold_grid_size
        self.num_scatter_points = min(num_scatter_points, len(self.images))
        self._seed = seed
        self._prior_noise = None

    def _columns(self, count: int) -> int:
        return max(1, int(np.ceil(np.sqrt(count))))

    def _decode_mean(self, model, latent: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(latent), 500):
            chunk = tf.constant(latent[start:start + 500], tf.float32)
            outputs.append(model.decode_mean(chunk).numpy())
        return np.concatenate(outputs)

    def _posterior_means(self, model, images: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), 500):
            chunk = tf.constant(images[start:start + 500], tf.float32)
            posterior = model.encode(chunk, is_training=False)
            outputs.append(posterior.mean().numpy())
        return np.concatenate(outputs)

    def _write(self, writer, step: int, name: str, epoch: int,
               picture: np.ndarray) -> None:
        pictures.save_png(
            os.path.join(self.image_dir, f"{name}_epoch_{epoch:03d}.png"),
            picture)
        as_batch = picture if picture.ndim == 3 else picture[..., None]
        with writer.as_default(step=step):
            tf.summary.image(f"images/{name}", as_batch[None], step=step)

    def on_epoch_end(self, trainer, epoch: int,
                     logs: Mapping[str, Any]) -> None:
        del logs
        model = trainer.model
        number = epoch + 1
        step = int(trainer.global_step.numpy())
        writer = trainer.summary_writer
        os.makedirs(self.image_dir, exist_ok=True)
        if self._prior_noise is None:
            rng = np.random.default_rng(self._seed)
            self._prior_noise = rng.standard_normal(
                [self.num_samples, model.latent_dim]).astype(np.float32)

        originals = self.images[:self.num_reconstructions]
        means = self._posterior_means(model, originals)
        reconstructions = self._decode_mean(model, means)
        self._write(writer, step, "reconstructions", number,
                    pictures.reconstruction_grid(
                        originals, reconstructions,
                        num_columns=min(8, len(originals))))

        samples = self._decode_mean(model, self._prior_noise)
        self._write(writer, step, "samples", number, pictures.image_grid(
            samples, num_columns=self._columns(len(samples))))

        self._write(writer, step, "manifold", number,
                    pictures.latent_manifold(
                        lambda z: self._decode_mean(model, z),
                        model.latent_dim, model.image_shape,
                        grid_size=self.manifold_grid_size))

        if model.latent_dim >= 2:
            points = self._posterior_means(
                model, self.images[:self.num_scatter_points])[:, :2]
            self._write(writer, step, "latent_scatter", number,
                        pictures.latent_scatter(
                            points, self.labels[:self.num_scatter_points],
                            self.num_classes))

        frames = [imageio.imread(path) for path in sorted(glob.glob(
            os.path.join(self.image_dir, "samples_epoch_*.png")))]
        pictures.save_gif(os.path.join(self.image_dir, "samples.gif"),
                          frames)
