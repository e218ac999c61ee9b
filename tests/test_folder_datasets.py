"""Your own data end to end: image folders, any IDX set and Keras-style .npz
archives through vae/datasets.py, launch/experiment.py and the programs.

Every dataset is written by the test: 8x8 to 12x12 images, a few dozen of
them. The programs run as a user runs them (subprocesses), several at once,
in `setUpClass`; the tests check what they left.
"""

import dataclasses
import json
import os
from unittest import mock

import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from launch import errors
from launch import evaluation_program
from launch import experiment
from launch import image_fixtures
from launch import make_image_folder
from tests import testing_utils
from trainers import base
from vae import datasets
from vae import image_folders
from vae import models

_TINY_CONV_FLAGS = [
    "--architecture=conv",
    "--encoder_filters=4,4",
    "--decoder_filters=4,4",
    "--decoder_base_channels=4",
    "--latent_dim=2",
    "--batch_size=6",
    "--eval_batch_size=16",
    "--progress=log",
    "--manifold_grid_size=3",
    "--epochs=1",
    "--test_fraction=0.25",
]


def _gray_images(count, size=12, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, size=(count, size, size, 1), dtype=np.uint8
    )


def _write_gray_folder(root, *, num_classes=3, per_class=8, size=12):
    """Gray PNGs in class subfolders "class_0" ...; returns (images, labels)."""
    labels = np.arange(num_classes * per_class) % num_classes
    images = _gray_images(len(labels), size)
    image_fixtures.write_image_folder(
        root, images, labels, [f"class_{label}" for label in range(num_classes)]
    )
    return images, labels


def _config(
    data_dir,
    workdir,
    *,
    architecture="conv",
    conditional=False,
    likelihood="bernoulli",
    **data,
):
    """A tiny run on dataset "folder", its shape and classes left to the data."""
    data = {"test_fraction": 0.25, **data}
    model = models.ModelConfig(
        architecture=architecture,
        image_shape=experiment.FROM_DATA,
        num_classes=experiment.FROM_DATA if conditional else 0,
        latent_dim=2,
        likelihood=likelihood,
        hidden_units=(8,),
        encoder_filters=(4, 4),
        decoder_base_channels=4,
        decoder_filters=(4, 4),
    )
    return experiment.TrainProgramConfig(
        data=experiment.DataConfig(
            dataset="folder",
            data_dir=data_dir,
            binarization="none",
            validation_size=0,
            allow_download=False,
            **data,
        ),
        model=model,
        batch_size=4,
        eval_batch_size=8,
        trainer=base.TrainerConfig(workdir=workdir, epochs=1, progress="none"),
        deterministic=False,
        pictures=False,
        export=False,
    )


