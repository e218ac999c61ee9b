"""Tests of the importance-weighted bound and DReG (trainers/iwae_losses.py).

The DReG tests use a one-dimensional linear Gaussian model, p(z) = N(0, 1),
p(x|z) = N(x; a z, s^2), with the encoder q(z|x) = N(w x + b, exp(c)^2): its
exact posterior is in the encoder's family and every derivative has a short
closed form.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from trainers import iwae_losses
from trainers import losses
from vae import likelihood
from vae import models

tfd = tfp.distributions


def _tiny_vae(**options):
    config = models.ModelConfig(
        architecture="mlp", image_shape=(4,), latent_dim=2, hidden_units=(6,), **options
    )
    return models.VAE(config)


IMAGES = tf.constant([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])


@pytest.mark.parametrize("options", [{}, {"prior": "vamp", "num_pseudo_inputs": 3}])
def test_one_sample_bound_is_the_monte_carlo_elbo(options):
    model = _tiny_vae(**options)
    noise = tf.random.stateless_normal([3, 2], seed=[1, 2])
    terms = model.importance_terms(IMAGES, noise=noise[tf.newaxis])
    bound = iwae_losses.iwae_bound(iwae_losses.annealed_log_weights(terms))
    elbo = losses.elbo_terms(
        model,
        IMAGES,
        kl_estimator="mc",
        seed=tf.constant([0, 0]),
        is_training=False,
        latent_noise=noise,
    ).elbo
    np.testing.assert_allclose(bound.numpy(), elbo.numpy(), rtol=1e-6, atol=1e-5)


def test_bound_does_not_decrease_in_k():
    # One image, 2000 replicates; the same pool of 2000 x 32 weights is
    # grouped into groups of k, so E[L_k] is estimated for every k from the
    # same draws. Random weights make q far from the posterior, so the gaps
    # are large.
    model = _tiny_vae()
    replicates, pool = 2000, 32
    images = tf.repeat(IMAGES[:1], replicates, axis=0)
    noise = tf.random.stateless_normal([pool, replicates, 2], seed=[3, 4])
    log_weights = model.importance_terms(images, noise=noise).log_weights()
    means, errors = [], []
    for k in (1, 2, 4, 8, 16, 32):
        groups = tf.reshape(log_weights, [pool // k, k, replicates])
        bounds = tf.reduce_logsumexp(groups, axis=1) - math.log(k)
        values = bounds.numpy().ravel()
        means.append(values.mean())
        errors.append(values.std() / math.sqrt(values.size))
    for k_index in range(5):
        assert means[k_index + 1] > means[k_index] - 2 * errors[k_index + 1]
    assert means[-1] - means[0] > 10 * errors[0]


def test_effective_sample_size_bounds():
    log_weights = tf.constant([[0.0, 0.0], [0.0, -50.0], [0.0, -50.0]])
    np.testing.assert_allclose(
        iwae_losses.effective_sample_size(log_weights).numpy(), [3.0, 1.0], rtol=1e-6
    )


class LinearGaussian(tf.Module):
    """p(z) N(0,1), p(x|z) N(a z, s^2), q(z|x) N(w x + b, exp(c)^2)."""

    def __init__(self, a, log_s, w, b, c):
        super().__init__()
        self.a = tf.Variable(a, dtype=tf.float32)
        self.log_s = tf.Variable(log_s, dtype=tf.float32)
        self.w = tf.Variable(w, dtype=tf.float32)
        self.b = tf.Variable(b, dtype=tf.float32)
        self.c = tf.Variable(c, dtype=tf.float32)

    @property
    def encoder_variables(self):
        return [self.w, self.b, self.c]

    @property
    def decoder_variables(self):
        return [self.a, self.log_s]

    def encode(self, images, labels=None, *, is_training=False, seed=None):
        loc = self.w * images + self.b  # [batch, 1]
        return tfd.MultivariateNormalDiag(
            loc=loc, scale_diag=tf.exp(self.c) * tf.ones_like(loc)
        )

    def decode(self, z, labels=None, *, is_training=False, seed=None):
        return tfd.Independent(tfd.Normal(self.a * z, tf.exp(self.log_s)), 1)

    def prior(self):
        return tfd.MultivariateNormalDiag(loc=[0.0])


def _hand_gradients(a, log_s, w, b, c, x, eps):
    """Per-replicate DReG and standard gradients of -L_k, by hand.

    x [n], eps [k, n]. Returns dict of [n] arrays per parameter name for
    each estimator.
    """
    s2 = math.exp(2 * log_s)
    m = w * x + b
    sd = math.exp(c)
    z = m + sd * eps  # [k, n]
    log_lik = -0.5 * (math.log(2 * math.pi * s2) + (x - a * z) ** 2 / s2)
    log_prior = -0.5 * (math.log(2 * math.pi) + z**2)
    log_q = -0.5 * (math.log(2 * math.pi) + 2 * c + eps**2)
    log_w = log_lik + log_prior - log_q
    tilde = np.exp(log_w - log_w.max(0))
    tilde /= tilde.sum(0)
    # d log w / dz with q's parameters fixed.
    dz = a * (x - a * z) / s2 - z + (z - m) / sd**2
    path = {"w": dz * x, "b": dz, "c": dz * sd * eps}
    # d log q / d parameter at fixed z (the score).
    score = {
        "w": (z - m) / sd**2 * x,
        "b": (z - m) / sd**2,
        "c": -1 + (z - m) ** 2 / sd**2,
    }
    dreg = {name: -(tilde**2 * path[name]).sum(0) for name in path}
    standard = {name: -(tilde * (path[name] - score[name])).sum(0) for name in path}
    decoder = {
        "a": -(tilde * (x - a * z) * z / s2).sum(0),
        "log_s": -(tilde * (-1 + (x - a * z) ** 2 / s2)).sum(0),
    }
    return dreg, standard, decoder


PARAMETERS = dict(a=1.5, log_s=-0.3, w=0.2, b=0.4, c=-0.7)


def test_dreg_gradients_equal_the_hand_derivation():
    model = LinearGaussian(**PARAMETERS)
    x = np.array([0.5, -1.0, 2.0], np.float32)
    eps = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    variables = model.encoder_variables + model.decoder_variables
    bound, gradients, _ = iwae_losses.dreg_gradients(
        model, tf.constant(x[:, None]), tf.constant(eps[..., None]), variables
    )
    dreg, _, decoder = _hand_gradients(
        x=x.astype(np.float64), eps=eps.astype(np.float64), **PARAMETERS
    )
    expected = [
        dreg["w"].mean(),
        dreg["b"].mean(),
        dreg["c"].mean(),
        decoder["a"].mean(),
        decoder["log_s"].mean(),
    ]
    np.testing.assert_allclose(
        [g.numpy() for g in gradients], expected, rtol=1e-4, atol=1e-5
    )
    assert bound.shape == (3,)


def test_standard_hand_gradients_are_autodiffs():
    # Checks the hand formulas the identity test below relies on.
    model = LinearGaussian(**PARAMETERS)
    x = np.array([0.5, -1.0], np.float32)
    eps = np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32)
    with tf.GradientTape() as tape:
        posterior = model.encode(tf.constant(x[:, None]))
        z = posterior.bijector.forward(tf.constant(eps[..., None]))
        log_w = (
            models.decoded_log_likelihood(model, z, tf.constant(x[:, None]))
            + model.prior().log_prob(z)
            - posterior.log_prob(z)
        )
        loss = -tf.reduce_mean(iwae_losses.iwae_bound(log_w))
    gradients = tape.gradient(loss, model.encoder_variables)
    _, standard, _ = _hand_gradients(
        x=x.astype(np.float64), eps=eps.astype(np.float64), **PARAMETERS
    )
    np.testing.assert_allclose(
        [g.numpy() for g in gradients],
        [standard[n].mean() for n in "wbc"],
        rtol=1e-4,
        atol=1e-5,
    )


def test_dreg_is_unbiased_for_the_standard_gradient():
    # Tucker et al.'s identity: both estimators have the same expectation.
    x = np.full(40000, 0.8)
    eps = np.random.default_rng(2).normal(size=(4, x.size))
    dreg, standard, _ = _hand_gradients(x=x, eps=eps, **PARAMETERS)
    for name in "wbc":
        difference = dreg[name] - standard[name]
        error = difference.std() / math.sqrt(x.size)
        assert abs(difference.mean()) < 4 * error, name
        # And DReG's variance is the smaller one here.
        assert dreg[name].var() < standard[name].var()


def test_dreg_encoder_gradient_vanishes_at_the_exact_posterior():
    # q = p(z|x): every log w_i = log p(x), so d log w / dz = 0 and DReG's
    # encoder gradient is exactly zero, where the standard one is not.
    a, log_s = 1.5, -0.3
    s2 = math.exp(2 * log_s)
    variance = 1 / (1 + a * a / s2)
    model = LinearGaussian(
        a=a, log_s=log_s, w=variance * a / s2, b=0.0, c=0.5 * math.log(variance)
    )
    images = tf.constant([[0.5], [-1.0]])
    eps = tf.random.stateless_normal([6, 2, 1], seed=[5, 6])
    _, gradients, _ = iwae_losses.dreg_gradients(
        model, images, eps, model.encoder_variables
    )
    np.testing.assert_allclose([g.numpy() for g in gradients], 0.0, atol=2e-5)
    _, standard, _ = _hand_gradients(
        a=a,
        log_s=log_s,
        w=variance * a / s2,
        b=0.0,
        c=0.5 * math.log(variance),
        x=np.array([0.5, -1.0]),
        eps=eps.numpy()[..., 0],
    )
    assert max(abs(standard[n].mean()) for n in "wbc") > 1e-2


def test_plain_vae_weights_are_the_likelihood_modules():
    # The model's own weights (what vae-evaluate now asks for) equal, draw
    # for draw, those vae.likelihood computed before models had them.
    model = _tiny_vae()
    seed = tf.constant([7, 8], tf.int32)
    posterior = model.encode(IMAGES)
    np.testing.assert_allclose(
        model.log_importance_weights(
            IMAGES, num_samples=5, seed=seed, posterior=posterior
        ).numpy(),
        likelihood.log_importance_weights(
            model, IMAGES, posterior, num_samples=5, seed=seed
        ).numpy(),
        rtol=1e-6,
        atol=1e-5,
    )
