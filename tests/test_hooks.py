"""Tests for trainers/hooks.py: the per-epoch pictures of a VAE and its curves."""

import glob
import os
import types
from unittest import mock

import imageio.v3 as iio
import numpy as np
import tensorflow as tf
import tf_keras

from tests import testing_utils
from trainers import base
from trainers import hooks
from vae import figures
from vae import models

SMALL_CONV = testing_utils.SMALL_CONV
PICTURE_NAMES = ("reconstructions", "samples", "manifold", "latent_scatter")
NUM_IMAGES = 12
NUM_SAMPLES = 9
GRID_SIZE = 4


def _fake_trainer(model, workdir, history=()):
    """The attributes of a Trainer that a hook may use."""
    return types.SimpleNamespace(
        model=model,
        global_step=tf.Variable(0, dtype=tf.int64),
        summary_writer=tf.summary.create_file_writer(
            os.path.join(workdir, "tensorboard")
        ),
        history=list(history),
    )


def _record(epoch_number):
    """An epoch's record as the ELBO trainer gives it to hooks."""
    return {
        "epoch": epoch_number,
        "global_step": 5 * epoch_number,
        "train": {
            "elbo": -100.0 + epoch_number,
            "reconstruction": 90.0,
            "kl": 10.0 - epoch_number,
        },
        "test": {
            "elbo": -101.0 + epoch_number,
            "reconstruction": 91.0,
            "kl": 10.0 - epoch_number,
        },
    }


def _plotted_histories(function=figures.training_curves):
    """Patches `figures.training_curves` to record the histories it draws."""
    histories = []

    def record(history, **options):
        histories.append([dict(entry) for entry in history])
        return function(history, **options)

    return mock.patch.object(figures, "training_curves", side_effect=record), histories


def _perturb(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.decoder.trainable_variables:
        variable.assign_add(rng.normal(0.0, 0.5, variable.shape).astype(np.float32))


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
            workdir=self.workdir,
            images=self.images,
            labels=self.labels,
            num_classes=3,
            num_reconstructions=4,
            num_samples=NUM_SAMPLES,
            manifold_grid_size=GRID_SIZE,
            num_scatter_points=NUM_IMAGES,
            seed=seed,
        )

    def _png(self, name, epoch_number):
        return iio.imread(
            os.path.join(self.image_dir, f"{name}_epoch_{epoch_number:03d}.png")
        )

    def test_writes_every_picture_and_a_gif_frame_per_epoch(self):
        hook = self._hook()
        hook.on_epoch_end(self.trainer, 0, _record(1))
        self.assertCountEqual(
            os.listdir(self.image_dir),
            [f"{name}_epoch_001.png" for name in PICTURE_NAMES]
            + ["samples.gif", "training_curves.png"],
        )

        _perturb(self.model, seed=1)  # Training changed the model.
        self.trainer.global_step.assign(5)
        self.trainer.history.append(_record(1))
        hook.on_epoch_end(self.trainer, 1, _record(2))
        self.assertCountEqual(
            os.listdir(self.image_dir),
            [
                f"{name}_epoch_{number:03d}.png"
                for name in PICTURE_NAMES
                for number in (1, 2)
            ]
            + ["samples.gif", "training_curves.png"],
        )

        # 9 samples in a 3x3 grid of 8x8 tiles with 2-pixel padding.
        samples = self._png("samples", 1)
        self.assertEqual(samples.dtype, np.uint8)
        self.assertEqual(samples.shape, (3 * 8 + 4 * 2, 3 * 8 + 4 * 2))
        # The manifold is GRID_SIZE x GRID_SIZE seamless tiles.
        self.assertEqual(self._png("manifold", 1).shape, (GRID_SIZE * 8, GRID_SIZE * 8))
        # Four originals above their four reconstructions.
        reconstructions = self._png("reconstructions", 2)
        self.assertEqual(reconstructions.shape, (2 * 8 + 3 * 2, 4 * 8 + 5 * 2))
        # The scatter plot is a figure: RGB, the same size every epoch.
        scatter = self._png("latent_scatter", 1)
        self.assertEqual(scatter.ndim, 3)
        self.assertEqual(scatter.shape, self._png("latent_scatter", 2).shape)
        curves = iio.imread(os.path.join(self.image_dir, "training_curves.png"))
        self.assertEqual(curves.ndim, 3)
        self.assertEqual(curves.dtype, np.uint8)

        frames = iio.imread(os.path.join(self.image_dir, "samples.gif"), index=None)
        self.assertLen(frames, 2)
        self.assertFalse(np.array_equal(self._png("samples", 1), self._png("samples", 2)))
        for frame, number in zip(frames, (1, 2)):
            expected = self._png("samples", number)
            # Grayscale PNGs come back from the GIF as RGB(A) frames.
            self.assertAllEqual(np.asarray(frame)[..., 0], expected)

    def test_scatter_legend_names_the_classes(self):
        hook = hooks.VaePictures(
            workdir=self.workdir,
            images=self.images,
            labels=self.labels,
            num_classes=3,
            class_names=("ant", "bee", "cat"),
            num_samples=NUM_SAMPLES,
            manifold_grid_size=GRID_SIZE,
        )
        drawn = []
        original = figures.latent_scatter_figure

        def draw(*args, **kwargs):
            drawn.append(original(*args, **kwargs))
            return drawn[-1]

        with mock.patch.object(figures, "latent_scatter_figure", side_effect=draw):
            hook.on_epoch_end(self.trainer, 0, {})
        (axes,) = drawn[0].axes
        self.assertEqual(
            [text.get_text() for text in axes.get_legend().get_texts()],
            ["ant", "bee", "cat"],
        )
        self.assertEqual(axes.get_title(), f"Posterior means of {NUM_IMAGES} test images")

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
            self.assertAllEqual(self._png(name, 1), self._png(name, 2), msg=name)
        # The grid does depend on the noise: another seed draws other samples.
        other_dir = self.create_tempdir().full_path
        other = hooks.VaePictures(
            workdir=other_dir,
            images=self.images,
            labels=self.labels,
            num_classes=3,
            num_samples=NUM_SAMPLES,
            manifold_grid_size=GRID_SIZE,
            seed=5,
        )
        other.on_epoch_end(_fake_trainer(self.model, other_dir), 0, {})
        other_samples = iio.imread(
            os.path.join(other_dir, "images", "samples_epoch_001.png")
        )
        self.assertFalse(np.array_equal(other_samples, self._png("samples", 1)))

    def test_pictures_go_to_tensorboard_at_the_global_step(self):
        hook = self._hook()
        self.trainer.global_step.assign(7)
        hook.on_epoch_end(self.trainer, 0, {})
        self.trainer.summary_writer.flush()
        event_dir = os.path.join(self.workdir, "tensorboard")
        self.assertNotEmpty(glob.glob(os.path.join(event_dir, "events.out.tfevents.*")))
        tags = _read_tags(event_dir)
        self.assertCountEqual(tags, [(f"images/{name}", 7) for name in PICTURE_NAMES])


