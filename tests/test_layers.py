"""Tests for vae/layers.py: each layer against the tf.nn op it wraps, with the same weights."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from vae import layers


def _random(shape, seed):
    return tf.random.stateless_normal(shape, seed=[seed, 17])


class GetActivationTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters(
        ("relu", lambda x: np.maximum(x, 0.0)),
        ("elu", lambda x: np.where(x > 0, x, np.expm1(x))),
        ("leaky_relu", lambda x: np.where(x > 0, x, 0.2 * x)),
        ("tanh", np.tanh),
        ("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x))),
        ("linear", lambda x: x),
        (None, lambda x: x),
    )
    def test_matches_numpy(self, name, reference_fn):
        x = np.linspace(-3.0, 3.0, 13).astype(np.float32)
        self.assertAllClose(layers.get_activation(name)(x), reference_fn(x), atol=1e-6)

    def test_callable_is_returned_unchanged(self):
        self.assertIs(layers.get_activation(tf.nn.softplus), tf.nn.softplus)

    def test_unknown_name_raises_naming_it(self):
        with self.assertRaisesRegex(ValueError, r"'swish'.*relu"):
            layers.get_activation("swish")


class DenseTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters((None,), ("relu",), ("tanh",))
    def test_matches_matmul_plus_bias(self, activation):
        dense = layers.Dense(5, 3, activation=activation)
        dense.b.assign([0.5, -1.0, 2.0])  # A zero bias would hide a missing bias add.
        x = _random([4, 5], seed=1)
        expected = layers.get_activation(activation)(tf.matmul(x, dense.w) + dense.b)
        self.assertAllClose(dense(x), expected)
        self.assertEqual(dense(x).shape, (4, 3))

    def test_without_bias(self):
        dense = layers.Dense(5, 3, use_bias=False)
        x = _random([2, 5], seed=2)
        self.assertLen(dense.variables, 1)
        self.assertAllClose(dense(x), tf.matmul(x, dense.w))

    def test_variables_created_once_in_init(self):
        dense = layers.Dense(5, 3)
        self.assertLen(dense.trainable_variables, 2)
        dense(_random([2, 5], seed=3))
        dense(_random([7, 5], seed=4))
        tf.function(dense)(_random([2, 5], seed=5))
        self.assertLen(dense.variables, 2)

    def test_glorot_uniform_range_and_zero_bias(self):
        dense = layers.Dense(60, 40)
        limit = math.sqrt(6.0 / (60 + 40))
        weights = dense.w.numpy()
        self.assertLessEqual(np.abs(weights).max(), limit)
        # Uniform on [-limit, limit] has standard deviation limit / sqrt(3).
        self.assertNear(weights.std(), limit / math.sqrt(3.0), 0.1 * limit)
        self.assertAllEqual(dense.b, np.zeros(40))

    def test_wrong_input_size_raises(self):
        dense = layers.Dense(5, 3, name="my_dense")
        with self.assertRaisesRegex(ValueError, r"my_dense.*5 features.*\[2, 4\]"):
            dense(tf.zeros([2, 4]))

    def test_bad_size_raises(self):
        with self.assertRaisesRegex(ValueError, "output_size.*positive integer.*0"):
            layers.Dense(5, 0)


class Conv2DTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.product(padding=["SAME", "VALID"], stride=[1, 2])
    def test_matches_tf_nn_conv2d(self, padding, stride):
        conv = layers.Conv2D(
            3, 4, kernel_size=3, stride=stride, padding=padding, activation="relu"
        )
        conv.b.assign([0.1, -0.2, 0.3, -0.4])
        x = _random([2, 7, 8, 3], seed=6)
        expected = tf.nn.relu(
            tf.nn.conv2d(x, conv.w, strides=stride, padding=padding) + conv.b
        )
        outputs = conv(x)
        self.assertAllClose(outputs, expected, atol=1e-5)
        self.assertEqual(outputs.shape[1:3], conv.output_shape_for((7, 8)))

    @parameterized.parameters(
        ((28, 28), 3, 2, "VALID", (13, 13)),
        ((13, 13), 3, 2, "VALID", (6, 6)),
        ((28, 28), 3, 2, "SAME", (14, 14)),
        ((7, 8), 3, 2, "SAME", (4, 4)),
        ((7, 8), 3, 1, "VALID", (5, 6)),
    )
    def test_output_shape_for(self, input_hw, kernel_size, stride, padding, expected):
        conv = layers.Conv2D(1, 2, kernel_size, stride, padding)
        self.assertEqual(conv.output_shape_for(input_hw), expected)
        self.assertEqual(conv(tf.zeros([1, *input_hw, 1])).shape[1:3], expected)

    def test_kernel_shape_and_variables_created_once(self):
        conv = layers.Conv2D(3, 5, kernel_size=(2, 4))
        self.assertEqual(conv.w.shape, (2, 4, 3, 5))
        self.assertLen(conv.variables, 2)
        conv(tf.zeros([1, 6, 6, 3]))
        conv(tf.zeros([2, 5, 5, 3]))
        self.assertLen(conv.variables, 2)

    def test_bad_padding_raises(self):
        with self.assertRaisesRegex(ValueError, "'SAME' or 'VALID'.*'FULL'"):
            layers.Conv2D(1, 1, 3, padding="FULL")

    def test_wrong_channels_raises(self):
        conv = layers.Conv2D(3, 4, 3)
        with self.assertRaisesRegex(ValueError, "3 channels"):
            conv(tf.zeros([1, 5, 5, 2]))


class Conv2DTransposeTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.product(padding=["SAME", "VALID"], stride=[1, 2])
    def test_matches_tf_nn_conv2d_transpose(self, padding, stride):
        deconv = layers.Conv2DTranspose(
            3, 4, kernel_size=3, stride=stride, padding=padding, activation="elu"
        )
        deconv.b.assign([0.1, -0.2, 0.3, -0.4])
        x = _random([2, 5, 6, 3], seed=7)
        out_hw = deconv.output_shape_for((5, 6))
        expected = tf.nn.elu(
            tf.nn.conv2d_transpose(
                x, deconv.w, [2, *out_hw, 4], strides=stride, padding=padding
            )
            + deconv.b
        )
        self.assertAllClose(deconv(x), expected, atol=1e-5)

    @parameterized.product(padding=["SAME", "VALID"], stride=[1, 2])
    def test_is_the_adjoint_of_conv2d(self, padding, stride):
        # <conv2d(y, w), x> == <y, conv2d_transpose(x, w)>: checks the values without
        # trusting tf.nn.conv2d_transpose.
        deconv = layers.Conv2DTranspose(
            3, 2, kernel_size=3, stride=stride, padding=padding, use_bias=False
        )
        x = _random([1, 4, 5, 3], seed=8)
        transposed = deconv(x)
        y = _random(transposed.shape, seed=9)
        forward = tf.nn.conv2d(y, deconv.w, strides=stride, padding=padding)
        self.assertEqual(forward.shape, x.shape)
        self.assertAllClose(
            tf.reduce_sum(forward * x), tf.reduce_sum(y * transposed), rtol=1e-4
        )

    # Expected sizes follow Keras: input * stride (SAME) or
    # input * stride + max(kernel - stride, 0) (VALID).
    _KERAS_CASES = (
        ((14, 14), 3, 2, "SAME", (28, 28)),
        ((7, 7), 3, 2, "SAME", (14, 14)),
        ((14, 14), 3, 1, "SAME", (14, 14)),
        ((5, 6), 4, 3, "SAME", (15, 18)),
        ((13, 13), 3, 2, "VALID", (27, 27)),
        ((6, 6), 3, 2, "VALID", (13, 13)),
        ((5, 5), 2, 2, "VALID", (10, 10)),
        ((4, 4), 1, 3, "VALID", (12, 12)),
        ((4, 5), 3, 1, "VALID", (6, 7)),
    )

    @parameterized.parameters(*_KERAS_CASES)
    def test_output_shape_follows_keras(
        self, input_hw, kernel_size, stride, padding, expected
    ):
        deconv = layers.Conv2DTranspose(2, 3, kernel_size, stride, padding)
        self.assertEqual(deconv.output_shape_for(input_hw), expected)
        self.assertEqual(deconv(tf.zeros([2, *input_hw, 2])).shape, (2, *expected, 3))

    def test_output_shape_agrees_with_tf_keras(self):
        for input_hw, kernel_size, stride, padding, _ in self._KERAS_CASES:
            keras_layer = tf.keras.layers.Conv2DTranspose(
                3, kernel_size, strides=stride, padding=padding.lower()
            )
            keras_shape = keras_layer.compute_output_shape((2, *input_hw, 2))
            deconv = layers.Conv2DTranspose(2, 3, kernel_size, stride, padding)
            self.assertEqual(
                deconv.output_shape_for(input_hw),
                tuple(keras_shape[1:3]),
                msg=f"{input_hw} kernel {kernel_size} stride {stride} {padding}",
            )

    def test_unknown_batch_size_inside_tf_function(self):
        deconv = layers.Conv2DTranspose(2, 3, 3, stride=2)
        traced = tf.function(
            deconv, input_signature=[tf.TensorSpec([None, 7, 7, 2], tf.float32)]
        )
        concrete = traced.get_concrete_function()
        self.assertEqual(concrete.structured_outputs.shape.as_list(), [None, 14, 14, 3])
        self.assertEqual(traced(tf.zeros([5, 7, 7, 2])).shape, (5, 14, 14, 3))

    def test_kernel_layout_and_variables_created_once(self):
        deconv = layers.Conv2DTranspose(3, 5, kernel_size=3)
        self.assertEqual(deconv.w.shape, (3, 3, 5, 3))
        deconv(tf.zeros([1, 4, 4, 3]))
        deconv(tf.zeros([2, 4, 4, 3]))
        self.assertLen(deconv.variables, 2)


class BatchNormTest(tf.test.TestCase, parameterized.TestCase):
    def _batch_norm_with_nontrivial_parameters(self, num_features):
        batch_norm = layers.BatchNorm(num_features, momentum=0.9, epsilon=1e-3)
        batch_norm.scale.assign(np.linspace(0.5, 2.0, num_features))
        batch_norm.offset.assign(np.linspace(-1.0, 1.0, num_features))
        return batch_norm

    @parameterized.parameters(([6, 3],), ([2, 4, 5, 3],))
    def test_training_uses_batch_statistics(self, shape):
        batch_norm = self._batch_norm_with_nontrivial_parameters(3)
        x = 2.0 * _random(shape, seed=10) + 1.5
        axes = tuple(range(len(shape) - 1))
        mean = np.mean(x.numpy(), axis=axes)
        variance = np.var(x.numpy(), axis=axes)  # Biased, like tf.nn.moments.
        expected = tf.nn.batch_normalization(
            x, mean, variance, batch_norm.offset, batch_norm.scale, 1e-3
        )
        self.assertAllClose(batch_norm(x, is_training=True), expected, atol=1e-5)
        # Written out by hand too, in case both used the same wrong statistics.
        by_hand = (x.numpy() - mean) / np.sqrt(
            variance + 1e-3
        ) * batch_norm.scale.numpy() + batch_norm.offset.numpy()
        self.assertAllClose(expected, by_hand, atol=1e-5)

    def test_training_updates_moving_averages(self):
        batch_norm = layers.BatchNorm(3, momentum=0.9)
        x = 3.0 * _random([8, 3], seed=11) - 2.0
        mean, variance = np.mean(x.numpy(), axis=0), np.var(x.numpy(), axis=0)
        batch_norm(x, is_training=True)
        self.assertAllClose(batch_norm.moving_mean, 0.9 * 0.0 + 0.1 * mean)
        self.assertAllClose(batch_norm.moving_variance, 0.9 * 1.0 + 0.1 * variance)
        # The update also happens inside tf.function, once per call.
        step = tf.function(lambda batch: batch_norm(batch, is_training=True))
        step(x)
        step(x)
        expected_mean = 0.1 * mean
        expected_variance = 0.9 + 0.1 * variance
        for _ in range(2):
            expected_mean = 0.9 * expected_mean + 0.1 * mean
            expected_variance = 0.9 * expected_variance + 0.1 * variance
        self.assertAllClose(batch_norm.moving_mean, expected_mean)
        self.assertAllClose(batch_norm.moving_variance, expected_variance)

    def test_inference_uses_moving_statistics_and_changes_nothing(self):
        batch_norm = self._batch_norm_with_nontrivial_parameters(3)
        batch_norm.moving_mean.assign([0.5, -0.5, 2.0])
        batch_norm.moving_variance.assign([4.0, 0.25, 1.0])
        x = _random([2, 3, 3, 3], seed=12)
        expected = tf.nn.batch_normalization(
            x,
            batch_norm.moving_mean,
            batch_norm.moving_variance,
            batch_norm.offset,
            batch_norm.scale,
            1e-3,
        )
        self.assertAllClose(batch_norm(x, is_training=False), expected, atol=1e-5)
        self.assertAllClose(batch_norm.moving_mean, [0.5, -0.5, 2.0])
        self.assertAllClose(batch_norm.moving_variance, [4.0, 0.25, 1.0])

    def test_trainable_and_moving_variables(self):
        batch_norm = layers.BatchNorm(4)
        self.assertCountEqual(
            [v.name for v in batch_norm.trainable_variables],
            ["batch_norm/scale:0", "batch_norm/offset:0"],
        )
        non_trainable = [v for v in batch_norm.variables if not v.trainable]
        self.assertCountEqual(
            [v.name for v in non_trainable],
            ["batch_norm/moving_mean:0", "batch_norm/moving_variance:0"],
        )
        self.assertAllEqual(batch_norm.moving_mean, np.zeros(4))
        self.assertAllEqual(batch_norm.moving_variance, np.ones(4))
        batch_norm(tf.ones([2, 4]), is_training=True)
        batch_norm(tf.ones([2, 4]), is_training=False)
        self.assertLen(batch_norm.variables, 4)

    def test_gradients_reach_only_trainable_variables(self):
        batch_norm = layers.BatchNorm(2)
        x = _random([5, 2], seed=13)
        with tf.GradientTape(persistent=True) as tape:
            loss = tf.reduce_sum(batch_norm(x, is_training=True) * x)
        trainable_gradients = tape.gradient(loss, [batch_norm.scale, batch_norm.offset])
        self.assertNotIn(None, trainable_gradients)
        # Moving statistics are not watched by default, so an optimiser never sees them.
        self.assertEqual(
            tape.gradient(loss, [batch_norm.moving_mean, batch_norm.moving_variance]),
            [None, None],
        )

    @parameterized.parameters((1.0,), (-0.1,))
    def test_bad_momentum_raises(self, momentum):
        with self.assertRaisesRegex(ValueError, "momentum"):
            layers.BatchNorm(2, momentum=momentum)


class DropoutTest(tf.test.TestCase, parameterized.TestCase):
    def test_identity_when_not_training(self):
        x = _random([4, 10], seed=14)
        self.assertAllEqual(layers.Dropout(0.5)(x, is_training=False), x)

    @parameterized.parameters((0.25,), (0.6,))
    def test_drops_a_fraction_near_rate_and_rescales(self, rate):
        x = tf.fill([200, 100], 3.0)
        outputs = layers.Dropout(rate)(x, is_training=True).numpy()
        dropped = outputs == 0.0
        self.assertNear(dropped.mean(), rate, 0.02)
        self.assertAllClose(
            outputs[~dropped], np.full((~dropped).sum(), 3.0 / (1.0 - rate))
        )

    def test_stateless_seed_is_reproducible(self):
        dropout = layers.Dropout(0.5)
        x = tf.ones([50, 20])
        first = dropout(x, is_training=True, seed=[1, 2])
        self.assertAllEqual(first, dropout(x, is_training=True, seed=[1, 2]))
        self.assertNotAllEqual(first, dropout(x, is_training=True, seed=[1, 3]))

    def test_rate_zero_and_no_variables(self):
        dropout = layers.Dropout(0.0)
        x = _random([3, 4], seed=15)
        self.assertAllEqual(dropout(x, is_training=True), x)
        self.assertEmpty(dropout.variables)

    @parameterized.parameters((1.0,), (-0.5,), ("0.5",))
    def test_bad_rate_raises(self, rate):
        with self.assertRaisesRegex(ValueError, "Dropout rate"):
            layers.Dropout(rate)


def _max_pool_reference(x, pool_size, padding):
    """NumPy max pooling with stride = pool size, padding placed as TensorFlow does."""
    x = np.asarray(x)
    pads, out_sizes = [], []
    for size, pool in zip(x.shape[1:3], pool_size):
        out = -(-size // pool) if padding == "SAME" else (size - pool) // pool + 1
        total = max(out * pool - size, 0) if padding == "SAME" else 0
        # TensorFlow puts the smaller half of the padding before the data.
        pads.append((total // 2, total - total // 2))
        out_sizes.append(out)
    padded = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=-np.inf)
    (pool_h, pool_w), (out_h, out_w) = pool_size, out_sizes
    outputs = np.empty((x.shape[0], out_h, out_w, x.shape[3]), x.dtype)
    for row in range(out_h):
        for column in range(out_w):
            window = padded[
                :,
                row * pool_h : (row + 1) * pool_h,
                column * pool_w : (column + 1) * pool_w,
            ]
            outputs[:, row, column] = window.max(axis=(1, 2))
    return outputs


class MaxPool2DTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters(
        ((8, 6), 2, "SAME"),
        ((7, 5), 2, "SAME"),
        ((7, 8), 3, "SAME"),  # Padding on both sides: 7 -> 9 puts one row before.
        ((7, 8), (2, 3), "SAME"),
        ((7, 8), 2, "VALID"),
    )
    def test_matches_numpy_windows(self, input_hw, pool_size, padding):
        pool = layers.MaxPool2D(pool_size, padding)
        x = _random([2, *input_hw, 3], seed=18)
        expected = _max_pool_reference(x, pool.pool_size, padding)
        outputs = pool(x)
        self.assertAllEqual(outputs, expected)
        self.assertEqual(outputs.shape[1:3], pool.output_shape_for(input_hw))

    @parameterized.parameters(
        ((28, 28), 2, "SAME", (14, 14)),
        ((7, 7), 2, "SAME", (4, 4)),
        ((7, 7), 2, "VALID", (3, 3)),
        ((1, 1), 2, "SAME", (1, 1)),
    )
    def test_output_shape_agrees_with_tf_keras(
        self, input_hw, pool_size, padding, expected
    ):
        keras_layer = tf.keras.layers.MaxPool2D(pool_size, padding=padding.lower())
        keras_shape = keras_layer.compute_output_shape((2, *input_hw, 3))
        pool = layers.MaxPool2D(pool_size, padding)
        self.assertEqual(tuple(keras_shape[1:3]), expected)
        self.assertEqual(pool.output_shape_for(input_hw), expected)

    def test_no_variables_and_is_training_ignored(self):
        pool = layers.MaxPool2D()
        x = _random([1, 4, 4, 2], seed=19)
        self.assertAllEqual(pool(x, is_training=True), pool(x, is_training=False))
        self.assertEmpty(pool.variables)

    def test_bad_arguments_raise(self):
        with self.assertRaisesRegex(ValueError, "'SAME' or 'VALID'.*'FULL'"):
            layers.MaxPool2D(2, padding="FULL")
        with self.assertRaisesRegex(ValueError, "pool_size.*0"):
            layers.MaxPool2D(0)


class UpSampling2DTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters((2,), ((2, 3),), (1,))
    def test_equals_numpy_repeat_along_both_axes(self, factor):
        upsampling = layers.UpSampling2D(factor)
        x = _random([2, 3, 4, 5], seed=20)
        factor_h, factor_w = upsampling.factor
        expected = np.repeat(np.repeat(x.numpy(), factor_h, axis=1), factor_w, axis=2)
        outputs = upsampling(x)
        self.assertAllEqual(outputs, expected)
        self.assertEqual(outputs.shape[1:3], upsampling.output_shape_for((3, 4)))

    def test_agrees_with_tf_keras(self):
        x = _random([2, 3, 4, 5], seed=21)
        self.assertAllEqual(layers.UpSampling2D(2)(x), tf.keras.layers.UpSampling2D(2)(x))

    def test_unknown_batch_size_inside_tf_function(self):
        traced = tf.function(
            layers.UpSampling2D(2),
            input_signature=[tf.TensorSpec([None, 3, 4, 2], tf.float32)],
        )
        concrete = traced.get_concrete_function()
        self.assertEqual(concrete.structured_outputs.shape.as_list(), [None, 6, 8, 2])

    def test_no_variables_and_bad_factor_raises(self):
        self.assertEmpty(layers.UpSampling2D().variables)
        with self.assertRaisesRegex(ValueError, "factor.*-1"):
            layers.UpSampling2D(-1)


class FlattenReshapeTest(tf.test.TestCase):
    def test_flatten_then_reshape_round_trip(self):
        x = _random([3, 4, 5, 2], seed=16)
        flat = layers.Flatten()(x)
        self.assertEqual(flat.shape, (3, 40))
        self.assertAllEqual(layers.Reshape((4, 5, 2))(flat), x)


class _RecordingLayer(tf.Module):
    """Records the is_training value it was called with."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __call__(self, x, *, is_training):
        self.seen.append(is_training)
        return x + 1.0


