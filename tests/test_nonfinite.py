"""Tests for trainers/nonfinite.py and the base loop's non-finite guard."""

import json
import os

from absl import flags
import numpy as np
import tensorflow as tf

from launch import flag_types
from tests.test_base import LinearModel
from tests.test_base import RegressionTrainer
from tests.test_base import regression_data
from trainers import base
from trainers import nonfinite

_STEPS_PER_EPOCH = 8  # regression_data(): 64 examples in batches of 8.


def poisoned_data(bad_epoch, bad_batch):
    """regression_data() with target inf in every row of one batch, so that
    step's loss and gradient are non-finite."""
    data, _ = regression_data()

    def train_batches(epoch, skip_batches):
        clean = data.train_batches(epoch, 0)

        def poison(index, batch):
            bad = tf.logical_and(tf.equal(epoch, bad_epoch), tf.equal(index, bad_batch))
            y = tf.where(bad, tf.fill(tf.shape(batch["y"]), np.inf), batch["y"])
            return {"x": batch["x"], "y": y}

        return clean.enumerate().map(poison).skip(skip_batches)

    return base.DataSource(
        train_batches=train_batches,
        steps_per_epoch=data.steps_per_epoch,
        batch_size=data.batch_size,
        eval_batches=data.eval_batches,
    )


def make_trainer(workdir, data, epochs, **config):
    return RegressionTrainer(
        LinearModel(),
        base.TrainerConfig(
            workdir=workdir, epochs=epochs, steps_per_loop=3, progress="none", **config
        ),
        data,
    )


class StopTest(tf.test.TestCase):
    def test_stops_at_the_bad_step_and_saves_nothing_after_it(self):
        workdir = self.create_tempdir().full_path
        # Epoch 1, batch 4: global step 8 + 5 = 13, in the loop of steps 13
        # to 15 (loops of 3 from step 9).
        trainer = make_trainer(workdir, poisoned_data(1, 4), epochs=3)
        with self.assertRaises(nonfinite.NonFiniteError) as caught:
            trainer.train()
        error = caught.exception
        self.assertEqual(error.global_step, 13)
        self.assertIn("at global step 13", str(error))
        self.assertIn("loss", str(error))
        # The loop ended right after the bad step, not at the loop's end.
        self.assertEqual(int(trainer.global_step.numpy()), 13)

        # The epoch-0 checkpoint is the latest and holds finite weights.
        checkpoint_dir = os.path.join(workdir, "checkpoints")
        latest = tf.train.latest_checkpoint(checkpoint_dir)
        self.assertEqual(os.path.basename(latest), "ckpt-1")
        self.assertEqual(
            sorted(os.listdir(checkpoint_dir)),
            ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"],
        )
        reader = tf.train.load_checkpoint(latest)
        for name in reader.get_variable_to_dtype_map():
            value = reader.get_tensor(name)
            if np.asarray(value).dtype.kind == "f":
                self.assertTrue(np.all(np.isfinite(value)), name)
        with open(os.path.join(workdir, "metrics.json")) as stream:
            self.assertLen(json.load(stream)["epochs"], 1)

    def test_a_non_finite_update_with_a_finite_loss_is_caught(self):
        # A loss that is finite but whose gradient overflows: the weights
        # become inf, which the guard sees in the same step.
        workdir = self.create_tempdir().full_path
        data, _ = regression_data()

        class Overflowing(RegressionTrainer):
            def train_step(self, batch, seed):
                variables = self.optimized_variables["regression"]
                with tf.GradientTape() as tape:
                    loss = 1e30 * tf.reduce_mean(self.model(batch["x"]))
                    loss = tf.minimum(loss, 1.0)  # finite, gradient 1e30
                gradients = tape.gradient(loss, variables)
                gradients = [gradient * 1e30 for gradient in gradients]
                self.optimizers["regression"].apply_gradients(zip(gradients, variables))
                return {"loss": loss}

        trainer = Overflowing(
            LinearModel(),
            base.TrainerConfig(
                workdir=workdir, epochs=1, steps_per_loop=4, progress="none"
            ),
            data,
        )
        with self.assertRaises(nonfinite.NonFiniteError) as caught:
            trainer.train()
        self.assertEqual(caught.exception.global_step, 1)
        self.assertIn("weight", str(caught.exception))
        self.assertNotIn("logged", str(caught.exception))


class SkipStepTest(tf.test.TestCase):
    def test_skipped_update_is_not_applied(self):
        workdir = self.create_tempdir().full_path
        trainer = make_trainer(
            workdir, poisoned_data(0, 4), epochs=1, on_nonfinite="skip_step"
        )
        result = trainer.train()
        self.assertTrue(result.completed)
        self.assertEqual(result.global_step, _STEPS_PER_EPOCH)
        record = result.metrics["epochs"][0]
        self.assertEqual(record["skipped_nonfinite_steps"], 1)
        self.assertTrue(np.isfinite(record["train"]["loss"]))
        # The optimiser's own step counter does not count the skipped one.
        self.assertEqual(
            int(trainer.optimizers["regression"].iterations), _STEPS_PER_EPOCH - 1
        )

        # SGD(0.1) on mean((w x + b - y)^2) by hand, batch 4 left out.
        data, _ = regression_data()
        weight, bias = np.float32(0), np.float32(0)
        for index, batch in enumerate(data.train_batches(0, 0)):
            if index == 4:
                continue
            x, y = batch["x"].numpy(), batch["y"].numpy()
            error = weight * x + bias - y
            weight, bias = (
                weight - 0.1 * np.mean(2 * error * x),
                bias - 0.1 * np.mean(2 * error),
            )
        self.assertAllClose(trainer.model.weight.numpy(), weight, rtol=1e-5)
        self.assertAllClose(trainer.model.bias.numpy(), bias, rtol=1e-5)

    def test_config_refuses_an_unknown_policy(self):
        with self.assertRaisesRegex(ValueError, "on_nonfinite.*'ignore'"):
            base.TrainerConfig(workdir="w", epochs=1, on_nonfinite="ignore").validate()


class LearningRateFlagTest(tf.test.TestCase):
    def test_inf_and_nan_are_refused_like_zero(self):
        for value in ("inf", "nan", "0", "-1"):
            flag_values = flags.FlagValues()
            flag_types.DEFINE_learning_rate(1e-3, "rate", flag_values=flag_values)
            with self.assertRaisesRegex(flags.IllegalFlagValueError, "positive finite"):
                flag_values(["program", f"--learning_rate={value}"])
        flag_values = flags.FlagValues()
        flag_types.DEFINE_learning_rate(1e-3, "rate", flag_values=flag_values)
        flag_values(["program", "--learning_rate=1e4"])
        self.assertEqual(flag_values.learning_rate, 1e4)


if __name__ == "__main__":
    tf.test.main()
