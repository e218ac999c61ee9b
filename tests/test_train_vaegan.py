"""End-to-end tests of launch/train_vaegan.py, run as a user runs it: a
subprocess, on fake MNIST, with networks a few channels wide."""

import dataclasses
import json
import os

from absl.testing import parameterized
import imageio.v2 as imageio
import tensorflow as tf

from launch import experiment
from launch import runs
from tests import testing_utils
from tests.test_train import tree_digest
from trainers import base
from trainers import vaegan as vaegan_trainer
from trainers import workdir as workdir_lib
from vae import atomic_files
from vae import models
from vae import vaegan

_TINY_VAEGAN_FLAGS = [
    "--encoder_filters=4,4",
    "--encoder_dense_units=8",
    "--decoder_base_channels=4",
    "--decoder_filters=4,4",
    "--discriminator_filters=4,4",
    "--similarity_channels=2",
    "--latent_dim=2",
    "--batch_size=16",
    "--eval_batch_size=16",
    "--progress=log",
    "--manifold_grid_size=3",
]


def _program_config(workdir, **fields):
    return experiment.TrainProgramConfig(
        data=experiment.DataConfig(
            dataset="mnist",
            data_dir=None,
            binarization="none",
            validation_size=0,
            allow_download=False,
        ),
        batch_size=16,
        eval_batch_size=16,
        trainer=base.TrainerConfig(workdir=workdir, epochs=1),
        **fields,
    )


def _write_vae_run_record(workdir):
    """Claims `workdir` for a vae-train run with vae-train's own code, as its
    first launch does; training that VAE would only cost the test time."""
    workdir_lib.claim_workdir(
        workdir, _program_config(workdir, model=models.ModelConfig()).run_identity()
    )


class RunIdentityTest(tf.test.TestCase):
    def test_records_of_earlier_versions_still_resume(self):
        # The run.json of a VAE and of a VAE-GAN as vae-train and
        # vae-train-vaegan wrote them before trainers were plug-ins: no
        # trainer key for the VAE, optimisers beside the objective.
        for config, legacy in (
            (
                _program_config("unused", model=models.ModelConfig()),
                {
                    "objective": {
                        "kl_estimator": "analytic",
                        "beta": 1.0,
                        "kl_warmup_epochs": 0.0,
                    },
                    "optimizer": {"name": "adam", "learning_rate": 1e-3},
                },
            ),
            (
                _program_config(
                    "unused",
                    model=vaegan.VaeGanConfig(),
                    trainer_name="vaegan",
                    objective=vaegan_trainer.VaeGanObjective(),
                ),
                {
                    "trainer": "vaegan",
                    "objective": {
                        "gamma": 1.0,
                        "generator_loss": "minimax",
                        "feature_loss": "gaussian",
                        "gan_weights": [1, 1, 2],
                        "d_steps": 3,
                        "g_steps": 3,
                        "d_threshold": 1.0,
                        "g_threshold": 0.4,
                    },
                    "optimizers": {
                        "encoder": {"name": "rmsprop", "learning_rate": 1e-3},
                        "decoder": {"name": "rmsprop", "learning_rate": 3e-4},
                        "discriminator": {"name": "rmsprop", "learning_rate": 1e-3},
                    },
                },
            ),
        ):
            workdir = self.create_tempdir().full_path
            identity = config.run_identity()
            recorded = {
                key: identity[key] for key in ("data", "model", "batch_size", "seed")
            }
            atomic_files.write_json(
                os.path.join(workdir, workdir_lib.RUN_FILE), {**recorded, **legacy}
            )
            self.assertTrue(
                workdir_lib.claim_workdir(
                    workdir, identity, upgrade_recorded=runs.upgrade_identity
                )
            )
            # Another learning rate is still another run.
            changed = dataclasses.replace(
                config, objective=dataclasses.replace(config.objective, optimizer="sgd")
            )
            with self.assertRaisesRegex(
                workdir_lib.WorkdirConflictError, "objective.optimizer"
            ):
                workdir_lib.claim_workdir(
                    workdir,
                    changed.run_identity(),
                    upgrade_recorded=runs.upgrade_identity,
                )

    def _claimed_vaegan_workdir(self):
        """A workdir claimed by a default VAE-GAN run: (workdir, config, the
        path of its run record, the record as read back)."""
        workdir = self.create_tempdir().full_path
        config = _program_config(
            workdir,
            model=vaegan.VaeGanConfig(),
            trainer_name="vaegan",
            objective=vaegan_trainer.VaeGanObjective(),
        )
        workdir_lib.claim_workdir(workdir, config.run_identity())
        run_path = os.path.join(workdir, workdir_lib.RUN_FILE)
        with open(run_path) as stream:
            return workdir, config, run_path, json.load(stream)

    def _assert_refused(self, workdir, config, field):
        """Claiming `workdir` for `config` fails, naming `field` as the difference."""
        with self.assertRaisesRegex(workdir_lib.WorkdirConflictError, field):
            workdir_lib.claim_workdir(
                workdir, config.run_identity(), upgrade_recorded=runs.upgrade_identity
            )

    def test_vaegan_record_with_a_field_missing_still_resumes(self):
        workdir, config, run_path, recorded = self._claimed_vaegan_workdir()
        self.assertEqual(recorded["trainer"], "vaegan")
        # As if added later: a model field and objective fields.
        del recorded["model"]["log_variance_clip"]
        del recorded["objective"]["schedule"]
        del recorded["objective"]["pixel_weight"]
        atomic_files.write_json(run_path, recorded)
        self.assertTrue(
            workdir_lib.claim_workdir(
                workdir, config.run_identity(), upgrade_recorded=runs.upgrade_identity
            )
        )

    def test_vaegan_record_with_integer_dense_units_resumes_and_loads(self):
        # Records written when each dense-unit field was one size (0: none).
        workdir, config, run_path, recorded = self._claimed_vaegan_workdir()
        recorded["model"].update(encoder_dense_units=64, decoder_dense_units=0)
        atomic_files.write_json(run_path, recorded)
        self.assertTrue(
            workdir_lib.claim_workdir(
                workdir, config.run_identity(), upgrade_recorded=runs.upgrade_identity
            )
        )
        model = vaegan.VaeGan(config.model)
        tf.train.Checkpoint(model=model).save(
            os.path.join(workdir, "checkpoints", "ckpt")
        )
        restored, _ = runs.restore_model(workdir, runs.read_run_identity(workdir))
        self.assertEqual(restored.config, config.model)
        self.assertAllEqual(restored.encoder.variables[0], model.encoder.variables[0])
        # Another size is still another run.
        recorded["model"]["encoder_dense_units"] = 32
        atomic_files.write_json(run_path, recorded)
        self._assert_refused(workdir, config, "model.encoder_dense_units")

    def test_vaegan_record_with_another_objective_is_refused(self):
        # Filling in defaults must not hide a real difference.
        workdir, config, run_path, recorded = self._claimed_vaegan_workdir()
        recorded["objective"]["schedule"] = "simultaneous"
        atomic_files.write_json(run_path, recorded)
        self._assert_refused(workdir, config, "objective.schedule")


