"""Tests for vae/pictures.py: grids, quantiles, manifold and file writing."""

import os
import tempfile
from unittest import mock

from absl.testing import parameterized
import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from vae import pictures


def _constant_tiles(values, height=3, width=4, channels=1):
    """[len(values), height, width, channels] batch; tile i is filled with values[i]."""
    values = np.asarray(values, dtype=np.float64)
    return np.broadcast_to(
        values[:, None, None, None], (len(values), height, width, channels)
    ).copy()


def _tile(grid, row, column, height, width, padding):
    top = padding + row * (height + padding)
    left = padding + column * (width + padding)
    return grid[top : top + height, left : left + width]


class ToUint8Test(tf.test.TestCase):
    def test_scales_rounds_and_clips(self):
        values = np.array(
            [-0.5, 0.0, 0.5, 1.0 / 255.0, 1.0, 7.0, np.nan, np.inf, -np.inf]
        )
        self.assertAllEqual(
            pictures.to_uint8(values), [0, 0, 128, 1, 255, 255, 0, 255, 0]
        )
        self.assertEqual(pictures.to_uint8(values).dtype, np.uint8)

    def test_uint8_is_returned_unchanged(self):
        values = np.array([[0, 17, 255]], dtype=np.uint8)
        converted = pictures.to_uint8(values)
        self.assertAllEqual(converted, values)
        self.assertIsNot(converted, values)


class ImageGridTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("full_rows", 6, 3, 2, (2 * 3 + 3 * 2, 3 * 4 + 4 * 2)),
        ("partial_last_row", 5, 3, 1, (2 * 3 + 3 * 1, 3 * 4 + 4 * 1)),
        ("no_padding", 4, 2, 0, (2 * 3, 2 * 4)),
        ("columns_reduced_to_batch", 2, 10, 2, (3 + 2 * 2, 2 * 4 + 3 * 2)),
    )
    def test_grayscale_shape_is_two_dimensional(
        self, num_images, num_columns, padding, shape
    ):
        grid = pictures.image_grid(
            _constant_tiles(np.linspace(0, 1, num_images)), num_columns, padding=padding
        )
        self.assertEqual(grid.shape, shape)
        self.assertEqual(grid.dtype, np.uint8)

    def test_tiles_fill_rows_left_to_right(self):
        # Tile i is the exact uint8 level 30 * i.
        grid = pictures.image_grid(
            _constant_tiles(np.arange(5) * 30 / 255.0), 3, padding=2
        )
        for index in range(5):
            row, column = divmod(index, 3)
            tile = _tile(grid, row, column, 3, 4, 2)
            self.assertAllEqual(tile, np.full((3, 4), 30 * index))
        # The cell after the last image is blank (pad value 1.0 -> 255).
        self.assertAllEqual(_tile(grid, 1, 2, 3, 4, 2), np.full((3, 4), 255))

    def test_tile_contents_keep_their_orientation(self):
        image = np.arange(12, dtype=np.float64).reshape(1, 3, 4, 1) / 11.0
        grid = pictures.image_grid(image, num_columns=1, padding=1)
        self.assertAllEqual(grid[1:4, 1:5], pictures.to_uint8(image[0, ..., 0]))

    @parameterized.parameters(0.0, 0.4, 1.0)
    def test_padding_has_pad_value(self, pad_value):
        # Tiles are mid-grey 0.5 so every pixel that is not 0.5 must be padding.
        grid = pictures.image_grid(
            _constant_tiles([0.5] * 4), num_columns=2, padding=3, pad_value=pad_value
        )
        tile_mask = np.zeros(grid.shape, dtype=bool)
        for row in range(2):
            for column in range(2):
                top, left = 3 + row * 6, 3 + column * 7
                tile_mask[top : top + 3, left : left + 4] = True
        self.assertAllEqual(grid[tile_mask], np.full(16 * 3, 128))
        self.assertAllEqual(
            grid[~tile_mask], np.full(np.sum(~tile_mask), round(pad_value * 255))
        )

    def test_rgb_grid_keeps_channels(self):
        red = np.zeros((1, 2, 2, 3))
        red[..., 0] = 1.0
        blue = np.zeros((1, 2, 2, 3))
        blue[..., 2] = 1.0
        grid = pictures.image_grid(np.concatenate([red, blue]), num_columns=2, padding=1)
        self.assertEqual(grid.shape, (4, 7, 3))
        self.assertAllEqual(grid[1, 1], [255, 0, 0])
        self.assertAllEqual(grid[2, 5], [0, 0, 255])
        self.assertAllEqual(grid[0, 0], [255, 255, 255])

    def test_three_dimensional_batch_is_grayscale(self):
        grid = pictures.image_grid(np.zeros((2, 3, 4)), num_columns=2, padding=0)
        self.assertEqual(grid.shape, (3, 8))

    def test_uint8_input_is_used_as_is(self):
        images = np.array([[[[7]]], [[[200]]]], dtype=np.uint8)
        grid = pictures.image_grid(images, num_columns=2, padding=0)
        self.assertAllEqual(grid, [[7, 200]])

    @parameterized.named_parameters(
        ("flat_points", dict(images=np.zeros((4, 2)), num_columns=2)),
        ("two_channels", dict(images=np.zeros((4, 3, 3, 2)), num_columns=2)),
        ("empty_batch", dict(images=np.zeros((0, 3, 3, 1)), num_columns=2)),
        ("zero_columns", dict(images=np.zeros((4, 3, 3, 1)), num_columns=0)),
        (
            "negative_padding",
            dict(images=np.zeros((4, 3, 3, 1)), num_columns=2, padding=-1),
        ),
        (
            "pad_value_out_of_range",
            dict(images=np.zeros((4, 3, 3, 1)), num_columns=2, pad_value=2),
        ),
    )
    def test_bad_arguments_raise_value_error(self, kwargs):
        with self.assertRaises(ValueError):
            pictures.image_grid(**kwargs)


