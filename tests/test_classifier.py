"""Tests for vae/classifier.py: the small CNN used to judge generated images."""

import json

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from vae import classifier

# Tiny 8x8 images keep every test fast on two CPU cores.
SMALL = classifier.ClassifierConfig(
    image_shape=(8, 8, 1), num_classes=3, filters=(4, 6), dense_units=5, dropout_rate=0.5
)


class ClassifierConfigTest(tf.test.TestCase, parameterized.TestCase):
    def test_defaults_are_valid_mnist_settings(self):
        config = classifier.ClassifierConfig()
        config.validate()
        self.assertEqual(config.image_shape, (28, 28, 1))
        self.assertEqual(config.num_classes, 10)
        self.assertEqual(config.feature_map_shape(), (7, 7, 64))

    def test_feature_map_rounds_odd_sizes_up(self):
        config = classifier.ClassifierConfig(image_shape=(7, 5, 3), filters=(2, 2, 2))
        # 7 -> 4 -> 2 -> 1 and 5 -> 3 -> 2 -> 1, as SAME pooling with stride 2 gives.
        self.assertEqual(config.feature_map_shape(), (1, 1, 2))
        model = classifier.Classifier(config)
        self.assertEqual(model.features(tf.zeros([2, 7, 5, 3])).shape, [2, 128])

    def test_json_round_trip_restores_tuples(self):
        restored = classifier.ClassifierConfig.from_dict(
            json.loads(json.dumps(SMALL.to_dict()))
        )
        self.assertEqual(restored, SMALL)
        self.assertIsInstance(restored.filters, tuple)

    def test_from_dict_rejects_unknown_field(self):
        with self.assertRaisesRegex(ValueError, "no field.*'filter_count'"):
            classifier.ClassifierConfig.from_dict({"filter_count": 3})

    @parameterized.named_parameters(
        ("flat_images", dict(image_shape=(2,)), "image_shape"),
        ("one_class", dict(num_classes=1), "num_classes"),
        ("no_filters", dict(filters=()), "filters"),
        ("zero_filter", dict(filters=(4, 0)), "filters"),
        ("kernel", dict(kernel_size=0), "kernel_size"),
        ("dense_units", dict(dense_units=-1), "dense_units"),
        ("dropout_one", dict(dropout_rate=1.0), "dropout_rate"),
        ("activation", dict(activation="swish"), "activation"),
    )
    def test_validate_names_the_bad_field(self, overrides, field):
        config = classifier.ClassifierConfig(**overrides)
        with self.assertRaisesRegex(ValueError, rf"ClassifierConfig\.{field} must be"):
            config.validate()
        with self.assertRaisesRegex(ValueError, field):
            classifier.Classifier(config)


class ClassifierTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.model = classifier.Classifier(SMALL)
        self.images = tf.random.stateless_uniform([4, 8, 8, 1], seed=[1, 2])

    def test_output_shapes(self):
        self.assertEqual(self.model.feature_dim, 5)
        self.assertEqual(self.model.features(self.images).shape, [4, 5])
        self.assertEqual(self.model.logits(self.images).shape, [4, 3])
        self.assertAllClose(self.model(self.images), self.model.logits(self.images))
        probabilities = self.model.probabilities(self.images)
        self.assertAllClose(tf.reduce_sum(probabilities, axis=-1), tf.ones([4]))

    def test_variables_are_created_once_in_the_constructor(self):
        # conv_0 (w, b), conv_1 (w, b), hidden (w, b), output (w, b).
        self.assertLen(self.model.trainable_variables, 8)
        before = [v.ref() for v in self.model.variables]
        self.model.logits(self.images, is_training=True, seed=[0, 1])
        self.model.features(self.images)
        tf.function(self.model.logits)(self.images)
        self.assertEqual([v.ref() for v in self.model.variables], before)
        shapes = {v.name: v.shape.as_list() for v in self.model.trainable_variables}
        # The hidden layer sees the 2x2x6 map left after two poolings of 8x8.
        self.assertIn([2 * 2 * 6, 5], shapes.values())
        self.assertIn([5, 3], shapes.values())

    def test_variable_names_are_scoped(self):
        model = classifier.Classifier(SMALL, name="judge")
        for variable in model.variables:
            self.assertStartsWith(variable.name, "judge/")

    def test_logits_are_the_last_layer_of_the_features(self):
        features = self.model.features(self.images)
        expected = features @ self.model.output_layer.w + self.model.output_layer.b
        self.assertAllClose(self.model.logits(self.images), expected)

    def test_features_match_a_numpy_reference(self):
        config = classifier.ClassifierConfig(
            image_shape=(4, 4, 1),
            num_classes=2,
            filters=(1,),
            kernel_size=1,
            dense_units=2,
        )
        model = classifier.Classifier(config)
        model.convolutions[0].w.assign([[[[2.0]]]])
        model.convolutions[0].b.assign([-1.0])
        hidden = np.arange(8, dtype=np.float32).reshape(4, 2) - 3.0
        model.hidden.w.assign(hidden)
        model.hidden.b.assign([0.5, -0.5])
        images = np.random.default_rng(0).random((3, 4, 4, 1)).astype(np.float32)
        convolved = np.maximum(2.0 * images - 1.0, 0.0)
        pooled = convolved.reshape(3, 2, 2, 2, 2, 1).max(axis=(2, 4)).reshape(3, 4)
        expected = np.maximum(pooled @ hidden + [0.5, -0.5], 0.0)
        self.assertAllClose(model.features(images), expected, atol=1e-6)

    def test_dropout_only_in_training(self):
        evaluation = self.model.logits(self.images)
        self.assertAllClose(self.model.logits(self.images, is_training=False), evaluation)
        # Training logits with dropout differ from evaluation ones and depend on the seed.
        first = self.model.logits(self.images, is_training=True, seed=[3, 4])
        second = self.model.logits(self.images, is_training=True, seed=[3, 4])
        other = self.model.logits(self.images, is_training=True, seed=[5, 6])
        self.assertAllClose(first, second)
        self.assertNotAllClose(first, evaluation)
        self.assertNotAllClose(first, other)
        # Dropout comes after the features, so they are the same in both modes.
        self.assertAllClose(
            self.model.features(self.images, is_training=True),
            self.model.features(self.images),
        )

    def test_no_dropout_rate_means_training_equals_evaluation(self):
        model = classifier.Classifier(
            classifier.ClassifierConfig(
                image_shape=(8, 8, 1),
                num_classes=3,
                filters=(4,),
                dense_units=5,
                dropout_rate=0.0,
            )
        )
        self.assertAllClose(
            model.logits(self.images, is_training=True, seed=[1, 1]),
            model.logits(self.images),
        )

    def test_wrong_image_shape_is_a_clear_error(self):
        with self.assertRaisesRegex(
            ValueError,
            r"images of shape \[batch, 8, 8, 1\].*"
            r"\[4, 28, 28, 1\]",
        ):
            self.model.logits(tf.zeros([4, 28, 28, 1]))
        with self.assertRaisesRegex(ValueError, "images of shape"):
            self.model.features(tf.zeros([8, 8, 1]))

    def test_works_inside_tf_function_with_unknown_batch(self):
        traced = tf.function(self.model.logits).get_concrete_function(
            tf.TensorSpec([None, 8, 8, 1], tf.float32)
        )
        self.assertEqual(traced.structured_outputs.shape.as_list(), [None, 3])
        self.assertAllClose(traced(self.images), self.model.logits(self.images))


if __name__ == "__main__":
    tf.test.main()
