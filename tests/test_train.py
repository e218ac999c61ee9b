"""End-to-end tests of launch/train.py, run as a user runs it: a subprocess."""

import hashlib
import json
import os
import shutil

import tensorflow as tf

from tests import testing_utils
from trainers import workdir_lock

# A model small enough that a few epochs take seconds on two cores.
_TINY_MODEL_FLAGS = [
    *testing_utils.TINY_MLP_FLAGS,
    "--optimizer=adam",
    "--learning_rate=1e-3",
    "--binarization=dynamic",
    "--progress=log",
    "--manifold_grid_size=3",
]


def run_program(arguments, timeout=300):
    return testing_utils.run_module("launch.train", arguments, timeout=timeout)


def tree_digest(directory):
    """path -> sha256 of every file below `directory`, but for the workdir's
    lock file: a launch takes the lock before it reads the run record, so a
    refused launch may leave the (empty) file where no run had made it."""
    digests = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if os.path.relpath(path, directory) == workdir_lock.LOCK_FILE:
                continue
            with open(path, "rb") as stream:
                digests[os.path.relpath(path, directory)] = hashlib.sha256(
                    stream.read()
                ).hexdigest()
    return digests


class BadInputTest(tf.test.TestCase):
    """Each bad input: a clear message, no traceback, nothing changed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        cls.data_dir, cls.workdir = testing_utils.train_on_fake_mnist(
            cls.root, "run", ["--epochs=1", *_TINY_MODEL_FLAGS]
        )

    def assert_clear_error(self, result, *fragments):
        self.assertNotEqual(result.returncode, 0)
        self.assertNotIn("Traceback", result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    def test_first_run_wrote_every_output(self):
        for name in (
            "run.json",
            "flags.txt",
            "metrics.json",
            "launches.log",
            "checkpoints/checkpoint",
            "export/saved_model.pb",
            "images/samples.gif",
            "images/reconstructions_epoch_001.png",
            "images/samples_epoch_001.png",
            "images/manifold_epoch_001.png",
            "images/latent_scatter_epoch_001.png",
        ):
            self.assertTrue(os.path.exists(os.path.join(self.workdir, name)), name)
        with open(os.path.join(self.workdir, "flags.txt")) as stream:
            self.assertIn("--latent_dim=2", stream.read())
        with open(os.path.join(self.workdir, "metrics.json")) as stream:
            final = json.load(stream)["final"]
        self.assertAllClose(
            final["test"]["elbo"],
            -(final["test"]["reconstruction"] + final["test"]["kl"]),
        )

    def test_invalid_flag_value_names_the_flag(self):
        before = tree_digest(self.workdir)
        result = run_program(
            [f"--data_dir={self.data_dir}", f"--workdir={self.workdir}", "--batch_size=0"]
        )
        self.assert_clear_error(result, "--batch_size")
        self.assertEqual(tree_digest(self.workdir), before)

    def test_invalid_list_flag_names_the_item(self):
        result = run_program(
            [
                f"--data_dir={self.data_dir}",
                f"--workdir={self.workdir}",
                "--encoder_filters=32,x",
            ]
        )
        self.assert_clear_error(result, "encoder_filters", "'x'")

    def test_mismatched_strides_are_refused(self):
        result = run_program(
            [
                f"--data_dir={self.data_dir}",
                f"--workdir={self.workdir}",
                "--encoder_filters=32,64,64",
            ]
        )
        self.assert_clear_error(result, "--encoder_strides")

    def test_missing_data_directory(self):
        before = tree_digest(self.workdir)
        missing = os.path.join(self.root, "no_such_dir")
        result = run_program(
            [
                f"--data_dir={missing}",
                f"--workdir={self.workdir}",
                "--allow_download=false",
                *_TINY_MODEL_FLAGS,
            ]
        )
        self.assert_clear_error(result, missing)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(tree_digest(self.workdir), before)

    def test_corrupt_idx_file_names_the_file(self):
        corrupt_dir = os.path.join(self.root, "corrupt")
        testing_utils.write_fake_mnist(corrupt_dir, num_train=64, num_test=16)
        path = os.path.join(corrupt_dir, "train-images-idx3-ubyte.gz")
        with open(path, "rb") as stream:
            data = stream.read()
        with open(path, "wb") as stream:
            stream.write(data[: len(data) // 2])
        before = tree_digest(self.workdir)
        result = run_program(
            [f"--data_dir={corrupt_dir}", f"--workdir={self.workdir}", *_TINY_MODEL_FLAGS]
        )
        self.assert_clear_error(result, "train-images-idx3-ubyte.gz")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(tree_digest(self.workdir), before)

    def test_workdir_with_different_model_is_refused(self):
        before = tree_digest(self.workdir)
        flags = [
            flag for flag in _TINY_MODEL_FLAGS if not flag.startswith("--latent_dim")
        ]
        result = run_program(
            [
                f"--data_dir={self.data_dir}",
                f"--workdir={self.workdir}",
                "--epochs=2",
                "--latent_dim=3",
                *flags,
            ]
        )
        self.assert_clear_error(result, "different run", "model.latent_dim")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(tree_digest(self.workdir), before)

    def test_unreadable_checkpoints_stop_the_resume_before_any_write(self):
        # A copy of the run whose every checkpoint index is garbage.
        workdir = os.path.join(self.root, "damaged")
        shutil.copytree(self.workdir, workdir)
        checkpoint_dir = os.path.join(workdir, "checkpoints")
        for name in os.listdir(checkpoint_dir):
            if name.endswith(".index"):
                with open(os.path.join(checkpoint_dir, name), "wb") as stream:
                    stream.write(b"not an sstable")
        before = tree_digest(workdir)
        result = run_program(
            [
                f"--data_dir={self.data_dir}",
                f"--workdir={workdir}",
                "--epochs=2",
                *_TINY_MODEL_FLAGS,
            ]
        )
        self.assert_clear_error(
            result, "None of the checkpoints in", "ckpt-1:", checkpoint_dir
        )
        self.assertEqual(result.returncode, 2)
        # No TensorBoard events file, no launches.log line, nothing.
        self.assertEqual(tree_digest(workdir), before)


class SignalTest(tf.test.TestCase):
    def test_sigterm_exits_with_checkpoint_and_rerun_matches(self):
        root = self.create_tempdir().full_path
        data_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(data_dir, num_train=3200, num_test=64)
        common = [
            f"--data_dir={data_dir}",
            "--epochs=3",
            "--steps_per_loop=1",
            "--pictures=false",
            "--export=false",
            *_TINY_MODEL_FLAGS,
        ]

        reference_dir = os.path.join(root, "reference")
        reference = run_program([f"--workdir={reference_dir}", *common])
        self.assertEqual(reference.returncode, 0, reference.stderr[-3000:])

        workdir = os.path.join(root, "interrupted")
        arguments = [f"--workdir={workdir}", *common]
        stderr = testing_utils.stop_after_first_epoch(self, arguments, workdir)
        metrics_path = os.path.join(workdir, "metrics.json")
        self.assertIn("Run the same command again to resume", stderr)
        with open(metrics_path) as stream:
            self.assertLen(json.load(stream)["epochs"], 1)

        resumed = run_program(arguments)
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        with open(metrics_path) as stream:
            mine = json.load(stream)
        with open(os.path.join(reference_dir, "metrics.json")) as stream:
            theirs = json.load(stream)
        self.assertEqual(mine["final"]["global_step"], theirs["final"]["global_step"])
        self.assertEqual(mine["final"]["test"], theirs["final"]["test"])
        self.assertEqual(mine["final"]["train"], theirs["final"]["train"])
        with open(os.path.join(workdir, "launches.log")) as stream:
            self.assertIn("resume", stream.read())


class RealMnistTest(tf.test.TestCase):
    """Trains the Keras-blog MLP preset for one epoch on real MNIST."""

    def test_preset_trains_on_real_mnist(self):
        data_dir = os.environ.get("VAE_DATA_DIR")
        if not data_dir:
            self.skipTest("VAE_DATA_DIR is not set.")
        workdir = self.create_tempdir().full_path
        result = run_program(
            [
                "--flagfile=launch/configs/keras_blog_mlp.flags",
                f"--data_dir={data_dir}",
                f"--workdir={workdir}",
                "--epochs=1",
                "--progress=log",
            ],
            timeout=600,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(workdir, "metrics.json")) as stream:
            final = json.load(stream)["final"]
        # One epoch of this preset reaches about -170 nats; an untrained
        # model sits above 540.
        self.assertGreater(final["test"]["elbo"], -185.0)


if __name__ == "__main__":
    tf.test.main()
