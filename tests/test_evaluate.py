"""End-to-end tests of launch/evaluate.py and of evaluation during training.

The programs run as a user runs them, in a subprocess, on a tiny model and
fake MNIST files; the classifier-based metrics are exercised in-process with
a small untrained classifier, since training the real one takes minutes.
"""

import json
import os
import shutil
import signal

import numpy as np
import tensorflow as tf

from launch import evaluation_program
from tests import testing_utils
from trainers import likelihood_comparison
from vae import classifier as classifier_lib

_TINY_MODEL_FLAGS = [
    *testing_utils.TINY_MLP_FLAGS,
    "--learning_rate=1e-3",
    "--binarization=dynamic",
    "--progress=log",
    "--pictures=false",
]
_CHEAP_EVALUATION_FLAGS = [
    "--num_importance_samples=10",
    "--likelihood_examples=6",
    "--chunk_size=4",
]


_PER_IMAGE = likelihood_comparison.PER_IMAGE_SUFFIX

# Never touch the user's real classifier cache from a test.
run_module = testing_utils.run_module_with_private_cache


class EvaluateProgramTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        cls.data_dir, cls.workdir = testing_utils.train_on_fake_mnist(
            cls.root,
            "run",
            [
                "--epochs=2",
                "--evaluate_every_epochs=1",
                "--eval_num_importance_samples=5",
                "--eval_likelihood_examples=4",
                "--eval_sample_quality=false",
                *_TINY_MODEL_FLAGS,
            ],
        )

    def assert_clear_error(self, result, *fragments):
        testing_utils.assert_clear_error(self, result, *fragments)

    def test_training_records_evaluation_in_metrics(self):
        with open(os.path.join(self.workdir, "metrics.json")) as stream:
            metrics = json.load(stream)
        for record in metrics["epochs"]:
            evaluation = record["evaluation"]
            self.assertIn("likelihood/nll", evaluation)
            self.assertIn("reconstruction_error/binary_cross_entropy", evaluation)
            self.assertNotIn("samples/frechet_distance", evaluation)
            self.assertGreater(evaluation["likelihood/nll"], 0.0)
        self.assertIn("evaluation", metrics["final"])

    def test_disentanglement_metrics_need_known_factors(self):
        result = run_module(
            "launch.evaluate",
            [
                f"--workdir={self.workdir}",
                "--disentanglement=mig",
                "--sample_quality=false",
                *_CHEAP_EVALUATION_FLAGS,
            ],
        )
        self.assert_clear_error(
            result, "--disentanglement=mig", "'mnist'", "factors are unknown", "dsprites"
        )

    def test_evaluates_checkpoint_and_saved_model_alike(self):
        outputs = {}
        for source in ("checkpoint", "saved_model"):
            output = os.path.join(self.root, f"eval_{source}.json")
            result = run_module(
                "launch.evaluate",
                [
                    f"--workdir={self.workdir}",
                    f"--source={source}",
                    "--sample_quality=false",
                    f"--output={output}",
                    *_CHEAP_EVALUATION_FLAGS,
                ],
            )
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            self.assertIn("NLL: k=10 on 6 test images", result.stdout)
            with open(output) as stream:
                outputs[source] = json.load(stream)
        checkpoint, saved = outputs["checkpoint"], outputs["saved_model"]
        self.assertEqual(checkpoint["likelihood"]["examples"], 6)
        self.assertEqual(
            checkpoint["source"],
            tf.train.latest_checkpoint(os.path.join(self.workdir, "checkpoints")),
        )
        # Both load the same weights; the data dir comes from flags.txt.
        for group, key in (
            ("test", "elbo"),
            ("likelihood", "nll"),
            ("reconstruction_error", "mean_squared_error"),
        ):
            self.assertAllClose(
                checkpoint[group][key], saved[group][key], rtol=1e-4, msg=f"{group}/{key}"
            )

    def test_evaluations_compare_image_by_image(self):
        # Two estimates of one model with different importance samples.
        outputs = []
        for seed in (0, 1):
            output = os.path.join(self.root, "compared", f"seed{seed}.json")
            result = run_module(
                "launch.evaluate",
                [
                    f"--workdir={self.workdir}",
                    "--sample_quality=false",
                    f"--seed={seed}",
                    f"--output={output}",
                    *_CHEAP_EVALUATION_FLAGS,
                ],
            )
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            outputs.append(output)
        nlls = []
        for output in outputs:
            with open(output) as stream:
                likelihood = json.load(stream)["likelihood"]
            self.assertEqual(
                likelihood["per_image"], os.path.basename(output) + _PER_IMAGE
            )
            self.assertFalse(os.path.exists(output + ".nll-progress.npz"))
            with np.load(output + _PER_IMAGE) as saved:
                values = saved["log_likelihoods"]
            self.assertLen(values, 6)
            self.assertAllClose(-values.mean(), likelihood["nll"], rtol=1e-12)
            nlls.append(likelihood["nll"])
        comparison_path = os.path.join(self.root, "compared", "comparison.json")
        result = testing_utils.run_module(
            "launch.compare",
            [f"--evaluations={','.join(outputs)}", f"--output={comparison_path}"],
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(comparison_path) as stream:
            row = json.load(stream)["rows"][1]
        self.assertAllClose(row["difference"], nlls[1] - nlls[0], rtol=1e-9)
        self.assertNotEqual(row["difference"], 0.0)
        # Without an estimate, the earlier per-image file goes with it.
        result = run_module(
            "launch.evaluate",
            [
                f"--workdir={self.workdir}",
                "--sample_quality=false",
                "--num_importance_samples=0",
                f"--output={outputs[0]}",
            ],
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertFalse(os.path.exists(outputs[0] + _PER_IMAGE))

    def test_default_output_is_eval_json_in_workdir(self):
        workdir = os.path.join(self.root, "copy_for_default_output")
        shutil.copytree(self.workdir, workdir)
        result = run_module(
            "launch.evaluate",
            [
                f"--workdir={workdir}",
                "--sample_quality=false",
                "--num_importance_samples=0",
            ],
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(workdir, "eval.json")) as stream:
            self.assertNotIn("likelihood", json.load(stream))

    def test_workdir_without_checkpoint(self):
        workdir = os.path.join(self.root, "no_checkpoint")
        os.makedirs(workdir, exist_ok=True)
        for name in ("run.json", "flags.txt"):
            shutil.copy(os.path.join(self.workdir, name), workdir)
        result = run_module(
            "launch.evaluate", [f"--workdir={workdir}", "--sample_quality=false"]
        )
        self.assert_clear_error(result, "has no checkpoint", workdir)

    def test_missing_saved_model(self):
        workdir = os.path.join(self.root, "no_export")
        shutil.copytree(self.workdir, workdir)
        shutil.rmtree(os.path.join(workdir, "export"))
        result = run_module(
            "launch.evaluate",
            [f"--workdir={workdir}", "--source=saved_model", "--sample_quality=false"],
        )
        self.assert_clear_error(result, "holds no SavedModel")

    def test_directory_that_is_not_a_workdir(self):
        result = run_module(
            "launch.evaluate", [f"--workdir={self.data_dir}", "--sample_quality=false"]
        )
        self.assert_clear_error(result, "is not a training workdir", "run.json")

    def test_unknown_dataset(self):
        workdir = os.path.join(self.root, "unknown_dataset")
        shutil.copytree(self.workdir, workdir)
        run_path = os.path.join(workdir, "run.json")
        with open(run_path) as stream:
            identity = json.load(stream)
        identity["data"]["dataset"] = "cifar10"
        with open(run_path, "w") as stream:
            json.dump(identity, stream)
        result = run_module(
            "launch.evaluate", [f"--workdir={workdir}", "--sample_quality=false"]
        )
        self.assert_clear_error(result, "'cifar10'", "expected one of")

    def test_dataset_without_classifier(self):
        workdir = os.path.join(self.root, "toy2d")
        toy_flags = [
            "--dataset=toy2d",
            "--architecture=mlp",
            "--hidden_units=8",
            "--binarization=none",
            "--batch_size=100",
            "--progress=log",
            "--epochs=1",
        ]
        # Training with sample-quality evaluation is refused up front...
        result = run_module(
            "launch.train",
            [f"--workdir={workdir}", "--evaluate_every_epochs=1", *toy_flags],
        )
        self.assert_clear_error(result, "'toy2d'", "--eval_sample_quality=false")
        self.assertFalse(os.path.exists(os.path.join(workdir, "run.json")))
        # ...and so is evaluating a toy2d run with it.
        result = run_module("launch.train", [f"--workdir={workdir}", *toy_flags])
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        result = run_module("launch.evaluate", [f"--workdir={workdir}"])
        self.assert_clear_error(result, "'toy2d'", "--sample_quality=false")
        # Without it, the likelihood of 2-D points is still measured.
        result = run_module(
            "launch.evaluate",
            [f"--workdir={workdir}", "--sample_quality=false", *_CHEAP_EVALUATION_FLAGS],
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(workdir, "eval.json")) as stream:
            results = json.load(stream)
        self.assertIn("likelihood", results)
        self.assertNotIn("reconstruction_error", results)


class SampleQualityInProgramTest(tf.test.TestCase):
    """run_evaluation with a classifier: the table has the real-data row."""

    def test_table_has_model_and_real_data_rows(self):
        data_dir, workdir = testing_utils.train_on_fake_mnist(
            self.get_temp_dir(),
            "run",
            ["--epochs=1", "--export=false", *_TINY_MODEL_FLAGS],
            num_test=40,
        )

        tf.random.set_seed(0)
        small_classifier = classifier_lib.Classifier(
            classifier_lib.ClassifierConfig(filters=(2,), dense_units=4, dropout_rate=0.0)
        )
        requested = []

        def fake_load_classifier(dataset, data_dir, classifier_dir, **_):
            requested.append((dataset, data_dir, classifier_dir))
            return small_classifier, {"path": "in-memory", "test_accuracy": 0.5}

        original = evaluation_program.load_classifier
        evaluation_program.load_classifier = fake_load_classifier
        try:
            results = evaluation_program.run_evaluation(
                evaluation_program.EvaluateProgramConfig(
                    workdir=workdir,
                    num_importance_samples=4,
                    likelihood_examples=3,
                    num_generated=30,
                    classifier_dir="/nowhere",
                )
            )
        finally:
            evaluation_program.load_classifier = original
        self.assertEqual(requested, [("mnist", data_dir, "/nowhere")])
        self.assertEqual(results["classifier"]["test_accuracy"], 0.5)
        for row in ("samples", "real_data"):
            self.assertGreater(results[row]["classifier_score"], 1.0 - 1e-6)
            self.assertGreaterEqual(results[row]["frechet_distance"], 0.0)
        table = evaluation_program.format_table(results).splitlines()
        self.assertTrue(table[1].startswith("model"))
        self.assertTrue(table[2].startswith("real data"))
        with open(os.path.join(workdir, "eval.json")) as stream:
            self.assertEqual(json.load(stream)["samples"], results["samples"])


class ResumableEvaluationTest(tf.test.TestCase):
    """An evaluation stopped by SIGTERM, then killed with -9, resumes each
    time and ends with the numbers of an uninterrupted one."""

    def test_interrupted_evaluation_resumes_to_the_same_numbers(self):
        root = self.create_tempdir().full_path
        _, workdir = testing_utils.train_on_fake_mnist(
            root,
            "run",
            ["--epochs=1", "--export=false", *_TINY_MODEL_FLAGS],
            num_test=400,
        )
        common = [
            f"--workdir={workdir}",
            "--sample_quality=false",
            "--num_importance_samples=3000",
            "--chunk_size=500",
            "--likelihood_examples=0",
        ]
        reference_path = os.path.join(root, "reference.json")
        reference = run_module("launch.evaluate", [*common, f"--output={reference_path}"])
        self.assertEqual(reference.returncode, 0, reference.stderr[-3000:])
        output = os.path.join(root, "interrupted.json")
        arguments = [*common, f"--output={output}"]
        progress_path = output + ".nll-progress.npz"

        def started_then(stop):
            before = (
                os.path.getmtime(progress_path) if os.path.exists(progress_path) else None
            )
            process = testing_utils.start_module("launch.evaluate", arguments)
            testing_utils.wait_while_running(
                self,
                process,
                lambda: (
                    os.path.exists(progress_path)
                    and os.path.getmtime(progress_path) != before
                ),
            )
            process.send_signal(stop)
            _, stderr = process.communicate(timeout=120)
            return process.returncode, stderr

        status, stderr = started_then(signal.SIGTERM)
        self.assertEqual(status, 128 + signal.SIGTERM, stderr[-3000:])
        self.assertIn("Run the same command again to resume", stderr)
        self.assertNotIn("Traceback", stderr)
        status, _ = started_then(signal.SIGKILL)
        self.assertEqual(status, -signal.SIGKILL)
        self.assertTrue(os.path.exists(progress_path))

        resumed = run_module("launch.evaluate", arguments)
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        self.assertIn("resuming after", resumed.stderr)
        self.assertFalse(os.path.exists(progress_path))
        with open(output) as stream:
            mine = json.load(stream)
        with open(reference_path) as stream:
            theirs = json.load(stream)
        # Each names its own per-image file; they hold the same values.
        self.assertEqual(
            mine["likelihood"].pop("per_image"), "interrupted.json" + _PER_IMAGE
        )
        theirs["likelihood"].pop("per_image")
        self.assertEqual(mine["likelihood"], theirs["likelihood"])
        self.assertEqual(mine["likelihood"]["examples"], 400)
        with np.load(output + _PER_IMAGE) as resumed_values:
            with np.load(reference_path + _PER_IMAGE) as reference_values:
                self.assertAllEqual(
                    resumed_values["log_likelihoods"], reference_values["log_likelihoods"]
                )


if __name__ == "__main__":
    tf.test.main()
