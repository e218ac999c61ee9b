"""Tests for trainers/optimizers.py: optimisers by name, bad input refused."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

from trainers import optimizers


class MakeOptimizerTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("adam", "adam", tf_keras.optimizers.Adam),
        ("rmsprop", "rmsprop", tf_keras.optimizers.RMSprop),
        ("sgd", "sgd", tf_keras.optimizers.SGD),
    )
    def test_name_gives_optimizer_with_rate(self, name, optimizer_class):
        optimizer = optimizers.make_optimizer(name, 0.025)
        self.assertIsInstance(optimizer, optimizer_class)
        self.assertAllClose(optimizer.learning_rate, 0.025)

    def test_every_listed_name_is_accepted(self):
        for name in optimizers.OPTIMIZER_NAMES:
            optimizers.make_optimizer(name, 1e-3)

    def test_library_defaults_besides_the_rate(self):
        adam = optimizers.make_optimizer("adam", 1e-3).get_config()
        self.assertAllClose(
            [adam["beta_1"], adam["beta_2"], adam["epsilon"]], [0.9, 0.999, 1e-7]
        )
        rmsprop = optimizers.make_optimizer("rmsprop", 1e-3).get_config()
        self.assertAllClose([rmsprop["rho"], rmsprop["epsilon"]], [0.9, 1e-7])
        sgd = optimizers.make_optimizer("sgd", 1e-3).get_config()
        self.assertEqual(sgd["momentum"], 0.0)

    def test_sgd_takes_a_plain_gradient_step_on_a_module_variable(self):
        module = tf.Module()
        module.weight = tf.Variable([1.0, -2.0])
        optimizer = optimizers.make_optimizer("sgd", 0.5)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(module.weight**2)
        gradients = tape.gradient(loss, module.trainable_variables)
        optimizer.apply_gradients(zip(gradients, module.trainable_variables))
        # w - 0.5 * 2w = 0.
        self.assertAllClose(module.weight, [0.0, 0.0])

    @parameterized.parameters("Adam", "adagrad", "")
    def test_unknown_name_is_rejected_naming_it(self, name):
        with self.assertRaisesRegex(ValueError, rf"'{name}'.*'adam', 'rmsprop', 'sgd'"):
            optimizers.make_optimizer(name, 1e-3)

    @parameterized.parameters(0.0, -0.001, -5, float("inf"), float("nan"))
    def test_unusable_rate_is_rejected_naming_it(self, learning_rate):
        with self.assertRaises(ValueError) as caught:
            optimizers.make_optimizer("adam", learning_rate)
        message = str(caught.exception)
        self.assertIn("learning rate must be positive and finite", message)
        self.assertIn(f"got {learning_rate}", message)

    def test_cosine_decay_follows_the_half_cosine_to_zero(self):
        # SGD steps on loss = w: each step moves w by exactly the rate in
        # force, so the moves trace the schedule.
        module = tf.Module()
        module.weight = tf.Variable(0.0)
        optimizer = optimizers.make_optimizer("sgd", 0.1, cosine_decay_steps=4)
        moves = []
        for _ in range(6):
            before = float(module.weight.numpy())
            optimizer.apply_gradients([(tf.constant(1.0), module.weight)])
            moves.append(before - float(module.weight.numpy()))
        expected = [0.05 * (1 + np.cos(np.pi * step / 4)) for step in range(4)] + [
            0.0,
            0.0,
        ]
        self.assertAllClose(moves, expected, atol=1e-7)

    def test_negative_decay_steps_are_rejected(self):
        with self.assertRaisesRegex(ValueError, "cosine_decay_steps.*-1"):
            optimizers.make_optimizer("adam", 1e-3, cosine_decay_steps=-1)


if __name__ == "__main__":
    tf.test.main()