class LoadDatasetTest(tf.test.TestCase):
    """`datasets.load_dataset` for "folder", "idx" and "npz"."""

    def setUp(self):
        super().setUp()
        self.root = self.create_tempdir().full_path

    def test_folder(self):
        folder = os.path.join(self.root, "folder")
        _write_gray_folder(folder)
        data = datasets.load_dataset(
            "folder", folder, test_fraction=0.25, validation_size=3, seed=1
        )
        self.assertEqual(data.example_shape, (12, 12, 1))
        self.assertEqual(data.num_classes, 3)
        self.assertEqual(data.class_names, ("class_0", "class_1", "class_2"))
        # 2 of each class's 8 images are held out for the test split.
        self.assertAllEqual(np.bincount(data.test.labels), [2, 2, 2])
        self.assertEqual(data.train.num_examples + data.validation.num_examples, 18)
        self.assertEqual(data.validation.num_examples, 3)
        self.assertIn("image folder", data.source)
        # The same test split on every load, whatever the seed.
        again = datasets.load_dataset("folder", folder, test_fraction=0.25, seed=7)
        self.assertAllEqual(again.test.images, data.test.images)

    def test_folder_problems_are_data_errors(self):
        with self.assertRaisesRegex(datasets.DataNotFoundError, "does not exist"):
            datasets.load_dataset("folder", os.path.join(self.root, "missing"))
        empty = os.path.join(self.root, "empty")
        os.makedirs(empty)
        with self.assertRaisesRegex(datasets.DataError, "holds no images"):
            datasets.load_dataset("folder", empty)
        with self.assertRaisesRegex(datasets.DataNotFoundError, "needs data_dir"):
            datasets.load_dataset("folder", None)

    def write_idx_set(self, directory, names, images, train_labels, test_labels):
        arrays = [images, train_labels, images[:3], test_labels]
        for name, array in zip(names, arrays):
            testing_utils.write_file(directory, name, testing_utils.idx_bytes(array))

    def test_idx_of_any_size_and_colour(self):
        directory = os.path.join(self.root, "emnist_like")
        images = np.random.default_rng(0).integers(0, 256, (6, 8, 12, 3), np.uint8)
        self.write_idx_set(
            directory,
            [
                "e-train-images-idx4-ubyte.gz",
                "e-train-labels-idx1-ubyte.gz",
                "e-test-images-idx4-ubyte",
                "e-test-labels-idx1-ubyte",
            ],
            images,
            np.array([0, 4, 1, 1, 2, 3], np.uint8),
            np.array([5, 0, 1], np.uint8),
        )
        data = datasets.load_dataset("idx", directory)
        self.assertEqual(data.example_shape, (8, 12, 3))
        self.assertEqual(data.num_classes, 6)  # Largest label + 1.
        self.assertAllEqual(data.train.images, images)
        gray = datasets.load_dataset("idx", directory, image_size=4, channels=1)
        self.assertEqual(gray.example_shape, (4, 4, 1))

    def test_idx_reads_mnist_files_and_converts_them(self):
        directory = os.path.join(self.root, "mnist")
        written = testing_utils.write_fake_mnist(directory)
        data = datasets.load_dataset("idx", directory, image_size=(16, 16), channels=3)
        self.assertEqual(data.example_shape, (16, 16, 3))
        self.assertAllEqual(data.test.labels, written["test_labels"])

    def test_idx_needs_exactly_one_file_per_role(self):
        directory = os.path.join(self.root, "two_sets")
        testing_utils.write_fake_mnist(directory)
        testing_utils.write_file(
            directory,
            "other-train-images-idx3-ubyte",
            testing_utils.idx_bytes(_gray_images(2)[..., 0]),
        )
        with self.assertRaisesRegex(
            datasets.DataNotFoundError,
            r"exactly one file named like \*train-images-idx\*.*found "
            r"other-train-images-idx3-ubyte, train-images-idx3-ubyte.gz",
        ):
            datasets.load_dataset("idx", directory)
        with self.assertRaisesRegex(datasets.DataNotFoundError, "does not exist"):
            datasets.load_dataset("idx", os.path.join(self.root, "missing"))

    def test_npz_file_or_directory(self):
        directory = os.path.join(self.root, "npz")
        os.makedirs(directory)
        path = os.path.join(directory, "cifar_like.npz")
        x_train = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), np.uint8)
        np.savez(
            path,
            x_train=x_train,
            y_train=np.array([[0], [1], [2], [1], [0]])[:, 0],
            x_test=x_train[:2, ..., :1][..., 0],
            y_test=np.array([2, 2]),
        )
        # x_test is gray [N, h, w], x_train RGB: one shape only after converting.
        with self.assertRaisesRegex(
            datasets.DataError,
            r"training images of shape \(8, 8, 3\) but test images of shape "
            r"\(8, 8, 1\).*channels",
        ):
            datasets.load_dataset("npz", path)
        from_file = datasets.load_dataset("npz", path, channels=3)
        from_directory = datasets.load_dataset("npz", directory, channels=3)
        self.assertEqual(from_file.example_shape, (8, 8, 3))
        self.assertAllEqual(from_file.test.images, from_directory.test.images)
        self.assertEqual(from_file.num_classes, 3)
        self.assertEqual(from_file.test.images.shape, (2, 8, 8, 3))

    def test_npz_problems(self):
        directory = os.path.join(self.root, "npz_bad")
        os.makedirs(directory)
        with self.assertRaisesRegex(
            datasets.DataNotFoundError, r"holds 0 .npz files \(none\)"
        ):
            datasets.load_dataset("npz", directory)
        path = os.path.join(directory, "a.npz")
        np.savez(
            path,
            x_train=_gray_images(2),
            y_train=np.array([0, -1]),
            x_test=_gray_images(1),
            y_test=np.array([0]),
        )
        with self.assertRaisesRegex(
            datasets.DataError, r"1 negative values \(the first is -1"
        ):
            datasets.load_dataset("npz", path)
        np.savez(os.path.join(directory, "b.npz"), x_train=np.zeros(1))
        with self.assertRaisesRegex(
            datasets.DataNotFoundError, r"holds 2 .npz files \(a.npz, b.npz\)"
        ):
            datasets.load_dataset("npz", directory)
        np.savez(
            path,
            x_train=np.zeros((2, 8, 8, 4), np.uint8),
            y_train=np.array([0, 1]),
            x_test=_gray_images(1),
            y_test=np.array([0]),
        )
        with self.assertRaisesRegex(datasets.DataError, r"\[2, 8, 8, 4\].*1 or 3\]"):
            datasets.load_dataset("npz", path)

    def test_fixed_datasets_take_no_conversion(self):
        with self.assertRaisesRegex(
            ValueError, r"mnist has the fixed shape \(28, 28, 1\)"
        ):
            datasets.load_dataset("mnist", self.root, image_size=32)


