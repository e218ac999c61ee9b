"""Tests for vae/networks.py: shapes and parameter counts of the reference architectures."""

from absl.testing import parameterized
import tensorflow as tf

from vae import layers
from vae import models
from vae import networks

# The three reference models, written as configs.
# 004: the TensorFlow tutorial's convolutional VAE.
PRESET_004 = models.ModelConfig(
    architecture="conv",
    latent_dim=2,
    encoder_filters=(32, 64),
    encoder_strides=(2, 2),
    encoder_padding="VALID",
    decoder_base_channels=32,
    decoder_filters=(64, 32),
    decoder_strides=(2, 2),
    decoder_output="conv_transpose",
)
# 001: the Keras example VAE (four convolutions, a 32-unit dense layer).
PRESET_001 = models.ModelConfig(
    architecture="conv",
    latent_dim=2,
    encoder_filters=(32, 64, 64, 64),
    encoder_strides=(1, 2, 1, 1),
    encoder_padding="SAME",
    encoder_dense_units=(32,),
    decoder_base_channels=64,
    decoder_filters=(32,),
    decoder_strides=(2,),
    decoder_output="conv",
)
# 002: a one-hidden-layer MLP VAE.
PRESET_002 = models.ModelConfig(architecture="mlp", hidden_units=(64,), latent_dim=2)


def _conv_params(kernel, in_channels, out_channels):
    return kernel * kernel * in_channels * out_channels + out_channels


def _dense_params(inputs, outputs):
    return inputs * outputs + outputs


# Counts worked out from the Keras reference models, layer by layer.
# 004 encoder: Conv2D(32, 3, s2, VALID) on 28x28x1 -> 13x13x32; Conv2D(64, 3, s2, VALID)
# -> 6x6x64; Flatten -> 2304; Dense(2 + 2).
ENCODER_004 = (
    _conv_params(3, 1, 32) + _conv_params(3, 32, 64) + _dense_params(6 * 6 * 64, 4)
)
# 004 decoder: Dense(7*7*32) from 2; Conv2DTranspose(64, 3, s2) -> 14x14x64;
# Conv2DTranspose(32, 3, s2) -> 28x28x32; Conv2DTranspose(1, 3, s1).
DECODER_004 = (
    _dense_params(2, 7 * 7 * 32)
    + _conv_params(3, 32, 64)
    + _conv_params(3, 64, 32)
    + _conv_params(3, 32, 1)
)
# 001 encoder: convolutions 320 + 18496 + 36928 + 36928; 14x14x64 -> Dense(32) 401440;
# then the z_mean and z_log_var heads, Dense(2) each, 66 + 66.
ENCODER_001 = 320 + 18496 + 36928 + 36928 + 401440 + 2 * 66
# 001 decoder: Dense(14*14*64) from 2; Conv2DTranspose(32, 3, s2) -> 28x28x32; Conv2D(1, 3).
DECODER_001 = (
    _dense_params(2, 14 * 14 * 64) + _conv_params(3, 64, 32) + _conv_params(3, 32, 1)
)
# 002 encoder: Dense(64) from 784 = 50240, then heads 2 x 130; decoder: Dense(64) from 2 = 192,
# Dense(784) = 50960.
ENCODER_002 = 50240 + 2 * 130
DECODER_002 = 192 + 50960


class ReferenceCountsTest(tf.test.TestCase):
    """The hand-written totals above must agree with the per-layer arithmetic."""

    def test_reference_counts(self):
        self.assertEqual(_conv_params(3, 1, 32), 320)
        self.assertEqual(_conv_params(3, 32, 64), 18496)
        self.assertEqual(_conv_params(3, 64, 64), 36928)
        self.assertEqual(_dense_params(14 * 14 * 64, 32), 401440)
        self.assertEqual(_dense_params(32, 2), 66)
        self.assertEqual(_dense_params(784, 64), 50240)
        self.assertEqual(_dense_params(64, 2), 130)
        self.assertEqual(_dense_params(2, 64), 192)
        self.assertEqual(_dense_params(64, 784), 50960)
        self.assertEqual((ENCODER_004, DECODER_004), (28036, 41953))
        self.assertEqual((ENCODER_001, DECODER_001), (494244, 56385))


class PresetTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("004", PRESET_004, ENCODER_004, DECODER_004),
        ("001", PRESET_001, ENCODER_001, DECODER_001),
        ("002", PRESET_002, ENCODER_002, DECODER_002),
    )
    def test_shapes_and_parameter_counts(self, config, encoder_params, decoder_params):
        encoder = networks.build_encoder(config)
        decoder = networks.build_decoder(config)
        images = tf.random.uniform([3, 28, 28, 1])
        loc, log_variance = encoder(images, is_training=True)
        self.assertEqual(loc.shape, (3, 2))
        self.assertEqual(log_variance.shape, (3, 2))
        self.assertNotAllClose(loc, log_variance)  # Two different halves of the output.
        outputs = decoder(loc)
        self.assertEqual(outputs.shape, (3, 28, 28, 1))
        self.assertEqual(models.num_parameters(encoder), encoder_params)
        self.assertEqual(models.num_parameters(decoder), decoder_params)

    def test_004_layer_structure(self):
        encoder = networks.build_encoder(PRESET_004)
        convs = [
            layer for layer in encoder.net.layers if isinstance(layer, layers.Conv2D)
        ]
        self.assertEqual(
            [(c.filters, c.stride, c.padding) for c in convs],
            [(32, (2, 2), "VALID"), (64, (2, 2), "VALID")],
        )
        decoder = networks.build_decoder(PRESET_004)
        deconvs = [
            layer
            for layer in decoder.net.layers
            if isinstance(layer, layers.Conv2DTranspose)
        ]
        self.assertEqual(
            [(d.filters, d.stride) for d in deconvs],
            [(64, (2, 2)), (32, (2, 2)), (1, (1, 1))],
        )
        self.assertIsInstance(decoder.net.layers[-1], layers.Conv2DTranspose)

    def test_001_decoder_ends_in_conv2d(self):
        decoder = networks.build_decoder(PRESET_001)
        self.assertIsInstance(decoder.net.layers[-1], layers.Conv2D)
        self.assertEqual(decoder.net.layers[-1].filters, 1)

    def test_decoder_output_has_no_activation(self):
        # Logits must be able to go negative; a ReLU at the end would pin them at >= 0.
        decoder = networks.build_decoder(PRESET_004)
        decoder.net.layers[-1].b.assign([-5.0])
        self.assertLess(tf.reduce_min(decoder(tf.random.normal([3, 2]))), 0.0)


class ConvNetworkTest(tf.test.TestCase):
    def test_image_size_not_divisible_by_decoder_strides_raises(self):
        config = models.ModelConfig(
            image_shape=(30, 30, 1)
        )  # 30 is not divisible by 2 * 2.
        with self.assertRaisesRegex(
            ValueError, r"decoder_strides \(2, 2\) = 4.*divisible by 4.*30, 30"
        ):
            networks.build_decoder(config)

    def test_too_many_decoder_strides_raises(self):
        config = models.ModelConfig(
            decoder_filters=(64, 32, 16), decoder_strides=(2, 2, 2)
        )
        with self.assertRaisesRegex(ValueError, "divisible by 8"):
            networks.build_decoder(config)

    def test_non_square_colour_images(self):
        config = models.ModelConfig(
            image_shape=(8, 12, 3),
            latent_dim=3,
            encoder_filters=(4, 8),
            encoder_padding="SAME",
            decoder_base_channels=4,
            decoder_filters=(8, 4),
            decoder_dense_units=(5,),
            encoder_dense_units=(6,),
        )
        self.assertEqual(networks.decoder_base_shape(config), (2, 3, 4))
        loc, _ = networks.build_encoder(config)(tf.zeros([2, 8, 12, 3]))
        self.assertEqual(loc.shape, (2, 3))
        self.assertEqual(networks.build_decoder(config)(loc).shape, (2, 8, 12, 3))

    def test_unknown_batch_size_inside_tf_function(self):
        encoder = networks.build_encoder(PRESET_004)
        decoder = networks.build_decoder(PRESET_004)

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
        def round_trip(images):
            loc, _ = encoder(images)
            return decoder(loc)

        self.assertEqual(
            round_trip.get_concrete_function().structured_outputs.shape.as_list(),
            [None, 28, 28, 1],
        )
        self.assertEqual(round_trip(tf.zeros([4, 28, 28, 1])).shape, (4, 28, 28, 1))

    def test_variables_created_once(self):
        encoder = networks.build_encoder(PRESET_004)
        decoder = networks.build_decoder(PRESET_004)
        num_variables = len(encoder.variables) + len(decoder.variables)
        self.assertEqual(num_variables, 2 * 3 + 2 * 4)
        for _ in range(2):
            decoder(encoder(tf.zeros([1, 28, 28, 1]))[0])
        self.assertEqual(len(encoder.variables) + len(decoder.variables), num_variables)

    def test_variable_names_carry_the_network_name(self):
        encoder = networks.build_encoder(PRESET_004)
        self.assertTrue(
            all(v.name.startswith("encoder/") for v in encoder.variables),
            [v.name for v in encoder.variables],
        )


