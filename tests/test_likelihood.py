"""Tests for vae/likelihood.py: the importance-sampled log p(x) against exact answers.

Most tests use a linear-Gaussian "VAE" whose marginal is known in closed form:
p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I), so p(x) = N(b, W W^T + sigma^2 I)
and the posterior p(z|x) is Gaussian too. Its encoder returns either that exact
posterior or a deliberately wrong diagonal Gaussian. Statistical checks average
thousands of independent estimates (one image repeated along the batch gets
independent samples) and allow four standard errors.
"""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vae import likelihood
from vae import models

tfd = tfp.distributions

WEIGHTS = np.array([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.2]])  # [data_dim 3, latent_dim 2]
BIAS = np.array([0.2, -0.1, 0.4])
NOISE_SCALE = 0.5
POINTS = np.array([[0.5, 1.0, -0.3], [-1.2, 0.4, 0.9]])  # [2, data_dim]
# The wrong q(z|x): the exact posterior moved by one posterior standard deviation
# and 1.5 times wider. Wider than the posterior keeps the weights' variance finite,
# so the estimate converges; the shift puts the ELBO 1.4 nats below log p(x).
SHIFT_IN_SDS = 1.0
SCALE_FACTOR = 1.5
REPEATS = 1000  # Copies of each point for the statistical tests.


def _posterior_moments(points):
    """Exact p(z|x) of the linear-Gaussian model: means [n, 2] and covariance [2, 2]."""
    precision = np.eye(2) + WEIGHTS.T @ WEIGHTS / NOISE_SCALE**2
    covariance = np.linalg.inv(precision)
    means = (points - BIAS) @ WEIGHTS / NOISE_SCALE**2 @ covariance
    return means, covariance


def _exact_log_marginal(points):
    """log N(x; b, W W^T + sigma^2 I) in float64 NumPy, [n]."""
    covariance = WEIGHTS @ WEIGHTS.T + NOISE_SCALE**2 * np.eye(3)
    centred = points - BIAS
    _, log_det = np.linalg.slogdet(2 * np.pi * covariance)
    mahalanobis = np.einsum("ni,ij,nj->n", centred, np.linalg.inv(covariance), centred)
    return -0.5 * (log_det + mahalanobis)


def _wrong_posterior_moments(points):
    means, covariance = _posterior_moments(points)
    sds = np.sqrt(np.diag(covariance))
    return means + SHIFT_IN_SDS * sds, SCALE_FACTOR * sds * np.ones_like(means)


def _exact_elbo(points):
    """Closed-form ELBO of the wrong q: E_q[log p(x|z)] - KL(q || p(z)), [n]."""
    means, scales = _wrong_posterior_moments(points)
    residual = points - means @ WEIGHTS.T - BIAS
    expected_squared_error = (residual**2).sum(-1) + (scales**2) @ (WEIGHTS**2).sum(0)
    expected_log_likelihood = -1.5 * np.log(
        2 * np.pi * NOISE_SCALE**2
    ) - expected_squared_error / (2 * NOISE_SCALE**2)
    kl = 0.5 * (scales**2 + means**2 - 1 - np.log(scales**2)).sum(-1)
    return expected_log_likelihood - kl


class LinearGaussianModel:
    """The stub VAE described in the module docstring.

    Args:
        exact_posterior: encode returns the exact p(z|x) (a full-covariance
            Gaussian) if True, else the wrong diagonal q of `_wrong_posterior_moments`.

    It also counts, at run time, the latents its decoder is given: in total
    (`decoded_rows`) and in its largest single call (`largest_decode`).
    """

    image_shape = (3,)
    latent_dim = 2

    def __init__(self, exact_posterior):
        self.exact_posterior = exact_posterior
        self.decoded_rows = tf.Variable(0, dtype=tf.int32)
        self.largest_decode = tf.Variable(0, dtype=tf.int32)

    def prior(self):
        return tfd.MultivariateNormalDiag(loc=tf.zeros([2]), scale_diag=tf.ones([2]))

    def encode(self, images, *, is_training=False):
        del is_training
        _, covariance = _posterior_moments(POINTS)
        # The posterior mean is linear in x: (x - b) @ gain.
        gain = tf.constant(WEIGHTS / NOISE_SCALE**2 @ covariance, tf.float32)
        means = (images - BIAS.astype(np.float32)) @ gain
        if self.exact_posterior:
            return tfd.MultivariateNormalTriL(
                loc=means,
                scale_tril=tf.constant(np.linalg.cholesky(covariance), tf.float32),
            )
        sds = tf.constant(np.sqrt(np.diag(covariance)), tf.float32)
        return tfd.MultivariateNormalDiag(
            loc=means + SHIFT_IN_SDS * sds,
            scale_diag=SCALE_FACTOR * sds * tf.ones_like(means),
        )

    def decode(self, latents, *, is_training=False):
        del is_training
        num_rows = tf.shape(latents)[0]
        self.decoded_rows.assign_add(num_rows)
        self.largest_decode.assign(tf.maximum(self.largest_decode, num_rows))
        loc = latents @ tf.constant(WEIGHTS.T, tf.float32) + BIAS.astype(np.float32)
        return tfd.Independent(
            tfd.Normal(loc=loc, scale=NOISE_SCALE), reinterpreted_batch_ndims=1
        )


