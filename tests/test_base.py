"""Tests for trainers/base.py: the loop, checkpoints, resume and signals."""

import json
import os
import signal

import numpy as np
import tensorflow as tf
import tf_keras

from tests import testing_utils
from trainers import base
from trainers import elbo
from vae import atomic_files
from vae import datasets
from vae import models

# The shared linear model and least-squares trainer, under the names the
# tests of this file (and test_checkpoint_by_time.py) use.
LinearModel = testing_utils.LinearModel
RegressionTrainer = testing_utils.RegressionTrainer


def regression_data(num_examples=64, batch_size=8, eval_batch_size=5):
    """y = 3x - 1 exactly; eval set of 13 examples in padded batches of 5."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, num_examples).astype(np.float32)
    eval_x = np.linspace(-1, 1, 13).astype(np.float32)

    def train_batches(epoch, skip_batches):
        order = np.random.default_rng(epoch).permutation(num_examples)
        dataset = tf.data.Dataset.from_tensor_slices(
            {"x": x[order], "y": 3 * x[order] - 1}
        )
        return dataset.batch(batch_size, drop_remainder=True).skip(skip_batches)

    def eval_batches():
        padding = (-len(eval_x)) % eval_batch_size
        padded_x = np.concatenate([eval_x, np.zeros(padding, np.float32)])
        mask = np.concatenate([np.ones(len(eval_x)), np.zeros(padding)]).astype(
            np.float32
        )
        # Padding rows get a huge target: if the mask were ignored, the
        # average would be far off.
        padded_y = np.where(mask > 0, 3 * padded_x - 1, 1e3).astype(np.float32)
        return tf.data.Dataset.from_tensor_slices(
            {"x": padded_x, "y": padded_y, "mask": mask}
        ).batch(eval_batch_size)

    return base.DataSource(
        train_batches=train_batches,
        steps_per_epoch=num_examples // batch_size,
        batch_size=batch_size,
        eval_batches={"test": eval_batches},
    ), eval_x


class SubclassTest(tf.test.TestCase):
    def test_subclass_gets_loop_checkpoints_metrics_and_summaries(self):
        workdir = self.create_tempdir().full_path
        data, eval_x = regression_data()
        model = LinearModel()
        trainer = RegressionTrainer(
            model,
            base.TrainerConfig(
                workdir=workdir, epochs=4, steps_per_loop=3, progress="none"
            ),
            data,
        )
        result = trainer.train()

        self.assertTrue(result.completed)
        # 8 steps per epoch in loops of 3, 3 and 2: the count stays exact.
        self.assertEqual(result.global_step, 4 * 8)
        self.assertEqual(int(trainer.global_step.numpy()), 32)
        with open(os.path.join(workdir, "metrics.json")) as stream:
            metrics = json.load(stream)
        self.assertLen(metrics["epochs"], 4)
        losses = [record["train"]["loss"] for record in metrics["epochs"]]
        self.assertLess(losses[-1], 0.1 * losses[0])
        # The evaluation averages only the 13 real rows of the padded set.
        expected = np.mean((model(eval_x).numpy() - (3 * eval_x - 1)) ** 2)
        self.assertAllClose(
            metrics["final"]["test"]["squared_error"], expected, rtol=1e-5
        )
        self.assertEqual(metrics["final"]["epoch"], 4)
        self.assertGreater(metrics["final"]["images_per_second"], 0)
        self.assertGreater(metrics["final"]["wall_seconds"], 0)
        self.assertNotEmpty(
            tf.io.gfile.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents*"))
        )
        self.assertIsNotNone(trainer.checkpoint_manager.latest_checkpoint)

    def test_missing_train_step_is_a_clear_error(self):
        data, _ = regression_data()

        class NoStep(base.Trainer):
            pass

        model = LinearModel()
        trainer = NoStep(
            model,
            {"sgd": (tf_keras.optimizers.SGD(0.1), model.trainable_variables)},
            base.TrainerConfig(
                workdir=self.create_tempdir().full_path, epochs=1, progress="none"
            ),
            data,
        )
        with self.assertRaisesRegex(NotImplementedError, "train_step"):
            trainer.train()

    def test_rerun_of_finished_run_does_nothing_more(self):
        workdir = self.create_tempdir().full_path
        data, _ = regression_data()
        config = base.TrainerConfig(workdir=workdir, epochs=2, progress="none")
        RegressionTrainer(LinearModel(), config, data).train()
        model = LinearModel()
        result = RegressionTrainer(model, config, data).train()
        self.assertTrue(result.completed)
        self.assertEqual(result.global_step, 16)
        self.assertLen(result.metrics["epochs"], 2)
        self.assertNotEqual(float(model.weight.numpy()), 0.0)  # restored

    def test_more_epochs_extend_a_finished_run(self):
        workdir = self.create_tempdir().full_path
        data, _ = regression_data()
        RegressionTrainer(
            LinearModel(),
            base.TrainerConfig(workdir=workdir, epochs=1, progress="none"),
            data,
        ).train()
        result = RegressionTrainer(
            LinearModel(),
            base.TrainerConfig(workdir=workdir, epochs=3, progress="none"),
            data,
        ).train()
        self.assertEqual(result.global_step, 24)
        self.assertEqual([r["epoch"] for r in result.metrics["epochs"]], [1, 2, 3])

    def test_checkpoint_from_other_steps_per_epoch_is_refused(self):
        workdir = self.create_tempdir().full_path
        data, _ = regression_data(num_examples=64)
        RegressionTrainer(
            LinearModel(),
            base.TrainerConfig(workdir=workdir, epochs=1, progress="none"),
            data,
        ).train()
        other_data, _ = regression_data(num_examples=32)
        trainer = RegressionTrainer(
            LinearModel(),
            base.TrainerConfig(workdir=workdir, epochs=2, progress="none"),
            other_data,
        )
        with self.assertRaisesRegex(ValueError, "steps per epoch"):
            trainer.train()

    def test_config_validation_names_the_field(self):
        with self.assertRaisesRegex(ValueError, "steps_per_loop"):
            base.TrainerConfig(workdir="w", epochs=1, steps_per_loop=0).validate()
        with self.assertRaisesRegex(ValueError, "progress"):
            base.TrainerConfig(workdir="w", epochs=1, progress="fancy").validate()


# ---------------------------------------------------------------------------
# Resume exactness and the SIGTERM path, with the real ELBO trainer.

_IMAGE_SHAPE = (8, 8, 1)
_STEPS_PER_EPOCH = 12
_BATCH_SIZE = 8


def _tiny_vae_setup(
    workdir, *, epochs, kill_at_batch=None, jit_compile=False, kill_signal=signal.SIGTERM
):
    """An ElboTrainer on 96 random 8x8 images with dynamic binarization.

    With `kill_at_batch=(epoch, batch)`, the input pipeline sends
    `kill_signal` to this process when it prepares that batch, as a cluster
    scheduler would.
    """
    rng = np.random.default_rng(1)
    images = rng.integers(
        0, 256, (_STEPS_PER_EPOCH * _BATCH_SIZE, *_IMAGE_SHAPE), dtype=np.uint8
    )
    split = datasets.ArraySplit(images, np.zeros(len(images), np.int64))
    test = datasets.ArraySplit(images[:20], np.zeros(20, np.int64))

    data = testing_utils.array_data_source(
        split,
        test,
        batch_size=_BATCH_SIZE,
        eval_batch_size=8,
        binarization="dynamic",
        num_classes=1,
        seed=3,
        signal_at_batch=kill_at_batch,
        signal_number=kill_signal,
    )
    tf.random.set_seed(7)
    model = models.VAE(
        models.ModelConfig(
            architecture="mlp", image_shape=_IMAGE_SHAPE, latent_dim=2, hidden_units=(16,)
        )
    )
    trainer = elbo.ElboTrainer(
        model,
        tf_keras.optimizers.Adam(1e-2),
        base.TrainerConfig(
            workdir=workdir,
            epochs=epochs,
            seed=5,
            steps_per_loop=2,
            progress="none",
            jit_compile=jit_compile,
        ),
        data,
        elbo.ElboObjective(kl="mc", kl_warmup_epochs=10 / data.steps_per_epoch),
    )
    return trainer


class ResumeTest(tf.test.TestCase):
    def test_sigterm_checkpoints_and_resume_matches_uninterrupted_run(self):
        uninterrupted = _tiny_vae_setup(self.create_tempdir().full_path, epochs=3)
        reference = uninterrupted.train()
        self.assertTrue(reference.completed)

        workdir = self.create_tempdir().full_path
        previous_handler = signal.getsignal(signal.SIGTERM)
        interrupted = _tiny_vae_setup(workdir, epochs=3, kill_at_batch=(1, 5))
        stopped = interrupted.train()
        # The signal path: the run stops inside epoch 2 with a checkpoint,
        # and the process's own SIGTERM handler is back in place.
        self.assertFalse(stopped.completed)
        self.assertEqual(stopped.stop_signal, signal.SIGTERM)
        self.assertGreater(stopped.global_step, _STEPS_PER_EPOCH)
        self.assertLess(stopped.global_step, 2 * _STEPS_PER_EPOCH)
        self.assertEqual(signal.getsignal(signal.SIGTERM), previous_handler)
        self.assertLen(stopped.metrics["epochs"], 1)

        resumed_trainer = _tiny_vae_setup(workdir, epochs=3)
        resumed = resumed_trainer.train()
        self.assertTrue(resumed.completed)
        self.assertEqual(resumed.global_step, reference.global_step)
        for mine, theirs in zip(
            resumed_trainer.model.trainable_variables,
            uninterrupted.model.trainable_variables,
        ):
            self.assertAllEqual(mine.numpy(), theirs.numpy())
        self.assertEqual(
            testing_utils.without_timings(resumed.metrics["epochs"]),
            testing_utils.without_timings(reference.metrics["epochs"]),
        )

    def test_sigusr1_stops_with_a_checkpoint_like_sigterm(self):
        # SIGUSR1 is Slurm's warning before the time limit (launch/submit.py):
        # the run must stop with a checkpoint so that the requeued job
        # resumes.
        workdir = self.create_tempdir().full_path
        previous_handler = signal.getsignal(signal.SIGUSR1)
        trainer = _tiny_vae_setup(
            workdir, epochs=2, kill_at_batch=(0, 5), kill_signal=signal.SIGUSR1
        )
        stopped = trainer.train()
        self.assertFalse(stopped.completed)
        self.assertEqual(stopped.stop_signal, signal.SIGUSR1)
        self.assertLess(stopped.global_step, _STEPS_PER_EPOCH)
        self.assertEqual(signal.getsignal(signal.SIGUSR1), previous_handler)
        resumed = _tiny_vae_setup(workdir, epochs=2)
        self.assertTrue(resumed.restore())
        self.assertEqual(int(resumed.global_step.numpy()), stopped.global_step)


class XlaTest(tf.test.TestCase):
    def test_jit_compiled_step_matches_plain_step_exactly_without_noise(self):
        data, _ = regression_data()
        results = []
        for jit_compile in (False, True):
            trainer = RegressionTrainer(
                LinearModel(),
                base.TrainerConfig(
                    workdir=self.create_tempdir().full_path,
                    epochs=2,
                    progress="none",
                    jit_compile=jit_compile,
                ),
                data,
            )
            results.append(trainer.train().metrics["final"])
        self.assertAllClose(results[1]["train"], results[0]["train"])
        self.assertAllClose(results[1]["test"], results[0]["test"])

    def test_jit_compiled_vae_step_trains(self):
        # XLA draws the reparameterisation noise with its own kernels, so the
        # trajectory differs from the plain one; it must still learn.
        plain = _tiny_vae_setup(self.create_tempdir().full_path, epochs=2).train()
        compiled = _tiny_vae_setup(
            self.create_tempdir().full_path, epochs=2, jit_compile=True
        ).train()
        self.assertTrue(compiled.completed)
        epochs = compiled.metrics["epochs"]
        self.assertGreater(epochs[-1]["train"]["elbo"], epochs[0]["train"]["elbo"])
        self.assertAllClose(
            compiled.metrics["final"]["test"]["elbo"],
            plain.metrics["final"]["test"]["elbo"],
            rtol=0.1,
        )


class StrictJsonTest(tf.test.TestCase):
    def test_non_finite_numbers_are_written_as_null(self):
        path = os.path.join(self.create_tempdir().full_path, "metrics.json")
        atomic_files.write_json(
            path,
            {
                "final": {
                    "test": {"elbo": float("nan"), "kl": 2.5},
                    "values": [float("inf"), -float("inf"), 1.0],
                }
            },
        )
        with open(path) as stream:
            text = stream.read()
        self.assertNotIn("NaN", text)
        self.assertNotIn("Infinity", text)

        def refuse(constant):
            raise ValueError(f"not strict JSON: {constant}")

        self.assertEqual(
            json.loads(text, parse_constant=refuse),
            {"final": {"test": {"elbo": None, "kl": 2.5}, "values": [None, None, 1.0]}},
        )


if __name__ == "__main__":
    tf.test.main()
