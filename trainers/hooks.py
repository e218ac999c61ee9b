"""Epoch-end hooks that turn a VAE's state and its metrics into pictures.

Pictures are written after evaluation, outside the compiled training loop, so
they never slow down the steps. Image grids (`vae.pictures`) and figures with
axes (`vae.figures`: the latent scatter plots, drawn by matplotlib) go to
`WORKDIR/images/` as a PNG per epoch, so a run's progress can be browsed, and
to TensorBoard; the training curves are one PNG, rewritten every epoch.
"""

from collections.abc import Mapping, Sequence
import glob
import os
from typing import Any

import imageio.v2 as imageio
import numpy as np
import tensorflow as tf

from trainers import evaluation
from vae import figures
from vae import models
from vae import pictures
from vae import traversals

TRAINING_CURVES_FILE = "training_curves.png"


class TrainingCurves:
    """Writes `images/training_curves.png`: every epoch's metrics so far.

    One panel per quantity the trainer reports (the ELBO, its reconstruction
    and KL terms first; whatever else a trainer logs, such as a VAE-GAN's
    losses, after), with a line per split (train, validation, test), over
    the epochs. The file is rewritten at every epoch end from the trainer's
    history, which a resumed run restores from its checkpoint, so the curves
    always start at epoch 1.

    Args:
      workdir: the run's workdir; the picture goes to its `images/` folder.
    """

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "images", TRAINING_CURVES_FILE)

    def on_epoch_end(self, trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        # The trainer adds this epoch's record to its history after the
        # hooks have run.
        history = trainer.history + [{**logs, "epoch": epoch + 1}]
        if figures.curve_quantities(history):
            pictures.save_png(self.path, figures.training_curves(history))


class VaePictures:
    """Per-epoch reconstructions, samples, latent manifold, latent scatter and curves.

    Files written for epoch e (1-based, zero-padded to 3 digits):
      reconstructions_epoch_EEE.png  originals above their reconstructions
      samples_epoch_EEE.png          decoded fixed prior noise (same z every
                                     epoch, so the grids show learning)
      manifold_epoch_EEE.png         the first two latent dims over Gaussian
                                     quantiles, the others at 0
      latent_scatter_epoch_EEE.png   posterior means of test images (first
                                     two dims): a scatter plot with axes,
                                     coloured by class, with a legend of the
                                     class names
      samples.gif                    all sample grids so far, one per epoch
      training_curves.png            the metrics of every epoch so far (see
                                     `TrainingCurves`), rewritten each epoch
      traversals_epoch_EEE.png       with `traversal_steps`: each latent
                                     dimension swept over [-2, 2] from the
                                     first test image's code, one row per
                                     dimension, largest mean KL first (see
                                     vae/traversals.py)
      traversals.gif                 all traversal grids so far

    For a conditional model (`model.is_conditional`) the pictures use the
    labels, and there are more:
      samples_epoch_EEE.png          one column per label; each row shares one
                                     z, so a row shows one style in every class
      manifold_label_L_epoch_EEE.png the manifold decoded with label L
      manifold_label_L.gif           label L's manifolds over the epochs
                                     (rewritten every epoch up to 10, then
                                     every tenth and the last)
      latent_scatter_label_L_epoch_EEE.png  posterior means of the test
                                     images of label L (same axes style)
      style_transfer_epoch_EEE.png   top row: test images of label
                                     `style_source_label`; row y + 1: their
                                     posterior means decoded with label y

    Args:
      workdir: the run's workdir; pictures go to its `images/` folder.
      images: test images [n, height, width, channels] in [0, 1] (as the
        model sees them).
      labels: their integer labels [n].
      num_classes: number of labels (for the scatter's colours).
      class_names: the name of each label, for the scatter's legend;
        default: the label numbers.
      num_reconstructions: originals shown in the reconstruction grid.
      num_samples: prior samples in the sample grid (a square number looks
        best).
      manifold_grid_size: the manifold is grid_size x grid_size images.
      num_scatter_points: test images encoded for the latent scatter.
      seed: fixes the prior noise of the sample grid.
      style_source_label: the label whose test images the style-transfer
        grid starts from (000's figure uses 7s).
      num_style_examples: columns of the style-transfer grid.
      traversal_steps: columns of the latent traversal grid; 0 draws none.
    """

    def __init__(
        self,
        *,
        workdir: str,
        images: np.ndarray,
        labels: np.ndarray,
        num_classes: int,
        num_reconstructions: int = 16,
        num_samples: int = 64,
        manifold_grid_size: int = 20,
        num_scatter_points: int = 5000,
        seed: int = 0,
        style_source_label: int = 7,
        num_style_examples: int = 10,
        traversal_steps: int = 0,
        class_names: Sequence[str] = (),
    ):
        self.image_dir = os.path.join(workdir, "images")
        self.images = np.asarray(images, np.float32)
        self.labels = np.asarray(labels)
        self.num_classes = num_classes
        self.class_names = tuple(class_names)
        self.num_reconstructions = min(num_reconstructions, len(self.images))
        self.num_samples = num_samples
        self.manifold_grid_size = manifold_grid_size
        self.num_scatter_points = min(num_scatter_points, len(self.images))
        self._seed = seed
        self._prior_noise = None
        self._gif_frames = {}
        self.style_source_label = style_source_label % max(1, num_classes)
        self.num_style_examples = num_style_examples
        self.traversal_steps = traversal_steps
        self._training_curves = TrainingCurves(workdir)

    def _columns(self, count: int) -> int:
        return max(1, int(np.ceil(np.sqrt(count))))

    def _decode_mean(
        self, model, latent: np.ndarray, labels: np.ndarray | None = None
    ) -> np.ndarray:
        """Mean images of `latent`, decoded with `labels` when conditional."""
        return evaluation.in_batches(
            model.decode_mean,
            np.asarray(latent, np.float32),
            evaluation.one_hot(labels, getattr(model, "num_classes", 0)),
            batch_size=500,
        )

    def _posterior_means(
        self, model, images: np.ndarray, labels: np.ndarray
    ) -> np.ndarray:
        return evaluation.in_batches(
            lambda *inputs: model.encode(*inputs, is_training=False).mean(),
            np.asarray(images, np.float32),
            evaluation.one_hot(labels, getattr(model, "num_classes", 0)),
            batch_size=500,
        )

    def _save_gif(self, picture_name: str, gif_name: str) -> None:
        """Rewrites `gif_name` with every epoch's `picture_name` PNG so far.

        Frames are kept in memory; the PNGs of earlier epochs are read only
        once, on the first call after a (re)start, so a resumed run's GIFs
        still begin at epoch 1 and a long run does not reread them every
        epoch.
        """
        paths = sorted(
            glob.glob(os.path.join(self.image_dir, f"{picture_name}_epoch_*.png"))
        )
        frames = self._gif_frames.setdefault(picture_name, {})
        for path in paths:
            if path not in frames:
                frames[path] = imageio.imread(path)
        pictures.save_gif(
            os.path.join(self.image_dir, gif_name), [frames[path] for path in paths]
        )

    def _write(
        self, writer, step: int, name: str, epoch: int, picture: np.ndarray
    ) -> None:
        pictures.save_png(
            os.path.join(self.image_dir, f"{name}_epoch_{epoch:03d}.png"), picture
        )
        as_batch = picture if picture.ndim == 3 else picture[..., None]
        with writer.as_default(step=step):
            tf.summary.image(f"images/{name}", as_batch[None], step=step)

    def on_epoch_end(self, trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        model = trainer.model
        number = epoch + 1
        step = int(trainer.global_step.numpy())
        writer = trainer.summary_writer
        os.makedirs(self.image_dir, exist_ok=True)
        conditional = getattr(model, "is_conditional", False)
        if self._prior_noise is None:
            rng = np.random.default_rng(self._seed)
            if conditional:
                # Rows of one z each, repeated across the label columns.
                rows = max(1, self.num_samples // model.num_classes)
                self._prior_noise = np.repeat(
                    rng.standard_normal([rows, model.latent_dim]).astype(np.float32),
                    model.num_classes,
                    axis=0,
                )
            else:
                self._prior_noise = rng.standard_normal(
                    [self.num_samples, model.latent_dim]
                ).astype(np.float32)

        originals = self.images[: self.num_reconstructions]
        original_labels = self.labels[: self.num_reconstructions]
        means = self._posterior_means(model, originals, original_labels)
        reconstructions = self._decode_mean(model, means, original_labels)
        self._write(
            writer,
            step,
            "reconstructions",
            number,
            pictures.reconstruction_grid(
                originals, reconstructions, num_columns=min(8, len(originals))
            ),
        )

        # The model's own prior (a VampPrior's mixture, a two-level model's
        # p(z1)) from the fixed noise; N(0, I) draws are the noise itself.
        prior_latents = models.prior_draws(model, self._prior_noise, self._seed).numpy()
        if conditional:
            sample_labels = np.arange(len(self._prior_noise)) % model.num_classes
            samples = self._decode_mean(model, prior_latents, sample_labels)
            columns = model.num_classes
        else:
            samples = self._decode_mean(model, prior_latents)
            columns = self._columns(len(samples))
        self._write(
            writer,
            step,
            "samples",
            number,
            pictures.image_grid(samples, num_columns=columns),
        )

        # Rewriting ten per-label GIFs of every epoch so far costs more each
        # epoch; after the first ten, refresh them every tenth and the last.
        last_epoch = getattr(getattr(trainer, "config", None), "epochs", None)
        gifs_due = number <= 10 or number % 10 == 0 or number == last_epoch
        if conditional:
            for label in range(model.num_classes):
                labels = np.full(self.manifold_grid_size**2, label)
                self._write(
                    writer,
                    step,
                    f"manifold_label_{label}",
                    number,
                    pictures.latent_manifold(
                        lambda z, labels=labels: self._decode_mean(
                            model, z, labels[: len(z)]
                        ),
                        model.latent_dim,
                        model.image_shape,
                        grid_size=self.manifold_grid_size,
                    ),
                )
                if gifs_due:
                    self._save_gif(
                        f"manifold_label_{label}", f"manifold_label_{label}.gif"
                    )
            self._write_style_transfer(model, writer, step, number)
        else:
            self._write(
                writer,
                step,
                "manifold",
                number,
                pictures.latent_manifold(
                    lambda z: self._decode_mean(model, z),
                    model.latent_dim,
                    model.image_shape,
                    grid_size=self.manifold_grid_size,
                ),
            )

        if model.latent_dim >= 2:
            scatter_images = self.images[: self.num_scatter_points]
            scatter_labels = self.labels[: self.num_scatter_points]
            points = self._posterior_means(model, scatter_images, scatter_labels)[:, :2]
            self._write(
                writer,
                step,
                "latent_scatter",
                number,
                figures.latent_scatter(
                    points,
                    scatter_labels,
                    self.num_classes,
                    class_names=self.class_names,
                    title=f"Posterior means of {len(points)} test images",
                ),
            )
            if conditional:
                for label in range(model.num_classes):
                    chosen = scatter_labels == label
                    if chosen.any():
                        name = self.class_names[label] if self.class_names else str(label)
                        self._write(
                            writer,
                            step,
                            f"latent_scatter_label_{label}",
                            number,
                            figures.latent_scatter(
                                points[chosen],
                                scatter_labels[chosen],
                                self.num_classes,
                                class_names=self.class_names,
                                title=f"Posterior means of the test images "
                                f"of class {name}",
                            ),
                        )

        self._save_gif("samples", "samples.gif")
        if self.traversal_steps:
            self._write_traversals(model, writer, step, number)
        self._training_curves.on_epoch_end(trainer, epoch, logs)

    def _write_traversals(self, model, writer, step: int, number: int) -> None:
        """Each dimension swept from the first test image's code; the rows
        ordered by the dimensions' mean KL over the scatter images."""
        images = self.images[: self.num_scatter_points]
        labels = self.labels[: self.num_scatter_points]
        one_hot = evaluation.one_hot(labels, getattr(model, "num_classes", 0))

        def moments_of(*inputs):
            posterior = model.encode(*inputs, is_training=False)
            return tf.stack([posterior.mean(), posterior.stddev()], axis=1)

        moments = evaluation.in_batches(moments_of, images, one_hot, batch_size=500)
        kl = traversals.dimension_kl(moments[:, 0], moments[:, 1])
        label = None if one_hot is None else labels[:1]
        grid, _ = traversals.traversal_grid(
            lambda codes: self._decode_mean(
                model, codes, None if label is None else np.repeat(label, len(codes))
            ),
            moments[0, 0],
            kl,
            num_steps=self.traversal_steps,
        )
        self._write(writer, step, "traversals", number, grid)
        self._save_gif("traversals", "traversals.gif")

    def _write_style_transfer(self, model, writer, step: int, number: int) -> None:
        chosen = np.flatnonzero(self.labels == self.style_source_label)[
            : self.num_style_examples
        ]
        if not len(chosen):
            return
        sources = self.images[chosen]
        codes = self._posterior_means(model, sources, self.labels[chosen])
        rows = [sources] + [
            self._decode_mean(model, codes, np.full(len(chosen), label))
            for label in range(model.num_classes)
        ]
        self._write(
            writer,
            step,
            "style_transfer",
            number,
            pictures.image_grid(np.concatenate(rows), num_columns=len(chosen)),
        )