class ReconstructionGridTest(tf.test.TestCase):
    def test_each_reconstruction_is_directly_below_its_original(self):
        # Multiples of 1/255 so each tile has an exact uint8 value: 20 * index
        # for originals, 100 + 20 * index for reconstructions.
        originals = _constant_tiles(np.arange(5) * 20 / 255.0)
        reconstructions = _constant_tiles((100 + np.arange(5) * 20) / 255.0)
        grid = pictures.reconstruction_grid(originals, reconstructions, num_columns=3)
        # 2 chunks of 3 columns -> 4 grid rows.
        self.assertEqual(grid.shape, (4 * 3 + 5 * 2, 3 * 4 + 4 * 2))
        for index in range(5):
            chunk, column = divmod(index, 3)
            above = _tile(grid, 2 * chunk, column, 3, 4, 2)
            below = _tile(grid, 2 * chunk + 1, column, 3, 4, 2)
            self.assertAllEqual(above, np.full((3, 4), 20 * index))
            self.assertAllEqual(below, np.full((3, 4), 100 + 20 * index))
        # The short final chunk leaves its last cell blank in both rows.
        self.assertAllEqual(_tile(grid, 2, 2, 3, 4, 2), np.full((3, 4), 255))
        self.assertAllEqual(_tile(grid, 3, 2, 3, 4, 2), np.full((3, 4), 255))

    def test_rgb(self):
        originals = np.zeros((2, 2, 2, 3))
        originals[..., 1] = 1.0
        reconstructions = np.zeros((2, 2, 2, 3))
        reconstructions[..., 0] = 1.0
        grid = pictures.reconstruction_grid(
            originals, reconstructions, num_columns=2, padding=0
        )
        self.assertEqual(grid.shape, (4, 4, 3))
        self.assertAllEqual(grid[:2].reshape(-1, 3), np.tile([[0, 255, 0]], (8, 1)))
        self.assertAllEqual(grid[2:].reshape(-1, 3), np.tile([[255, 0, 0]], (8, 1)))

    def test_mismatched_shapes_raise_value_error(self):
        with self.assertRaisesRegex(ValueError, "reconstructions"):
            pictures.reconstruction_grid(
                np.zeros((4, 3, 3, 1)), np.zeros((3, 3, 3, 1)), 2
            )


class GaussianQuantileGridTest(tf.test.TestCase, parameterized.TestCase):
    def test_known_normal_quantiles(self):
        self.assertAllClose(
            pictures.gaussian_quantile_grid(3), [-1.6448536, 0.0, 1.6448536], atol=1e-6
        )
        self.assertAllClose(
            pictures.gaussian_quantile_grid(2, low=0.025, high=0.975),
            [-1.959964, 1.959964],
            atol=1e-6,
        )
        # p = 0.05, 0.35, 0.65, 0.95.
        self.assertAllClose(
            pictures.gaussian_quantile_grid(4),
            [-1.6448536, -0.3853205, 0.3853205, 1.6448536],
            atol=1e-6,
        )

    @parameterized.parameters(2, 5, 20)
    def test_symmetric_and_increasing(self, grid_size):
        values = pictures.gaussian_quantile_grid(grid_size)
        self.assertEqual(values.shape, (grid_size,))
        self.assertAllClose(values, -values[::-1], atol=1e-12)
        self.assertTrue(np.all(np.diff(values) > 0))

    def test_single_point_is_the_middle_quantile(self):
        self.assertAllClose(pictures.gaussian_quantile_grid(1), [0.0], atol=1e-12)

    @parameterized.named_parameters(
        ("zero_size", 0, 0.05, 0.95),
        ("low_zero", 5, 0.0, 0.95),
        ("high_one", 5, 0.05, 1.0),
        ("reversed", 5, 0.9, 0.1),
    )
    def test_bad_arguments_raise_value_error(self, grid_size, low, high):
        with self.assertRaises(ValueError):
            pictures.gaussian_quantile_grid(grid_size, low, high)


