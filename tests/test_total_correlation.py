"""Tests for trainers/total_correlation.py against sums written out by hand."""

import math

import numpy as np
import tensorflow as tf

from trainers import total_correlation as tc


def _log_normal(z, loc, log_variance):
    return (
        -0.5 * math.log(2 * math.pi)
        - 0.5 * log_variance
        - 0.5 * (z - loc) ** 2 / math.exp(log_variance)
    )


def _by_hand(z, loc, log_variance, n, estimator):
    """The estimators of the module docstring, one loop at a time."""
    m, d = z.shape
    out = {key: [] for key in ("log_qz_given_x", "log_qz", "log_prod_qzd", "log_pz")}
    for i in range(m):
        if estimator == "mws":
            weights = [1.0 / (n * m)] * m
        else:
            weights = [1.0 / n if j == i else (n - 1) / (n * (m - 1)) for j in range(m)]
        joint = sum(
            weights[j]
            * math.exp(
                sum(_log_normal(z[i, k], loc[j, k], log_variance[j, k]) for k in range(d))
            )
            for j in range(m)
        )
        product = sum(
            math.log(
                sum(
                    weights[j]
                    * math.exp(_log_normal(z[i, k], loc[j, k], log_variance[j, k]))
                    for j in range(m)
                )
            )
            for k in range(d)
        )
        out["log_qz"].append(math.log(joint))
        out["log_prod_qzd"].append(product)
        out["log_qz_given_x"].append(
            sum(_log_normal(z[i, k], loc[i, k], log_variance[i, k]) for k in range(d))
        )
        out["log_pz"].append(sum(_log_normal(z[i, k], 0.0, 0.0) for k in range(d)))
    return {key: np.array(value) for key, value in out.items()}


class TotalCorrelationTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.loc = rng.normal(size=(3, 2))
        self.log_variance = rng.normal(scale=0.5, size=(3, 2))
        self.z = self.loc + np.exp(0.5 * self.log_variance) * rng.normal(size=(3, 2))

    def test_matches_the_estimators_by_hand(self):
        for estimator in tc.ESTIMATORS:
            terms = tc.kl_decomposition(
                tf.constant(self.z, tf.float32),
                tf.constant(self.loc, tf.float32),
                tf.constant(self.log_variance, tf.float32),
                dataset_size=10,
                estimator=estimator,
            )
            expected = _by_hand(self.z, self.loc, self.log_variance, 10, estimator)
            for key, value in expected.items():
                self.assertAllClose(terms[key], value, atol=1e-5, msg=key)
            # The three terms add up to log q(z|x) - log p(z), the
            # single-sample KL estimate.
            self.assertAllClose(
                terms["mutual_information"]
                + terms["total_correlation"]
                + terms["dimension_kl"],
                expected["log_qz_given_x"] - expected["log_pz"],
                atol=1e-5,
            )

    def test_weights(self):
        mws = np.exp(tc.log_importance_weights(4, 100, "mws").numpy())
        self.assertAllClose(mws, np.full((4, 4), 1 / 400))
        mss = np.exp(tc.log_importance_weights(4, 100, "mss").numpy())
        self.assertAllClose(np.diag(mss), [0.01] * 4)
        self.assertAllClose(mss[0, 1], 99 / 300)
        # Each row is a mixture's weights: they sum to one.
        self.assertAllClose(mss.sum(axis=1), np.ones(4))
        with self.assertRaisesRegex(ValueError, "mws"):
            tc.log_importance_weights(4, 100, "exact")

    def test_collapsed_posterior_mss_is_exact_mws_is_biased(self):
        # Every q(z|x) is the prior: q(z) = p(z) and every term is 0. The
        # stratified weights sum to one per row, so MSS gets q(z_i) exactly;
        # MWS's weights sum to 1/N, so it puts log q(z_i) log N too low and
        # each of the D marginals too, a total correlation of (D - 1) log N.
        z = tf.random.stateless_normal([6, 4], [1, 2])
        zeros = tf.zeros_like(z)
        mss = tc.kl_decomposition(z, zeros, zeros, dataset_size=1000, estimator="mss")
        for key in ("mutual_information", "total_correlation", "dimension_kl"):
            self.assertAllClose(mss[key], np.zeros(6), atol=1e-5, msg=key)
        mws = tc.kl_decomposition(z, zeros, zeros, dataset_size=1000, estimator="mws")
        self.assertAllClose(
            mws["total_correlation"], np.full(6, 3 * math.log(1000)), rtol=1e-5
        )
        self.assertAllClose(
            mws["mutual_information"], np.full(6, math.log(1000)), rtol=1e-5
        )

    def test_independent_codes_have_small_total_correlation(self):
        # Codes with a factorised aggregate posterior (independent columns)
        # against codes that copy one column into the other.
        rng = np.random.default_rng(1)
        loc = rng.normal(size=(256, 2)).astype(np.float32)
        log_variance = np.full_like(loc, -4.0)
        z = loc
        independent = tc.kl_decomposition(
            z, loc, log_variance, dataset_size=256, estimator="mss"
        )
        correlated_loc = np.stack([loc[:, 0], loc[:, 0]], axis=1)
        correlated = tc.kl_decomposition(
            correlated_loc,
            correlated_loc,
            log_variance,
            dataset_size=256,
            estimator="mss",
        )
        self.assertLess(float(tf.reduce_mean(independent["total_correlation"])), 0.5)
        self.assertGreater(float(tf.reduce_mean(correlated["total_correlation"])), 1.5)

    def test_permute_dims_permutes_each_column_on_its_own(self):
        z = tf.reshape(tf.range(40, dtype=tf.float32), [20, 2])
        seed = tf.constant([3, 4])
        permuted = tc.permute_dims(z, seed).numpy()
        self.assertAllEqual(permuted, tc.permute_dims(z, seed).numpy())
        for column in range(2):
            self.assertAllEqual(np.sort(permuted[:, column]), z.numpy()[:, column])
        rows_of = (permuted - np.array([0, 1])) / 2
        self.assertFalse(np.array_equal(rows_of[:, 0], rows_of[:, 1]))
        self.assertFalse(np.array_equal(rows_of[:, 0], np.arange(20)))

    def test_discriminator_loss_by_hand(self):
        loss = tc.discriminator_loss(tf.constant([0.0, 2.0]), tf.constant([-1.0]))
        expected = 0.5 * (math.log(2) + math.log1p(math.exp(-2))) + math.log1p(
            math.exp(-1)
        )
        self.assertAllClose(loss, expected)


if __name__ == "__main__":
    tf.test.main()
