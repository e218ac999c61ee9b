"""Mixed precision: bfloat16 arithmetic, float32 variables, float32 losses."""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import losses
from vae import layers
from vae import models
from vae import vaegan

TINY_CONV = testing_utils.tiny_conv_config(
    (8, 8, 1),
    num_classes=3,
    conditioning="label_maps",
    hidden_batch_norm=True,
    encoder_dense_units=(8,),
)


class LayersTest(tf.test.TestCase):
    def test_layers_compute_in_the_input_dtype_with_float32_variables(self):
        x = tf.random.stateless_uniform([2, 6, 6, 3], seed=[1, 2])
        for layer in (
            layers.Conv2D(3, 4, 3, 1, "SAME", "relu"),
            layers.Conv2DTranspose(3, 4, 3, 2, "SAME", "relu"),
            layers.BatchNorm(3),
        ):
            half = layer(tf.cast(x, tf.bfloat16), is_training=True)
            full = layer(x, is_training=True)
            self.assertEqual(half.dtype, tf.bfloat16, layer.name)
            self.assertTrue(
                all(variable.dtype == tf.float32 for variable in layer.variables)
            )
            # bfloat16 keeps 8 bits of mantissa: about 2-3 significant digits.
            self.assertAllClose(tf.cast(half, tf.float32), full, atol=0.05, rtol=0.05)

    def test_integers_still_become_float32(self):
        dense = layers.Dense(2, 3)
        self.assertEqual(dense(np.ones([4, 2], np.int64)).dtype, tf.float32)


class ModelsTest(tf.test.TestCase):
    def test_a_bfloat16_vae_returns_float32_and_the_same_loss_roughly(self):
        images = tf.cast(
            tf.random.stateless_uniform([6, 8, 8, 1], seed=[3, 4]) > 0.5, tf.float32
        )
        labels = tf.one_hot([0, 1, 2, 0, 1, 2], 3)
        full = models.VAE(TINY_CONV)
        half = models.VAE(dataclasses.replace(TINY_CONV, compute_dtype="bfloat16"))
        for source, target in zip(full.trainable_variables, half.trainable_variables):
            target.assign(source)
        terms = {}
        for name, model in (("full", full), ("half", half)):
            with tf.GradientTape() as tape:
                elbo = losses.elbo_terms(
                    model,
                    images,
                    labels=labels,
                    kl_estimator="analytic",
                    seed=tf.constant([5, 6]),
                    is_training=True,
                ).elbo
                loss = -tf.reduce_mean(elbo)
            gradients = tape.gradient(loss, model.trainable_variables)
            self.assertEqual(loss.dtype, tf.float32)
            self.assertTrue(all(gradient.dtype == tf.float32 for gradient in gradients))
            self.assertTrue(
                all(np.all(np.isfinite(gradient.numpy())) for gradient in gradients)
            )
            terms[name] = float(loss)
        self.assertAllClose(terms["half"], terms["full"], rtol=0.02)
        self.assertEqual(half.decode_mean(tf.zeros([2, 2]), labels[:2]).dtype, tf.float32)

    def test_a_bfloat16_vaegan_discriminator_returns_float32(self):
        model = vaegan.VaeGan(
            dataclasses.replace(testing_utils.TINY_VAEGAN, compute_dtype="bfloat16")
        )
        logits, features = model.discriminate(
            tf.zeros([2, 8, 8, 1]), tf.one_hot([0, 2], 3)
        )
        self.assertEqual(logits.dtype, tf.float32)
        self.assertEqual(features.dtype, tf.float32)
        loc, _ = model.encoder_outputs(tf.zeros([2, 8, 8, 1]), tf.one_hot([0, 2], 3))
        self.assertEqual(loc.dtype, tf.float32)

    def test_float16_is_refused_by_name(self):
        for config_class, fields in ((models.ModelConfig, {}), (vaegan.VaeGanConfig, {})):
            with self.assertRaisesRegex(ValueError, "compute_dtype.*bfloat16"):
                config_class(compute_dtype="float16", **fields).validate()


class ProgramTest(tf.test.TestCase):
    def test_the_flag_trains_a_bfloat16_model_and_records_it(self):
        _, workdir = testing_utils.train_on_fake_mnist(
            testing_utils.private_temp_dir(),
            "mixed",
            [
                "--mixed_precision",
                "--architecture=mlp",
                "--hidden_units=8",
                "--latent_dim=2",
                "--batch_size=16",
                "--epochs=1",
                "--nopictures",
                "--noexport",
                "--progress=none",
            ],
        )
        with open(os.path.join(workdir, "run.json")) as stream:
            record = json.load(stream)
        self.assertEqual(record["model"]["compute_dtype"], "bfloat16")
        with open(os.path.join(workdir, "metrics.json")) as stream:
            final = json.load(stream)["final"]
        self.assertTrue(np.isfinite(final["test"]["elbo"]))
