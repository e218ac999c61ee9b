"""A trainer from outside the package on every program: `vae-train
--trainer=module:Class`, resume after SIGTERM, vae-evaluate, vae-generate and
vae-submit, and the errors of a bad --trainer or objective field.

The trainer is launch/examples/free_bits.py, copied under another module
name into a temporary directory that only the programs' PYTHONPATH names, as
a user's own file would be.
"""

import json
import os
import shutil

import tensorflow as tf

from tests import testing_utils
from tests.test_train import _TINY_MODEL_FLAGS

_TRAINER = "my_free_bits:FreeBitsTrainer"


class PluginTrainerTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        plugin_dir = os.path.join(cls.root, "plugins")
        os.makedirs(plugin_dir)
        shutil.copy(
            os.path.join(testing_utils.REPO_ROOT, "launch", "examples", "free_bits.py"),
            os.path.join(plugin_dir, "my_free_bits.py"),
        )
        with open(os.path.join(plugin_dir, "not_a_trainer.py"), "w") as f:
            f.write("class Thing:\n    pass\n")
        cls.environment = {
            "PYTHONPATH": os.pathsep.join([testing_utils.REPO_ROOT, plugin_dir])
        }
        cls.data_dir = os.path.join(cls.root, "fake_mnist")
        testing_utils.write_fake_mnist(cls.data_dir, num_train=3200, num_test=64)
        cls.common = [
            f"--trainer={_TRAINER}",
            "--free_bits=0.5",
            f"--data_dir={cls.data_dir}",
            "--epochs=2",
            "--steps_per_loop=1",
            "--export=false",
            *_TINY_MODEL_FLAGS,
        ]
        cls.reference_dir = os.path.join(cls.root, "reference")
        result = cls.run_train([f"--workdir={cls.reference_dir}", *cls.common])
        if result.returncode != 0:
            raise AssertionError(result.stderr[-3000:])

    @classmethod
    def run_train(cls, arguments):
        return testing_utils.run_module(
            "launch.train", arguments, extra_environment=cls.environment
        )

    def read_json(self, workdir, name):
        with open(os.path.join(workdir, name)) as stream:
            return json.load(stream)

    def test_run_records_the_trainer_and_its_objective_field(self):
        identity = self.read_json(self.reference_dir, "run.json")
        self.assertEqual(identity["trainer"], _TRAINER)
        self.assertEqual(identity["objective"]["free_bits"], 0.5)
        metrics = self.read_json(self.reference_dir, "metrics.json")
        train = metrics["final"]["train"]
        # The trainer's own log, and its floor: 2 dimensions x 0.5 nats.
        self.assertGreaterEqual(train["floored_kl"], 1.0 - 1e-6)
        self.assertIn("test", metrics["final"])

    def test_sigterm_and_rerun_match_the_uninterrupted_run(self):
        workdir = os.path.join(self.root, "interrupted")
        arguments = [f"--workdir={workdir}", *self.common]
        testing_utils.stop_after_first_epoch(
            self, arguments, workdir, extra_environment=self.environment
        )
        self.assertLen(self.read_json(workdir, "metrics.json")["epochs"], 1)

        resumed = self.run_train(arguments)
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        mine = self.read_json(workdir, "metrics.json")["final"]
        theirs = self.read_json(self.reference_dir, "metrics.json")["final"]
        for key in ("global_step", "train", "test"):
            self.assertEqual(mine[key], theirs[key], key)

    def test_evaluate_generate_and_submit_take_the_workdir(self):
        output_dir = os.path.join(self.root, "outputs")
        evaluate, generate, submit = testing_utils.run_modules_concurrently(
            [
                (
                    "launch.evaluate",
                    [
                        f"--workdir={self.reference_dir}",
                        "--sample_quality=false",
                        "--num_importance_samples=3",
                        "--likelihood_examples=4",
                        f"--output={output_dir}/eval.json",
                    ],
                ),
                (
                    "launch.generate",
                    [
                        f"--workdir={self.reference_dir}",
                        "--rows=2",
                        f"--output_dir={output_dir}",
                    ],
                ),
                (
                    "launch.submit",
                    [
                        "--time=1:00:00",
                        "--dry_run",
                        "--sweep=free_bits=0.25,1",
                        "--",
                        "vae-train",
                        f"--workdir={self.reference_dir}",
                        *self.common,
                    ],
                ),
            ],
            extra_environment=self.environment,
        )
        for result in (evaluate, generate, submit):
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(output_dir, "eval.json")) as stream:
            self.assertGreater(json.load(stream)["likelihood"]["nll"], 0.0)
        self.assertTrue(os.path.exists(os.path.join(output_dir, "samples.png")))
        self.assertIn(f"--trainer={_TRAINER}", submit.stdout)
        self.assertIn("--free_bits=", submit.stdout)

    def test_bad_trainer_and_objective_are_refused_clearly(self):
        workdir = os.path.join(self.root, "refused")
        common = [f"--workdir={workdir}", f"--data_dir={self.data_dir}"]
        cases = {
            "--trainer=no_such_module:Trainer": ("no_such_module", "cannot be imported"),
            "--trainer=elbo_typo": ("elbo_typo", "built-in trainer", "elbo,"),
            "--trainer=not_a_trainer:Thing": ("Thing", "not a trainer"),
            "--trainer=my_free_bits:Missing": ("has no 'Missing'",),
        }
        runs = [("launch.train", [flag, *common]) for flag in cases]
        # A bad value of the plug-in's own field, and that field given to a
        # trainer that does not have it.
        runs.append(
            ("launch.train", [f"--trainer={_TRAINER}", "--free_bits=-1", *common])
        )
        runs.append(("launch.train", ["--free_bits=1", *common]))
        # A model its trainer cannot train: checked before any work too.
        runs.append(("launch.train", ["--prior=vamp", *common]))
        runs.append(
            (
                "launch.train",
                [
                    "--trainer=iwae",
                    "--posterior_flow=iaf",
                    "--iwae_gradient=dreg",
                    *common,
                ],
            )
        )
        results = testing_utils.run_modules_concurrently(
            runs, extra_environment=self.environment
        )
        expected = [
            *cases.values(),
            ("--free_bits", "-1"),
            ("free_bits",),
            ("--kl=analytic", "--kl=mc"),
            ("--iwae_gradient=dreg", "flow"),
        ]
        for result, fragments in zip(results, expected):
            testing_utils.assert_clear_error(self, result, *fragments)
        self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
    tf.test.main()