class _RecordingDecoder:
    """Fake decode_fn: pixel (0, 0) encodes z[0], pixel (0, 1) encodes z[1] as (z + 2) / 4."""

    def __init__(self, image_shape, return_tensor=False):
        self.image_shape = image_shape
        self.return_tensor = return_tensor
        self.calls = []

    def __call__(self, z):
        self.calls.append(np.array(z))
        images = np.zeros((z.shape[0],) + tuple(self.image_shape), dtype=np.float32)
        # Broadcast over the channel axis when there is one.
        per_image = (-1,) + (1,) * (len(self.image_shape) - 2)
        images[:, 0, 0] = ((z[:, 0] + 2.0) / 4.0).reshape(per_image)
        if z.shape[1] > 1:
            images[:, 0, 1] = ((z[:, 1] + 2.0) / 4.0).reshape(per_image)
        return tf.constant(images) if self.return_tensor else images


class LatentManifoldTest(tf.test.TestCase, parameterized.TestCase):
    def test_decodes_the_quantile_grid_once_with_the_usual_orientation(self):
        grid_size, latent_dim = 4, 3
        decoder = _RecordingDecoder((5, 6, 1))
        grid = pictures.latent_manifold(
            decoder, latent_dim, (5, 6, 1), grid_size, padding=1
        )
        quantiles = pictures.gaussian_quantile_grid(grid_size)

        self.assertLen(decoder.calls, 1)
        z = decoder.calls[0]
        self.assertEqual(z.dtype, np.float32)
        self.assertEqual(z.shape, (grid_size * grid_size, latent_dim))
        self.assertAllEqual(z[:, 2], np.zeros(grid_size * grid_size))
        self.assertEqual(grid.shape, (grid_size * 6 + 1, grid_size * 7 + 1))

        for row in range(grid_size):
            for column in range(grid_size):
                # First dim along the columns, second down the rows, largest at the top.
                self.assertAllClose(
                    z[row * grid_size + column, :2],
                    [quantiles[column], quantiles[grid_size - 1 - row]],
                )
                tile = _tile(grid, row, column, 5, 6, 1)
                decoded_z0 = tile[0, 0] / 255.0 * 4.0 - 2.0
                decoded_z1 = tile[0, 1] / 255.0 * 4.0 - 2.0
                self.assertAllClose(decoded_z0, quantiles[column], atol=0.01)
                self.assertAllClose(decoded_z1, quantiles[grid_size - 1 - row], atol=0.01)

    def test_one_dimensional_latent_space_is_a_single_row(self):
        decoder = _RecordingDecoder((5, 6, 1))
        grid = pictures.latent_manifold(decoder, 1, (5, 6, 1), grid_size=5, padding=0)
        quantiles = pictures.gaussian_quantile_grid(5)
        self.assertEqual(grid.shape, (5, 5 * 6))
        self.assertAllClose(decoder.calls[0], quantiles[:, None])
        decoded = grid[0, ::6] / 255.0 * 4.0 - 2.0
        self.assertAllClose(decoded, quantiles, atol=0.01)

    def test_rgb_images_and_tensor_output(self):
        decoder = _RecordingDecoder((4, 4, 3), return_tensor=True)
        grid = pictures.latent_manifold(decoder, 2, (4, 4, 3), grid_size=3)
        self.assertEqual(grid.shape, (12, 12, 3))
        self.assertEqual(grid.dtype, np.uint8)
        # Top-left tile: smallest z0, largest z1, encoded in all three channels.
        self.assertAllClose(grid[0, 0] / 255.0 * 4.0 - 2.0, [-1.6449] * 3, atol=0.01)
        self.assertAllClose(grid[0, 1] / 255.0 * 4.0 - 2.0, [1.6449] * 3, atol=0.01)

    def test_two_dimensional_image_shape(self):
        decoder = _RecordingDecoder((5, 6))
        self.assertEqual(pictures.latent_manifold(decoder, 2, (5, 6), 2).shape, (10, 12))

    def test_wrong_decoder_output_shape_raises_value_error(self):
        with self.assertRaisesRegex(ValueError, "decode_fn"):
            pictures.latent_manifold(
                lambda z: np.zeros((3, 5, 6, 1)), 2, (5, 6, 1), grid_size=4
            )

    @parameterized.named_parameters(
        ("point_data", 2, (2,)),
        ("two_channels", 2, (5, 5, 2)),
        ("zero_latent_dim", 0, (5, 5, 1)),
    )
    def test_bad_arguments_raise_value_error(self, latent_dim, image_shape):
        with self.assertRaises(ValueError):
            pictures.latent_manifold(
                lambda z: np.zeros((z.shape[0],) + image_shape),
                latent_dim,
                image_shape,
                3,
            )


