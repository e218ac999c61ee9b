"""Tests for vae/models.py: the config, and the VAE's distributions checked by hand."""

import dataclasses
import json

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tests import testing_utils
from vae import models

tfd = tfp.distributions

# Small enough to run in milliseconds.
SMALL_CONV = dataclasses.replace(testing_utils.SMALL_CONV, latent_dim=3)
SMALL_GAUSSIAN = dataclasses.replace(
    SMALL_CONV, image_shape=(8, 8, 2), likelihood="gaussian", decoder_output="conv"
)
TOY_MLP = testing_utils.mlp_config((2,), (8,), likelihood="gaussian")


def _log_sigmoid(logits):
    return -np.logaddexp(0.0, -logits)


class EncodeDecodeTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(1)

    def test_prior_is_standard_normal(self):
        prior = models.VAE(SMALL_CONV).prior()
        self.assertEqual(prior.event_shape, (3,))
        self.assertAllEqual(prior.mean(), np.zeros(3))
        self.assertAllEqual(prior.stddev(), np.ones(3))

    def test_encode_returns_diagonal_gaussian_from_encoder_outputs(self):
        model = models.VAE(SMALL_CONV)
        images = tf.random.uniform([4, 8, 8, 1])
        posterior = model.encode(images)
        self.assertIsInstance(posterior, tfd.MultivariateNormalDiag)
        self.assertEqual(posterior.batch_shape, (4,))
        self.assertEqual(posterior.event_shape, (3,))
        loc, log_variance = model.encoder(images)
        self.assertAllClose(posterior.mean(), loc)
        self.assertAllClose(
            posterior.stddev(), np.exp(0.5 * log_variance.numpy()), rtol=1e-5
        )

    def test_bernoulli_log_prob_equals_hand_computed_sum(self):
        model = models.VAE(SMALL_CONV)
        z = tf.random.normal([4, 3])
        likelihood = model.decode(z)
        self.assertEqual(likelihood.batch_shape, (4,))
        self.assertEqual(likelihood.event_shape, (8, 8, 1))
        logits = model.decoder(z).numpy()
        # Binary pixels, and grey levels in [0, 1] as the "none" binarisation gives.
        for images in (
            np.random.default_rng(0).integers(0, 2, [4, 8, 8, 1]),
            np.random.default_rng(1).uniform(size=[4, 8, 8, 1]),
        ):
            images = images.astype(np.float32)
            expected = np.sum(
                images * _log_sigmoid(logits) + (1.0 - images) * _log_sigmoid(-logits),
                axis=(1, 2, 3),
            )
            self.assertAllClose(likelihood.log_prob(images), expected, rtol=1e-5)

    def test_gaussian_log_prob_equals_hand_computed_sum(self):
        model = models.VAE(SMALL_GAUSSIAN)
        model.decoder.log_scale.assign([-0.5, 0.7])  # Different per channel.
        z = tf.random.normal([4, 3])
        likelihood = model.decode(z)
        self.assertEqual(likelihood.event_shape, (8, 8, 2))
        means = model.decoder(z).numpy()
        images = np.random.default_rng(2).uniform(size=[4, 8, 8, 2]).astype(np.float32)
        log_scale = np.array([-0.5, 0.7], np.float32)
        expected = np.sum(
            -0.5 * ((images - means) / np.exp(log_scale)) ** 2
            - log_scale
            - 0.5 * np.log(2.0 * np.pi),
            axis=(1, 2, 3),
        )
        self.assertAllClose(likelihood.log_prob(images), expected, rtol=1e-5)

    @parameterized.named_parameters(
        ("bernoulli", SMALL_CONV), ("gaussian", SMALL_GAUSSIAN)
    )
    def test_decode_mean_is_the_mean_of_decode(self, config):
        model = models.VAE(config)
        z = tf.random.normal([2, 3])
        self.assertAllClose(model.decode_mean(z), model.decode(z).mean(), atol=1e-6)

    def test_bernoulli_samples_are_binary_floats(self):
        model = models.VAE(SMALL_CONV)
        draws = model.decode(tf.random.normal([2, 3])).sample(seed=[3, 4])
        self.assertEqual(draws.dtype, tf.float32)
        self.assertAllInSet(draws, [0.0, 1.0])

    def test_toy_points(self):
        model = models.VAE(TOY_MLP)
        points = tf.random.normal([5, 2])
        self.assertEqual(model.decode(model.encode(points).sample()).event_shape, (2,))
        self.assertEqual(model.reconstruct(points).shape, (5, 2))
        self.assertEqual(model.sample(6).shape, (6, 2))

    def test_sample_shape_range_and_seed(self):
        model = models.VAE(SMALL_CONV)
        samples = model.sample(5, seed=[7, 8])
        self.assertEqual(samples.shape, (5, 8, 8, 1))
        self.assertAllInRange(samples, 0.0, 1.0)
        self.assertAllEqual(samples, model.sample(5, seed=[7, 8]))
        self.assertNotAllClose(samples, model.sample(5, seed=[7, 9]))

    def test_reconstruct_decodes_the_posterior_mean(self):
        model = models.VAE(SMALL_CONV)
        images = tf.random.uniform([3, 8, 8, 1])
        reconstructions = model.reconstruct(images)
        self.assertEqual(reconstructions.shape, (3, 8, 8, 1))
        self.assertAllClose(
            reconstructions, model.decode_mean(model.encode(images).mean())
        )

    def test_variables_created_once_and_grouped_by_network(self):
        model = models.VAE(SMALL_GAUSSIAN)
        num_variables = len(model.variables)
        self.assertEqual(
            num_variables, len(model.encoder.variables) + len(model.decoder.variables)
        )
        images = tf.random.uniform([2, 8, 8, 2])
        for _ in range(2):
            model.decode(model.encode(images).sample())
            model.sample(2)
        self.assertLen(model.variables, num_variables)
        self.assertTrue(all(v.name.startswith("vae/") for v in model.variables))

    def test_invalid_config_is_rejected(self):
        with self.assertRaisesRegex(ValueError, "likelihood"):
            models.VAE(models.ModelConfig(likelihood="poisson"))


class GradientTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("conv_bernoulli", SMALL_CONV, [4, 8, 8, 1]),
        ("conv_gaussian", SMALL_GAUSSIAN, [4, 8, 8, 2]),
        ("mlp_gaussian", TOY_MLP, [4, 2]),
    )
    def test_gradients_reach_every_variable_through_the_sample(self, config, shape):
        tf.random.set_seed(2)
        model = models.VAE(config)
        images = tf.random.uniform(shape)
        with tf.GradientTape() as tape:
            posterior = model.encode(images, is_training=True)
            z = posterior.sample()
            # Distortion only: the encoder can get gradients from it only if the sample is
            # reparameterised, so a stop-gradient sample would fail here.
            distortion = -tf.reduce_mean(
                model.decode(z, is_training=True).log_prob(images)
            )
        variables = model.trainable_variables
        gradients = tape.gradient(distortion, variables)
        for variable, gradient in zip(variables, gradients):
            self.assertIsNotNone(gradient, variable.name)
            self.assertGreater(tf.reduce_max(tf.abs(gradient)), 0.0, variable.name)

    def test_encoder_scale_gets_gradient_through_the_sample(self):
        tf.random.set_seed(3)
        model = models.VAE(TOY_MLP)
        images = tf.random.normal([4, 2])
        with tf.GradientTape() as tape:
            loc, log_variance = model.encoder(images)
            tape.watch(log_variance)
            z = tfd.MultivariateNormalDiag(loc, tf.exp(0.5 * log_variance)).sample(
                seed=[1, 1]
            )
            distortion = -tf.reduce_sum(model.decode(z).log_prob(images))
        self.assertGreater(
            tf.reduce_max(tf.abs(tape.gradient(distortion, log_variance))), 0.0
        )


