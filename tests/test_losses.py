"""Tests for trainers/losses.py: each ELBO term checked against NumPy by hand."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from trainers import losses

tfd = tfp.distributions


def _gaussian_kl(loc_q, scale_q, loc_p, scale_p):
    """KL(N(loc_q, scale_q^2) || N(loc_p, scale_p^2)) summed over the last axis."""
    per_dim = (
        np.log(scale_p / scale_q)
        + (scale_q**2 + (loc_q - loc_p) ** 2) / (2.0 * scale_p**2)
        - 0.5
    )
    return per_dim.sum(axis=-1)


def _gaussian_log_density(x, loc, scale):
    """log N(x; loc, diag(scale^2)) summed over the last axis."""
    per_dim = -0.5 * np.log(2.0 * np.pi) - np.log(scale) - 0.5 * ((x - loc) / scale) ** 2
    return per_dim.sum(axis=-1)


def _log_sigmoid(logits):
    return -np.logaddexp(0.0, -logits)


# A posterior with batch 3 and latent_dim 2, far enough from the prior that a
# wrong sign or a missing term changes the KL by a lot.
POSTERIOR_LOC = np.array([[0.0, 0.0], [1.5, -0.5], [-2.0, 0.3]], np.float32)
POSTERIOR_SCALE = np.array([[1.0, 1.0], [0.5, 2.0], [0.1, 0.8]], np.float32)


def _posterior():
    return tfd.MultivariateNormalDiag(loc=POSTERIOR_LOC, scale_diag=POSTERIOR_SCALE)


def _standard_prior():
    return tfd.MultivariateNormalDiag(loc=tf.zeros([2]), scale_diag=tf.ones([2]))


class _StubVae:
    """A VAE whose distributions are fixed, so every term can be done by hand.

    q(z|x) is the fixed `POSTERIOR_*` Gaussian (whatever the images); p(x|z)
    is Bernoulli over 3 pixels with logits `z @ weights + bias`; p(z) is N(0, I).
    It records the z the decoder saw and the `is_training` it was given.
    """

    weights = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.5]], np.float32)
    bias = np.array([0.1, -0.2, 0.3], np.float32)

    def __init__(self):
        self.latent_dim = 2
        self.decoded_latents = []
        self.is_training_seen = []

    def prior(self):
        return _standard_prior()

    def encode(self, images, labels=None, *, is_training, seed=None):
        del images
        self.is_training_seen.append(is_training)
        return _posterior()

    def decode(self, z, labels=None, *, is_training, seed=None):
        self.is_training_seen.append(is_training)
        self.decoded_latents.append(np.asarray(z))
        logits = tf.matmul(z, self.weights) + self.bias
        return tfd.Independent(
            tfd.Bernoulli(logits=logits, dtype=tf.float32), reinterpreted_batch_ndims=1
        )


# Binary pixels and one grey level (the "none" binarisation gives those).
IMAGES = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.5, 1.0, 0.0]], np.float32)


class AnalyticKlTest(tf.test.TestCase):
    def test_equals_closed_form_against_standard_prior(self):
        kl = losses.analytic_kl(_posterior(), _standard_prior())
        self.assertEqual(kl.shape, (3,))
        expected = _gaussian_kl(POSTERIOR_LOC, POSTERIOR_SCALE, np.zeros(2), np.ones(2))
        self.assertAllClose(kl, expected, rtol=1e-5)
        # The posterior equal to the prior has zero KL.
        self.assertNear(float(kl[0]), 0.0, 1e-6)

    def test_equals_closed_form_against_non_standard_prior(self):
        prior_loc = np.array([0.5, -1.0], np.float32)
        prior_scale = np.array([2.0, 0.7], np.float32)
        prior = tfd.MultivariateNormalDiag(loc=prior_loc, scale_diag=prior_scale)
        kl = losses.analytic_kl(_posterior(), prior)
        expected = _gaussian_kl(POSTERIOR_LOC, POSTERIOR_SCALE, prior_loc, prior_scale)
        self.assertAllClose(kl, expected, rtol=1e-5)


class MonteCarloKlTest(tf.test.TestCase, parameterized.TestCase):
    def test_equals_log_density_difference_by_hand(self):
        latent = np.array([[0.3, -0.2], [1.0, 1.0], [-2.1, 0.0]], np.float32)
        estimate = losses.monte_carlo_kl(
            _posterior(), _standard_prior(), tf.constant(latent)
        )
        expected = _gaussian_log_density(
            latent, POSTERIOR_LOC, POSTERIOR_SCALE
        ) - _gaussian_log_density(latent, 0.0, 1.0)
        self.assertAllClose(estimate, expected, rtol=1e-5, atol=1e-5)

    def test_average_agrees_with_analytic_kl(self):
        num_samples = 20000
        posterior = _posterior()
        latent = posterior.sample(num_samples, seed=(7, 11))  # [n, 3, 2]
        estimates = losses.monte_carlo_kl(
            posterior, _standard_prior(), latent
        ).numpy()  # [n, 3]
        analytic = losses.analytic_kl(posterior, _standard_prior()).numpy()
        mean = estimates.mean(axis=0)
        standard_error = estimates.std(axis=0) / np.sqrt(num_samples)
        for index in range(3):
            self.assertLess(
                abs(mean[index] - analytic[index]),
                4.0 * standard_error[index] + 1e-6,
                msg=f"example {index}: MC mean {mean[index]}, "
                f"analytic {analytic[index]}, "
                f"standard error {standard_error[index]}",
            )
        # The estimate is noisy (it can be negative), unlike the closed form.
        self.assertGreater(estimates[:, 1].std(), 0.1)
        self.assertLess(estimates.min(), 0.0)

    @parameterized.parameters("analytic", "mc")
    def test_kl_divergence_dispatches_on_estimator(self, estimator):
        latent = tf.constant([[0.3, -0.2], [1.0, 1.0], [-2.1, 0.0]])
        result = losses.kl_divergence(_posterior(), _standard_prior(), latent, estimator)
        if estimator == "analytic":
            expected = losses.analytic_kl(_posterior(), _standard_prior())
        else:
            expected = losses.monte_carlo_kl(_posterior(), _standard_prior(), latent)
        self.assertAllClose(result, expected)

    def test_kl_divergence_rejects_unknown_estimator(self):
        with self.assertRaisesRegex(ValueError, r"'exact'.*analytic.*mc"):
            losses.kl_divergence(
                _posterior(), _standard_prior(), tf.zeros([3, 2]), "exact"
            )


class ElboTermsTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters("analytic", "mc")
    def test_terms_equal_hand_computation_at_sampled_latent(self, estimator):
        model = _StubVae()
        terms = losses.elbo_terms(
            model,
            tf.constant(IMAGES),
            kl_estimator=estimator,
            seed=tf.constant([3, 4]),
            is_training=True,
        )
        self.assertEqual(terms.distortion.shape, (3,))
        self.assertEqual(terms.rate.shape, (3,))
        self.assertEqual(model.is_training_seen, [True, True])
        (latent,) = model.decoded_latents
        self.assertEqual(latent.shape, (3, 2))

        logits = latent @ _StubVae.weights + _StubVae.bias
        log_likelihood = (
            IMAGES * _log_sigmoid(logits) + (1.0 - IMAGES) * _log_sigmoid(-logits)
        ).sum(-1)
        self.assertAllClose(terms.distortion, -log_likelihood, rtol=1e-5)

        if estimator == "analytic":
            expected_rate = _gaussian_kl(
                POSTERIOR_LOC, POSTERIOR_SCALE, np.zeros(2), np.ones(2)
            )
        else:
            expected_rate = _gaussian_log_density(
                latent, POSTERIOR_LOC, POSTERIOR_SCALE
            ) - _gaussian_log_density(latent, 0.0, 1.0)
        self.assertAllClose(terms.rate, expected_rate, rtol=1e-4, atol=1e-5)
        self.assertAllClose(
            terms.elbo, log_likelihood - expected_rate, rtol=1e-4, atol=1e-5
        )

    def test_sampled_latent_is_a_draw_from_the_posterior(self):
        model = _StubVae()
        for seed in range(200):
            losses.elbo_terms(
                model,
                tf.constant(IMAGES),
                kl_estimator="analytic",
                seed=tf.constant([seed, 1]),
                is_training=False,
            )
        self.assertEqual(set(model.is_training_seen), {False})
        latents = np.stack(model.decoded_latents)  # [200, 3, 2]
        # Standardised draws: mean 0 and std 1 within generous bounds.
        noise = (latents - POSTERIOR_LOC) / POSTERIOR_SCALE
        self.assertAllLess(np.abs(noise.mean(axis=0)), 0.35)
        self.assertAllInRange(noise.std(axis=0), 0.75, 1.25)

    def test_same_seed_same_latent_other_seed_other_latent(self):
        model = _StubVae()
        results = [
            losses.elbo_terms(
                model,
                tf.constant(IMAGES),
                kl_estimator="mc",
                seed=tf.constant(seed),
                is_training=True,
            )
            for seed in ([5, 6], [5, 6], [5, 7])
        ]
        first, again, other = model.decoded_latents
        self.assertAllEqual(first, again)
        self.assertAllEqual(results[0].distortion, results[1].distortion)
        self.assertAllEqual(results[0].rate, results[1].rate)
        self.assertNotAllClose(first, other)

    def test_standard_latent_noise_gives_the_seeds_own_sample(self):
        # The trainers pass noise drawn for the global batch; on one device
        # it must be the noise posterior.sample(seed) draws, so that runs
        # keep the numbers they had before noise was drawn per global batch.
        model = _StubVae()
        seed = tf.constant([5, 6])
        from_seed = losses.elbo_terms(
            model, tf.constant(IMAGES), kl_estimator="mc", seed=seed, is_training=True
        )
        from_noise = losses.elbo_terms(
            model,
            tf.constant(IMAGES),
            kl_estimator="mc",
            seed=seed,
            is_training=True,
            latent_noise=losses.standard_latent_noise(3, 2, seed),
        )
        first, second = model.decoded_latents
        self.assertAllEqual(first, second)
        self.assertAllEqual(from_seed.elbo, from_noise.elbo)
        other = losses.standard_latent_noise(3, 2, tf.constant([5, 7]))
        self.assertNotAllClose(other, losses.standard_latent_noise(3, 2, seed))

    def test_gradients_reach_the_posterior_parameters(self):
        # Reparameterisation: distortion depends on loc and scale through z.
        loc = tf.Variable(POSTERIOR_LOC)
        log_scale = tf.Variable(np.log(POSTERIOR_SCALE))

        class TrainableStub(_StubVae):
            def encode(self, images, labels=None, *, is_training, seed=None):
                del images, is_training
                return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.exp(log_scale))

        with tf.GradientTape() as tape:
            terms = losses.elbo_terms(
                TrainableStub(),
                tf.constant(IMAGES),
                kl_estimator="analytic",
                seed=tf.constant([1, 2]),
                is_training=True,
            )
            distortion = tf.reduce_sum(terms.distortion)
        gradients = tape.gradient(distortion, [loc, log_scale])
        for gradient in gradients:
            self.assertIsNotNone(gradient)
            self.assertGreater(float(tf.reduce_sum(tf.abs(gradient))), 0.0)


class WeightedNegativeElboTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters(0.0, 0.5, 1.0, 4.0)
    def test_mean_of_distortion_plus_weighted_rate(self, kl_weight):
        terms = losses.ElboTerms(
            distortion=tf.constant([10.0, 20.0, 30.0]), rate=tf.constant([1.0, 2.0, 6.0])
        )
        loss = losses.weighted_negative_elbo(terms, kl_weight)
        self.assertEqual(loss.shape, ())
        self.assertAllClose(loss, 20.0 + kl_weight * 3.0)
        # The ELBO itself never carries the weight.
        self.assertAllClose(terms.elbo, [-11.0, -22.0, -36.0])

    def test_accepts_tensor_weight(self):
        terms = losses.ElboTerms(
            distortion=tf.constant([1.0, 3.0]), rate=tf.constant([2.0, 4.0])
        )
        loss = losses.weighted_negative_elbo(terms, tf.constant(0.25))
        self.assertAllClose(loss, (1.0 + 0.5 + 3.0 + 1.0) / 2.0)


class LinearWarmupTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("start", 0, 0.0),
        ("quarter", 25, 0.5),
        ("half", 50, 1.0),
        ("end", 100, 2.0),
        ("beyond", 1000, 2.0),
    )
    def test_rises_linearly_then_stays(self, step, expected):
        value = losses.linear_warmup(
            tf.constant(step, tf.int64), final_value=2.0, warmup_steps=100
        )
        self.assertEqual(value.dtype, tf.float32)
        self.assertAllClose(value, expected)

    @parameterized.parameters(0, 7, 10**6)
    def test_no_warmup_gives_final_value_from_step_zero(self, step):
        value = losses.linear_warmup(
            tf.constant(step, tf.int64), final_value=0.3, warmup_steps=0
        )
        self.assertAllClose(value, 0.3)

    def test_follows_a_variable_inside_tf_function(self):
        step = tf.Variable(0, dtype=tf.int64)

        @tf.function
        def weight():
            return losses.linear_warmup(step, final_value=1.0, warmup_steps=4)

        values = []
        for _ in range(6):
            values.append(float(weight()))
            step.assign_add(1)
        self.assertAllClose(values, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0])


class VaeGanLossTest(tf.test.TestCase, parameterized.TestCase):
    """The VAE-GAN's terms against hand-computed values on tiny inputs."""

    def test_prior_kl_matches_the_gaussian_formula(self):
        loc = np.array([[0.5, -1.0], [0.0, 0.0]], np.float32)
        log_variance = np.array([[0.2, -0.4], [0.0, 0.0]], np.float32)
        expected = _gaussian_kl(
            loc, np.exp(0.5 * log_variance), np.zeros_like(loc), np.ones_like(loc)
        )
        self.assertAllClose(
            losses.prior_kl(loc, log_variance), expected, rtol=1e-6, atol=1e-6
        )
        self.assertAllClose(expected[1], 0.0)  # The prior itself: KL 0.

    def test_gaussian_feature_loss_is_half_the_squared_distance(self):
        real = np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1)
        reconstructed = real + np.array([1.0, 2.0], np.float32)[:, None, None, None]
        # Four features per example, off by 1 (first) and 2 (second).
        self.assertAllClose(
            losses.feature_reconstruction_loss(real, reconstructed, "gaussian"),
            [0.5 * 4 * 1.0, 0.5 * 4 * 4.0],
        )

    def test_sigmoid_cross_entropy_feature_loss_by_hand(self):
        real = np.array([[0.0, 2.0]], np.float32)
        reconstructed = np.array([[1.0, -1.0]], np.float32)
        target = 1.0 / (1.0 + np.exp(-real))
        expected = -(
            target * _log_sigmoid(reconstructed)
            + (1 - target) * _log_sigmoid(-reconstructed)
        ).sum(-1)
        self.assertAllClose(
            losses.feature_reconstruction_loss(
                real, reconstructed, "sigmoid_cross_entropy"
            ),
            expected,
            rtol=1e-6,
        )

    def test_feature_loss_passes_no_gradient_to_the_target(self):
        real = tf.Variable([[1.0, 2.0]])
        reconstructed = tf.Variable([[0.0, 0.0]])
        for form in losses.FEATURE_LOSSES:
            with tf.GradientTape() as tape:
                loss = losses.feature_reconstruction_loss(real, reconstructed, form)
            real_gradient, reconstructed_gradient = tape.gradient(
                loss, [real, reconstructed]
            )
            self.assertIsNone(real_gradient)
            self.assertGreater(float(tf.reduce_sum(tf.abs(reconstructed_gradient))), 0.0)

    def test_pixel_loss_is_the_bernoulli_negative_log_likelihood(self):
        images = tf.constant([[[0.0, 1.0], [0.25, 0.5]]])
        logits = tf.constant([[[2.0, -1.0], [0.0, 3.0]]])
        probabilities = 1.0 / (1.0 + np.exp(-logits.numpy()))
        expected = -np.sum(
            images.numpy() * np.log(probabilities)
            + (1.0 - images.numpy()) * np.log(1.0 - probabilities)
        )
        self.assertAllClose(
            losses.pixel_reconstruction_loss(images, logits), [expected], rtol=1e-5
        )

    def test_non_saturating_generator_loss_by_hand(self):
        reconstruction, prior = np.array([0.5, -2.0]), np.array([1.0, -30.0])
        # -(1 log D(x~) + 2 log D(x_p)) / (1 + 1 + 2), D = sigmoid.
        expected = (
            np.log1p(np.exp(-reconstruction)) + 2.0 * np.log1p(np.exp(-prior))
        ) / 4.0
        self.assertAllClose(
            losses.non_saturating_generator_loss(
                tf.constant(reconstruction, tf.float32), tf.constant(prior, tf.float32)
            ),
            expected,
            rtol=1e-5,
        )

    def test_non_saturating_loss_pulls_hardest_where_minimax_stalls(self):
        # A discriminator certain that the images are fake (logit -30):
        # -L_GAN's gradient all but vanishes, -log D's does not.
        logits = tf.Variable([-30.0])
        with tf.GradientTape(persistent=True) as tape:
            minimax = -losses.gan_loss(tf.zeros([1]), logits, logits)
            non_saturating = losses.non_saturating_generator_loss(logits, logits)
        self.assertLess(abs(float(tape.gradient(minimax, logits)[0])), 1e-9)
        self.assertAllClose(tape.gradient(non_saturating, logits), [-0.75], rtol=1e-5)

    def test_mean_feature_matching_by_hand(self):
        real = tf.constant([[[1.0, 2.0]], [[3.0, 4.0]]])  # Mean (2, 3).
        generated = tf.Variable([[[0.0, 0.0]], [[2.0, 2.0]], [[1.0, 1.0]]])
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([real, generated])
            loss = losses.mean_feature_matching_loss(real, generated)
        # Generated mean (1, 1): 0.5 * ((2 - 1)^2 + (3 - 1)^2).
        self.assertAllClose(loss, 2.5)
        real_gradient, generated_gradient = tape.gradient(loss, [real, generated])
        # The real features are the target: no gradient reaches them. Each
        # of the three generated rows gets (mean - target) / 3.
        self.assertIsNone(real_gradient)
        self.assertAllClose(
            generated_gradient, np.full([3, 1, 2], 1.0 / 3.0) * [[-1.0, -2.0]]
        )

    def test_unknown_feature_loss_is_refused(self):
        with self.assertRaisesRegex(ValueError, "pixels.*expected one of"):
            losses.feature_reconstruction_loss(
                tf.zeros([1, 2]), tf.zeros([1, 2]), "pixels"
            )

    def test_gan_loss_by_hand_with_the_reference_weights(self):
        real = np.array([2.0, -1.0], np.float32)
        reconstructed = np.array([0.5, 3.0], np.float32)
        prior = np.array([-2.0, 0.0], np.float32)
        sigmoid = lambda a: 1.0 / (1.0 + np.exp(-a))
        expected = (
            -(
                np.log(sigmoid(real))
                + np.log(1 - sigmoid(reconstructed))
                + 2 * np.log(1 - sigmoid(prior))
            )
            / 4
        )
        self.assertAllClose(
            losses.gan_loss(real, reconstructed, prior), expected, rtol=1e-6
        )
        # A discriminator that cannot tell: log 2 per image.
        self.assertAllClose(
            losses.gan_loss(np.zeros(3), np.zeros(3), np.zeros(3)), [np.log(2.0)] * 3
        )

    def test_gan_loss_weights(self):
        self.assertAllClose(
            losses.gan_loss([0.0], [30.0], [0.0], weights=(1.0, 0.0, 1.0)), [np.log(2.0)]
        )

    def test_saturated_logits_give_finite_losses_and_gradients(self):
        # log(sigmoid(a) + 1e-10) would cap these at 23 nats and pass no
        # gradient; the logit forms stay exact and finite.
        real = tf.Variable([-200.0, 200.0])
        reconstructed = tf.Variable([200.0, -200.0])
        prior = tf.Variable([200.0, -200.0])
        features = tf.Variable([[500.0, -500.0]])
        with tf.GradientTape() as tape:
            gan = losses.gan_loss(real, reconstructed, prior)
            feature_losses = [
                losses.feature_reconstruction_loss(-features, features, form)
                for form in losses.FEATURE_LOSSES
            ]
            # Pixels the decoder is certain of, wrongly.
            pixel = losses.pixel_reconstruction_loss(tf.constant([[0.0, 1.0]]), features)
            total = (
                tf.reduce_sum(gan)
                + tf.reduce_sum(pixel)
                + tf.add_n([tf.reduce_sum(value) for value in feature_losses])
            )
        gradients = tape.gradient(total, [real, reconstructed, prior, features])
        # The confidently wrong first example costs ~200 nats per term.
        self.assertAllClose(gan, [200.0, 0.0], atol=1e-3)
        self.assertTrue(np.isfinite(float(total)))
        for gradient in gradients:
            self.assertTrue(np.all(np.isfinite(gradient.numpy())))
        # Wrong and certain still pulls: slope -1/4 for the real term.
        self.assertAllClose(gradients[0], [-0.25, 0.0], atol=1e-6)


if __name__ == "__main__":
    tf.test.main()