class TrainVaeGanProgramTest(tf.test.TestCase, parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        cls.data_dir = os.path.join(cls.root, "fake_mnist")
        testing_utils.write_fake_mnist(cls.data_dir, num_train=64, num_test=16)
        cls.workdir = os.path.join(cls.root, "vaegan")
        cls.arguments = [
            f"--data_dir={cls.data_dir}",
            f"--workdir={cls.workdir}",
            "--epochs=1",
            *_TINY_VAEGAN_FLAGS,
        ]
        result = testing_utils.run_module("launch.train_vaegan", cls.arguments)
        if result.returncode != 0:
            raise AssertionError(result.stderr[-3000:])
        cls.vae_workdir = os.path.join(cls.root, "vae")
        _write_vae_run_record(cls.vae_workdir)

        # Every program that must leave the two workdirs alone, run at once;
        # the tests below check what each printed and that neither workdir
        # changed.
        workdirs = (cls.workdir, cls.vae_workdir)
        cls.digests_before = [tree_digest(path) for path in workdirs]
        cls.output_dir = os.path.join(cls.root, "outputs")
        runs = {
            "vae_train": (
                "launch.train",
                [
                    f"--data_dir={cls.data_dir}",
                    f"--workdir={cls.workdir}",
                    "--epochs=1",
                    "--architecture=mlp",
                    "--hidden_units=8",
                ],
            ),
            "vaegan_on_vae_workdir": (
                "launch.train_vaegan",
                [
                    f"--data_dir={cls.data_dir}",
                    f"--workdir={cls.vae_workdir}",
                    *_TINY_VAEGAN_FLAGS,
                ],
            ),
            "feature_loss": (
                "launch.train_vaegan",
                [*cls.arguments, "--feature_loss=bogus"],
            ),
            "decoder_filters": (
                "launch.train_vaegan",
                [*cls.arguments, "--decoder_filters=4"],
            ),
            "gan_weights": ("launch.train_vaegan", [*cls.arguments, "--gan_weights=1,1"]),
            # 0 meant "no layer" when the flag was one size; now it is a list.
            "decoder_dense_units": (
                "launch.train_vaegan",
                [*cls.arguments, "--decoder_dense_units=0"],
            ),
            "schedule": (
                "launch.train_vaegan",
                [*cls.arguments, "--schedule=simultaneous"],
            ),
            "evaluate": (
                "launch.evaluate",
                [
                    f"--workdir={cls.workdir}",
                    "--sample_quality=false",
                    "--num_importance_samples=3",
                    "--likelihood_examples=4",
                    f"--output={cls.output_dir}/eval.json",
                ],
            ),
            "generate": (
                "launch.generate",
                [
                    f"--workdir={cls.workdir}",
                    "--labels=0,1",
                    "--rows=2",
                    f"--output_dir={cls.output_dir}",
                ],
            ),
        }
        cls.results = dict(
            zip(runs, testing_utils.run_modules_concurrently(runs.values()))
        )
        cls.digests_after = [tree_digest(path) for path in workdirs]

    def read_json(self, name):
        with open(os.path.join(self.workdir, name)) as stream:
            return json.load(stream)

    def assert_refused(self, name, *fragments):
        testing_utils.assert_clear_error(self, self.results[name], *fragments)
        self.assertEqual(self.digests_after, self.digests_before)

    def test_run_writes_every_output(self):
        for name in (
            "flags.txt",
            "launches.log",
            "checkpoints/checkpoint",
            "export/saved_model.pb",
            "images/samples_epoch_001.png",
            "images/style_transfer_epoch_001.png",
            "images/manifold_label_3_epoch_001.png",
        ):
            self.assertTrue(os.path.exists(os.path.join(self.workdir, name)), name)
        identity = self.read_json("run.json")
        self.assertEqual(identity["trainer"], "vaegan")
        self.assertEqual(identity["model"]["discriminator_filters"], [4, 4])
        self.assertEqual(identity["model"]["num_classes"], 10)  # Default.
        self.assertEqual(identity["objective"]["d_steps"], 3)
        self.assertEqual(
            {
                network: identity["objective"][f"{network}_learning_rate"]
                for network in ("encoder", "decoder", "discriminator")
            },
            {"encoder": 1e-3, "decoder": 3e-4, "discriminator": 1e-3},
        )
        metrics = self.read_json("metrics.json")
        for key in (
            "prior",
            "dis_llike",
            "gan",
            "discriminator_updates",
            "generator_updates",
        ):
            self.assertIn(key, metrics["epochs"][0]["train"])
        test = metrics["final"]["test"]
        self.assertAllClose(test["elbo"], -(test["reconstruction"] + test["kl"]))
        self.assertEqual(metrics["final"]["global_step"], 4)  # 64 / 16.

    def test_rerun_resumes_without_training(self):
        checkpoints = tree_digest(os.path.join(self.workdir, "checkpoints"))
        result = testing_utils.run_module("launch.train_vaegan", self.arguments)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertEqual(self.read_json("metrics.json")["final"]["global_step"], 4)
        self.assertEqual(
            tree_digest(os.path.join(self.workdir, "checkpoints")), checkpoints
        )
        with open(os.path.join(self.workdir, "launches.log")) as stream:
            self.assertIn("resume", stream.read())

    def test_vae_train_refuses_the_vaegan_workdir(self):
        self.assert_refused("vae_train", "different run", "trainer")

    def test_vae_train_workdir_is_refused(self):
        self.assert_refused(
            "vaegan_on_vae_workdir",
            "different run",
            "trainer",
            "model.discriminator_filters",
        )

    @parameterized.parameters(
        # Refused by the flag's own definition (as --d_steps=0 would be) ...
        ("feature_loss", "--feature_loss", "gaussian|sigmoid_cross_entropy"),
        ("gan_weights", "--gan_weights", "three non-negative weights"),
        ("decoder_dense_units", "--decoder_dense_units", "positive integers"),
        # ... and by the model config, checked before the workdir is touched.
        ("decoder_filters", "decoder_filters", "exactly 2"),
        # ... and by the objective (the default --d_steps is 3).
        ("schedule", "simultaneous", "d_steps = g_steps = 1", "d_steps=3"),
    )
    def test_bad_flag_is_refused(self, run, *fragments):
        self.assert_refused(run, *fragments)

    def test_vae_evaluate_measures_the_run(self):
        result = self.results["evaluate"]
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(self.output_dir, "eval.json")) as stream:
            results = json.load(stream)
        self.assertIn("checkpoints", results["source"])
        # The decoder's Bernoulli ELBO, of an all but untrained model.
        self.assertLess(results["test"]["elbo"], 0.0)
        self.assertGreater(results["likelihood"]["nll"], 0.0)

    def test_vae_generate_draws_given_labels(self):
        result = self.results["generate"]
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        samples = imageio.imread(os.path.join(self.output_dir, "samples.png"))
        self.assertEqual(samples.shape[:2], (2 + 2 * 30, 2 + 2 * 30))


if __name__ == "__main__":
    tf.test.main()