class ModelConfigTest(tf.test.TestCase, parameterized.TestCase):
    def test_defaults_and_references_are_valid(self):
        for config in (models.ModelConfig(), SMALL_CONV, SMALL_GAUSSIAN, TOY_MLP):
            config.validate()

    @parameterized.named_parameters(
        ("architecture", dict(architecture="rnn"), r"architecture.*'mlp', 'conv'.*'rnn'"),
        ("likelihood", dict(likelihood="poisson"), r"likelihood.*'bernoulli'.*'poisson'"),
        ("activation", dict(activation="swish"), r"activation.*'relu'.*'swish'"),
        (
            "latent_dim_zero",
            dict(latent_dim=0),
            r"latent_dim must be a positive integer.*0",
        ),
        ("latent_dim_bool", dict(latent_dim=True), r"latent_dim.*positive integer.*True"),
        ("latent_dim_float", dict(latent_dim=2.0), r"latent_dim.*positive integer.*2\.0"),
        ("padding", dict(encoder_padding="FULL"), r"encoder_padding.*'SAME'.*'FULL'"),
        ("decoder_output", dict(decoder_output="deconv"), r"decoder_output.*'deconv'"),
        (
            "hidden_units",
            dict(hidden_units=(64, 0)),
            r"hidden_units.*positive.*\(64, 0\)",
        ),
        ("hidden_units_int", dict(hidden_units=64), r"hidden_units.*tuple.*64"),
        ("kernel", dict(encoder_kernel_size=0), r"encoder_kernel_size.*positive"),
        ("base_channels", dict(decoder_base_channels=-1), r"decoder_base_channels.*-1"),
        ("image_shape_empty", dict(image_shape=()), r"image_shape.*non-empty"),
        (
            "image_shape_rank",
            dict(image_shape=(28, 28)),
            r"image_shape.*\(height, width, ch",
        ),
        (
            "encoder_strides",
            dict(encoder_strides=(2,)),
            r"encoder_strides.*one stride per",
        ),
        (
            "decoder_strides",
            dict(decoder_strides=(2, 2, 2)),
            r"decoder_strides.*one stride",
        ),
        (
            "not_divisible",
            dict(image_shape=(30, 30, 1)),
            r"decoder_strides.*divisible by 4",
        ),
        ("shrinks", dict(image_shape=(4, 4, 1)), r"encoder.*shrink.*\(4, 4, 1\)"),
    )
    def test_validate_names_the_bad_field(self, overrides, message):
        config = dataclasses.replace(models.ModelConfig(), **overrides)
        with self.assertRaisesRegex(ValueError, message):
            config.validate()

    def test_mlp_ignores_conv_geometry(self):
        # A 2-D toy shape and odd sizes are fine when no convolution is built.
        models.ModelConfig(architecture="mlp", image_shape=(3,)).validate()
        models.ModelConfig(architecture="mlp", image_shape=(30, 30, 1)).validate()

    def test_json_round_trip(self):
        config = dataclasses.replace(
            SMALL_GAUSSIAN,
            encoder_dense_units=(6,),
            hidden_units=(5, 4),
            activation="elu",
        )
        restored = models.ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        self.assertEqual(restored, config)
        self.assertIsInstance(restored.image_shape, tuple)
        self.assertIsInstance(restored.encoder_dense_units, tuple)
        self.assertEqual(hash(restored), hash(config))

    def test_lists_become_tuples(self):
        config = models.ModelConfig(image_shape=[28, 28, 1], encoder_filters=[32, 64])
        self.assertEqual(config, models.ModelConfig())

    def test_from_dict_missing_fields_take_defaults(self):
        self.assertEqual(
            models.ModelConfig.from_dict({"latent_dim": 2}), models.ModelConfig()
        )

    def test_from_dict_rejects_unknown_fields(self):
        with self.assertRaisesRegex(ValueError, "'latent_size'.*latent_dim"):
            models.ModelConfig.from_dict({"latent_size": 4})

    def test_from_dict_validates(self):
        with self.assertRaisesRegex(ValueError, "ModelConfig.latent_dim"):
            models.ModelConfig.from_dict({"latent_dim": -3})

    def test_config_is_frozen(self):
        with self.assertRaises(dataclasses.FrozenInstanceError):
            models.ModelConfig().latent_dim = 3


if __name__ == "__main__":
    tf.test.main()