class ConditionalPicturesTest(tf.test.TestCase):
    def test_per_label_manifolds_scatters_gifs_and_style_transfer(self):
        tf.random.set_seed(0)
        model = models.VAE(testing_utils.mlp_config((8, 8, 1), (4,), num_classes=3))
        workdir = self.create_tempdir().full_path
        trainer = _fake_trainer(model, workdir)
        rng = np.random.default_rng(0)
        labels = np.arange(NUM_IMAGES) % 3
        hook = hooks.VaePictures(
            workdir=workdir,
            images=rng.uniform(size=(NUM_IMAGES, 8, 8, 1)).astype(np.float32),
            labels=labels,
            num_classes=3,
            num_samples=6,
            manifold_grid_size=GRID_SIZE,
            style_source_label=2,
            num_style_examples=3,
        )
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
            self.assertLen(
                iio.imread(
                    os.path.join(image_dir, f"manifold_label_{label}.gif"), index=None
                ),
                2,
            )
        self.assertNotIn("manifold_epoch_001.png", names)
        # Samples: one column per label, 6 // 3 = 2 rows.
        samples = iio.imread(os.path.join(image_dir, "samples_epoch_001.png"))
        self.assertEqual(samples.shape[:2], (2 + 2 * 10, 2 + 3 * 10))
        # Style transfer: the three label-2 sources on top, then one row per
        # label; the row of label 2 is their reconstruction.
        grid = iio.imread(os.path.join(image_dir, "style_transfer_epoch_002.png"))
        self.assertEqual(grid.shape[:2], (2 + 4 * 10, 2 + 3 * 10))
        sources = hook.images[labels == 2][:3]
        one_hot = tf.one_hot([2, 2, 2], 3)
        reconstruction = model.reconstruct(sources, one_hot).numpy()
        row_of_label_2 = grid[2 + 3 * 10 : 2 + 3 * 10 + 8, 2 : 2 + 8]
        self.assertAllClose(
            row_of_label_2 / 255.0, reconstruction[0, ..., 0], atol=1 / 255.0 + 1e-6
        )


