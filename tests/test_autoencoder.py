"""Tests for vae/autoencoder.py: the (conditional) deterministic autoencoder."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from vae import autoencoder

BATCH = 5
SMALL = autoencoder.AutoencoderConfig(hidden_units=(8, 6), code_dim=1)
SMALL_CONDITIONAL = autoencoder.AutoencoderConfig(
    hidden_units=(8, 6), code_dim=1, num_classes=3
)


def _numpy_elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _numpy_mlp(sequential, x):
    """Reference forward pass: ELU on every layer but the last."""
    dense_layers = sequential.layers
    for index, layer in enumerate(dense_layers):
        x = x @ layer.w.numpy() + layer.b.numpy()
        if index < len(dense_layers) - 1:
            x = _numpy_elu(x)
    return x


def _onehot(labels, num_classes):
    return tf.one_hot(labels, num_classes, dtype=tf.float32)


class AutoencoderConfigTest(tf.test.TestCase, parameterized.TestCase):
    def test_defaults_are_the_reference_network(self):
        config = autoencoder.AutoencoderConfig()
        config.validate()
        self.assertEqual(
            (
                config.input_dim,
                config.hidden_units,
                config.code_dim,
                config.activation,
                config.num_classes,
            ),
            (2, (64, 64), 1, "elu", 0),
        )
        self.assertFalse(config.is_conditional)

    def test_list_of_hidden_units_becomes_a_tuple(self):
        config = autoencoder.AutoencoderConfig(hidden_units=[4, 3])
        self.assertEqual(config.hidden_units, (4, 3))
        self.assertEqual(config, autoencoder.AutoencoderConfig(hidden_units=(4, 3)))

    @parameterized.named_parameters(
        ("input_dim", {"input_dim": 0}, "input_dim"),
        ("code_dim", {"code_dim": -1}, "code_dim"),
        ("code_dim_bool", {"code_dim": True}, "code_dim"),
        ("hidden_units", {"hidden_units": (8, 0)}, "hidden_units"),
        ("activation", {"activation": "swish"}, "activation"),
        ("num_classes", {"num_classes": -2}, "num_classes"),
    )
    def test_bad_field_is_named(self, overrides, field):
        config = autoencoder.AutoencoderConfig(**overrides)
        with self.assertRaisesRegex(ValueError, f"AutoencoderConfig.{field}"):
            config.validate()
        with self.assertRaisesRegex(ValueError, field):
            autoencoder.Autoencoder(config)


class AutoencoderTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.points = np.random.default_rng(0).normal(size=(BATCH, 2)).astype(np.float32)
        self.labels = _onehot([0, 1, 2, 1, 0], 3)

    @parameterized.named_parameters(
        ("unconditional", SMALL, False), ("conditional", SMALL_CONDITIONAL, True)
    )
    def test_shapes_and_dtypes(self, config, conditional):
        model = autoencoder.Autoencoder(config)
        labels = self.labels if conditional else None
        code = model.encode(self.points, labels)
        self.assertEqual(code.shape, (BATCH, 1))
        self.assertEqual(code.dtype, tf.float32)
        decoded = model.decode(code, labels)
        self.assertEqual(decoded.shape, (BATCH, 2))
        self.assertAllClose(model.reconstruct(self.points, labels), decoded)
        self.assertAllClose(model(self.points, labels), decoded)

    def test_label_widens_the_first_layer_of_each_half(self):
        unconditional = autoencoder.Autoencoder(SMALL)
        conditional = autoencoder.Autoencoder(SMALL_CONDITIONAL)
        self.assertEqual(unconditional.encoder.layers[0].w.shape, (2, 8))
        self.assertEqual(conditional.encoder.layers[0].w.shape, (2 + 3, 8))
        self.assertEqual(unconditional.decoder.layers[0].w.shape, (1, 6))
        self.assertEqual(conditional.decoder.layers[0].w.shape, (1 + 3, 6))
        self.assertEqual(conditional.decoder.layers[-1].w.shape, (8, 2))
        # Nothing else differs: the label adds exactly these weights.
        extra = sum(
            v.shape.num_elements() for v in conditional.trainable_variables
        ) - sum(v.shape.num_elements() for v in unconditional.trainable_variables)
        self.assertEqual(extra, 3 * 8 + 3 * 6)

    def test_unconditional_matches_numpy_reference(self):
        model = autoencoder.Autoencoder(SMALL)
        code = _numpy_mlp(model.encoder, self.points)
        expected = _numpy_mlp(model.decoder, code)
        self.assertAllClose(model.reconstruct(self.points), expected, atol=1e-5)

    def test_conditional_matches_numpy_reference(self):
        model = autoencoder.Autoencoder(SMALL_CONDITIONAL)
        labels = self.labels.numpy()
        code = _numpy_mlp(model.encoder, np.concatenate([self.points, labels], 1))
        expected = _numpy_mlp(model.decoder, np.concatenate([code, labels], 1))
        self.assertAllClose(
            model.reconstruct(self.points, self.labels), expected, atol=1e-5
        )

    def test_conditioning_changes_the_decoder_output(self):
        model = autoencoder.Autoencoder(SMALL_CONDITIONAL)
        codes = tf.constant([[-1.0], [0.0], [2.0]])
        outputs = [model.decode(codes, _onehot([k] * 3, 3)) for k in range(3)]
        for first in range(3):
            for second in range(first + 1, 3):
                self.assertGreater(
                    float(tf.reduce_max(tf.abs(outputs[first] - outputs[second]))), 1e-4
                )

    def test_conditioning_changes_the_code(self):
        model = autoencoder.Autoencoder(SMALL_CONDITIONAL)
        self.assertNotAllClose(
            model.encode(self.points, _onehot([0] * BATCH, 3)),
            model.encode(self.points, _onehot([2] * BATCH, 3)),
        )

    def test_missing_label_for_conditional_model(self):
        model = autoencoder.Autoencoder(SMALL_CONDITIONAL)
        with self.assertRaisesRegex(ValueError, r"needs label_onehot.*\[batch, 3\]"):
            model.encode(self.points)
        with self.assertRaisesRegex(ValueError, "needs label_onehot"):
            model.decode(tf.zeros([BATCH, 1]))

    def test_wrong_label_width(self):
        model = autoencoder.Autoencoder(SMALL_CONDITIONAL)
        with self.assertRaisesRegex(ValueError, r"shape \[5, 2\].*\[batch, 3\]"):
            model.reconstruct(self.points, _onehot([0, 1, 1, 0, 1], 2))
        with self.assertRaisesRegex(ValueError, r"expected \[batch, 3\]"):
            model.encode(self.points, tf.zeros([BATCH]))

    def test_label_count_must_match_batch(self):
        model = autoencoder.Autoencoder(SMALL_CONDITIONAL)
        with self.assertRaisesRegex(ValueError, "5 examples but 2 labels"):
            model.encode(self.points, _onehot([0, 1], 3))

    def test_label_given_to_unconditional_model(self):
        model = autoencoder.Autoencoder(SMALL)
        with self.assertRaisesRegex(ValueError, "unconditional"):
            model.encode(self.points, self.labels)

    @parameterized.named_parameters(
        ("unconditional", SMALL, False), ("conditional", SMALL_CONDITIONAL, True)
    )
    def test_variables_created_once(self, config, conditional):
        model = autoencoder.Autoencoder(config)
        labels = self.labels if conditional else None
        before = [v.ref() for v in model.variables]
        # Two dense layers per hidden size plus the output layer, w and b each.
        self.assertLen(before, 2 * 2 * (len(config.hidden_units) + 1))
        model.reconstruct(self.points, labels)
        compiled = tf.function(model.reconstruct)
        eager = model.reconstruct(self.points, labels)
        self.assertAllClose(compiled(self.points, labels), eager)
        self.assertEqual([v.ref() for v in model.variables], before)

    def test_variable_names_follow_module_scopes(self):
        model = autoencoder.Autoencoder(SMALL, name="toy_autoencoder")
        names = {v.name for v in model.variables}
        self.assertIn("toy_autoencoder/encoder/dense_0/w:0", names)
        self.assertIn("toy_autoencoder/decoder/output/b:0", names)

    def test_no_hidden_layers_is_linear(self):
        model = autoencoder.Autoencoder(
            autoencoder.AutoencoderConfig(hidden_units=(), code_dim=2)
        )
        scaled = model.reconstruct(2.0 * self.points) - model.reconstruct(
            tf.zeros_like(self.points)
        )
        unscaled = model.reconstruct(self.points) - model.reconstruct(
            tf.zeros_like(self.points)
        )
        self.assertAllClose(scaled, 2.0 * unscaled, atol=1e-5)


if __name__ == "__main__":
    tf.test.main()