class RunTrainingTest(tf.test.TestCase):
    """`experiment.run_training` fills in the model from the data, or refuses
    clearly before the workdir exists."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        cls.gray = os.path.join(cls.root, "gray")
        _write_gray_folder(cls.gray, size=10)

    def assert_refused(self, config, error_type, pattern):
        with self.assertRaisesRegex(error_type, pattern):
            experiment.run_training(config)
        self.assertFalse(os.path.exists(config.trainer.workdir))

    def test_mlp_takes_any_size_and_resumes_from_the_cache(self):
        workdir = os.path.join(self.root, "mlp")
        config = _config(
            self.gray,
            workdir,
            architecture="mlp",
            conditional=True,
            cache_dir=os.path.join(self.root, "cache"),
        )
        self.assertTrue(experiment.run_training(config).completed)
        # The second launch reads the converted arrays, not the images.
        with mock.patch.object(
            image_folders.iio, "imread", side_effect=AssertionError("decoded an image")
        ):
            result = experiment.run_training(
                dataclasses.replace(
                    config, trainer=dataclasses.replace(config.trainer, epochs=2)
                )
            )
        self.assertTrue(result.completed)
        self.assertLen(result.metrics["epochs"], 2)
        with open(os.path.join(workdir, "run.json")) as stream:
            model = json.load(stream)["model"]
        self.assertEqual(model["image_shape"], [10, 10, 1])
        self.assertEqual(model["num_classes"], 3)
        with open(os.path.join(workdir, experiment.CLASSES_FILE)) as stream:
            self.assertEqual(
                json.load(stream), {"0": "class_0", "1": "class_1", "2": "class_2"}
            )

    def test_conv_size_not_divisible_names_image_size(self):
        self.assert_refused(
            _config(self.gray, os.path.join(self.root, "conv10")),
            experiment.ConfigError,
            r"divisible by 4.*\(10, 10, 1\).*--image_size resizes",
        )

    def test_single_class_for_a_conditional_model(self):
        unlabelled = os.path.join(self.root, "unlabelled")
        image_fixtures.write_image_folder(unlabelled, _gray_images(8, 8), None)
        self.assert_refused(
            _config(unlabelled, os.path.join(self.root, "cvae"), conditional=True),
            experiment.ConfigError,
            r"--conditional needs labels of at least 2 classes.*unlabelled",
        )
        one_class = os.path.join(self.root, "one_class")
        image_fixtures.write_image_folder(
            one_class, _gray_images(8, 8), [0] * 8, ["cats"]
        )
        self.assert_refused(
            _config(one_class, os.path.join(self.root, "cvae"), conditional=True),
            experiment.ConfigError,
            "the one class 'cats'",
        )

    def test_mixed_sizes_without_image_size(self):
        mixed = os.path.join(self.root, "mixed")
        image_fixtures.write_image_folder(mixed, _gray_images(4, 8), [0, 1, 0, 1])
        iio.imwrite(os.path.join(mixed, "1", "big.png"), _gray_images(1, 12)[0, ..., 0])
        self.assert_refused(
            _config(mixed, os.path.join(self.root, "mixed_run")),
            datasets.DataError,
            "2 different sizes.*--image_size",
        )

    def test_non_image_files_refused_by_choice(self):
        folder = os.path.join(self.root, "with_notes")
        image_fixtures.write_image_folder(folder, _gray_images(8, 8), [0, 1] * 4)
        with open(os.path.join(folder, "notes.txt"), "w") as stream:
            stream.write("hello")
        self.assert_refused(
            _config(
                folder, os.path.join(self.root, "notes_run"), non_image_files="refuse"
            ),
            datasets.DataError,
            "notes.txt",
        )

    def test_bad_test_fraction_is_a_config_error(self):
        self.assert_refused(
            _config(self.gray, os.path.join(self.root, "fraction"), test_fraction=1.0),
            experiment.ConfigError,
            "test_fraction must be",
        )

    def test_identity_records_the_conversion(self):
        config = _config(self.gray, "unused", image_size=(8, 8), channels=3)
        self.assertEqual(
            config.data.identity(),
            {
                "dataset": "folder",
                "binarization": "none",
                "validation_size": 0,
                "image_size": [8, 8],
                "channels": 3,
                "test_fraction": 0.25,
            },
        )
        mnist = experiment.DataConfig(
            dataset="mnist",
            data_dir=None,
            binarization="static",
            validation_size=0,
            allow_download=False,
        )
        # Exactly what runs recorded before these datasets existed.
        self.assertEqual(
            mnist.identity(),
            {"dataset": "mnist", "binarization": "static", "validation_size": 0},
        )


class ProgramsTest(tf.test.TestCase):
    """vae-train and the folder helper as a user runs them; vae-evaluate's
    work (`evaluation_program.run_evaluation`) on what they left."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        cls.cache_dir = os.path.join(cls.root, "cache")
        cls.environment = {"VAE_CACHE_DIR": os.path.join(cls.root, "cache_root")}
        cls.gray = os.path.join(cls.root, "gray")
        _write_gray_folder(cls.gray)
        # RGB shapes in train/ and test/, and fake MNIST as PNGs, written by the
        # helper program's library call.
        cls.shapes = os.path.join(cls.root, "shapes")
        cls.shape_counts = make_image_folder.make_image_folder(
            make_image_folder.MakeFolderConfig(
                source="shapes",
                output_dir=cls.shapes,
                split="both",
                num_images=24,
                image_size=12,
            )
        )
        cls.fake_mnist = os.path.join(cls.root, "fake_mnist")
        testing_utils.write_fake_mnist(cls.fake_mnist, num_train=20, num_test=12)
        cls.png_dir = os.path.join(cls.root, "mnist_pngs")
        cls.png_counts = make_image_folder.make_image_folder(
            make_image_folder.MakeFolderConfig(
                source="idx",
                data_dir=cls.fake_mnist,
                output_dir=cls.png_dir,
                split="both",
                num_images=10,
            )
        )
        empty = os.path.join(cls.root, "empty")
        os.makedirs(empty)
        cls.gray_workdir = os.path.join(cls.root, "gray_run")
        cls.rgb_workdir = os.path.join(cls.root, "rgb_run")
        cls.refused_workdir = os.path.join(cls.root, "refused")
        gray_flags = [
            "--dataset=folder",
            f"--data_dir={cls.gray}",
            f"--data_cache_dir={cls.cache_dir}",
            "--binarization=dynamic",
            "--export=false",
            f"--workdir={cls.gray_workdir}",
            *_TINY_CONV_FLAGS,
        ]
        (cls.gray_run, cls.rgb_run, cls.empty_run, cls.flag_run) = (
            testing_utils.run_modules_concurrently(
                [
                    ("launch.train", gray_flags),
                    (
                        "launch.train",
                        [
                            "--dataset=folder",
                            f"--data_dir={cls.shapes}",
                            "--image_size=8",
                            "--channels=3",
                            "--conditional",
                            "--likelihood=continuous_bernoulli",
                            f"--workdir={cls.rgb_workdir}",
                            *_TINY_CONV_FLAGS,
                        ],
                    ),
                    (
                        "launch.train",
                        [
                            "--dataset=folder",
                            f"--data_dir={empty}",
                            f"--workdir={cls.refused_workdir}",
                            *_TINY_CONV_FLAGS,
                        ],
                    ),
                    (
                        "launch.train",
                        [
                            "--dataset=mnist",
                            "--image_size=32",
                            f"--workdir={cls.refused_workdir}",
                            *_TINY_CONV_FLAGS,
                        ],
                    ),
                ],
                extra_environment=cls.environment,
            )
        )
        for result in (cls.gray_run, cls.rgb_run):
            if result.returncode != 0:
                raise AssertionError(result.stderr[-3000:])

    def read_json(self, workdir, name):
        with open(os.path.join(workdir, name)) as stream:
            return json.load(stream)

    def test_gray_folder_run(self):
        identity = self.read_json(self.gray_workdir, "run.json")
        self.assertEqual(identity["model"]["image_shape"], [12, 12, 1])
        self.assertEqual(identity["model"]["num_classes"], 0)
        self.assertEqual(identity["data"]["image_size"], [])
        self.assertEqual(
            self.read_json(self.gray_workdir, "classes.json"),
            {"0": "class_0", "1": "class_1", "2": "class_2"},
        )
        self.assertIn(
            "(18 train, 6 test, examples of shape (12, 12, 1), 3 classes)",
            self.gray_run.stderr,
        )
        final = self.read_json(self.gray_workdir, "metrics.json")["final"]["test"]
        self.assertTrue(np.isfinite(final["elbo"]))
        (entry,) = os.listdir(self.cache_dir)
        self.assertRegex(entry, r"^image-folder-[0-9a-f]{32}\.npz$")

    def test_rgb_conditional_run(self):
        self.assertEqual(self.shape_counts, {"train": 24, "test": 24})
        identity = self.read_json(self.rgb_workdir, "run.json")
        self.assertEqual(identity["model"]["image_shape"], [8, 8, 3])
        self.assertEqual(identity["model"]["num_classes"], 3)
        self.assertEqual(identity["model"]["likelihood"], "continuous_bernoulli")
        self.assertEqual(
            self.read_json(self.rgb_workdir, "classes.json"),
            {"0": "0_circle", "1": "1_square", "2": "2_triangle"},
        )
        # train/ and test/ are the splits: no fraction held out.
        self.assertIn(
            "(24 train, 24 test, examples of shape (8, 8, 3)", self.rgb_run.stderr
        )
        picture = iio.imread(
            os.path.join(self.rgb_workdir, "images", "reconstructions_epoch_001.png")
        )
        self.assertEqual(picture.shape[-1], 3)
        self.assertTrue(
            os.path.exists(os.path.join(self.rgb_workdir, "export", "saved_model.pb"))
        )
        # The default cache, under $VAE_CACHE_DIR.
        self.assertLen(
            os.listdir(os.path.join(self.environment["VAE_CACHE_DIR"], "datasets")), 1
        )

    def test_evaluation_reads_the_folder_as_training_did(self):
        config = evaluation_program.EvaluateProgramConfig(
            workdir=self.rgb_workdir,
            sample_quality=False,
            num_importance_samples=4,
            likelihood_examples=4,
        )
        with mock.patch.dict(os.environ, self.environment):
            results = evaluation_program.run_evaluation(config)
        self.assertTrue(np.isfinite(results["test"]["elbo"]))
        self.assertEqual(results["likelihood"]["examples"], 4)
        self.assertEqual(results["dataset"], "folder")
        with self.assertRaisesRegex(
            errors.ConfigError, "'folder'.*--sample_quality=false"
        ):
            evaluation_program.run_evaluation(
                dataclasses.replace(config, sample_quality=True)
            )

    def test_make_image_folder(self):
        self.assertEqual(self.png_counts, {"train": 10, "test": 10})
        folder = image_folders.load_image_folder(self.png_dir)
        expected = datasets.load_dataset("mnist", self.fake_mnist, allow_download=False)
        self.assertEqual(folder.class_names, tuple(str(label) for label in range(10)))
        for path, label, pixels in zip(
            folder.relative_paths, folder.labels, folder.images
        ):
            split, _, file_name = path.split("/")
            source = getattr(expected, split)
            index = int(file_name[: -len(".png")])
            self.assertEqual(label, source.labels[index], path)
            self.assertAllEqual(pixels, source.images[index], path)
        self.assertLen(folder.labels, 20)
        # It refuses to add to a folder that holds files.
        with self.assertRaisesRegex(errors.ConfigError, "not an empty directory"):
            make_image_folder.make_image_folder(
                make_image_folder.MakeFolderConfig(
                    source="shapes", output_dir=self.png_dir
                )
            )

    def test_zero_padded_class_names_sort_as_labels(self):
        self.assertEqual(
            make_image_folder._class_names("idx", 12)[:3], ["00", "01", "02"]
        )
        self.assertEqual(
            make_image_folder._class_names("fashion_mnist", 10)[9], "9_ankle_boot"
        )

    def test_bad_input_is_refused_before_any_work(self):
        testing_utils.assert_clear_error(self, self.empty_run, "holds no images")
        testing_utils.assert_clear_error(
            self, self.flag_run, "--image_size", "--dataset=idx"
        )
        self.assertFalse(os.path.exists(self.refused_workdir))


if __name__ == "__main__":
    tf.test.main()
