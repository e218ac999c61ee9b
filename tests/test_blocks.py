"""Tests for vae/blocks.py: the pieces the VAE's, CVAE's and VAE-GAN's networks share.

The networks built from them are tested in test_networks.py, test_conditional.py and
test_vaegan.py; that saved runs still restore, in test_checkpoint_compatibility.py.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from vae import blocks
from vae import layers


def _kinds(stack):
    return [
        type(layer).__name__ if isinstance(layer, tf.Module) else "activation"
        for layer in stack
    ]


class JoinLabelTest(tf.test.TestCase):
    def test_a_label_vector_is_concatenated_to_the_features(self):
        joined = blocks.join_label(
            tf.ones([2, 3]), tf.one_hot([0, 1], 2), as_planes=False
        )
        self.assertAllEqual(joined, [[1, 1, 1, 1, 0], [1, 1, 1, 0, 1]])

    def test_label_planes_are_constant_over_the_image(self):
        joined = blocks.join_label(
            tf.zeros([2, 3, 4, 1]), tf.one_hot([0, 1], 2), as_planes=True
        )
        self.assertEqual(joined.shape, [2, 3, 4, 3])
        self.assertAllEqual(joined[1, ..., 2], tf.ones([3, 4]))
        self.assertAllEqual(joined[1, ..., 1], tf.zeros([3, 4]))
        self.assertAllEqual(joined[0, ..., 1], tf.ones([3, 4]))


class DenseStackTest(tf.test.TestCase):
    def test_batch_norm_before_the_activation(self):
        stack, size = blocks.dense_stack(
            5,
            (4, 3),
            activation="relu",
            batch_norm=True,
            dropout_rate=0.5,
            norm_before_activation=True,
        )
        self.assertEqual(size, 3)
        self.assertEqual(
            _kinds(stack), ["Dense", "BatchNorm", "activation", "Dropout"] * 2
        )
        self.assertIs(stack[0].activation, tf.identity)
        self.assertEqual([stack[0].name, stack[4].name], ["dense_0", "dense_1"])

    def test_activation_in_the_layer_then_batch_norm(self):
        stack, size = blocks.dense_stack(
            5,
            (4,),
            activation="relu",
            batch_norm=True,
            dropout_rate=0.0,
            norm_before_activation=False,
        )
        self.assertEqual(size, 4)
        self.assertEqual(_kinds(stack), ["Dense", "BatchNorm"])
        self.assertIs(stack[0].activation, tf.nn.relu)

    def test_no_units_no_layers(self):
        self.assertEqual(
            blocks.dense_stack(
                5,
                (),
                activation="relu",
                batch_norm=True,
                dropout_rate=0.5,
                norm_before_activation=True,
            ),
            ([], 5),
        )

    def test_dense_to_feature_map_ends_in_the_map(self):
        stack = blocks.dense_to_feature_map(
            4,
            (2, 3, 5),
            activation="relu",
            batch_norm=False,
            dropout_rate=0.0,
            norm_before_activation=True,
        )
        self.assertEqual(_kinds(stack), ["Dense", "activation", "Reshape"])
        self.assertEqual(layers.Sequential(stack)(tf.ones([7, 4])).shape, [7, 2, 3, 5])

    def test_output_hw_follows_strides_and_pooling(self):
        stack = [
            layers.Conv2D(1, 2, 3, 2, "SAME"),
            tf.nn.relu,
            layers.MaxPool2D(2, "SAME"),
            layers.Conv2D(2, 2, 3, 1, "VALID"),
        ]
        self.assertEqual(blocks.output_hw(stack, (12, 16)), (1, 2))


class LabelledStackTest(tf.test.TestCase):
    def test_a_subclass_reads_the_label_where_it_joins(self):

        @dataclasses.dataclass(frozen=True)
        class Config:
            image_shape: tuple = (2, 2)
            num_classes: int = 2
            compute_dtype: str = "float32"

            def validate(self):
                pass

        class FlattenThenDense(blocks.LabelledStack):
            """Flatten, then the label, then one dense unit."""

            def __init__(self):
                super().__init__(
                    Config(),
                    lambda config: ([layers.Flatten(), layers.Dense(6, 1)], 1),
                    label_planes=False,
                    name="flatten_then_dense",
                )

            def __call__(self, x, labels=None):
                return self._apply(x, labels, is_training=False, seed=None)

        network = FlattenThenDense()
        weights = np.arange(6, dtype=np.float32)[:, np.newaxis]
        network.net.layers[1].w.assign(weights)
        images = np.ones([1, 2, 2], np.float32)
        # Pixels 1, 1, 1, 1 and label (0, 1): 0 + 1 + 2 + 3 + 5.
        self.assertAllEqual(network(images, tf.one_hot([1], 2)), [[11.0]])
        with self.assertRaisesRegex(ValueError, "flatten_then_dense.*needs one-hot"):
            network(images)


if __name__ == "__main__":
    tf.test.main()