# Shared so that tests with the same shapes reuse one trace of the estimator.
EXACT_MODEL = LinearGaussianModel(exact_posterior=True)
WRONG_MODEL = LinearGaussianModel(exact_posterior=False)
REPEATED_POINTS = tf.constant(np.repeat(POINTS, REPEATS, axis=0), tf.float32)


def _per_point_estimates(model, *, num_samples, chunk_size, seeds):
    """Estimates for REPEATED_POINTS under every seed, grouped: [2, REPEATS * len(seeds)]."""
    estimates = [
        likelihood.importance_sampled_log_likelihood(
            model,
            REPEATED_POINTS,
            num_samples=num_samples,
            chunk_size=chunk_size,
            seed=seed,
        )
        .numpy()
        .reshape(2, REPEATS)
        for seed in seeds
    ]
    return np.concatenate(estimates, axis=1).astype(np.float64)


def _standard_error(estimates):
    return estimates.std(axis=-1) / np.sqrt(estimates.shape[-1])


class ImportanceSampledLogLikelihoodTest(tf.test.TestCase, parameterized.TestCase):
    def test_one_sample_is_an_unbiased_elbo_estimate(self):
        estimates = _per_point_estimates(
            WRONG_MODEL, num_samples=1, chunk_size=500, seeds=range(3)
        )
        elbo = _exact_elbo(POINTS)
        # The check has teeth: the ELBO is well below log p(x) for this q.
        self.assertAllGreater(_exact_log_marginal(POINTS) - elbo, 1.0)
        self.assertAllLess(
            np.abs(estimates.mean(-1) - elbo) - 4 * _standard_error(estimates), 0.0
        )

    def test_one_sample_matches_the_elbo_of_a_real_vae(self):
        tf.random.set_seed(0)  # Fixes the network's initial weights.
        model = models.VAE(
            models.ModelConfig(architecture="mlp", image_shape=(6,), hidden_units=(8,))
        )
        image = tf.constant([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0]])
        images = tf.repeat(image, 2000, axis=0)
        estimates = (
            likelihood.importance_sampled_log_likelihood(
                model, images, num_samples=1, seed=7
            )
            .numpy()
            .astype(np.float64)
        )
        # An independent ELBO estimate: sampled distortion plus the closed-form KL.
        posterior = model.encode(images)
        latents = posterior.sample(seed=tf.constant([11, 0]))
        elbo_draws = (
            (
                model.decode(latents).log_prob(images)
                - tfd.kl_divergence(posterior, model.prior())
            )
            .numpy()
            .astype(np.float64)
        )
        tolerance = 4 * np.hypot(_standard_error(estimates), _standard_error(elbo_draws))
        self.assertLess(abs(estimates.mean() - elbo_draws.mean()), tolerance)
        # And not the log-likelihood of the mean latent alone (a common slip).
        self.assertGreater(estimates.std(), 0.01)

    def test_estimate_grows_with_samples_towards_log_marginal(self):
        seeds = range(2)
        means, errors = [], []
        for num_samples, chunk_size in ((1, 500), (10, 500), (100, 500)):
            estimates = _per_point_estimates(
                WRONG_MODEL, num_samples=num_samples, chunk_size=chunk_size, seeds=seeds
            )
            means.append(estimates.mean(-1))
            errors.append(_standard_error(estimates))
        means, errors = np.array(means), np.array(errors)  # [3 values of k, 2 points]
        gaps = means[1:] - means[:-1]
        self.assertAllGreater(gaps - 4 * np.hypot(errors[1:], errors[:-1]), 0.0)
        # A lower bound in expectation: never clearly above the truth.
        self.assertAllLess(means[-1] - _exact_log_marginal(POINTS) - 4 * errors[-1], 0.0)

    def test_converges_to_exact_log_marginal(self):
        estimate = likelihood.importance_sampled_log_likelihood(
            WRONG_MODEL,
            POINTS.astype(np.float32),
            num_samples=50000,
            chunk_size=10000,
            seed=3,
        )
        self.assertEqual(estimate.dtype, tf.float32)
        self.assertEqual(estimate.shape, (2,))
        # Over seeds the estimate's standard deviation here is about 0.008 nats, so
        # this allows five of them; the ELBO is 1.4 nats lower.
        self.assertAllClose(estimate, _exact_log_marginal(POINTS), atol=0.04, rtol=0.0)

    @parameterized.named_parameters(
        ("one_sample", 1, 500),
        ("one_chunk", 10, 10),
        ("chunk_larger_than_k", 10, 500),
        ("chunks_with_remainder", 10, 3),
        ("single_sample_chunks", 10, 1),
        ("many_chunks", 64, 7),
    )
    def test_exact_posterior_gives_exact_log_marginal_for_every_k(
        self, num_samples, chunk_size
    ):
        # Every weight equals p(x) here, so any miscounted sample, missing term or
        # wrong normaliser shows up, whatever the random draws.
        estimate = likelihood.importance_sampled_log_likelihood(
            EXACT_MODEL,
            POINTS.astype(np.float32),
            num_samples=num_samples,
            chunk_size=chunk_size,
            seed=0,
        )
        self.assertAllClose(estimate, _exact_log_marginal(POINTS), atol=1e-4, rtol=0.0)

    def test_decoder_sees_at_most_one_chunk_and_every_sample_once(self):
        model = LinearGaussianModel(exact_posterior=True)
        for _ in range(2):  # The second call runs the same trace again.
            model.decoded_rows.assign(0)
            model.largest_decode.assign(0)
            likelihood.importance_sampled_log_likelihood(
                model, POINTS.astype(np.float32), num_samples=11, chunk_size=4, seed=1
            )
            self.assertEqual(int(model.decoded_rows.numpy()), 11 * 2)
            self.assertEqual(int(model.largest_decode.numpy()), 4 * 2)

    def test_chunks_draw_fresh_samples(self):
        # With 1-sample chunks, k = 16 must still average 16 distinct samples:
        # the same value as one chunk of 16, clearly above k = 1.
        seeds = range(2)
        chunked = _per_point_estimates(
            WRONG_MODEL, num_samples=16, chunk_size=1, seeds=seeds
        )
        one_chunk = _per_point_estimates(
            WRONG_MODEL, num_samples=16, chunk_size=16, seeds=seeds
        )
        single = _per_point_estimates(
            WRONG_MODEL, num_samples=1, chunk_size=500, seeds=seeds
        )
        tolerance = 4 * np.hypot(_standard_error(chunked), _standard_error(one_chunk))
        self.assertAllLess(np.abs(chunked.mean(-1) - one_chunk.mean(-1)) - tolerance, 0.0)
        self.assertAllGreater(chunked.mean(-1) - single.mean(-1), 0.1)
        # Chunks are not exact copies of one another within one call either.
        self.assertLess(chunked.std(-1).max(), 0.7 * single.std(-1).min())

    def test_same_seed_same_estimate_and_seed_forms_agree(self):
        def estimate(seed):
            return likelihood.importance_sampled_log_likelihood(
                WRONG_MODEL,
                POINTS.astype(np.float32),
                num_samples=10,
                chunk_size=4,
                seed=seed,
            ).numpy()

        first = estimate(5)
        self.assertAllEqual(first, estimate(5))
        self.assertAllEqual(first, estimate((5, 0)))
        self.assertAllEqual(first, estimate(tf.constant([5, 0], tf.int64)))
        self.assertNotAllClose(first, estimate(6))

    def test_conv_vae_with_k_not_a_multiple_of_chunk_size(self):
        config = models.ModelConfig(
            image_shape=(8, 8, 1),
            encoder_filters=(4,),
            encoder_strides=(2,),
            decoder_base_channels=4,
            decoder_filters=(4,),
            decoder_strides=(2,),
        )
        model = models.VAE(config)
        images = tf.cast(
            tf.random.stateless_uniform([3, 8, 8, 1], seed=[1, 2]) > 0.5, tf.float32
        )
        estimate = likelihood.importance_sampled_log_likelihood(
            model, images, num_samples=5, chunk_size=2, seed=0
        )
        self.assertEqual(estimate.dtype, tf.float32)
        self.assertEqual(estimate.shape, (3,))
        self.assertAllInRange(estimate, -1000.0, 0.0)  # Binary images: p(x) <= 1.

    @parameterized.named_parameters(
        ("zero_samples", dict(num_samples=0), "num_samples"),
        ("float_samples", dict(num_samples=2.5), "num_samples"),
        ("bool_samples", dict(num_samples=True), "num_samples"),
        ("zero_chunk", dict(chunk_size=0), "chunk_size"),
        ("no_seed", dict(seed=None), "seed"),
        ("float_seed", dict(seed=1.5), "seed"),
        ("seed_of_three", dict(seed=(1, 2, 3)), "seed"),
        ("huge_seed", dict(seed=2**40), "seed"),
        ("wrong_image_shape", dict(images=np.zeros([2, 4], np.float32)), "image_shape"),
    )
    def test_bad_arguments_are_named(self, overrides, named):
        arguments = dict(
            images=POINTS.astype(np.float32), num_samples=3, chunk_size=2, seed=0
        )
        arguments.update(overrides)
        images = arguments.pop("images")
        with self.assertRaisesRegex(ValueError, named):
            likelihood.importance_sampled_log_likelihood(WRONG_MODEL, images, **arguments)


if __name__ == "__main__":
    tf.test.main()
