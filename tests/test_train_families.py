"""End to end: `vae-train --trainer=iwae` with the model options (VampPrior,
IAF) on tiny fake MNIST, then `vae-evaluate` on the workdir. (The two-level
trainer runs through the same program path; tests/test_iwae_trainer.py
trains it in process.)"""

import json
import os

import numpy as np
import tensorflow as tf

from tests import testing_utils

_TINY = [
    *testing_utils.TINY_MLP_FLAGS,
    "--learning_rate=1e-3",
    "--binarization=dynamic",
    "--progress=log",
    "--manifold_grid_size=3",
    "--epochs=1",
    "--export=false",
]
_RUNS = {
    # IWAE on a model with a VampPrior and a flow posterior.
    # The sample pictures draw from the VampPrior.
    "iwae": [
        "--trainer=iwae",
        "--num_importance_samples_train=3",
        "--prior=vamp",
        "--num_pseudo_inputs=4",
        "--posterior_flow=iaf",
        "--flow_steps=1",
        "--flow_hidden_units=6",
    ],
}
_EVALUATION = [
    "--num_importance_samples=6",
    "--likelihood_examples=5",
    "--chunk_size=4",
    "--sample_quality=false",
]


def _environment():
    # Never touch the user's real caches from a test.
    return {"VAE_CACHE_DIR": os.path.join(tf.compat.v1.test.get_temp_dir(), "cache")}


class TrainFamiliesTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing_utils.private_temp_dir()
        cls.data_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(cls.data_dir, num_train=64, num_test=16)
        cls.workdirs = {name: os.path.join(root, name) for name in _RUNS}
        results = testing_utils.run_modules_concurrently(
            [
                (
                    "launch.train",
                    [
                        f"--data_dir={cls.data_dir}",
                        f"--workdir={cls.workdirs[name]}",
                        *_TINY,
                        *flags,
                    ],
                )
                for name, flags in _RUNS.items()
            ],
            extra_environment=_environment(),
        )
        for name, result in zip(_RUNS, results):
            if result.returncode != 0:
                raise AssertionError(f"{name}: {result.stderr[-3000:]}")
        cls.evaluations = dict(
            zip(
                [*_RUNS, "saved_model"],
                testing_utils.run_modules_concurrently(
                    [
                        (
                            "launch.evaluate",
                            [f"--workdir={cls.workdirs[name]}", *_EVALUATION],
                        )
                        for name in _RUNS
                    ]
                    + [
                        (
                            "launch.evaluate",
                            [
                                f"--workdir={cls.workdirs['iwae']}",
                                "--source=saved_model",
                                *_EVALUATION,
                            ],
                        )
                    ],
                    extra_environment=_environment(),
                ),
            )
        )

    def test_training_logged_the_bound_and_wrote_pictures(self):
        for name, workdir in self.workdirs.items():
            with open(os.path.join(workdir, "metrics.json")) as stream:
                metrics = json.load(stream)
            train = metrics["epochs"][-1]["train"]
            self.assertTrue(np.isfinite(train["iwae_bound"]), name)
        self.assertTrue(
            os.path.exists(
                os.path.join(self.workdirs["iwae"], "images", "samples_epoch_001.png")
            )
        )

    def test_evaluate_reports_the_importance_sampled_nll(self):
        for name, workdir in self.workdirs.items():
            result = self.evaluations[name]
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            with open(os.path.join(workdir, "eval.json")) as stream:
                likelihood = json.load(stream)["likelihood"]
            self.assertEqual(likelihood["num_samples"], 6)
            self.assertEqual(likelihood["examples"], 5)
            # E[L_6] >= ELBO (Burda et al., Theorem 1), so the NLL lies
            # below -ELBO of the same images, up to Monte Carlo noise.
            self.assertTrue(np.isfinite(likelihood["nll"]), name)
            self.assertLess(
                likelihood["nll"], -likelihood["elbo_same_examples"] + 1.0, name
            )

    def test_saved_model_evaluation_is_refused_for_a_learned_prior(self):
        testing_utils.assert_clear_error(
            self, self.evaluations["saved_model"], "prior='vamp'", "--source=checkpoint"
        )
