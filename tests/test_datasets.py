"""Tests for vae/datasets.py.

All loader tests write their own tiny IDX / npz files into a temporary
directory; one test reads the real MNIST files when VAE_DATA_DIR is set.
"""

import math
import os
import re
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing_utils
from vae import datasets


class _TempDirMixin:
    def write(self, directory, file_name, data):
        return testing_utils.write_file(directory, file_name, data)

    def write_fake_mnist(self, directory, **kwargs):
        """Writes the four IDX files; returns the arrays that were written."""
        return testing_utils.write_fake_mnist(directory, **kwargs)


class ReadIdxTest(_TempDirMixin, tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters(
        (np.arange(10, dtype=np.uint8), True),
        (testing_utils.numbered_images(3, 5, 4), True),
        (testing_utils.numbered_images(3, 5, 4), False),
        (np.array([[-7, 2**30], [5, 0]], dtype=np.int32), True),
        (np.array([0.5, -2.25], dtype=np.float32), False),
    )
    def test_round_trip(self, array, compress):
        path = self.write(
            self.get_temp_dir(),
            "data.idx",
            testing_utils.idx_bytes(array, compress=compress),
        )
        result = datasets.read_idx(path)
        self.assertEqual(result.dtype, array.dtype)
        self.assertEqual(result.dtype.byteorder, "=" if array.itemsize > 1 else "|")
        self.assertAllEqual(result, array)

    def test_truncated_gzip(self):
        data = testing_utils.idx_bytes(testing_utils.numbered_images(4))
        path = self.write(self.get_temp_dir(), "cut.gz", data[: len(data) // 2])
        with self.assertRaisesRegex(
            datasets.DataError, rf"{re.escape(path)}.*truncated or corrupt"
        ):
            datasets.read_idx(path)

    def test_wrong_magic(self):
        path = self.write(
            self.get_temp_dir(),
            "magic.gz",
            testing_utils.idx_bytes(np.zeros(4, np.uint8), magic=0x12345601),
        )
        with self.assertRaisesRegex(
            datasets.DataError, rf"{re.escape(path)}.*0x12345601.*not an IDX header"
        ):
            datasets.read_idx(path)

    def test_unknown_type_code(self):
        path = self.write(
            self.get_temp_dir(),
            "type.gz",
            testing_utils.idx_bytes(np.zeros(4, np.uint8), magic=0x00000701),
        )
        with self.assertRaisesRegex(datasets.DataError, "0x00000701"):
            datasets.read_idx(path)

    @parameterized.parameters(((5,),), ((2, 3, 4),))
    def test_dims_disagree_with_payload(self, dims):
        path = self.write(
            self.get_temp_dir(),
            "dims.gz",
            testing_utils.idx_bytes(np.zeros((2, 3, 3), np.uint8), dims=dims),
        )
        with self.assertRaisesRegex(
            datasets.DataError,
            rf"{re.escape(path)}.*shape {re.escape(str(list(dims)))}.*"
            rf"\({math.prod(dims)} data bytes\).*holds 18 data bytes",
        ):
            datasets.read_idx(path)

    def test_header_cut_short(self):
        data = testing_utils.idx_bytes(np.zeros((2, 2), np.uint8), compress=False)[:9]
        path = self.write(self.get_temp_dir(), "header", data)
        with self.assertRaisesRegex(datasets.DataError, "ends inside its header"):
            datasets.read_idx(path)

    def test_missing_file(self):
        path = os.path.join(self.get_temp_dir(), "absent.gz")
        with self.assertRaisesRegex(datasets.DataNotFoundError, re.escape(path)):
            datasets.read_idx(path)
        self.assertTrue(issubclass(datasets.DataNotFoundError, FileNotFoundError))
        self.assertTrue(issubclass(datasets.DataNotFoundError, ValueError))


class LoadImageDatasetTest(_TempDirMixin, tf.test.TestCase, parameterized.TestCase):
    def test_loads_idx_files(self):
        directory = os.path.join(self.get_temp_dir(), "mnist")
        written = self.write_fake_mnist(directory)
        data = datasets.load_dataset("mnist", directory, allow_download=False)
        self.assertEqual(data.name, "mnist")
        self.assertEqual(data.num_classes, 10)
        self.assertEqual(data.example_shape, (28, 28, 1))
        self.assertEqual(data.source, f"idx files in {directory}")
        self.assertIsNone(data.validation)
        self.assertEqual(data.train.images.dtype, np.uint8)
        self.assertEqual(data.train.labels.dtype, np.int64)
        self.assertAllEqual(data.train.images[..., 0], written["train_images"])
        self.assertAllEqual(data.train.labels, written["train_labels"])
        self.assertAllEqual(data.test.images[..., 0], written["test_images"])
        self.assertAllEqual(data.test.labels, written["test_labels"])

    def test_validation_split(self):
        directory = os.path.join(self.get_temp_dir(), "split")
        self.write_fake_mnist(directory, num_train=50)
        data = datasets.load_dataset(
            "mnist", directory, validation_size=12, seed=4, allow_download=False
        )
        self.assertEqual(data.validation.num_examples, 12)
        self.assertEqual(data.train.num_examples, 38)
        # The first pixel numbers the example in the file.
        validation_ids = data.validation.images[:, 0, 0, 0]
        train_ids = data.train.images[:, 0, 0, 0]
        self.assertEmpty(np.intersect1d(validation_ids, train_ids))
        self.assertAllEqual(
            np.sort(np.concatenate([validation_ids, train_ids])), np.arange(50)
        )
        self.assertAllEqual(data.validation.labels, validation_ids % 10)
        # A seed fixes the split; another seed gives another one.
        again = datasets.load_dataset(
            "mnist", directory, validation_size=12, seed=4, allow_download=False
        )
        self.assertAllEqual(again.validation.images, data.validation.images)
        other = datasets.load_dataset(
            "mnist", directory, validation_size=12, seed=5, allow_download=False
        )
        self.assertNotAllEqual(other.validation.images[:, 0, 0, 0], validation_ids)

    @parameterized.parameters(50, 51, -1)
    def test_bad_validation_size(self, validation_size):
        directory = os.path.join(self.get_temp_dir(), "bad_split")
        self.write_fake_mnist(directory, num_train=50)
        with self.assertRaisesRegex(ValueError, "validation_size"):
            datasets.load_dataset(
                "mnist", directory, validation_size=validation_size, allow_download=False
            )

    def test_missing_directory(self):
        directory = os.path.join(self.get_temp_dir(), "nowhere")
        with self.assertRaises(datasets.DataNotFoundError) as caught:
            datasets.load_dataset("fashion_mnist", directory)
        message = str(caught.exception)
        self.assertIn(directory, message)
        self.assertIn("does not exist", message)
        for file_name in datasets.IDX_FILE_NAMES.values():
            self.assertIn(file_name, message)
        self.assertIn("fashion_mnist.npz", message)

    def test_empty_directory_without_download(self):
        directory = self.get_temp_dir()
        with self.assertRaises(datasets.DataNotFoundError) as caught:
            datasets.load_dataset("mnist", directory, allow_download=False)
        message = str(caught.exception)
        self.assertIn(directory, message)
        self.assertIn("allow_download is False", message)
        for file_name in datasets.IDX_FILE_NAMES.values():
            self.assertIn(file_name, message)
        self.assertIn("mnist.npz", message)

    def test_no_directory_without_download(self):
        with self.assertRaisesRegex(
            datasets.DataNotFoundError, "No data_dir.*allow_download is False"
        ):
            datasets.load_dataset("mnist", None, allow_download=False)

    def test_some_files_missing(self):
        directory = os.path.join(self.get_temp_dir(), "partial")
        self.write_fake_mnist(directory, skip=("test_labels",))
        # Even with downloading allowed: a partial copy is a mistake to report.
        with self.assertRaisesRegex(
            datasets.DataNotFoundError,
            rf"{re.escape(directory)}.*only some.*"
            rf"t10k-labels-idx1-ubyte\.gz missing",
        ):
            datasets.load_dataset("mnist", directory, allow_download=True)

    def test_downloads_when_directory_is_empty(self):
        images = testing_utils.numbered_images(3)
        labels = np.array([1, 2, 3], np.uint8)
        loader = mock.Mock()
        loader.load_data.return_value = ((images, labels), (images[:2], labels[:2]))
        keras_datasets = mock.Mock(mnist=loader)
        with mock.patch("tf_keras.datasets", keras_datasets):
            data = datasets.load_dataset("mnist", self.get_temp_dir())
        loader.load_data.assert_called_once_with()
        self.assertEqual(data.source, "keras download")
        self.assertAllEqual(data.train.images[..., 0], images)
        self.assertEqual(data.test.num_examples, 2)

    @parameterized.parameters("mnist", "fashion_mnist")
    def test_npz_fallback(self, name):
        directory = os.path.join(self.get_temp_dir(), f"npz_{name}")
        os.makedirs(directory)
        x_train, x_test = (
            testing_utils.numbered_images(9),
            testing_utils.numbered_images(4),
        )
        y_train = np.arange(9, dtype=np.int64) % 10
        y_test = np.array([9, 0, 1, 2], dtype=np.uint8)
        path = os.path.join(directory, f"{name}.npz")
        np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        data = datasets.load_dataset(name, directory, allow_download=False)
        self.assertEqual(data.source, f"npz file {path}")
        self.assertEqual(data.train.images.shape, (9, 28, 28, 1))
        self.assertAllEqual(data.train.images[..., 0], x_train)
        self.assertAllEqual(data.test.labels, y_test)
        self.assertEqual(data.test.labels.dtype, np.int64)

    def test_npz_missing_keys(self):
        directory = os.path.join(self.get_temp_dir(), "npz_keys")
        os.makedirs(directory)
        path = os.path.join(directory, "mnist.npz")
        np.savez(
            path, x_train=testing_utils.numbered_images(2), y_train=np.zeros(2, np.uint8)
        )
        with self.assertRaisesRegex(
            datasets.DataError, rf"{re.escape(path)}.*lacks the keys.*x_test"
        ):
            datasets.load_dataset("mnist", directory, allow_download=False)

    def test_labels_out_of_range(self):
        directory = os.path.join(self.get_temp_dir(), "labels")
        labels = np.array([0, 1, 2, 10, 4, 12], np.uint8)
        self.write_fake_mnist(directory, num_train=6, train_labels=labels)
        label_path = os.path.join(directory, "train-labels-idx1-ubyte.gz")
        with self.assertRaisesRegex(
            datasets.DataError,
            rf"{re.escape(label_path)}.*2 values outside.*first is 10 at index 3",
        ):
            datasets.load_dataset("mnist", directory, allow_download=False)

    def test_label_count_disagrees_with_images(self):
        directory = os.path.join(self.get_temp_dir(), "counts")
        self.write_fake_mnist(directory, num_train=6, train_labels=np.zeros(5, np.uint8))
        with self.assertRaisesRegex(datasets.DataError, "count 5 examples.*count 6"):
            datasets.load_dataset("mnist", directory, allow_download=False)

    def test_wrong_image_size(self):
        directory = os.path.join(self.get_temp_dir(), "size")
        self.write_fake_mnist(directory)
        path = self.write(
            directory,
            "train-images-idx3-ubyte.gz",
            testing_utils.idx_bytes(testing_utils.numbered_images(20, 27, 28)),
        )
        with self.assertRaisesRegex(
            datasets.DataError, rf"{re.escape(path)}.*\[20, 27, 28\].*\[N, 28, 28\]"
        ):
            datasets.load_dataset("mnist", directory, allow_download=False)

    def test_unknown_name(self):
        with self.assertRaisesRegex(ValueError, "'cifar10'.*'mnist'.*'toy2d'"):
            datasets.load_dataset("cifar10")


class Toy2dTest(tf.test.TestCase):
    def test_shapes_labels_and_source(self):
        data = datasets.load_dataset("toy2d", seed=3)
        self.assertEqual(data.num_classes, 2)
        self.assertEqual(data.example_shape, (2,))
        self.assertEqual(data.source, "generated (seed 3)")
        for split in (data.train, data.test):
            self.assertEqual(split.images.shape, (2000, 2))
            self.assertEqual(split.images.dtype, np.float32)
            self.assertEqual(split.labels.dtype, np.int64)
            self.assertAllEqual(np.bincount(split.labels), [1000, 1000])

    def test_determinism(self):
        first = datasets.load_dataset("toy2d", seed=3)
        again = datasets.load_dataset("toy2d", seed=3)
        other = datasets.load_dataset("toy2d", seed=4)
        self.assertAllEqual(first.train.images, again.train.images)
        self.assertAllEqual(first.test.labels, again.test.labels)
        self.assertNotAllClose(first.train.images, other.train.images)
        self.assertNotAllClose(first.train.images, first.test.images)


def _split(num_examples=37, num_classes=10):
    """uint8 [N, 4, 4, 1] images numbered by their first pixel, and labels."""
    images = testing_utils.numbered_images(num_examples, 4, 4)[..., None]
    labels = (np.arange(num_examples) * 7) % num_classes
    return datasets.ArraySplit(images, labels.astype(np.int64))


def _as_numpy(dataset):
    return [{key: value.numpy() for key, value in batch.items()} for batch in dataset]


def _example_ids(batches):
    """The numbering pixel of every example, for unbinarized batches."""
    return np.stack([np.round(b["image"][:, 0, 0, 0] * 255).astype(int) for b in batches])


class TrainBatchesTest(tf.test.TestCase, parameterized.TestCase):
    def batches(self, split=None, **kwargs):
        arguments = dict(
            batch_size=8, epoch=0, seed=1, binarization="none", num_classes=10
        )
        arguments.update(kwargs)
        return _as_numpy(datasets.train_batches(split or _split(), **arguments))

    def test_full_batches_of_fixed_shape(self):
        split = _split()
        dataset = datasets.train_batches(
            split, batch_size=8, epoch=0, seed=1, binarization="none", num_classes=10
        )
        spec = dataset.element_spec
        self.assertEqual(spec["image"].shape, (8, 4, 4, 1))
        self.assertEqual(spec["image"].dtype, tf.float32)
        self.assertEqual(spec["label"].shape, (8,))
        self.assertEqual(spec["label"].dtype, tf.int32)
        self.assertEqual(spec["label_onehot"].shape, (8, 10))
        self.assertEqual(spec["label_onehot"].dtype, tf.float32)
        batches = _as_numpy(dataset)
        self.assertLen(batches, datasets.steps_per_epoch(37, 8))
        self.assertLen(batches, 4)
        ids = _example_ids(batches)
        self.assertLen(np.unique(ids), 32)  # No example twice in an epoch.
        for batch, batch_ids in zip(batches, ids):
            self.assertAllClose(batch["image"], split.images[batch_ids] / 255.0)
            self.assertAllEqual(batch["label"], split.labels[batch_ids])
            self.assertAllEqual(
                batch["label_onehot"], np.eye(10)[split.labels[batch_ids]]
            )

    def test_order_depends_on_seed_and_epoch_only(self):
        ids = _example_ids(self.batches(epoch=2, seed=5))
        self.assertAllEqual(_example_ids(self.batches(epoch=2, seed=5)), ids)
        self.assertNotAllEqual(_example_ids(self.batches(epoch=3, seed=5)), ids)
        self.assertNotAllEqual(_example_ids(self.batches(epoch=2, seed=6)), ids)
        # The binarization does not change the order.
        labels = np.stack(
            [b["label"] for b in self.batches(epoch=2, seed=5, binarization="dynamic")]
        )
        self.assertAllEqual(labels, _split().labels[ids])

    @parameterized.parameters("none", "dynamic")
    def test_skip_batches_resumes_the_same_epoch(self, binarization):
        full = self.batches(epoch=1, binarization=binarization)
        for skip in (0, 1, 3, 4):
            resumed = self.batches(epoch=1, binarization=binarization, skip_batches=skip)
            self.assertLen(resumed, 4 - skip)
            for expected, batch in zip(full[skip:], resumed):
                for key in expected:
                    self.assertAllEqual(batch[key], expected[key])

    @parameterized.parameters(-1, 5)
    def test_bad_skip_batches(self, skip):
        with self.assertRaisesRegex(ValueError, r"skip_batches.*\[0, 4\]"):
            self.batches(skip_batches=skip)

    def test_batch_larger_than_split(self):
        with self.assertRaisesRegex(ValueError, "batch_size=40.*37 examples"):
            self.batches(batch_size=40)

    def test_static_binarization_thresholds(self):
        pixels = np.array([0, 1, 126, 127, 128, 129, 200, 255], np.uint8)
        images = np.tile(pixels[None, :, None, None], (8, 1, 2, 1))
        split = datasets.ArraySplit(images, np.zeros(8, np.int64))
        (batch,) = self.batches(split, binarization="static")
        expected = np.array([0, 0, 0, 0, 1, 1, 1, 1], np.float32)
        self.assertAllEqual(
            batch["image"], np.tile(expected[None, :, None, None], (8, 1, 2, 1))
        )
        self.assertAllEqual(datasets.binarize_numpy(pixels, "static", seed=0), expected)

    def test_dynamic_binarization(self):
        pixels = np.array([0, 64, 128, 255], np.uint8)
        images = np.tile(pixels[None, None, :, None], (64, 32, 1, 1))
        split = datasets.ArraySplit(images, np.zeros(64, np.int64))

        def epoch_images(epoch):
            return np.stack(
                [
                    b["image"]
                    for b in self.batches(
                        split, batch_size=16, epoch=epoch, binarization="dynamic"
                    )
                ]
            )

        first = epoch_images(0)
        self.assertAllInSet(first, [0.0, 1.0])
        self.assertAllEqual(first[..., 0, :], np.zeros_like(first[..., 0, :]))
        self.assertAllEqual(first[..., 3, :], np.ones_like(first[..., 3, :]))
        # 64 * 32 draws per pixel value: the frequency is within 0.04 of p.
        self.assertAllClose(
            first.mean(axis=(0, 1, 2, 4)), [0.0, 64 / 255, 128 / 255, 1.0], atol=0.04
        )
        self.assertAllEqual(epoch_images(0), first)
        self.assertNotAllEqual(epoch_images(1), first)
        # Batches of one epoch get different draws too.
        self.assertNotAllEqual(first[0], first[1])

    def test_float_data_passes_through(self):
        toy = datasets.load_dataset("toy2d", seed=0)
        dataset = datasets.train_batches(
            toy.train, batch_size=500, epoch=0, seed=0, binarization="none", num_classes=2
        )
        batches = _as_numpy(dataset)
        self.assertLen(batches, 4)
        self.assertEqual(dataset.element_spec["image"].shape, (500, 2))
        points = np.concatenate([b["image"] for b in batches])
        self.assertAllEqual(np.sort(points, axis=0), np.sort(toy.train.images, axis=0))
        with self.assertRaisesRegex(ValueError, "'static'.*float data"):
            datasets.train_batches(
                toy.train,
                batch_size=500,
                epoch=0,
                seed=0,
                binarization="static",
                num_classes=2,
            )

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "'otsu'.*'none'"):
            self.batches(binarization="otsu")
        with self.assertRaisesRegex(ValueError, r"\[0, 9\].*num_classes=5"):
            self.batches(num_classes=5)
        with self.assertRaisesRegex(ValueError, "epoch"):
            self.batches(epoch=-1)


class EvalBatchesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters("none", "static", "dynamic")
    def test_every_example_once_with_mask(self, binarization):
        split = _split(37)
        dataset = datasets.eval_batches(
            split, batch_size=8, seed=2, binarization=binarization, num_classes=10
        )
        self.assertEqual(dataset.element_spec["image"].shape, (8, 4, 4, 1))
        self.assertEqual(dataset.element_spec["mask"].shape, (8,))
        batches = _as_numpy(dataset)
        self.assertLen(batches, 5)
        mask = np.concatenate([b["mask"] for b in batches])
        self.assertAllEqual(mask, np.arange(40) < 37)
        images = np.concatenate([b["image"] for b in batches])
        labels = np.concatenate([b["label"] for b in batches])
        onehot = np.concatenate([b["label_onehot"] for b in batches])
        self.assertAllEqual(
            images[:37], datasets.binarize_numpy(split.images, binarization, seed=2)
        )
        self.assertAllEqual(labels[:37], split.labels)
        self.assertAllEqual(onehot[:37], np.eye(10)[split.labels])
        # Padding is zero everywhere.
        self.assertAllEqual(images[37:], np.zeros_like(images[37:]))
        self.assertAllEqual(onehot[37:], np.zeros_like(onehot[37:]))

    def test_dynamic_is_fixed_across_calls(self):
        split = _split(37)

        def images(seed):
            return np.concatenate(
                [
                    b["image"]
                    for b in _as_numpy(
                        datasets.eval_batches(
                            split,
                            batch_size=8,
                            seed=seed,
                            binarization="dynamic",
                            num_classes=10,
                        )
                    )
                ]
            )

        first = images(2)
        self.assertAllInSet(first, [0.0, 1.0])
        self.assertAllEqual(images(2), first)
        self.assertNotAllEqual(images(3), first)

    def test_float_data(self):
        toy = datasets.load_dataset("toy2d", seed=0)
        batches = _as_numpy(
            datasets.eval_batches(
                toy.test, batch_size=300, seed=0, binarization="none", num_classes=2
            )
        )
        self.assertLen(batches, 7)
        points = np.concatenate([b["image"] for b in batches])
        self.assertAllEqual(points[:2000], toy.test.images)


class HelpersTest(tf.test.TestCase):
    def test_steps_per_epoch(self):
        self.assertEqual(datasets.steps_per_epoch(60000, 32), 1875)
        self.assertEqual(datasets.steps_per_epoch(37, 8), 4)
        self.assertEqual(datasets.steps_per_epoch(7, 8), 0)
        with self.assertRaisesRegex(ValueError, "batch_size"):
            datasets.steps_per_epoch(10, 0)

    def test_binarize_numpy(self):
        pixels = np.array([[0, 51, 255]], np.uint8)
        self.assertAllClose(
            datasets.binarize_numpy(pixels, "none", seed=0), [[0.0, 0.2, 1.0]]
        )
        dynamic = datasets.binarize_numpy(
            np.full((100, 100), 51, np.uint8), "dynamic", seed=1
        )
        self.assertEqual(dynamic.dtype, np.float32)
        self.assertAllInSet(dynamic, [0.0, 1.0])
        self.assertAllClose(dynamic.mean(), 0.2, atol=0.02)

    def test_array_split_checks_lengths(self):
        with self.assertRaisesRegex(ValueError, "3 images but 2 labels"):
            datasets.ArraySplit(np.zeros((3, 2), np.float32), np.zeros(2, np.int64))


class RealMnistTest(tf.test.TestCase):
    def test_loads_real_mnist(self):
        data_dir = os.environ.get("VAE_DATA_DIR")
        if not data_dir:
            self.skipTest("VAE_DATA_DIR is not set.")
        # Accept either the MNIST directory itself or a parent holding mnist/.
        if os.path.isdir(os.path.join(data_dir, "mnist")):
            data_dir = os.path.join(data_dir, "mnist")
        data = datasets.load_dataset("mnist", data_dir, allow_download=False)
        self.assertEqual(data.train.images.shape, (60000, 28, 28, 1))
        self.assertEqual(data.test.images.shape, (10000, 28, 28, 1))
        self.assertAllEqual(np.unique(data.train.labels), np.arange(10))
        self.assertAllEqual(np.unique(data.test.labels), np.arange(10))
        self.assertEqual(int(data.train.images.max()), 255)


if __name__ == "__main__":
    tf.test.main()