class _Mean(tf.Module):
    """The smallest model: one number."""

    def __init__(self):
        super().__init__()
        self.value = tf.Variable(0.0)


class _MeanTrainer(base.Trainer):
    """Fits one number to the data: a real trainer, with a real history."""

    def __init__(self, workdir, epochs, trainer_hooks):
        model = _Mean()
        values = np.linspace(1.0, 3.0, 8).astype(np.float32)

        def train_batches(epoch, skip_batches):
            del epoch
            return (
                tf.data.Dataset.from_tensor_slices({"x": values})
                .batch(4, drop_remainder=True)
                .skip(skip_batches)
            )

        def test_batches():
            return tf.data.Dataset.from_tensor_slices(
                {"x": values, "mask": np.ones_like(values)}
            ).batch(4)

        super().__init__(
            model=model,
            optimizers={"sgd": (tf_keras.optimizers.SGD(0.1), [model.value])},
            config=base.TrainerConfig(workdir=workdir, epochs=epochs, progress="none"),
            data=base.DataSource(
                train_batches=train_batches,
                steps_per_epoch=2,
                batch_size=4,
                eval_batches={"test": test_batches},
            ),
            hooks=trainer_hooks,
        )

    def train_step(self, batch, seed):
        del seed
        variables = self.optimized_variables["sgd"]
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(batch["x"] - self.model.value))
        gradients = tape.gradient(loss, variables)
        self.optimizers["sgd"].apply_gradients(zip(gradients, variables))
        return {"squared_error": loss}

    def eval_step(self, batch):
        return {"squared_error": tf.square(batch["x"] - self.model.value)}


class TrainingCurvesTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.workdir = self.create_tempdir().full_path
        self.path = os.path.join(self.workdir, "images", "training_curves.png")

    def test_one_epoch_then_several_rewrite_one_file(self):
        hook = hooks.TrainingCurves(self.workdir)
        trainer = _fake_trainer(None, self.workdir)
        patcher, histories = _plotted_histories()
        with patcher:
            hook.on_epoch_end(trainer, 0, _record(1))
            first = iio.imread(self.path)
            trainer.history.append(_record(1))
            hook.on_epoch_end(trainer, 1, _record(2))
        self.assertEqual(
            [[entry["epoch"] for entry in history] for history in histories],
            [[1], [1, 2]],
        )
        self.assertEqual(os.listdir(os.path.dirname(self.path)), ["training_curves.png"])
        second = iio.imread(self.path)
        self.assertEqual(second.shape, first.shape)
        self.assertFalse(np.array_equal(first, second))

    def test_epochs_before_a_restart_come_from_the_trainers_history(self):
        # A resumed trainer's history holds the epochs of earlier launches.
        trainer = _fake_trainer(None, self.workdir, history=[_record(1), _record(2)])
        patcher, histories = _plotted_histories()
        with patcher:
            hooks.TrainingCurves(self.workdir).on_epoch_end(trainer, 2, _record(3))
        self.assertEqual([entry["epoch"] for entry in histories[0]], [1, 2, 3])
        self.assertAllClose(
            [entry["test"]["kl"] for entry in histories[0]], [9.0, 8.0, 7.0]
        )

    def test_a_resumed_run_plots_every_epoch(self):
        patcher, histories = _plotted_histories()
        with patcher:
            _MeanTrainer(self.workdir, 1, [hooks.TrainingCurves(self.workdir)]).train()
            _MeanTrainer(self.workdir, 3, [hooks.TrainingCurves(self.workdir)]).train()
        self.assertEqual(
            [[entry["epoch"] for entry in history] for history in histories],
            [[1], [1, 2], [1, 2, 3]],
        )
        last = histories[-1]
        self.assertEqual(figures.curve_quantities(last), ["squared_error"])
        # The same epoch-1 numbers as the first launch drew.
        self.assertEqual(last[0]["test"], histories[0][0]["test"])
        self.assertEqual(iio.imread(self.path).ndim, 3)

    def test_nothing_numeric_to_plot_writes_nothing(self):
        hooks.TrainingCurves(self.workdir).on_epoch_end(
            _fake_trainer(None, self.workdir), 0, {"epoch": 1}
        )
        self.assertFalse(os.path.exists(self.path))


if __name__ == "__main__":
    tf.test.main()
