"""Tests of the VampPrior (vae/priors.py) and of a VAE built with it."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from vae import models
from vae import priors

# A VampPrior of three pseudo-inputs on a 2-d latent space of a tiny MLP VAE.
_VAMP_MLP = models.ModelConfig(
    architecture="mlp",
    image_shape=(4,),
    latent_dim=2,
    hidden_units=(5,),
    prior="vamp",
    num_pseudo_inputs=3,
)


def _normal_log_density(z, loc, scale):
    """log N(z; loc, diag(scale^2)) summed over the last axis, by hand."""
    return np.sum(
        -0.5 * math.log(2 * math.pi) - np.log(scale) - 0.5 * ((z - loc) / scale) ** 2,
        axis=-1,
    )


def _hand_mixture_log_density(z, loc, scale):
    """log (1/K) sum_k N(z; loc_k, scale_k^2) for z [n, d], loc/scale [K, d]."""
    components = np.stack(
        [_normal_log_density(z, loc[k], scale[k]) for k in range(len(loc))], axis=-1
    )  # [n, K]
    top = components.max(axis=-1, keepdims=True)
    return top[:, 0] + np.log(np.exp(components - top).sum(axis=-1)) - math.log(len(loc))


def test_mixture_log_density_is_the_formula():
    rng = np.random.default_rng(0)
    loc = rng.normal(size=(4, 3)).astype(np.float32)
    scale = rng.uniform(0.3, 2.0, size=(4, 3)).astype(np.float32)
    z = rng.normal(size=(7, 3)).astype(np.float32) * 2
    prior = priors.mixture_of_posteriors(tf.constant(loc), tf.constant(scale))
    np.testing.assert_allclose(
        prior.log_prob(z).numpy(),
        _hand_mixture_log_density(z, loc, scale),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_vamp_prior_of_a_model_is_normalised(latent_dim):
    # A tiny VAE whose VampPrior is the encoder's posteriors at 3
    # pseudo-inputs; integrate exp(log p(z)) on a grid (trapezoid rule).
    model = models.VAE(dataclasses.replace(_VAMP_MLP, latent_dim=latent_dim))
    axis = np.linspace(-12.0, 12.0, 601 if latent_dim == 1 else 241)
    grids = np.meshgrid(*([axis] * latent_dim), indexing="ij")
    points = np.stack([g.ravel() for g in grids], axis=-1).astype(np.float32)
    density = np.exp(model.prior().log_prob(points).numpy().astype(np.float64))
    density = density.reshape([len(axis)] * latent_dim)
    for _ in range(latent_dim):
        density = np.trapezoid(density, axis, axis=0)
    assert density == pytest.approx(1.0, abs=2e-3)


def test_vamp_prior_components_are_the_encoders_posteriors():
    model = models.VAE(_VAMP_MLP)
    pseudo = tf.sigmoid(model.pseudo_inputs.logits)
    posterior = model.encode(pseudo)
    loc = posterior.loc.numpy()
    scale = posterior.scale.diag_part().numpy()
    z = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_allclose(
        model.prior().log_prob(z).numpy(),
        _hand_mixture_log_density(z, loc, scale),
        rtol=1e-5,
        atol=1e-5,
    )
    # The pseudo-inputs are images in (0, 1), and trainable.
    assert 0 < pseudo.numpy().min() and pseudo.numpy().max() < 1
    assert any(v is model.pseudo_inputs.logits for v in model.trainable_variables)


def test_samples_and_pictures_draw_from_the_mixture():
    model = models.VAE(_VAMP_MLP)
    prior = model.prior()
    loc = prior.components_distribution.loc.numpy()
    scale = prior.components_distribution.scale.diag_part().numpy()
    noise = np.random.default_rng(2).normal(size=(50, 2)).astype(np.float32)
    draws = models.prior_draws(model, noise, seed=3).numpy()
    # Each draw is loc_c + scale_c * noise for one of the K components.
    candidates = loc[None] + scale[None] * noise[:, None]  # [n, K, d]
    distance = np.abs(candidates - draws[:, None]).max(axis=-1).min(axis=-1)
    assert distance.max() < 1e-5
    used = np.abs(candidates - draws[:, None]).max(axis=-1).argmin(axis=-1)
    assert len(set(used)) == 3  # All components are drawn.
    # model.sample decodes prior draws: its images are mixture samples'.
    assert model.sample(4, seed=[1, 2]).shape == (4, 4)
    # The plain VAE's draws are the noise itself.
    plain = models.VAE(
        models.ModelConfig(
            architecture="mlp", image_shape=(4,), latent_dim=2, hidden_units=(5,)
        )
    )
    np.testing.assert_array_equal(models.prior_draws(plain, noise).numpy(), noise)


def test_vamp_prior_is_refused_for_a_conditional_model():
    with pytest.raises(ValueError, match="prior"):
        models.ModelConfig(
            architecture="mlp", image_shape=(4,), num_classes=3, prior="vamp"
        ).validate()
