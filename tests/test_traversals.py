"""Tests for vae/traversals.py and the traversal pictures of trainers/hooks.py."""

import math
import os

import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from tests import test_hooks
from trainers import hooks
from vae import models
from vae import traversals


class TraversalMathTest(tf.test.TestCase):
    def test_dimension_kl_by_hand(self):
        means = np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
        stddevs = np.array([[1.0, 1.0, math.exp(-1.0)], [1.0, 1.0, math.exp(-1.0)]])
        # Prior itself: 0. Mean +-1: 0.5 * 1 = 0.5. sigma = e^-1:
        # 0.5 * (e^-2 + 2 - 1).
        self.assertAllClose(
            traversals.dimension_kl(means, stddevs),
            [0.0, 0.5, 0.5 * (math.exp(-2.0) + 1.0)],
        )

    def test_codes_sweep_one_dimension_per_row(self):
        codes = traversals.traversal_codes(
            np.array([1.0, 2.0, 3.0]), np.array([2, 0]), num_steps=3, limit=2.0
        )
        self.assertAllClose(
            codes, [[1, 2, -2], [1, 2, 0], [1, 2, 2], [-2, 2, 3], [0, 2, 3], [2, 2, 3]]
        )

    def test_grid_rows_follow_kl_and_show_their_dimension(self):
        # A decoder whose image is uniformly (z_j + 2) / 4 for j = 1 only:
        # only dimension 1's row changes along the row.
        def decode_mean(codes):
            value = (codes[:, 1] + 2.0) / 4.0
            return np.broadcast_to(
                value[:, None, None, None], (len(codes), 4, 4, 1)
            ).astype(np.float32)

        grid, order = traversals.traversal_grid(
            decode_mean, np.zeros(3), np.array([0.1, 3.0, 0.0]), num_steps=5
        )
        self.assertAllEqual(order, [1, 0, 2])
        # 3 rows x 5 columns of 4x4 tiles with 2-pixel padding.
        self.assertEqual(grid.shape, (3 * 4 + 4 * 2, 5 * 4 + 6 * 2))
        first_row = [grid[2, 2 + c * 6] for c in range(5)]
        self.assertAllEqual(
            first_row, np.round(np.linspace(0, 1, 5) * 255).astype(np.uint8)
        )
        second_row = [grid[8, 2 + c * 6] for c in range(5)]
        self.assertLen(set(second_row), 1)

    def test_bad_sweep_is_refused(self):
        with self.assertRaisesRegex(ValueError, "num_steps >= 2"):
            traversals.traversal_codes(np.zeros(2), np.arange(2), num_steps=1)


class TraversalPicturesTest(tf.test.TestCase):
    def test_hook_writes_a_grid_per_epoch_and_a_gif(self):
        tf.random.set_seed(0)
        workdir = self.create_tempdir().full_path
        model = models.VAE(test_hooks.SMALL_CONV)
        images = np.random.default_rng(0).uniform(size=(6, 8, 8, 1)).astype(np.float32)
        hook = hooks.VaePictures(
            workdir=workdir,
            images=images,
            labels=np.zeros(6, int),
            num_classes=1,
            num_reconstructions=2,
            num_samples=4,
            manifold_grid_size=2,
            num_scatter_points=6,
            traversal_steps=7,
        )
        trainer = test_hooks._fake_trainer(  # pylint: disable=protected-access
            model, workdir
        )
        for epoch in range(2):
            # Training changes the decoder between epochs (identical frames
            # would be merged into one by the GIF encoder).
            test_hooks._perturb(  # pylint: disable=protected-access
                model, seed=epoch
            )
            hook.on_epoch_end(trainer, epoch, {})
        image_dir = os.path.join(workdir, "images")
        grid = iio.imread(os.path.join(image_dir, "traversals_epoch_002.png"))
        # latent_dim (2) rows of 7 tiles of 8x8.
        self.assertEqual(grid.shape, (2 * 8 + 3 * 2, 7 * 8 + 8 * 2))
        self.assertTrue(
            os.path.exists(os.path.join(image_dir, "traversals_epoch_001.png"))
        )
        self.assertLen(
            iio.imread(os.path.join(image_dir, "traversals.gif"), index=None), 2
        )


if __name__ == "__main__":
    tf.test.main()