class SaveTest(tf.test.TestCase, parameterized.TestCase):
    def _temp_dir(self):
        return tempfile.mkdtemp(dir=self.get_temp_dir())

    @parameterized.named_parameters(
        ("grayscale", (5, 7)),
        ("single_channel", (5, 7, 1)),
        ("rgb", (5, 7, 3)),
        ("rgba", (5, 7, 4)),
    )
    def test_png_round_trip(self, shape):
        image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
        directory = self._temp_dir()
        path = os.path.join(directory, "nested", "deeper", "picture.png")
        pictures.save_png(path, image)
        expected = image[..., 0] if shape[-1:] == (1,) else image
        self.assertAllEqual(iio.imread(path), expected)
        self.assertEqual(os.listdir(os.path.dirname(path)), ["picture.png"])

    def test_png_float_input_and_overwrite(self):
        path = os.path.join(self._temp_dir(), "picture.png")
        pictures.save_png(path, np.zeros((2, 2), dtype=np.uint8))
        pictures.save_png(path, np.array([[0.0, 1.0], [0.5, 2.0]]))
        self.assertAllEqual(iio.imread(path), [[0, 255], [128, 255]])

    def test_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(self):
        directory = self._temp_dir()
        path = os.path.join(directory, "picture.png")
        pictures.save_png(path, np.full((3, 3), 9, dtype=np.uint8))

        def write_half_then_fail(temporary_path, *args, **kwargs):
            with open(temporary_path, "wb") as file:
                file.write(b"\x89PNG half")
            raise OSError("disk full")

        with mock.patch.object(pictures.iio, "imwrite", side_effect=write_half_then_fail):
            with self.assertRaises(OSError):
                pictures.save_png(path, np.zeros((3, 3), dtype=np.uint8))
        self.assertEqual(os.listdir(directory), ["picture.png"])
        self.assertAllEqual(iio.imread(path), np.full((3, 3), 9))

    def test_bad_picture_shape_raises_value_error(self):
        with self.assertRaises(ValueError):
            pictures.save_png(
                os.path.join(self._temp_dir(), "x.png"), np.zeros((2, 2, 2))
            )

    @parameterized.named_parameters(("grayscale", ()), ("rgb", (3,)))
    def test_gif_round_trip(self, channel_shape):
        frames = [
            np.full((4, 5) + channel_shape, value, dtype=np.uint8)
            for value in (0, 90, 255)
        ]
        frames[1][0, 0] = 200
        directory = self._temp_dir()
        path = os.path.join(directory, "sub", "movie.gif")
        pictures.save_gif(path, frames, seconds_per_frame=0.25)

        read_back = iio.imread(path, index=None)
        self.assertEqual(read_back.shape[:3], (3, 4, 5))
        for frame, expected in zip(read_back, frames):
            # GIF readers return RGB; every channel carries the grey level.
            expected_rgb = np.broadcast_to(
                expected[..., None] if expected.ndim == 2 else expected, (4, 5, 3)
            )
            self.assertAllEqual(frame[..., :3], expected_rgb)
        metadata = iio.immeta(path)
        self.assertEqual(metadata["duration"], 250)
        self.assertEqual(metadata["loop"], 0)
        self.assertEqual(os.listdir(os.path.dirname(path)), ["movie.gif"])

    def test_gif_of_float_frames_from_grids(self):
        frames = [pictures.image_grid(_constant_tiles([v, 1 - v]), 2) for v in (0.0, 1.0)]
        path = os.path.join(self._temp_dir(), "grids.gif")
        pictures.save_gif(path, frames)
        self.assertEqual(iio.imread(path, index=None).shape[0], 2)

    @parameterized.named_parameters(
        ("no_frames", [], 0.5),
        ("mixed_shapes", [np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.uint8)], 0.5),
        ("zero_delay", [np.zeros((2, 2), np.uint8)], 0.0),
    )
    def test_bad_gif_arguments_raise_value_error(self, frames, seconds_per_frame):
        path = os.path.join(self._temp_dir(), "movie.gif")
        with self.assertRaises(ValueError):
            pictures.save_gif(path, frames, seconds_per_frame)
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(path + ".tmp"))


if __name__ == "__main__":
    tf.test.main()
