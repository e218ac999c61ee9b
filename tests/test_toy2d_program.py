"""End-to-end tests of launch/toy2d.py, run as a user runs it: a subprocess."""

import hashlib
import json
import os

import imageio.v3 as iio
import tensorflow as tf

from tests import testing_utils

# Small enough that both models train in seconds on two busy cores.
_TINY_FLAGS = ["--epochs=2", "--batch_size=200", "--hidden_units=8", "--progress=none"]
_MODEL_KEYS = {
    "test_mse",
    "mean_distance_to_manifold",
    "median_distance_to_manifold",
    "fraction_off_manifold",
    "train_wall_seconds",
}


def run_program(arguments, timeout=300):
    return testing_utils.run_module("launch.toy2d", arguments, timeout=timeout)


def _checkpoint_digests(workdir):
    digests = {}
    for name in ("unconditional", "conditional"):
        directory = os.path.join(workdir, name, "checkpoints")
        for file_name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, file_name), "rb") as stream:
                digests[f"{name}/{file_name}"] = hashlib.sha256(stream.read()).hexdigest()
    return digests


class Toy2dProgramTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workdir = os.path.join(testing_utils.private_temp_dir(), "toy2d")
        cls.first_run = run_program([f"--workdir={cls.workdir}", *_TINY_FLAGS])

    def setUp(self):
        super().setUp()
        self.assertEqual(self.first_run.returncode, 0, self.first_run.stderr[-3000:])

    def read_report(self):
        with open(os.path.join(self.workdir, "toy2d.json")) as stream:
            return json.load(stream)

    def test_report_has_both_models_and_the_ratio(self):
        report = self.read_report()
        for name in ("unconditional", "conditional"):
            self.assertEqual(set(report[name]), _MODEL_KEYS)
            self.assertGreater(report[name]["mean_distance_to_manifold"], 0.0)
        self.assertAllClose(
            report["mean_distance_ratio_unconditional_to_conditional"],
            report["unconditional"]["mean_distance_to_manifold"]
            / report["conditional"]["mean_distance_to_manifold"],
        )
        self.assertIn("median_distance_ratio_unconditional_to_conditional", report)
        self.assertEqual(report["test_points"], 2000)
        self.assertEqual(report["config"]["hidden_units"], [8])
        # The test points are about one noise standard deviation (0.06) off.
        self.assertBetween(report["test_points_mean_distance_to_manifold"], 0.03, 0.07)

    def test_each_model_has_a_trainer_workdir(self):
        for name in ("unconditional", "conditional"):
            directory = os.path.join(self.workdir, name)
            with open(os.path.join(directory, "metrics.json")) as stream:
                metrics = json.load(stream)
            self.assertLen(metrics["epochs"], 2)
            self.assertIn("mse", metrics["final"]["test"])
            with open(os.path.join(directory, "run.json")) as stream:
                self.assertEqual(
                    json.load(stream)["model"]["num_classes"],
                    2 if name == "conditional" else 0,
                )
            self.assertTrue(
                os.path.exists(os.path.join(directory, "checkpoints", "checkpoint"))
            )

    def test_pictures(self):
        shapes = {}
        for name in ("unconditional", "conditional", "side_by_side"):
            picture = iio.imread(os.path.join(self.workdir, f"toy2d_{name}.png"))
            self.assertEqual(picture.ndim, 3)
            shapes[name] = picture.shape
        self.assertEqual(shapes["unconditional"], shapes["conditional"])
        # Both models' panels, each as wide as a model's own picture.
        self.assertEqual(shapes["side_by_side"][0], shapes["conditional"][0])
        self.assertEqual(shapes["side_by_side"][1], 2 * shapes["conditional"][1])

    def test_rerun_resumes_without_training_again(self):
        before = _checkpoint_digests(self.workdir)
        report = self.read_report()
        rerun = run_program([f"--workdir={self.workdir}", *_TINY_FLAGS])
        self.assertEqual(rerun.returncode, 0, rerun.stderr[-3000:])
        self.assertEqual(_checkpoint_digests(self.workdir), before)
        rewritten = self.read_report()
        for name in ("unconditional", "conditional"):
            self.assertAllClose(
                rewritten[name]["mean_distance_to_manifold"],
                report[name]["mean_distance_to_manifold"],
            )

    def test_other_settings_in_the_same_workdir_are_refused(self):
        result = run_program(
            [
                f"--workdir={self.workdir}",
                "--epochs=2",
                "--batch_size=200",
                "--hidden_units=4",
                "--progress=none",
            ]
        )
        self.assertEqual(result.returncode, 2)
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn("holds a different run", result.stderr)

    def test_another_length_of_the_cosine_schedule_is_refused(self):
        # The learning rate reaches 0 at the last epoch: more epochs would
        # restart the decay, not extend the run.
        result = run_program(
            [f"--workdir={self.workdir}", *_TINY_FLAGS[1:], "--epochs=3"]
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("decay_epochs", result.stderr)

    def test_bad_flag_value_names_the_flag(self):
        result = run_program([f"--workdir={self.workdir}", "--code_dim=0"])
        self.assertNotEqual(result.returncode, 0)
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn("--code_dim", result.stderr)

    def test_batch_larger_than_the_data_is_refused(self):
        workdir = os.path.join(os.path.dirname(self.workdir), "too_big")
        result = run_program([f"--workdir={workdir}", "--batch_size=5000"])
        self.assertEqual(result.returncode, 2)
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn("--batch_size=5000", result.stderr)
        self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
    tf.test.main()
