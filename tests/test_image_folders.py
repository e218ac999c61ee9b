"""Tests for vae/image_folders.py: reading, converting and caching image folders.

Every folder is written by the test itself, with 8x8 or 12x12 images.
"""

import os
from unittest import mock

from absl.testing import parameterized
import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from launch import image_fixtures
from vae import image_folders


def _gray_images(count, height=8, width=8, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, size=(count, height, width, 1), dtype=np.uint8
    )


def _colour_images(count, height=8, width=8, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, size=(count, height, width, 3), dtype=np.uint8
    )


def _write(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.asarray(pixels)
    iio.imwrite(
        path, pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    )
    return path


class _FolderTestCase(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.root = self.create_tempdir().full_path

    def folder(self, name="data"):
        return os.path.join(self.root, name)

    def load(self, folder, **kwargs):
        return image_folders.load_image_folder(folder, **kwargs)


class LayoutTest(_FolderTestCase):
    def test_class_subfolders_are_sorted_labels(self):
        images = _gray_images(6)
        names = ["zebra", "Ant", "cat"]
        folder = self.folder()
        image_fixtures.write_image_folder(folder, images, [0, 1, 2, 0, 1, 2], names)
        loaded = self.load(folder)
        # Sorted by code point: upper case before lower case.
        self.assertEqual(loaded.class_names, ("Ant", "cat", "zebra"))
        self.assertEqual(loaded.num_classes, 3)
        self.assertEqual(loaded.images.shape, (6, 8, 8, 1))
        self.assertEqual(loaded.images.dtype, np.uint8)
        self.assertFalse(loaded.has_split_folders)
        for path, label, pixels in zip(
            loaded.relative_paths, loaded.labels, loaded.images
        ):
            class_name, file_name = path.split("/")
            self.assertEqual(loaded.class_names[label], class_name)
            # PNG is lossless, so the pixels come back exactly.
            self.assertAllEqual(pixels, images[int(file_name[:-4])])

    def test_images_directly_in_the_folder_are_unlabelled(self):
        folder = self.folder()
        image_fixtures.write_image_folder(folder, _gray_images(4), None)
        loaded = self.load(folder)
        self.assertEqual(loaded.class_names, ())
        self.assertEqual(loaded.num_classes, 1)
        self.assertAllEqual(loaded.labels, [0, 0, 0, 0])

    def test_nested_folders_and_hidden_entries(self):
        folder = self.folder()
        _write(os.path.join(folder, "a", "deeper", "x.png"), _gray_images(1)[0])
        _write(os.path.join(folder, "a", "y.PNG"), _gray_images(1, seed=1)[0])
        _write(os.path.join(folder, "b", "z.bmp"), _gray_images(1, seed=2)[0])
        _write(os.path.join(folder, ".hidden", "h.png"), _gray_images(1)[0])
        _write(os.path.join(folder, "b", ".h.png"), _gray_images(1)[0])
        loaded = self.load(folder)
        self.assertEqual(loaded.class_names, ("a", "b"))
        self.assertEqual(loaded.relative_paths, ("a/deeper/x.png", "a/y.PNG", "b/z.bmp"))
        self.assertAllEqual(loaded.labels, [0, 0, 1])

    def test_train_and_test_subfolders(self):
        folder = self.folder()
        image_fixtures.write_image_folder(
            os.path.join(folder, "train"), _gray_images(4), [0, 1, 2, 0], ["a", "b", "c"]
        )
        # test/ lacks class "b": allowed, labels still follow train/.
        image_fixtures.write_image_folder(
            os.path.join(folder, "test"), _gray_images(2, seed=1), [0, 1], ["a", "c"]
        )
        loaded = self.load(folder)
        self.assertTrue(loaded.has_split_folders)
        self.assertEqual(loaded.class_names, ("a", "b", "c"))
        train, test = loaded.split(test_fraction=0.5)
        self.assertEqual(len(train), 4)
        self.assertAllEqual(loaded.labels[test], [0, 2])
        self.assertTrue(all(loaded.relative_paths[i].startswith("test/") for i in test))

    def test_empty_test_folder_is_refused(self):
        folder = self.folder()
        image_fixtures.write_image_folder(
            os.path.join(folder, "train"), _gray_images(2), None
        )
        os.makedirs(os.path.join(folder, "test"))
        loaded = self.load(folder)
        with self.assertRaisesRegex(
            image_folders.ImageFolderError, "its test/ subfolder holds no images"
        ):
            loaded.split(0.1)

    def test_test_class_missing_from_train_is_refused(self):
        folder = self.folder()
        image_fixtures.write_image_folder(
            os.path.join(folder, "train"), _gray_images(2), [0, 1], ["a", "b"]
        )
        image_fixtures.write_image_folder(
            os.path.join(folder, "test"), _gray_images(1), [0], ["zzz"]
        )
        with self.assertRaisesRegex(
            image_folders.ImageFolderError, r"test/ has the class subfolders \['zzz'\]"
        ):
            self.load(folder)

    @parameterized.parameters(True, False)
    def test_train_without_test_is_refused(self, with_images):
        folder = self.folder()
        image_fixtures.write_image_folder(
            os.path.join(folder, "train"),
            _gray_images(2),
            [0, 1] if with_images else None,
        )
        with self.assertRaisesRegex(
            image_folders.ImageFolderError, "has no test/ subfolder"
        ):
            self.load(folder)

    def test_missing_folder(self):
        missing = self.folder("nope")
        with self.assertRaisesRegex(
            image_folders.ImageFolderNotFoundError, f"{missing!r} does not exist"
        ):
            self.load(missing)
        self.assertTrue(
            issubclass(image_folders.ImageFolderNotFoundError, FileNotFoundError)
        )

    def test_empty_folder(self):
        folder = self.folder()
        os.makedirs(folder)
        with self.assertRaisesRegex(image_folders.ImageFolderError, "holds no images"):
            self.load(folder)

    def test_empty_class_folder(self):
        folder = self.folder()
        image_fixtures.write_image_folder(folder, _gray_images(2), [0, 0], ["a"])
        os.makedirs(os.path.join(folder, "b"))
        with self.assertRaisesRegex(
            image_folders.ImageFolderError, "class subfolder b/ holds no images"
        ):
            self.load(folder)

    def test_image_beside_class_folders_is_refused(self):
        folder = self.folder()
        image_fixtures.write_image_folder(folder, _gray_images(2), [0, 1])
        _write(os.path.join(folder, "stray.png"), _gray_images(1)[0])
        with self.assertRaisesRegex(
            image_folders.ImageFolderError, "stray.png in the folder, beside the class"
        ):
            self.load(folder)


class NonImageFilesTest(_FolderTestCase):
    def setUp(self):
        super().setUp()
        self.data = self.folder()
        image_fixtures.write_image_folder(self.data, _gray_images(3), [0, 1, 1])
        for name in ("notes.txt", "0/labels.csv"):
            with open(os.path.join(self.data, name), "w") as stream:
                stream.write("not an image")

    def test_skipped_with_a_warning(self):
        with self.assertLogs(level="WARNING") as logs:
            loaded = self.load(self.data)
        self.assertEqual(loaded.images.shape[0], 3)
        self.assertRegex(
            "\n".join(logs.output), r"Skipping 2 files.*0/labels.csv, notes.txt"
        )

    def test_refused_by_choice(self):
        with self.assertRaisesRegex(
            image_folders.ImageFolderError,
            r"2 file\(s\) that are not images.*0/labels.csv, notes.txt.*"
            r"--non_image_files=skip",
        ):
            self.load(self.data, non_image_files="refuse")

    def test_unknown_policy(self):
        with self.assertRaisesRegex(ValueError, "non_image_files.*'ignore'"):
            self.load(self.data, non_image_files="ignore")

    def test_unreadable_image_names_the_file_and_caches_nothing(self):
        broken = os.path.join(self.data, "1", "broken.png")
        with open(broken, "wb") as stream:
            stream.write(b"\x89PNG not really")
        cache_dir = self.folder("cache")
        with self.assertRaisesRegex(
            image_folders.ImageFolderError, f"{broken!r} could not be read"
        ):
            self.load(self.data, cache_dir=cache_dir)
        self.assertFalse(os.path.exists(cache_dir) and os.listdir(cache_dir))


class ConversionTest(_FolderTestCase):
    def test_mixed_sizes_need_image_size(self):
        folder = self.folder()
        _write(os.path.join(folder, "a", "small.png"), _gray_images(1)[0])
        _write(os.path.join(folder, "a", "large.png"), _gray_images(1, 12, 10)[0])
        with self.assertRaisesRegex(
            image_folders.ImageFolderError,
            r"2 different sizes.*large.png is 12x10.*small.png is 8x8.*"
            r"--image_size",
        ):
            self.load(folder)
        loaded = self.load(folder, image_size=(4, 6))
        self.assertEqual(loaded.images.shape, (2, 4, 6, 1))

    def test_resize_is_antialiased_bilinear(self):
        folder = self.folder()
        large = _gray_images(1, 12, 12)[0]
        _write(os.path.join(folder, "large.png"), large)
        loaded = self.load(folder, image_size=8)
        expected = tf.image.resize(
            large[np.newaxis].astype(np.float32),
            (8, 8),
            method="bilinear",
            antialias=True,
        )
        self.assertAllEqual(
            loaded.images[0], np.round(expected.numpy()[0]).astype(np.uint8)
        )
        # Shrinking by an integer factor with the antialiasing filter averages
        # blocks: a 2x2 checkerboard of 0 and 200 becomes flat 100.
        checkerboard = np.indices((8, 8)).sum(axis=0) % 2 * 200
        # Without the filter, sampling would pick 0s and 200s (aliasing).
        resized = image_folders.resize_images(
            checkerboard.astype(np.uint8)[np.newaxis, ..., np.newaxis], (4, 4)
        )
        self.assertAllInRange(resized, 98, 102)  # The corners see the border.

    def test_same_size_is_not_resampled(self):
        images = _gray_images(2)
        self.assertIs(image_folders.resize_images(images, (8, 8)), images)

    def test_channels(self):
        folder = self.folder()
        colour = _colour_images(1)[0]
        gray_as_rgb = np.repeat(_gray_images(1, seed=3)[0], 3, axis=-1)
        _write(os.path.join(folder, "c", "colour.png"), colour)
        _write(os.path.join(folder, "g", "gray.png"), gray_as_rgb)
        auto = self.load(folder)
        self.assertEqual(auto.images.shape, (2, 8, 8, 3))
        self.assertAllEqual(auto.images[0], colour)
        gray = self.load(folder, channels=1)
        luma = colour.astype(np.float64) @ [0.299, 0.587, 0.114]
        self.assertAllEqual(gray.images[0, ..., 0], np.round(luma))
        # Three equal channels are gray already: no rounding through luma.
        self.assertAllEqual(gray.images[1], gray_as_rgb[..., :1])

    def test_gray_files_stay_gray_unless_asked(self):
        folder = self.folder()
        images = _gray_images(2)
        image_fixtures.write_image_folder(folder, images, None, extension=".bmp")
        self.assertEqual(self.load(folder).images.shape[-1], 1)
        rgb = self.load(folder, channels=3).images
        self.assertAllEqual(rgb, np.repeat(images, 3, axis=-1))

    def test_transparent_pixels_become_white(self):
        folder = self.folder()
        rgba = np.zeros((8, 8, 4), np.uint8)
        rgba[..., 0] = 200
        rgba[:4, :, 3] = 255  # Top half opaque red, bottom half transparent.
        _write(os.path.join(folder, "a.png"), rgba)
        loaded = self.load(folder)
        self.assertAllEqual(loaded.images[0, 0, 0], [200, 0, 0])
        self.assertAllEqual(loaded.images[0, 7, 0], [255, 255, 255])

    def test_sixteen_bit_images_are_scaled(self):
        folder = self.folder()
        values = np.array([[0, 257], [65535, 32896]], np.uint16)
        _write(os.path.join(folder, "deep.png"), values)
        loaded = self.load(folder)
        self.assertAllEqual(loaded.images[0, ..., 0], [[0, 1], [255, 128]])

    def test_convert_images_for_arrays(self):
        images = _colour_images(3, 8, 8)
        converted = image_folders.convert_images(images, image_size=(4,), channels=1)
        self.assertEqual(converted.shape, (3, 4, 4, 1))
        self.assertIs(image_folders.convert_images(images), images)

    @parameterized.parameters((0,), ((1, 2, 3),), ((0, 4),), ("8",), (True,))
    def test_bad_image_size(self, image_size):
        with self.assertRaisesRegex(ValueError, "image_size must be"):
            image_folders.normalize_image_size(image_size)

    def test_image_size_forms(self):
        self.assertEqual(image_folders.normalize_image_size(()), ())
        self.assertEqual(image_folders.normalize_image_size(5), (5, 5))
        self.assertEqual(image_folders.normalize_image_size([5]), (5, 5))
        self.assertEqual(image_folders.normalize_image_size((4, 6)), (4, 6))

    @parameterized.parameters(2, 4, -1, True, "3")
    def test_bad_channels(self, channels):
        with self.assertRaisesRegex(ValueError, "channels must be"):
            image_folders.check_channels(channels)


class HeldOutSplitTest(tf.test.TestCase, parameterized.TestCase):
    def test_fraction_of_each_class_by_path_hash(self):
        paths = [f"c{label}/{index}.png" for label in range(3) for index in range(20)]
        labels = np.repeat(np.arange(3), 20)
        is_test = image_folders.held_out_test_mask(paths, labels, 0.25)
        self.assertAllEqual(
            [is_test[labels == label].sum() for label in range(3)], [5, 5, 5]
        )
        # Independent of the order the files are listed in.
        order = np.random.default_rng(0).permutation(len(paths))
        shuffled = image_folders.held_out_test_mask(
            [paths[i] for i in order], labels[order], 0.25
        )
        self.assertAllEqual(shuffled, is_test[order])

    def test_adding_an_image_moves_no_other(self):
        paths = [f"a/{index}.png" for index in range(9)]
        before = image_folders.held_out_test_mask(paths, np.zeros(9), 0.2)
        after = image_folders.held_out_test_mask(paths + ["a/new.png"], np.zeros(10), 0.2)
        # 9 * 0.2 and 10 * 0.2 both round to 2 test images.
        self.assertAllEqual(after[:9], before)

    @parameterized.parameters(0, 1, 1.5, -0.1)
    def test_bad_fraction(self, fraction):
        with self.assertRaisesRegex(ValueError, "test_fraction must be"):
            image_folders.held_out_test_mask(["a"], np.zeros(1), fraction)

    def test_empty_split_is_refused(self):
        folder = self.create_tempdir().full_path
        image_fixtures.write_image_folder(folder, _gray_images(2), None)
        loaded = image_folders.load_image_folder(folder)
        with self.assertRaisesRegex(
            image_folders.ImageFolderError, "leaves the test split empty"
        ):
            loaded.split(0.1)


class CacheTest(_FolderTestCase):
    def setUp(self):
        super().setUp()
        self.data = self.folder()
        image_fixtures.write_image_folder(self.data, _colour_images(6), [0, 1] * 3)
        self.cache_dir = self.folder("cache")

    def cache_files(self):
        return sorted(os.listdir(self.cache_dir)) if os.path.isdir(self.cache_dir) else []

    def test_second_load_reads_the_cache_not_the_images(self):
        first = self.load(self.data, cache_dir=self.cache_dir)
        self.assertEqual(len(self.cache_files()), 1)
        self.assertNotIn("cached", first.source)
        with mock.patch.object(
            image_folders.iio, "imread", side_effect=AssertionError("decoded an image")
        ):
            second = self.load(self.data, cache_dir=self.cache_dir)
        self.assertIn("cached in", second.source)
        self.assertAllEqual(second.images, first.images)
        self.assertAllEqual(second.labels, first.labels)
        self.assertEqual(second.relative_paths, first.relative_paths)

    def test_key_follows_files_and_settings(self):
        self.load(self.data, cache_dir=self.cache_dir)
        self.load(self.data, cache_dir=self.cache_dir, channels=1)
        self.load(self.data, cache_dir=self.cache_dir, image_size=4)
        self.assertEqual(len(self.cache_files()), 3)
        # Changing an image's content (and so its size or mtime) is a new key.
        path = os.path.join(self.data, "0", "0.png")
        replacement = np.full((8, 8, 3), 7, np.uint8)
        iio.imwrite(path, replacement)
        os.utime(path, ns=(1, 1))
        reloaded = self.load(self.data, cache_dir=self.cache_dir)
        self.assertAllEqual(reloaded.images[0], replacement)
        self.assertEqual(len(self.cache_files()), 4)

    def test_corrupt_entry_is_converted_again(self):
        first = self.load(self.data, cache_dir=self.cache_dir)
        (entry,) = self.cache_files()
        with open(os.path.join(self.cache_dir, entry), "wb") as stream:
            stream.write(b"truncated")
        with self.assertLogs(level="WARNING") as logs:
            again = self.load(self.data, cache_dir=self.cache_dir)
        self.assertIn("unusable cache entry", "\n".join(logs.output))
        self.assertAllEqual(again.images, first.images)
        self.load(self.data, cache_dir=self.cache_dir)  # Rewritten: no warning.

    def test_failed_write_leaves_no_partial_file(self):
        with mock.patch.object(image_folders.np, "savez", side_effect=KeyboardInterrupt):
            with self.assertRaises(KeyboardInterrupt):
                self.load(self.data, cache_dir=self.cache_dir)
        self.assertEqual(self.cache_files(), [])

    def test_unwritable_cache_only_warns(self):
        blocker = self.folder("file_in_the_way")
        with open(blocker, "w") as stream:
            stream.write("x")
        with self.assertLogs(level="WARNING") as logs:
            loaded = self.load(self.data, cache_dir=os.path.join(blocker, "cache"))
        self.assertEqual(loaded.images.shape, (6, 8, 8, 3))
        self.assertIn("Could not cache", "\n".join(logs.output))


if __name__ == "__main__":
    tf.test.main()
