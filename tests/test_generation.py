"""Tests of vae/generation.py: reading user images, sample and style grids."""

import os

import imageio.v2 as imageio
import numpy as np
import tensorflow as tf

from vae import generation
from vae import models

_SHAPE = (28, 28, 1)


def _digit(height=28, width=28, dark_on_light=False):
    """A white bar on black (MNIST's polarity), or the inverse."""
    image = np.zeros([height, width], np.uint8)
    image[height // 4 : 3 * height // 4, width // 2 - 2 : width // 2 + 2] = 255
    return 255 - image if dark_on_light else image


class LoadImageTest(tf.test.TestCase):
    def write(self, name, array):
        path = os.path.join(self.get_temp_dir(), name)
        imageio.imwrite(path, array)
        return path

    def test_mnist_like_png_is_read_unchanged(self):
        image = generation.load_image(self.write("a.png", _digit()), _SHAPE)
        self.assertEqual(image.shape, _SHAPE)
        self.assertEqual(image.dtype, np.float32)
        self.assertAllClose(image[..., 0], _digit() / 255.0)

    def test_dark_on_light_is_inverted_unless_told_not_to(self):
        path = self.write("b.png", _digit(dark_on_light=True))
        self.assertAllClose(generation.load_image(path, _SHAPE)[..., 0], _digit() / 255.0)
        self.assertAllClose(
            generation.load_image(path, _SHAPE, invert="false")[..., 0],
            _digit(dark_on_light=True) / 255.0,
        )

    def test_wrong_size_is_refused_without_resize(self):
        path = self.write("big.png", _digit(56, 56))
        with self.assertRaisesRegex(
            generation.ImageError, r"56x56 .* expects 28x28.*--resize"
        ):
            generation.load_image(path, _SHAPE)
        resized = generation.load_image(path, _SHAPE, resize=True)
        self.assertEqual(resized.shape, _SHAPE)
        # The bar is still where it was, at half the size.
        self.assertGreater(resized[14, 14, 0], 0.8)
        self.assertLess(resized[2, 2, 0], 0.1)

    def test_colour_is_refused_without_resize_and_converted_with_it(self):
        rgb = np.repeat(_digit()[..., None], 3, axis=-1)
        path = self.write("rgb.png", rgb)
        with self.assertRaisesRegex(generation.ImageError, "3 channel"):
            generation.load_image(path, _SHAPE)
        self.assertAllClose(
            generation.load_image(path, _SHAPE, resize=True)[..., 0],
            _digit() / 255.0,
            atol=1e-3,
        )

    def test_missing_file_and_non_image_name_the_file(self):
        missing = os.path.join(self.get_temp_dir(), "nope.png")
        with self.assertRaisesRegex(generation.ImageError, "nope.png"):
            generation.load_image(missing, _SHAPE)
        text = os.path.join(self.get_temp_dir(), "notes.png")
        with open(text, "w") as stream:
            stream.write("not a picture")
        with self.assertRaisesRegex(generation.ImageError, "notes.png is not an image"):
            generation.load_image(text, _SHAPE)


class GridTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tf.random.set_seed(0)
        cls.model = models.VAE(
            models.ModelConfig(
                architecture="mlp",
                image_shape=_SHAPE,
                latent_dim=2,
                hidden_units=(8,),
                num_classes=10,
            )
        )

    def test_sample_grid_has_a_column_per_label(self):
        grid = generation.sample_grid(self.model, [3, 5, 7], rows=4)
        # image_grid pads 2 pixels around every 28x28 tile.
        self.assertEqual(grid.shape, (2 + 4 * 30, 2 + 3 * 30))

    def test_rows_share_z_so_same_label_columns_match(self):
        grid = generation.sample_grid(self.model, [4, 4], rows=2)
        self.assertAllEqual(grid[:, 2:30], grid[:, 32:60])

    def test_style_transfer_rows_start_with_the_source(self):
        images = np.random.default_rng(0).random([2, 28, 28, 1]).astype(np.float32)
        grid = generation.style_transfer_grid(self.model, images, [7, 1], list(range(10)))
        self.assertEqual(grid.shape, (2 + 2 * 30, 2 + 11 * 30))
        transferred = generation.transfer_style(self.model, images, [7, 1], [7])
        # Decoding with the image's own label (7 for image 0) is its
        # reconstruction; image 1 shows a 1, so as a 7 it is drawn otherwise.
        reconstructions = self.model.reconstruct(images, tf.one_hot([7, 1], 10)).numpy()
        self.assertAllClose(transferred[0, 0], reconstructions[0])
        self.assertNotAllClose(transferred[0, 1], reconstructions[1])

    def test_labels_out_of_range_are_named(self):
        with self.assertRaisesRegex(ValueError, "label 10 is out of range"):
            generation.sample_grid(self.model, [1, 10], rows=1)
        with self.assertRaisesRegex(ValueError, "target labels: label 12"):
            generation.transfer_style(
                self.model, np.zeros([1, 28, 28, 1], np.float32), [7], [12]
            )

    def test_unconditional_model_samples_without_labels_only(self):
        model = models.VAE(
            models.ModelConfig(
                architecture="mlp", image_shape=_SHAPE, latent_dim=2, hidden_units=(8,)
            )
        )
        self.assertEqual(generation.sample_grid(model, [], rows=3).shape, (92, 92))
        with self.assertRaisesRegex(ValueError, "unconditional"):
            generation.sample_grid(model, [1], rows=3)
        with self.assertRaisesRegex(ValueError, "needs a conditional model"):
            generation.transfer_style(model, np.zeros([1, 28, 28, 1]), [1], [2])


if __name__ == "__main__":
    tf.test.main()