class SequentialTest(tf.test.TestCase):
    def test_applies_layers_in_order_and_passes_is_training(self):
        recorder = _RecordingLayer()
        dense = layers.Dense(2, 2)
        sequential = layers.Sequential([recorder, dense, tf.nn.relu, lambda x: 2.0 * x])
        x = _random([3, 2], seed=17)
        expected = 2.0 * tf.nn.relu(dense(x + 1.0))
        self.assertAllClose(sequential(x, is_training=True), expected)
        self.assertAllClose(sequential(x), expected)
        self.assertEqual(recorder.seen, [True, False])

    def test_tracks_variables_of_its_layers(self):
        sequential = layers.Sequential(
            [
                layers.Dense(3, 4),
                layers.BatchNorm(4),
                layers.Dropout(0.5),
                layers.Dense(4, 1),
            ]
        )
        self.assertLen(sequential.trainable_variables, 2 + 2 + 2)
        self.assertLen(sequential.variables, 2 + 4 + 2)
        # Dropout and BatchNorm need is_training; Sequential must supply it.
        self.assertEqual(sequential(tf.ones([5, 3]), is_training=True).shape, (5, 1))
        self.assertEqual(sequential(tf.ones([5, 3])).shape, (5, 1))

    def test_empty_is_identity(self):
        x = tf.ones([2, 2])
        self.assertAllEqual(layers.Sequential([])(x), x)


if __name__ == "__main__":
    tf.test.main()
