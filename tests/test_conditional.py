"""Conditional VAEs: the label path through vae/networks.py and vae/models.py.

The unconditional path is tested in test_networks.py and test_models.py;
here: labels reach both networks in each conditioning mode, bad labels are
refused clearly, hidden blocks (batch norm, dropout) behave, and an
unconditional model's variables are unchanged by the conditioning code (so
checkpoints written before it still load).
"""

import os

from absl.testing import parameterized
import tensorflow as tf

from trainers import losses
from vae import models

_CONFIGS = {
    "mlp": models.ModelConfig(
        architecture="mlp",
        image_shape=(28, 28, 1),
        latent_dim=3,
        hidden_units=(16,),
        num_classes=10,
    ),
    "conv_concat": models.ModelConfig(
        latent_dim=3, num_classes=10, encoder_dense_units=(8,)
    ),
    "conv_label_maps": models.ModelConfig(
        latent_dim=3, num_classes=10, conditioning="label_maps"
    ),
}


def _labels(indices, num_classes=10):
    return tf.one_hot(indices, num_classes, dtype=tf.float32)


class ConditionalModelTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.images = tf.cast(tf.random.uniform([4, 28, 28, 1], seed=1) < 0.3, tf.float32)

    @parameterized.parameters(*_CONFIGS)
    def test_labels_change_encoder_and_decoder_outputs(self, name):
        model = models.VAE(_CONFIGS[name])
        self.assertTrue(model.is_conditional)
        first, second = _labels([0, 1, 2, 3]), _labels([9, 8, 7, 6])
        self.assertNotAllClose(
            model.encode(self.images, first).mean(),
            model.encode(self.images, second).mean(),
        )
        z = tf.zeros([4, 3])
        self.assertNotAllClose(model.decode_mean(z, first), model.decode_mean(z, second))
        self.assertEqual(model.sample(4, first, seed=[1, 2]).shape, [4, 28, 28, 1])

    @parameterized.parameters(*_CONFIGS)
    def test_gradients_reach_every_variable(self, name):
        model = models.VAE(_CONFIGS[name])
        with tf.GradientTape() as tape:
            terms = losses.elbo_terms(
                model,
                self.images,
                labels=_labels([0, 1, 2, 3]),
                kl_estimator="analytic",
                seed=tf.constant([1, 2]),
                is_training=True,
            )
            loss = tf.reduce_mean(terms.distortion + terms.rate)
        gradients = tape.gradient(loss, model.trainable_variables)
        for variable, gradient in zip(model.trainable_variables, gradients):
            self.assertIsNotNone(gradient, variable.name)

    def test_label_maps_widen_the_first_convolution(self):
        concat = models.VAE(_CONFIGS["conv_concat"])
        maps = models.VAE(_CONFIGS["conv_label_maps"])
        first_conv = lambda model: model.encoder.net.layers[0]
        self.assertEqual(first_conv(maps).w.shape[2], 1 + 10)
        self.assertEqual(first_conv(concat).w.shape[2], 1)

    def test_missing_wrong_and_unexpected_labels_are_refused(self):
        model = models.VAE(_CONFIGS["mlp"])
        with self.assertRaisesRegex(ValueError, "needs one-hot labels"):
            model.encode(self.images)
        with self.assertRaisesRegex(ValueError, r"one-hot \[batch, 10\]"):
            model.decode(tf.zeros([4, 3]), _labels([0, 1, 2, 3], 5))
        unconditional = models.VAE(models.ModelConfig())
        with self.assertRaisesRegex(ValueError, "unconditional"):
            unconditional.encode(self.images, _labels([0, 1, 2, 3]))

    def test_invalid_conditioning_settings_name_the_field(self):
        for overrides, field in (
            ({"num_classes": 1}, "num_classes"),
            ({"conditioning": "film"}, "conditioning"),
            ({"hidden_dropout_rate": 1.0}, "hidden_dropout_rate"),
            ({"decoder_activation": "swishy"}, "decoder_activation"),
        ):
            with self.assertRaisesRegex(ValueError, f"ModelConfig.{field}"):
                models.ModelConfig(**overrides).validate()


class HiddenBlockTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.config = models.ModelConfig(
            architecture="mlp",
            image_shape=(28, 28, 1),
            latent_dim=4,
            hidden_units=(32,),
            num_classes=10,
            hidden_batch_norm=True,
            hidden_dropout_rate=0.5,
            decoder_activation="leaky_relu",
        )
        self.images = tf.random.uniform([8, 28, 28, 1], seed=3)
        self.labels = _labels(list(range(8)))

    def test_block_layers_in_reference_order(self):
        model = models.VAE(self.config)
        names = [layer.name for layer in model.decoder.net.layers]
        self.assertEqual(names[:3], ["dense_0", "dense_0_batch_norm", "dense_0_dropout"])
        # The decoder's hidden activation is leaky ReLU: negative inputs leak.
        dense = model.decoder.net.layers[0]
        self.assertAllClose(dense.activation(tf.constant([-1.0])), [-0.2], atol=0.1)

    def test_dropout_is_seeded_and_off_outside_training(self):
        model = models.VAE(self.config)
        seed = tf.constant([3, 4])
        train_a = model.encode(
            self.images, self.labels, is_training=True, seed=seed
        ).mean()
        train_b = model.encode(
            self.images, self.labels, is_training=True, seed=seed
        ).mean()
        train_c = model.encode(
            self.images, self.labels, is_training=True, seed=tf.constant([5, 6])
        ).mean()
        self.assertAllClose(train_a, train_b)
        self.assertNotAllClose(train_a, train_c)
        eval_a = model.encode(self.images, self.labels).mean()
        eval_b = model.encode(self.images, self.labels).mean()
        self.assertAllClose(eval_a, eval_b)

    def test_batch_norm_moving_statistics_update_only_in_training(self):
        model = models.VAE(self.config)
        batch_norm = model.encoder.net.layers[2]
        before = batch_norm.moving_mean.numpy().copy()
        model.encode(self.images, self.labels)
        self.assertAllClose(batch_norm.moving_mean, before)
        model.encode(self.images, self.labels, is_training=True, seed=tf.constant([1, 1]))
        self.assertNotAllClose(batch_norm.moving_mean, before)
        self.assertNotIn(
            batch_norm.moving_mean.ref(), {v.ref() for v in model.trainable_variables}
        )


class CheckpointCompatibilityTest(tf.test.TestCase):
    def test_unconditional_variables_are_those_of_earlier_versions(self):
        # The variable paths of the 004 preset's model as written by the
        # first release; a change here would orphan every saved checkpoint.
        model = models.VAE(models.ModelConfig())
        checkpoint = tf.train.Checkpoint(model=model)
        path = checkpoint.write(os.path.join(self.get_temp_dir(), "ckpt"))
        names = {name for name, _ in tf.train.list_variables(path) if "model/" in name}
        self.assertIn("model/encoder/net/layers/0/w/.ATTRIBUTES/VARIABLE_VALUE", names)
        self.assertIn("model/decoder/net/layers/4/w/.ATTRIBUTES/VARIABLE_VALUE", names)
        self.assertLen(names, 14)


if __name__ == "__main__":
    tf.test.main()