class MlpNetworkTest(tf.test.TestCase):
    def test_two_dimensional_points(self):
        config = models.ModelConfig(
            architecture="mlp",
            image_shape=(2,),
            latent_dim=2,
            hidden_units=(16, 8),
            activation="tanh",
        )
        encoder = networks.build_encoder(config)
        decoder = networks.build_decoder(config)
        loc, log_variance = encoder(tf.random.normal([3, 2]))
        self.assertEqual((loc.shape, log_variance.shape), ((3, 2), (3, 2)))
        self.assertEqual(decoder(loc).shape, (3, 2))
        # Encoder 2 -> 16 -> 8 -> 4; decoder mirrors it: 2 -> 8 -> 16 -> 2.
        self.assertEqual(
            models.num_parameters(encoder), (2 * 16 + 16) + (16 * 8 + 8) + (8 * 4 + 4)
        )
        self.assertEqual(
            models.num_parameters(decoder), (2 * 8 + 8) + (8 * 16 + 16) + (16 * 2 + 2)
        )

    def test_mlp_on_images_keeps_image_shape(self):
        config = models.ModelConfig(
            architecture="mlp", image_shape=(4, 5, 2), hidden_units=()
        )
        decoder = networks.build_decoder(config)
        self.assertEqual(decoder(tf.zeros([3, 2])).shape, (3, 4, 5, 2))
        self.assertEqual(models.num_parameters(decoder), 2 * 40 + 40)

    def test_gaussian_decoder_owns_per_channel_log_scale(self):
        config = models.ModelConfig(
            architecture="mlp", image_shape=(4, 4, 3), likelihood="gaussian"
        )
        decoder = networks.build_decoder(config)
        self.assertAllEqual(decoder.log_scale, tf.zeros([3]))
        self.assertIn(
            decoder.log_scale.ref(), {v.ref() for v in decoder.trainable_variables}
        )
        self.assertIsNone(networks.build_decoder(PRESET_002).log_scale)


class ValidationTest(tf.test.TestCase):
    def test_invalid_config_raises_before_building(self):
        with self.assertRaisesRegex(ValueError, "ModelConfig.latent_dim.*positive.*0"):
            networks.build_encoder(models.ModelConfig(latent_dim=0))

    def test_encoder_that_shrinks_to_nothing_raises(self):
        config = models.ModelConfig(
            image_shape=(8, 8, 1),
            encoder_filters=(4, 4, 4),
            encoder_strides=(2, 2, 2),
            decoder_filters=(4,),
            decoder_strides=(2,),
        )
        with self.assertRaisesRegex(ValueError, "shrink.*at least 1x1"):
            networks.build_encoder(config)

    def test_decoder_base_shape(self):
        self.assertEqual(networks.decoder_base_shape(PRESET_001), (14, 14, 64))
        self.assertEqual(networks.decoder_base_shape(PRESET_004), (7, 7, 32))


if __name__ == "__main__":
    tf.test.main()
