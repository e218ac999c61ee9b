"""Tests for vae/vaegan.py: shapes, variables, labels, clipping, dropout, export."""

import dataclasses
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing_utils
from vae import export
from vae import layers
from vae import models
from vae import vaegan

BATCH = 5
TINY = testing_utils.TINY_VAEGAN
TINY_UNCONDITIONAL = dataclasses.replace(TINY, num_classes=0)

CONFIGS = (("conditional", TINY), ("unconditional", TINY_UNCONDITIONAL))


def _same(size, stride):
    """Output length of a SAME convolution or pooling with this stride."""
    return -(-size // stride)


def _features_hw(height, width):
    # Conv stride 2, pool 2, conv stride 1, pool 2, conv stride 1: all SAME.
    return tuple(_same(_same(_same(size, 2), 2), 2) for size in (height, width))


def _inputs(config, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(batch, *config.image_shape)).astype(np.float32)
    latent = rng.normal(size=(batch, config.latent_dim)).astype(np.float32)
    labels = (
        tf.one_hot(rng.integers(0, config.num_classes, size=batch), config.num_classes)
        if config.num_classes
        else None
    )
    return tf.constant(images), tf.constant(latent), labels


def _refs(variables):
    return {variable.ref() for variable in variables}


class VaeGanShapesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(*CONFIGS)
    def test_every_method_has_the_documented_shape(self, config):
        model = vaegan.VaeGan(config)
        images, latent, labels = _inputs(config)
        image_shape = (BATCH, *config.image_shape)

        loc, log_variance = model.encoder_outputs(images, labels)
        self.assertEqual(loc.shape, (BATCH, config.latent_dim))
        self.assertEqual(log_variance.shape, (BATCH, config.latent_dim))
        posterior = model.encode(images, labels)
        self.assertEqual(posterior.batch_shape, (BATCH,))
        self.assertEqual(posterior.event_shape, (config.latent_dim,))
        likelihood = model.decode(latent, labels)
        self.assertEqual(likelihood.batch_shape, (BATCH,))
        self.assertEqual(likelihood.event_shape, config.image_shape)
        self.assertEqual(likelihood.log_prob(images).shape, (BATCH,))
        self.assertEqual(model.decode_mean(latent, labels).shape, image_shape)
        self.assertEqual(model.sample(BATCH, labels, seed=[1, 2]).shape, image_shape)
        self.assertEqual(model.reconstruct(images, labels).shape, image_shape)
        self.assertEqual(model.prior().event_shape, (config.latent_dim,))
        logits, features = model.discriminate(images, labels)
        self.assertEqual(logits.shape, (BATCH,))
        self.assertEqual(features.shape, (BATCH, 1, 1, config.similarity_channels))
        self.assertEqual(model.is_conditional, config.num_classes > 0)
        self.assertEqual(model.num_classes, config.num_classes)
        self.assertEqual(model.image_shape, config.image_shape)
        self.assertEqual(model.latent_dim, config.latent_dim)

    @parameterized.parameters(((16, 8, 1),), ((8, 24, 2),), ((12, 20, 3),))
    def test_feature_and_image_sizes_follow_same_arithmetic(self, image_shape):
        config = dataclasses.replace(TINY, image_shape=image_shape)
        model = vaegan.VaeGan(config)
        images, latent, labels = _inputs(config, batch=2)
        _, features = model.discriminate(images, labels)
        expected_hw = _features_hw(*image_shape[:2])
        self.assertEqual(features.shape, (2, *expected_hw, config.similarity_channels))
        self.assertEqual(
            model.discriminator.features_shape, (*expected_hw, config.similarity_channels)
        )
        if image_shape[0] % 8 == 0 and image_shape[1] % 8 == 0:
            self.assertEqual(expected_hw, (image_shape[0] // 8, image_shape[1] // 8))
        self.assertEqual(model.decode_mean(latent, labels).shape, (2, *image_shape))

    def test_unknown_batch_size_inside_tf_function(self):
        model = vaegan.VaeGan(TINY)
        discriminate = tf.function(
            lambda images, labels: model.discriminate(images, labels),
            input_signature=[
                tf.TensorSpec([None, 8, 8, 1], tf.float32),
                tf.TensorSpec([None, 3], tf.float32),
            ],
        )
        logits, features = discriminate.get_concrete_function().structured_outputs
        self.assertEqual(logits.shape.as_list(), [None])
        self.assertEqual(features.shape.as_list(), [None, 1, 1, 2])

    def test_reference_parameter_counts(self):
        # The default config is reference 003's MNIST model; counts worked out from its
        # Keras layers (kernel * in * out + out for each convolution and dense layer).
        model = vaegan.VaeGan(vaegan.VaeGanConfig())
        # Conv(3x3, 1->32) 320; Conv(3x3, 32->64) 18496; 28 -> 14 -> 7, so Dense from
        # 7*7*64 + 10 labels to 64 is 201408; loc and log-variance 2 * (64*8 + 8) = 1040.
        self.assertEqual(
            models.num_parameters(model.encoder), 320 + 18496 + 201408 + 1040
        )
        # Dense(8 + 10 -> 7*7*128) 119168; Conv(5x5, 128->64) 204864;
        # Conv(3x3, 64->32) 18464; Conv(5x5, 32->1) 801.
        self.assertEqual(
            models.num_parameters(model.decoder), 119168 + 204864 + 18464 + 801
        )
        # Conv(7x7, 1->128) 6400; Conv(3x3, 128+10 -> 64) 79552; l = Conv(3x3, 64->16)
        # 9232 on 4x4 maps; Dense(4*4*16 -> 1) 257 reads l (the reference's Dense reads
        # the 64 channels before l instead, 1025 parameters).
        self.assertEqual(
            models.num_parameters(model.discriminator), 6400 + 79552 + 9232 + 257
        )

    def test_kernel_sizes_set_every_convolution(self):
        model = vaegan.VaeGan(
            vaegan.VaeGanConfig(
                decoder_kernel_sizes=(3, 1, 3), discriminator_kernel_sizes=(5, 1, 1)
            )
        )
        # Decoder: Conv(3x3, 128->64) 73792; Conv(1x1, 64->32) 2080; Conv(3x3, 32->1)
        # 289; the Dense is unchanged.
        self.assertEqual(
            models.num_parameters(model.decoder), 119168 + 73792 + 2080 + 289
        )
        # Discriminator: Conv(5x5, 1->128) 3328; Conv(1x1, 138->64) 8896; l = Conv(1x1,
        # 64->16) 1040; the Dense still reads 4x4x16.
        self.assertEqual(
            models.num_parameters(model.discriminator), 3328 + 8896 + 1040 + 257
        )

    def test_decoder_dense_units_add_a_hidden_layer(self):
        model = vaegan.VaeGan(vaegan.VaeGanConfig(decoder_dense_units=(256,)))
        # Dense(8 + 10 -> 256) 4864, then Dense(256 -> 7*7*128) 1611904 in place of
        # the reference's 119168; the convolutions are unchanged.
        self.assertEqual(
            models.num_parameters(model.decoder), 4864 + 1611904 + 204864 + 18464 + 801
        )
        logits = model.decoder(tf.zeros([3, 8]), tf.one_hot([0, 1, 2], 10))
        self.assertEqual(logits.shape, [3, 28, 28, 1])

    def test_dense_units_are_lists_of_layers(self):
        deeper = vaegan.VaeGan(
            dataclasses.replace(
                TINY, encoder_dense_units=(8, 6), decoder_dense_units=(5, 7)
            )
        )
        none = vaegan.VaeGan(dataclasses.replace(TINY, encoder_dense_units=()))
        # Encoder after flattening: 2x2x4 features and 3 label entries.
        self.assertEqual(
            models.num_parameters(deeper.encoder) - models.num_parameters(none.encoder),
            (19 * 8 + 8) + (8 * 6 + 6) + (6 * 4 + 4) - (19 * 4 + 4),
        )
        # Decoder: Dense(2 + 3 -> 5) -> Dense(5 -> 7) -> Dense(7 -> 2x2x4).
        self.assertEqual(
            models.num_parameters(deeper.decoder)
            - models.num_parameters(vaegan.VaeGan(TINY).decoder),
            (5 * 5 + 5) + (5 * 7 + 7) + (7 * 16 + 16) - (5 * 16 + 16),
        )
        images, latent, labels = _inputs(TINY)
        self.assertEqual(none.encoder(images, labels)[0].shape, [BATCH, 2])
        self.assertEqual(deeper.decoder(latent, labels).shape, [BATCH, 8, 8, 1])

    def test_records_with_integer_dense_units_read_as_lists(self):
        # Run records written when each was one integer (0: no decoder layer).
        record = {**TINY.to_dict(), "encoder_dense_units": 8, "decoder_dense_units": 0}
        self.assertEqual(vaegan.VaeGanConfig.from_dict(record), TINY)
        record["decoder_dense_units"] = 5
        self.assertEqual(vaegan.VaeGanConfig.from_dict(record).decoder_dense_units, (5,))


class VaeGanVariablesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(*CONFIGS)
    def test_variables_created_once_and_split_between_networks(self, config):
        model = vaegan.VaeGan(dataclasses.replace(config, batch_norm=True))
        variables_before = _refs(model.variables)
        images, latent, labels = _inputs(config)
        for is_training in (True, False, True):
            model.encode(images, labels, is_training=is_training)
            model.decode(latent, labels, is_training=is_training)
            model.discriminate(images, labels, is_training=is_training)
        tf.function(lambda: model.discriminate(images, labels, is_training=True))()
        self.assertEqual(_refs(model.variables), variables_before)

        encoder = _refs(model.encoder.trainable_variables)
        decoder = _refs(model.decoder.trainable_variables)
        discriminator = _refs(model.discriminator.trainable_variables)
        self.assertTrue(encoder and decoder and discriminator)
        self.assertEmpty(encoder & decoder)
        self.assertEmpty(encoder & discriminator)
        self.assertEmpty(decoder & discriminator)
        self.assertEqual(
            encoder | decoder | discriminator, _refs(model.trainable_variables)
        )
        self.assertLen(
            model.trainable_variables, len(encoder) + len(decoder) + len(discriminator)
        )

    def test_variable_names_start_with_each_network(self):
        model = vaegan.VaeGan(TINY, name="gan")
        for network in (model.encoder, model.decoder, model.discriminator):
            for variable in network.variables:
                self.assertStartsWith(variable.name, f"gan/{network.name}/")

    def test_checkpoint_restores_outputs(self):
        tf.random.set_seed(1)
        model = vaegan.VaeGan(dataclasses.replace(TINY, batch_norm=True))
        images, latent, labels = _inputs(TINY)
        # Move the moving statistics away from their start, so that restoring them counts.
        model.discriminate(images, labels, is_training=True)
        model.decode(latent, labels, is_training=True)
        path = tf.train.Checkpoint(model=model).save(
            os.path.join(self.create_tempdir().full_path, "ckpt")
        )

        tf.random.set_seed(2)
        restored = vaegan.VaeGan(dataclasses.replace(TINY, batch_norm=True))
        self.assertNotAllClose(
            restored.decode_mean(latent, labels), model.decode_mean(latent, labels)
        )
        tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
        self.assertAllClose(
            restored.decode_mean(latent, labels), model.decode_mean(latent, labels)
        )
        self.assertAllClose(
            restored.encode(images, labels).stddev(),
            model.encode(images, labels).stddev(),
        )
        for restored_output, output in zip(
            restored.discriminate(images, labels), model.discriminate(images, labels)
        ):
            self.assertAllClose(restored_output, output)


class VaeGanLabelsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.conditional = vaegan.VaeGan(TINY)
        self.unconditional = vaegan.VaeGan(TINY_UNCONDITIONAL)
        self.images, self.latent, self.labels = _inputs(TINY)

    def _calls(self, model, labels):
        return (
            lambda: model.encode(self.images, labels),
            lambda: model.encoder_outputs(self.images, labels),
            lambda: model.decode(self.latent, labels),
            lambda: model.decode_mean(self.latent, labels),
            lambda: model.discriminate(self.images, labels),
        )

    def test_missing_labels_raise(self):
        for call in self._calls(self.conditional, None):
            with self.assertRaisesRegex(ValueError, "conditioned on 3 classes"):
                call()

    def test_labels_given_to_unconditional_model_raise(self):
        for call in self._calls(self.unconditional, self.labels):
            with self.assertRaisesRegex(ValueError, "unconditional"):
                call()

    def test_labels_of_wrong_width_raise(self):
        for call in self._calls(self.conditional, tf.zeros([BATCH, 4])):
            with self.assertRaisesRegex(ValueError, r"\[batch, 3\].*\(5, 4\)"):
                call()

    def test_labels_change_every_network_output(self):
        other_labels = tf.roll(self.labels, shift=1, axis=-1)
        model = self.conditional
        self.assertNotAllClose(
            model.encode(self.images, self.labels).mean(),
            model.encode(self.images, other_labels).mean(),
        )
        self.assertNotAllClose(
            model.decode_mean(self.latent, self.labels),
            model.decode_mean(self.latent, other_labels),
        )
        self.assertNotAllClose(
            model.discriminate(self.images, self.labels)[1],
            model.discriminate(self.images, other_labels)[1],
        )

    def test_reconstruct_uses_target_labels(self):
        model = self.conditional
        target = tf.roll(self.labels, shift=1, axis=-1)
        code = model.encode(self.images, self.labels).mean()
        self.assertAllClose(
            model.reconstruct(self.images, self.labels, target),
            model.decode_mean(code, target),
        )
        self.assertAllClose(
            model.reconstruct(self.images, self.labels),
            model.decode_mean(code, self.labels),
        )


class VaeGanBehaviourTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters((0.5,), (2.0,))
    def test_log_variance_clip_bounds_log_variance_and_stddev(self, clip):
        config = dataclasses.replace(TINY, log_variance_clip=clip)
        model = vaegan.VaeGan(config)
        unclipped = vaegan.VaeGan(dataclasses.replace(config, log_variance_clip=0.0))
        # Same weights in both, scaled up so the log-variance is far outside the clip.
        for source, target in zip(model.encoder.variables, unclipped.encoder.variables):
            target.assign(source)
        for encoder in (model.encoder, unclipped.encoder):
            head = encoder.net.layers[-1]
            head.w.assign(head.w * 1000.0)
            head.b.assign(tf.fill(head.b.shape, 30.0) * [1.0, -1.0, 1.0, -1.0])
        images, _, labels = _inputs(config)
        _, raw = unclipped.encoder_outputs(images, labels)
        self.assertGreater(np.abs(raw.numpy()).max(), 10 * clip)
        loc, log_variance = model.encoder_outputs(images, labels)
        self.assertAllClose(log_variance, np.clip(raw.numpy(), -clip, clip))
        self.assertLessEqual(np.abs(log_variance.numpy()).max(), clip)
        posterior = model.encode(images, labels)
        self.assertAllClose(posterior.stddev(), np.exp(0.5 * log_variance.numpy()))
        self.assertAllClose(posterior.mean(), loc)

    def test_no_clip_passes_log_variance_through(self):
        model = vaegan.VaeGan(TINY)
        head = model.encoder.net.layers[-1]
        head.b.assign([0.0, 0.0, 50.0, -50.0])
        images, _, labels = _inputs(TINY)
        _, log_variance = model.encoder_outputs(images, labels)
        self.assertGreater(np.abs(log_variance.numpy()).max(), 40.0)

    @parameterized.named_parameters(*CONFIGS)
    def test_dropout_follows_is_training_and_seed(self, config):
        model = vaegan.VaeGan(config)
        images, latent, labels = _inputs(config)
        methods = {
            "encoder": lambda **kwargs: model.encoder_outputs(images, labels, **kwargs)[
                0
            ],
            "decoder": lambda **kwargs: model.decode(
                latent, labels, **kwargs
            ).distribution.logits_parameter(),
            "discriminator": lambda **kwargs: model.discriminate(
                images, labels, **kwargs
            )[1],
        }
        for name, call in methods.items():
            with self.subTest(name):
                self.assertAllEqual(call(is_training=False), call(is_training=False))
                first = call(is_training=True, seed=[3, 4])
                self.assertAllEqual(first, call(is_training=True, seed=[3, 4]))
                self.assertNotAllClose(first, call(is_training=True, seed=[3, 5]))
                self.assertNotAllClose(first, call(is_training=False))

    def test_dropout_can_be_kept_to_the_discriminator(self):
        config = dataclasses.replace(TINY, dropout_in_encoder_decoder=False)
        model = vaegan.VaeGan(config)
        images, latent, labels = _inputs(config)
        for network in (model.encoder, model.decoder):
            self.assertFalse(
                any(isinstance(layer, layers.Dropout) for layer in network.net.layers)
            )
        self.assertAllEqual(
            model.decode(
                latent, labels, is_training=True, seed=[3, 4]
            ).distribution.logits_parameter(),
            model.decode(latent, labels).distribution.logits_parameter(),
        )
        features = [
            model.discriminate(images, labels, is_training=True, seed=[3, seed])[1]
            for seed in (4, 5)
        ]
        self.assertNotAllClose(*features)

    def test_each_dropout_layer_gets_its_own_seed(self):
        # Feed the same values through every dropout layer of the encoder: a shared
        # seed would drop the same units everywhere.
        model = vaegan.VaeGan(TINY)
        dropouts = [
            index
            for index, layer in enumerate(model.encoder.net.layers)
            if isinstance(layer, layers.Dropout)
        ]
        self.assertLen(dropouts, 3)
        seed = tf.constant([7, 8])
        masks = []
        for index in dropouts:
            x = tf.ones([BATCH, 8])
            dropped = model.encoder.net(
                x, is_training=True, seed=seed, start=index, stop=index + 1
            )
            masks.append(dropped.numpy() == 0.0)
        self.assertFalse(np.array_equal(masks[0], masks[1]))
        self.assertFalse(np.array_equal(masks[1], masks[2]))

    def test_batch_norm_updates_moving_statistics_only_in_training(self):
        model = vaegan.VaeGan(
            dataclasses.replace(TINY, batch_norm=True, dropout_rate=0.0)
        )
        batch_norms = [
            module for module in model.submodules if isinstance(module, layers.BatchNorm)
        ]
        # Three in the encoder, three in the decoder, three in the discriminator.
        self.assertLen(batch_norms, 9)
        images, latent, labels = _inputs(TINY)

        def moving_statistics():
            return [
                v.numpy().copy()
                for norm in batch_norms
                for v in (norm.moving_mean, norm.moving_variance)
            ]

        def run_all(is_training):
            model.encode(images, labels, is_training=is_training)
            model.decode(latent, labels, is_training=is_training)
            model.discriminate(images, labels, is_training=is_training)

        start = moving_statistics()
        run_all(is_training=False)
        for before, after in zip(start, moving_statistics()):
            self.assertAllEqual(before, after)
        run_all(is_training=True)
        for before, after in zip(start, moving_statistics()):
            self.assertNotAllClose(before, after)
        # Training and inference differ once statistics are in play.
        self.assertNotAllClose(
            model.decode_mean(latent, labels, is_training=True),
            model.decode_mean(latent, labels, is_training=False),
        )

    def test_discriminator_loss_trains_the_similarity_layer(self):
        # In the reference l is a side branch that the logit never reads; here it is on
        # the path, so a loss on the logits alone has gradients for l's weights.
        model = vaegan.VaeGan(TINY)
        images, _, labels = _inputs(TINY)
        similarity = model.discriminator.net.layers[
            model.discriminator._features_index - 1
        ]
        self.assertEqual(similarity.filters, TINY.similarity_channels)
        with tf.GradientTape() as tape:
            logits, _ = model.discriminate(images, labels)
            loss = tf.reduce_sum(logits)
        gradients = tape.gradient(loss, [similarity.w, similarity.b])
        self.assertNotIn(None, gradients)
        self.assertGreater(float(tf.reduce_sum(tf.abs(gradients[0]))), 0.0)

    def test_decode_mean_is_sigmoid_of_decode_logits(self):
        model = vaegan.VaeGan(TINY)
        _, latent, labels = _inputs(TINY)
        likelihood = model.decode(latent, labels)
        logits = likelihood.distribution.logits_parameter()
        self.assertAllClose(model.decode_mean(latent, labels), tf.sigmoid(logits))
        self.assertAllClose(likelihood.mean(), tf.sigmoid(logits))
        self.assertEqual(likelihood.sample(seed=[1, 2]).dtype, tf.float32)

    def test_sample_is_reproducible_with_a_seed(self):
        model = vaegan.VaeGan(TINY)
        _, _, labels = _inputs(TINY)
        self.assertAllEqual(
            model.sample(BATCH, labels, seed=[5, 6]),
            model.sample(BATCH, labels, seed=[5, 6]),
        )


class VaeGanConfigTest(tf.test.TestCase, parameterized.TestCase):
    def test_defaults_are_the_reference_and_valid(self):
        config = vaegan.VaeGanConfig()
        config.validate()
        self.assertEqual(config.image_shape, (28, 28, 1))
        self.assertEqual(config.latent_dim, 8)
        self.assertEqual(config.num_classes, 10)
        self.assertEqual(config.likelihood, "bernoulli")
        self.assertNotIn("likelihood", config.to_dict())

    @parameterized.named_parameters(
        (
            "height_not_multiple_of_4",
            {"image_shape": (10, 8, 1)},
            "image_shape.*multiples of 4.*10, 8, 1",
        ),
        (
            "width_not_multiple_of_4",
            {"image_shape": (8, 6, 1)},
            "image_shape.*multiples of 4",
        ),
        (
            "image_not_3d",
            {"image_shape": (8, 8)},
            r"image_shape.*\(height, width, channels\)",
        ),
        (
            "encoder_filters_length",
            {"encoder_filters": (4,)},
            "encoder_filters.*exactly 2",
        ),
        (
            "decoder_filters_length",
            {"decoder_filters": (4, 4, 4)},
            "decoder_filters.*exactly 2",
        ),
        (
            "discriminator_filters_length",
            {"discriminator_filters": ()},
            "discriminator_filters.*exactly 2",
        ),
        (
            "decoder_kernel_sizes_length",
            {"decoder_kernel_sizes": (3, 3)},
            "decoder_kernel_sizes.*exactly 3",
        ),
        (
            "kernel_size_not_positive",
            {"discriminator_kernel_sizes": (3, 0, 3)},
            "discriminator_kernel_sizes.*positive integers",
        ),
        (
            "filters_not_positive",
            {"encoder_filters": (4, 0)},
            "encoder_filters.*positive integers",
        ),
        ("activation", {"activation": "swish"}, "activation.*'leaky_relu'.*'swish'"),
        ("num_classes_one", {"num_classes": 1}, "num_classes.*>= 2.*got 1"),
        ("num_classes_negative", {"num_classes": -2}, "num_classes"),
        ("dropout_rate", {"dropout_rate": 1.0}, r"dropout_rate.*\[0, 1\)"),
        ("batch_norm", {"batch_norm": 1}, "batch_norm.*True or False"),
        ("log_variance_clip", {"log_variance_clip": -1.0}, "log_variance_clip.*>= 0"),
        ("latent_dim", {"latent_dim": 0}, "latent_dim.*positive integer"),
        (
            "decoder_dense_units",
            {"decoder_dense_units": (-1,)},
            "decoder_dense_units.*tuple of positive integers",
        ),
        (
            "encoder_dense_units",
            {"encoder_dense_units": 64},
            "encoder_dense_units.*tuple of positive integers",
        ),
        (
            "similarity_channels",
            {"similarity_channels": 2.5},
            "similarity_channels.*positive integer",
        ),
    )
    def test_bad_field_raises_naming_it(self, changes, pattern):
        config = dataclasses.replace(TINY, **changes)
        with self.assertRaisesRegex(ValueError, "VaeGanConfig." + pattern):
            config.validate()
        with self.assertRaisesRegex(ValueError, "VaeGanConfig." + pattern):
            vaegan.VaeGan(config)

    def test_to_dict_from_dict_round_trip(self):
        config = dataclasses.replace(TINY, batch_norm=True, log_variance_clip=2.0)
        self.assertEqual(vaegan.VaeGanConfig.from_dict(config.to_dict()), config)
        # JSON gives lists; they must come back as tuples and compare equal.
        as_json = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in config.to_dict().items()
        }
        restored = vaegan.VaeGanConfig.from_dict(as_json)
        self.assertEqual(restored, config)
        self.assertIsInstance(restored.image_shape, tuple)

    def test_from_dict_refuses_unknown_and_bad_fields(self):
        with self.assertRaisesRegex(ValueError, "'likelihood'"):
            vaegan.VaeGanConfig.from_dict({"likelihood": "bernoulli"})
        with self.assertRaisesRegex(ValueError, "num_classes"):
            vaegan.VaeGanConfig.from_dict({"num_classes": 1})
        self.assertEqual(vaegan.VaeGanConfig.from_dict({}), vaegan.VaeGanConfig())


class VaeGanExportTest(tf.test.TestCase, parameterized.TestCase):
    """The existing SavedModel export takes a VaeGan unchanged."""

    @parameterized.named_parameters(*CONFIGS)
    def test_export_and_load(self, config):
        model = vaegan.VaeGan(config)
        export_dir = os.path.join(self.create_tempdir().full_path, "export")
        export.export_saved_model(model, export_dir)
        loaded = tf.saved_model.load(export_dir)
        signatures = loaded.signatures
        images, latent, one_hot = _inputs(config)
        class_ids = (
            {"labels": tf.argmax(one_hot, axis=-1, output_type=tf.int32)}
            if config.num_classes
            else {}
        )
        if config.num_classes:
            sampled = signatures["sample"](**class_ids)["images"]
        else:
            sampled = signatures["sample"](num_samples=tf.constant(BATCH))["images"]
        self.assertEqual(sampled.shape, (BATCH, *config.image_shape))
        self.assertAllInRange(sampled, 0.0, 1.0)

        decoded = signatures["decode"](latent=latent, **class_ids)
        self.assertAllClose(decoded["images"], model.decode_mean(latent, one_hot))
        self.assertAllClose(
            decoded["logits"],
            model.decode(latent, one_hot).distribution.logits_parameter(),
        )
        encoded = signatures["encode"](images=images, **class_ids)
        self.assertAllClose(encoded["mean"], model.encode(images, one_hot).mean())
        self.assertAllClose(encoded["stddev"], model.encode(images, one_hot).stddev())

        reader = export.SavedModelVae(export_dir)
        self.assertEqual(reader.image_shape, config.image_shape)
        self.assertEqual(reader.latent_dim, config.latent_dim)
        self.assertEqual(reader.num_classes, config.num_classes)


if __name__ == "__main__":
    tf.test.main()
