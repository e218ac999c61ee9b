"""Tests of the two-stochastic-layer VAE (vae/hierarchical.py) by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from trainers import losses
from vae import hierarchical
from vae import likelihood
from vae import models


def _tiny_model():
    # No hidden layers: every network is one affine map, easy to redo in numpy.
    config = hierarchical.TwoLevelConfig(
        architecture="mlp",
        image_shape=(3,),
        latent_dim=2,
        hidden_units=(),
        top_latent_dim=1,
        top_hidden_units=(),
    )
    model = hierarchical.TwoLevelVAE(config)
    rng = np.random.default_rng(0)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(scale=0.8, size=variable.shape))
    return model


def _affine(layer, x):
    return x @ layer.w.numpy() + layer.b.numpy()


def _log_normal(z, loc, log_variance):
    return np.sum(
        -0.5
        * (math.log(2 * math.pi) + log_variance + (z - loc) ** 2 / np.exp(log_variance)),
        axis=-1,
    )


def _hand_terms(model, images, noise):
    """log p(x|z1), log p(z1|z2) + log p(z2), log q(z1|x) + log q(z2|z1)."""
    loc1, log_var1 = np.split(_affine(model.encoder.net.layers[-1], images), 2, axis=-1)
    z1 = loc1 + np.exp(0.5 * log_var1) * noise[..., :2]  # [k, b, 2]
    loc2, log_var2 = np.split(_affine(model.top_encoder.output, z1), 2, axis=-1)
    z2 = loc2 + np.exp(0.5 * log_var2) * noise[..., 2:]  # [k, b, 1]
    prior_loc, prior_log_var = np.split(_affine(model.top_decoder.output, z2), 2, axis=-1)
    logits = _affine(model.decoder.net.layers[0], z1)  # [k, b, 3]
    log_likelihood = np.sum(images * logits - np.logaddexp(0, logits), axis=-1)
    log_prior = _log_normal(z1, prior_loc, prior_log_var) + _log_normal(
        z2, 0.0, np.zeros_like(z2)
    )
    log_posterior = _log_normal(z1, loc1, log_var1) + _log_normal(z2, loc2, log_var2)
    return log_likelihood, log_prior, log_posterior


IMAGES = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]], np.float32)


def test_importance_terms_over_both_layers_by_hand():
    model = _tiny_model()
    noise = np.random.default_rng(1).normal(size=(4, 2, 3)).astype(np.float32)
    terms = model.importance_terms(tf.constant(IMAGES), noise=tf.constant(noise))
    expected = _hand_terms(model, IMAGES, noise)
    for actual, wanted in zip(terms, expected):
        np.testing.assert_allclose(actual.numpy(), wanted, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        terms.log_weights().numpy(),
        expected[0] + expected[1] - expected[2],
        rtol=1e-5,
        atol=1e-5,
    )


def test_elbo_terms_by_hand():
    model = _tiny_model()
    noise = np.random.default_rng(2).normal(size=(2, 3)).astype(np.float32)
    terms = losses.elbo_terms(
        model,
        tf.constant(IMAGES),
        kl_estimator="mc",
        seed=tf.constant([0, 0]),
        is_training=False,
        latent_noise=tf.constant(noise),
    )
    log_likelihood, log_prior, log_posterior = _hand_terms(model, IMAGES, noise[None])
    np.testing.assert_allclose(
        terms.distortion.numpy(), -log_likelihood[0], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        terms.rate.numpy(), (log_posterior - log_prior)[0], rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="--kl=mc"):
        losses.elbo_terms(
            model,
            tf.constant(IMAGES),
            kl_estimator="analytic",
            seed=tf.constant([0, 0]),
            is_training=False,
        )


def test_importance_sampled_log_likelihood_uses_both_layers():
    model = _tiny_model()
    seed = tf.constant([3, 4], tf.int32)
    estimate = likelihood.importance_sampled_log_likelihood(
        model, IMAGES, num_samples=6, chunk_size=4, seed=seed
    ).numpy()
    # Two chunks, of 4 and 2 samples; chunk i draws its noise from
    # fold_in(seed, i), as the module says.
    weights = []
    for index, size in enumerate([4, 2]):
        chunk_seed = tf.random.experimental.stateless_fold_in(seed, index)
        noise = models.standard_noise(size, 2, 3, tf.cast(chunk_seed, tf.int32))
        parts = _hand_terms(model, IMAGES, noise.numpy().astype(np.float64))
        weights.append(parts[0] + parts[1] - parts[2])
    weights = np.concatenate(weights)
    expected = np.log(np.exp(weights - weights.max(0)).mean(0)) + weights.max(0)
    np.testing.assert_allclose(estimate, expected, rtol=1e-5, atol=1e-4)


def test_samples_come_from_the_top_layer_down():
    model = _tiny_model()
    noise = np.zeros((3, 2), np.float32)
    seed = tf.constant([5, 0], tf.int32)
    z1 = model.prior_latents(tf.constant(noise), seed).numpy()
    z2 = tf.random.stateless_normal([3, 1], seed=seed).numpy()
    prior_loc, _ = np.split(_affine(model.top_decoder.output, z2), 2, axis=-1)
    np.testing.assert_allclose(z1, prior_loc, rtol=1e-5, atol=1e-6)
    assert model.sample(5, seed=1).shape == (5, 3)
    assert model.noise_dim == 3 and not model.has_analytic_kl


def test_two_level_config_refuses_options_it_does_not_have():
    with pytest.raises(ValueError, match="prior"):
        hierarchical.TwoLevelConfig(
            architecture="mlp", image_shape=(3,), prior="vamp"
        ).validate()
    with pytest.raises(ValueError, match="top_latent_dim"):
        hierarchical.TwoLevelConfig(
            architecture="mlp", image_shape=(3,), top_latent_dim=0
        ).validate()
    config = hierarchical.TwoLevelConfig(architecture="mlp", image_shape=(3,))
    assert hierarchical.TwoLevelConfig.from_dict(config.to_dict()) == config
