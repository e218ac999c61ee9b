"""Tests of the IWAE and two-level trainers (trainers/iwae.py,
trainers/two_level.py) on tiny synthetic images, built as the programs
build them (`from_objective`)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import iwae
from trainers import registry
from trainers import two_level
from vae import hierarchical
from vae import models

IMAGE_SHAPE = (4, 4, 1)
NUM_TRAIN = 16
BATCH_SIZE = 8
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE
TINY = dict(architecture="mlp", image_shape=IMAGE_SHAPE, latent_dim=2, hidden_units=(8,))
MODELS = {
    "plain": lambda: models.VAE(models.ModelConfig(**TINY)),
    "vamp": lambda: models.VAE(
        models.ModelConfig(prior="vamp", num_pseudo_inputs=3, **TINY)
    ),
    "vamp_iaf": lambda: models.VAE(
        models.ModelConfig(
            prior="vamp",
            num_pseudo_inputs=3,
            posterior_flow="iaf",
            flow_steps=1,
            flow_hidden_units=(6,),
            **TINY,
        )
    ),
    "two_level": lambda: hierarchical.TwoLevelVAE(
        hierarchical.TwoLevelConfig(top_latent_dim=1, top_hidden_units=(4,), **TINY)
    ),
}


def _split(num_examples, seed):
    return testing_utils.two_class_split(num_examples, seed, IMAGE_SHAPE)


def _data(train, test):
    return testing_utils.array_data_source(
        train,
        test,
        batch_size=BATCH_SIZE,
        eval_batch_size=8,
        binarization="dynamic",
        eval_binarization="static",
        num_classes=2,
    )


class IwaeTrainerTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.train_split = _split(NUM_TRAIN, 1)
        self.test_split = _split(8, 2)

    def _trainer(
        self,
        model_name,
        *,
        epochs,
        workdir=None,
        trainer_class=iwae.IwaeTrainer,
        **objective,
    ):
        tf.random.set_seed(0)
        model = MODELS[model_name]()
        config = testing_utils.looped_trainer_config(
            workdir or self.create_tempdir().full_path,
            epochs=epochs,
            steps_per_loop=STEPS_PER_EPOCH,
        )
        objective = trainer_class.objective_class(learning_rate=1e-2, **objective)
        return trainer_class.from_objective(
            model, objective, config, _data(self.train_split, self.test_split)
        )

    @parameterized.parameters(
        ("plain", {"num_importance_samples_train": 3, "iwae_gradient": "dreg"}),
        ("vamp_iaf", {"num_importance_samples_train": 3}),
    )
    def test_trains_and_logs_the_bound(self, model_name, objective):
        trainer = self._trainer(model_name, epochs=1, **objective)
        result = trainer.train()
        epochs = result.metrics["epochs"]
        self.assertLen(epochs, 1)
        train = epochs[-1]["train"]
        self.assertTrue(np.isfinite(train["iwae_bound"]))
        # The k-sample bound is at least the mean single-sample ELBO on
        # the same draws (Jensen), step by step and so on average.
        self.assertGreaterEqual(train["iwae_bound"], train["elbo"] - 1e-4)
        self.assertBetween(
            train["effective_sample_size"], 1.0, objective["num_importance_samples_train"]
        )
        final = result.metrics["final"]["test"]
        self.assertAllClose(final["elbo"], -(final["reconstruction"] + final["kl"]))

    def test_resume_continues_exactly(self):
        # Pseudo-inputs are state a plain VAE has not. (The flow's
        # variables checkpoint as plain variables: tests/test_flows.py.)
        model_name, trainer_class = "vamp", iwae.IwaeTrainer
        objective = {"num_importance_samples_train": 2}
        reference = self._trainer(
            model_name, epochs=2, trainer_class=trainer_class, **objective
        )
        reference.train()
        workdir = self.create_tempdir().full_path
        self._trainer(
            model_name,
            epochs=1,
            workdir=workdir,
            trainer_class=trainer_class,
            **objective,
        ).train()
        resumed = self._trainer(
            model_name,
            epochs=2,
            workdir=workdir,
            trainer_class=trainer_class,
            **objective,
        )
        resumed.train()
        for a, b in zip(reference.model.variables, resumed.model.variables):
            self.assertAllClose(a, b, atol=1e-6)

    def test_two_level_trainer_trains_both_layers(self):
        trainer = self._trainer(
            "two_level", epochs=1, trainer_class=two_level.TwoLevelTrainer
        )
        before = [v.numpy() for v in trainer.model.top_decoder.variables]
        result = trainer.train()
        self.assertTrue(np.isfinite(result.metrics["final"]["test"]["elbo"]))
        # k = 1 by default: the bound is the single-sample ELBO.
        train = result.metrics["epochs"][-1]["train"]
        self.assertAllClose(train["iwae_bound"], train["elbo"], rtol=1e-5)
        after = [v.numpy() for v in trainer.model.top_decoder.variables]
        self.assertTrue(any(np.abs(a - b).max() > 0 for a, b in zip(before, after)))

    def test_two_level_trainer_declares_its_model(self):
        self.assertIs(two_level.TwoLevelTrainer.model_class, hierarchical.TwoLevelVAE)
        self.assertIs(
            two_level.TwoLevelTrainer.model_config_class, hierarchical.TwoLevelConfig
        )
        self.assertEqual(
            two_level.TwoLevelTrainer.objective_class().num_importance_samples_train, 1
        )
        # The names vae-train --trainer takes.
        self.assertIs(registry.resolve("two_level"), two_level.TwoLevelTrainer)
        self.assertIs(registry.resolve("iwae"), iwae.IwaeTrainer)
        with self.assertRaisesRegex(ValueError, "--iwae_gradient"):
            two_level.TwoLevelObjective(iwae_gradient="dreg").validate()

    def test_dreg_is_refused_for_a_flow_posterior(self):
        with self.assertRaisesRegex(ValueError, "--iwae_gradient=standard"):
            self._trainer("vamp_iaf", epochs=1, iwae_gradient="dreg")

    @parameterized.parameters(
        (dict(num_importance_samples_train=0), "--num_importance_samples_"),
        (dict(iwae_gradient="rws"), "--iwae_gradient"),
        (dict(iwae_gradient="dreg", beta=0.5), "--beta"),
    )
    def test_objective_validation_names_the_flag(self, fields, flag):
        with self.assertRaisesRegex(ValueError, flag):
            iwae.IwaeObjective(**fields).validate()
