"""vae-train --trainer=beta_tcvae / factorvae on dsprites, and vae-evaluate's
disentanglement metrics on their workdirs.

Trains tiny models in subprocesses on a fake dSprites archive (300 images with
random factors, so the scores themselves mean nothing; what they mean is tested
in tests/test_disentanglement.py) and evaluates them as a user would.
"""

import json
import os

import tensorflow as tf

from tests import test_dsprites
from tests import testing_utils
from vae import dsprites

_TINY_MODEL_FLAGS = [
    "--architecture=mlp",
    "--hidden_units=8",
    "--latent_dim=3",
    "--batch_size=32",
    "--eval_batch_size=64",
    "--progress=log",
    "--epochs=1",
    "--export=false",
]
_CHEAP_EVALUATION_FLAGS = [
    "--num_importance_samples=2",
    "--likelihood_examples=4",
    "--chunk_size=16",
    "--sample_quality=false",
]


run_module = testing_utils.run_module_with_private_cache


class EvaluateDisentanglementTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        cls.data_dir = os.path.join(cls.root, "dsprites")
        os.makedirs(cls.data_dir)
        test_dsprites._write_fake_archive(  # pylint: disable=protected-access
            os.path.join(cls.data_dir, dsprites.ARCHIVE_NAME), num_images=300
        )
        cls.workdir = os.path.join(cls.root, "tcvae")
        cls.factorvae_workdir = os.path.join(cls.root, "factorvae")
        runs = [
            [
                f"--workdir={cls.workdir}",
                "--trainer=beta_tcvae",
                "--beta=6",
                "--tc_estimator=mss",
                "--pictures=false",
            ],
            [
                f"--workdir={cls.factorvae_workdir}",
                "--trainer=factorvae",
                "--gamma=10",
                "--discriminator_units=8,8",
                "--manifold_grid_size=2",
            ],
        ]
        for run in testing_utils.run_modules_concurrently(
            [
                (
                    "launch.train",
                    [
                        "--dataset=dsprites",
                        f"--data_dir={cls.data_dir}",
                        *arguments,
                        *_TINY_MODEL_FLAGS,
                    ],
                )
                for arguments in runs
            ],
            timeout=900,
            extra_environment=testing_utils.private_cache_environment(),
        ):
            if run.returncode != 0:
                raise AssertionError(run.stderr[-3000:])

    def test_trainers_log_their_terms(self):
        for workdir, keys in (
            (self.workdir, ("total_correlation", "mutual_information", "dimension_kl")),
            (self.factorvae_workdir, ("total_correlation", "discriminator_loss")),
        ):
            with open(os.path.join(workdir, "metrics.json")) as stream:
                train = json.load(stream)["epochs"][-1]["train"]
            for key in keys:
                self.assertIn(key, train)
        # Runs on a dataset with factors draw traversals (3 latent dims).
        images = os.path.join(self.factorvae_workdir, "images")
        self.assertTrue(os.path.exists(os.path.join(images, "traversals.gif")))

    def test_factorvae_workdir_is_evaluated_on_the_named_metric(self):
        result = run_module(
            "launch.evaluate",
            [
                f"--workdir={self.factorvae_workdir}",
                "--disentanglement=mig",
                *_CHEAP_EVALUATION_FLAGS,
            ],
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("Disentanglement on 30 test images: MIG", result.stdout)
        with open(os.path.join(self.factorvae_workdir, "eval.json")) as f:
            scores = json.load(f)["disentanglement"]
        self.assertIn("mig", scores)
        self.assertNotIn("factor_vae", scores)
        self.assertNotIn("dci_disentanglement", scores)

    def test_writes_all_three_metrics_on_dsprites(self):
        result = run_module(
            "launch.evaluate", [f"--workdir={self.workdir}", *_CHEAP_EVALUATION_FLAGS]
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("Disentanglement on 30 test images: MIG", result.stdout)
        with open(os.path.join(self.workdir, "eval.json")) as stream:
            scores = json.load(stream)["disentanglement"]
        self.assertEqual(scores["num_examples"], 30)
        self.assertEqual(scores["factor_names"], list(dsprites.FACTOR_NAMES))
        for key in (
            "mig",
            "factor_vae",
            "dci_disentanglement",
            "dci_completeness",
            "dci_informativeness",
        ):
            self.assertBetween(scores[key], 0.0, 1.0)
        self.assertLen(scores["mig_per_factor"], 5)
        self.assertAllEqual(tf.constant(scores["dci_importance"]).shape, [3, 5])

    def test_unknown_metric_is_a_clear_error(self):
        result = run_module(
            "launch.evaluate",
            [
                f"--workdir={self.workdir}",
                "--disentanglement=mig,beta_vae",
                *_CHEAP_EVALUATION_FLAGS,
            ],
        )
        testing_utils.assert_clear_error(
            self, result, "--disentanglement", "beta_vae", "mig"
        )


if __name__ == "__main__":
    tf.test.main()
