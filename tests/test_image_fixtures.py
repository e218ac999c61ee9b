"""Tests for launch/image_fixtures.py: the demo shapes and writing image folders."""

import os

import numpy as np
import tensorflow as tf

from launch import image_fixtures
from vae import image_folders


class ColouredShapesTest(tf.test.TestCase):
    def test_shapes_are_two_coloured_labelled_in_turn_and_seeded(self):
        images, labels = image_fixtures.coloured_shapes(7, 12, seed=3)
        self.assertEqual(images.shape, (7, 12, 12, 3))
        self.assertEqual(images.dtype, np.uint8)
        self.assertAllEqual(labels, [0, 1, 2, 0, 1, 2, 0])
        again, _ = image_fixtures.coloured_shapes(7, 12, seed=3)
        self.assertAllEqual(images, again)
        for image in images:  # Two colours each: a shape on a background.
            self.assertLen(np.unique(image.reshape(-1, 3), axis=0), 2)

    def test_bad_sizes_are_refused(self):
        with self.assertRaisesRegex(ValueError, "num_images"):
            image_fixtures.coloured_shapes(0)
        with self.assertRaisesRegex(ValueError, "image_size"):
            image_fixtures.coloured_shapes(3, 4)


class WriteImageFolderTest(tf.test.TestCase):
    def test_write_then_load_round_trip(self):
        images, labels = image_fixtures.coloured_shapes(6, 8)
        folder = os.path.join(self.create_tempdir().full_path, "data")
        paths = image_fixtures.write_image_folder(
            folder, images, labels, image_fixtures.SHAPE_CLASSES
        )
        self.assertEqual(
            os.path.relpath(paths[1], folder), os.path.join("square", "1.png")
        )
        loaded = image_folders.load_image_folder(folder)
        self.assertEqual(loaded.class_names, ("circle", "square", "triangle"))
        order = [int(os.path.basename(path)[:-4]) for path in loaded.relative_paths]
        self.assertAllEqual(loaded.images, images[order])
        self.assertAllEqual(loaded.labels, labels[order])

    def test_write_refuses_bad_input(self):
        folder = self.create_tempdir().full_path
        with self.assertRaisesRegex(ValueError, "uint8 images"):
            image_fixtures.write_image_folder(folder, np.zeros((2, 4, 4)), None)
        with self.assertRaisesRegex(ValueError, "extension"):
            image_fixtures.write_image_folder(
                folder, np.zeros((1, 4, 4, 1), np.uint8), None, extension=".gif"
            )


if __name__ == "__main__":
    tf.test.main()
