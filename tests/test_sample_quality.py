"""Tests for vae/sample_quality.py against closed forms and brute-force NumPy references."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vae import sample_quality

tfd = tfp.distributions


def _random_spd(rng, dim, *, rank=None):
    """A random symmetric positive semi-definite [dim, dim] matrix of the given rank."""
    factor = rng.normal(size=(dim, rank or dim))
    return factor @ factor.T / dim + (0.0 if rank else 0.1 * np.eye(dim))


def _brute_force_frechet(mean_a, covariance_a, mean_b, covariance_b):
    """Reference: a general (non-symmetric) eigen-decomposition of S_a S_b.

    Builds the principal square root V diag(sqrt(lambda)) V^-1 of the product
    itself, checks it squares back to the product, and takes its trace: a
    different route from the library's symmetric eigh of S_a^(1/2) S_b S_a^(1/2).
    """
    product = covariance_a @ covariance_b
    eigenvalues, eigenvectors = np.linalg.eig(product)
    roots = np.sqrt(eigenvalues.astype(np.complex128))
    square_root = (eigenvectors * roots) @ np.linalg.inv(eigenvectors)
    np.testing.assert_allclose(square_root @ square_root, product, atol=1e-8)
    trace_sqrt = np.trace(square_root)
    assert abs(trace_sqrt.imag) < 1e-8, trace_sqrt
    return float(
        np.sum((mean_a - mean_b) ** 2)
        + np.trace(covariance_a)
        + np.trace(covariance_b)
        - 2.0 * trace_sqrt.real
    )


class FrechetDistanceFromStatisticsTest(parameterized.TestCase, tf.test.TestCase):
    def test_one_dimensional_closed_form(self):
        # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
        distance = sample_quality.frechet_distance_from_statistics(
            [1.0], [[4.0]], [-2.0], [[9.0]]
        )
        self.assertAllClose(distance, 3.0**2 + (2.0 - 3.0) ** 2)

    def test_diagonal_closed_form(self):
        variances_a = np.array([0.5, 2.0, 9.0, 1e-3])
        variances_b = np.array([4.0, 2.0, 1.0, 1e-1])
        mean_a = np.array([0.0, 1.0, -1.0, 3.0])
        mean_b = np.array([2.0, 1.0, 0.5, 3.0])
        expected = np.sum((mean_a - mean_b) ** 2) + np.sum(
            (np.sqrt(variances_a) - np.sqrt(variances_b)) ** 2
        )
        distance = sample_quality.frechet_distance_from_statistics(
            mean_a, np.diag(variances_a), mean_b, np.diag(variances_b)
        )
        self.assertAllClose(distance, expected, rtol=1e-10)

    def test_rotated_diagonal_closed_form(self):
        # Covariances sharing eigenvectors: the cross term is sum sqrt(a_i b_i) in
        # any basis, so a rotation that makes them dense keeps the closed form.
        rng = np.random.default_rng(0)
        rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
        variances_a = np.array([0.1, 1.0, 2.0, 3.0, 5.0])
        variances_b = np.array([4.0, 0.2, 2.0, 0.5, 1.0])
        covariance_a = rotation @ np.diag(variances_a) @ rotation.T
        covariance_b = rotation @ np.diag(variances_b) @ rotation.T
        expected = np.sum((np.sqrt(variances_a) - np.sqrt(variances_b)) ** 2)
        distance = sample_quality.frechet_distance_from_statistics(
            np.zeros(5), covariance_a, np.zeros(5), covariance_b
        )
        self.assertAllClose(distance, expected, rtol=1e-9)

    @parameterized.parameters(2, 7, 32)
    def test_matches_brute_force_for_random_spd(self, dim):
        rng = np.random.default_rng(dim)
        for _ in range(3):
            mean_a, mean_b = rng.normal(size=dim), rng.normal(size=dim)
            covariance_a, covariance_b = _random_spd(rng, dim), _random_spd(rng, dim)
            expected = _brute_force_frechet(mean_a, covariance_a, mean_b, covariance_b)
            distance = sample_quality.frechet_distance_from_statistics(
                mean_a, covariance_a, mean_b, covariance_b
            )
            self.assertAllClose(distance, expected, rtol=1e-8, atol=1e-10)
            self.assertGreater(distance, 0.0)

    def test_matches_brute_force_when_covariances_are_singular(self):
        rng = np.random.default_rng(1)
        covariance_a = _random_spd(rng, 6, rank=2)
        covariance_b = _random_spd(rng, 6, rank=4)
        mean = rng.normal(size=6)
        distance = sample_quality.frechet_distance_from_statistics(
            mean, covariance_a, mean, covariance_b
        )
        # With S_a of rank 2, S_a S_b has at most two non-zero eigenvalues; the
        # brute-force reference is ill-conditioned here, so compare with the other
        # symmetric route, S_b^(1/2) S_a S_b^(1/2), which has the same spectrum.
        eigenvalues, eigenvectors = np.linalg.eigh(covariance_b)
        sqrt_b = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
        cross = np.sum(
            np.sqrt(np.clip(np.linalg.eigvalsh(sqrt_b @ covariance_a @ sqrt_b), 0, None))
        )
        expected = np.trace(covariance_a) + np.trace(covariance_b) - 2.0 * cross
        self.assertTrue(np.isfinite(distance))
        self.assertAllClose(distance, expected, rtol=1e-8, atol=1e-10)

    def test_identical_statistics_give_zero(self):
        rng = np.random.default_rng(2)
        covariance = _random_spd(rng, 16, rank=5)  # singular: sqrt(S)^2 needs care
        mean = rng.normal(size=16)
        distance = sample_quality.frechet_distance_from_statistics(
            mean, covariance, mean, covariance
        )
        self.assertBetween(distance, 0.0, 1e-10)

    def test_slightly_asymmetric_covariance_is_symmetrised(self):
        rng = np.random.default_rng(3)
        covariance_a, covariance_b = _random_spd(rng, 4), _random_spd(rng, 4)
        noise = np.triu(np.full((4, 4), 1e-7), k=1)
        exact = sample_quality.frechet_distance_from_statistics(
            np.zeros(4), covariance_a, np.zeros(4), covariance_b
        )
        noisy = sample_quality.frechet_distance_from_statistics(
            np.zeros(4), covariance_a + noise, np.zeros(4), covariance_b
        )
        self.assertAllClose(noisy, exact, atol=1e-6)

    @parameterized.named_parameters(
        ("mean_lengths", [0.0, 0.0], np.eye(2), [0.0], np.eye(2), "mean_b has shape"),
        (
            "covariance_shape",
            [0.0, 0.0],
            np.eye(3),
            [0.0, 0.0],
            np.eye(2),
            "covariance_a has shape",
        ),
        ("nan", [0.0, np.nan], np.eye(2), [0.0, 0.0], np.eye(2), "mean_a has 1 NaN"),
    )
    def test_bad_statistics_raise_clear_errors(
        self, mean_a, covariance_a, mean_b, covariance_b, message
    ):
        with self.assertRaisesRegex(ValueError, message):
            sample_quality.frechet_distance_from_statistics(
                mean_a, covariance_a, mean_b, covariance_b
            )


class FrechetDistanceTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(10)
        self.features_a = rng.normal(size=(200, 8)) @ rng.normal(size=(8, 8)) + 1.0
        self.features_b = rng.normal(size=(150, 8)) * rng.uniform(0.5, 2.0, size=8) - 0.5

    def test_statistics_are_mean_and_unbiased_covariance(self):
        mean, covariance = sample_quality.gaussian_statistics(self.features_a)
        self.assertAllClose(mean, self.features_a.mean(axis=0))
        self.assertAllClose(covariance, np.cov(self.features_a, rowvar=False, ddof=1))
        self.assertEqual(mean.dtype, np.float64)

    def test_matches_brute_force_on_sample_statistics(self):
        expected = _brute_force_frechet(
            self.features_a.mean(axis=0),
            np.cov(self.features_a, rowvar=False),
            self.features_b.mean(axis=0),
            np.cov(self.features_b, rowvar=False),
        )
        self.assertAllClose(
            sample_quality.frechet_distance(self.features_a, self.features_b),
            expected,
            rtol=1e-8,
        )

    def test_mean_term_only_for_a_shift(self):
        shift = np.arange(8, dtype=np.float64)
        distance = sample_quality.frechet_distance(
            self.features_a, self.features_a + shift
        )
        self.assertAllClose(distance, np.sum(shift**2), rtol=1e-8)

    def test_scaled_copy_has_closed_form(self):
        # Features c * x: S_b = c^2 S_a, so the trace term is (1 - c)^2 Tr(S_a).
        scale = 3.0
        distance = sample_quality.frechet_distance(
            self.features_a, scale * self.features_a
        )
        _, covariance = sample_quality.gaussian_statistics(self.features_a)
        mean = self.features_a.mean(axis=0)
        expected = (scale - 1.0) ** 2 * (np.sum(mean**2) + np.trace(covariance))
        self.assertAllClose(distance, expected, rtol=1e-8)

    def test_identical_sets_give_zero(self):
        self.assertBetween(
            sample_quality.frechet_distance(self.features_a, self.features_a), 0.0, 1e-9
        )

    def test_identical_sets_with_fewer_examples_than_features_give_zero(self):
        # 10 examples of 64 features: the covariance has rank 9, the FID-on-small-sets case.
        features = np.random.default_rng(11).normal(size=(10, 64)).astype(np.float32)
        distance = sample_quality.frechet_distance(features, features.copy())
        self.assertBetween(distance, 0.0, 1e-9)

    def test_symmetric(self):
        forward = sample_quality.frechet_distance(self.features_a, self.features_b)
        backward = sample_quality.frechet_distance(self.features_b, self.features_a)
        self.assertAllClose(forward, backward, rtol=1e-10)

    def test_invariant_to_row_permutations(self):
        rng = np.random.default_rng(12)
        original = sample_quality.frechet_distance(self.features_a, self.features_b)
        permuted = sample_quality.frechet_distance(
            rng.permutation(self.features_a), rng.permutation(self.features_b)
        )
        self.assertAllClose(permuted, original, rtol=1e-10)

    def test_invariant_to_a_common_rotation_and_translation(self):
        rng = np.random.default_rng(13)
        rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
        offset = rng.normal(size=8)
        original = sample_quality.frechet_distance(self.features_a, self.features_b)
        moved = sample_quality.frechet_distance(
            self.features_a @ rotation + offset, self.features_b @ rotation + offset
        )
        self.assertAllClose(moved, original, rtol=1e-8)

    def test_same_distribution_is_closer_than_a_different_one(self):
        rng = np.random.default_rng(14)
        reference = rng.normal(size=(2000, 4))
        same = sample_quality.frechet_distance(reference, rng.normal(size=(2000, 4)))
        wider = sample_quality.frechet_distance(
            reference, 1.5 * rng.normal(size=(2000, 4))
        )
        # Exact value for the wider set: 4 * (1.5 - 1)^2 = 1.
        self.assertLess(same, 0.05)
        self.assertAllClose(wider, 1.0, atol=0.15)

    def test_accepts_tensors_and_returns_python_float(self):
        distance = sample_quality.frechet_distance(
            tf.constant(self.features_a, tf.float32),
            tf.constant(self.features_b, tf.float32),
        )
        self.assertIsInstance(distance, float)
        self.assertAllClose(
            distance,
            sample_quality.frechet_distance(self.features_a, self.features_b),
            rtol=1e-4,
        )

    @parameterized.named_parameters(
        (
            "one_dimensional",
            np.zeros(5),
            np.zeros((5, 2)),
            "features_a has shape \\(5,\\)",
        ),
        ("one_row", np.zeros((1, 2)), np.zeros((5, 2)), "at least 2 examples"),
        (
            "feature_dims",
            np.zeros((5, 2)),
            np.zeros((5, 3)),
            "features_a has 2 features.*has 3",
        ),
        (
            "infinite",
            np.zeros((5, 2)),
            np.full((5, 2), np.inf),
            "features_b has 10 NaN or infinite",
        ),
        (
            "not_numbers",
            [["a", "b"], ["c", "d"]],
            np.zeros((5, 2)),
            "features_a could not be read",
        ),
    )
    def test_bad_features_raise_clear_errors(self, features_a, features_b, message):
        with self.assertRaisesRegex(ValueError, message):
            sample_quality.frechet_distance(features_a, features_b)


def _brute_force_classifier_score(probabilities):
    """Reference: loops over examples and classes, skipping zero terms."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    marginal = probabilities.mean(axis=0)
    total = 0.0
    for row in probabilities:
        total += sum(p * math.log(p / q) for p, q in zip(row, marginal) if p > 0)
    return math.exp(total / len(probabilities))


class ClassifierScoreTest(parameterized.TestCase, tf.test.TestCase):
    @parameterized.parameters(1, 3, 10)
    def test_identical_rows_score_one(self, num_classes):
        row = np.random.default_rng(num_classes).dirichlet(np.ones(num_classes))
        probabilities = np.tile(row, (7, 1))
        self.assertAllClose(
            sample_quality.classifier_score(probabilities), 1.0, rtol=1e-12
        )

    @parameterized.parameters(2, 5, 10)
    def test_one_hot_rows_spread_evenly_score_num_classes(self, num_classes):
        labels = np.repeat(np.arange(num_classes), 3)
        probabilities = np.eye(num_classes)[labels]
        self.assertAllClose(
            sample_quality.classifier_score(probabilities), num_classes, rtol=1e-12
        )

    def test_one_hot_rows_in_one_class_score_one(self):
        probabilities = np.zeros((6, 4))
        probabilities[:, 2] = 1.0
        self.assertAllClose(sample_quality.classifier_score(probabilities), 1.0)

    def test_hand_computed_value(self):
        # p(y) = [0.75, 0.25]; KL_1 = 0.5 log(4/3), KL_2 = log(4/3); mean = 0.75 log(4/3).
        probabilities = [[0.5, 0.5], [1.0, 0.0]]
        self.assertAllClose(
            sample_quality.classifier_score(probabilities),
            (4.0 / 3.0) ** 0.75,
            rtol=1e-12,
        )

    def test_matches_brute_force_for_random_probabilities(self):
        rng = np.random.default_rng(20)
        probabilities = rng.dirichlet(np.full(10, 0.3), size=50)
        probabilities[::7, :3] = 0.0  # exact zeros in some rows
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        score = sample_quality.classifier_score(probabilities)
        self.assertAllClose(
            score, _brute_force_classifier_score(probabilities), rtol=1e-10
        )
        self.assertBetween(score, 1.0, 10.0)

    def test_agrees_with_tfp_kl_divergence(self):
        rng = np.random.default_rng(21)
        probabilities = rng.dirichlet(np.ones(6), size=20)
        conditional = tfd.Categorical(probs=probabilities)
        marginal = tfd.Categorical(probs=probabilities.mean(axis=0))
        expected = np.exp(np.mean(tfd.kl_divergence(conditional, marginal)))
        self.assertAllClose(
            sample_quality.classifier_score(probabilities), expected, rtol=1e-6
        )

    def test_zeros_are_numerically_safe(self):
        probabilities = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
        with np.errstate(all="raise"):  # no log(0) or 0/0 warnings either
            score = sample_quality.classifier_score(probabilities)
        self.assertTrue(np.isfinite(score))
        self.assertAllClose(
            score, _brute_force_classifier_score(probabilities), rtol=1e-12
        )

    def test_float32_softmax_rows_are_accepted(self):
        logits = np.random.default_rng(22).normal(size=(16, 10)).astype(np.float32)
        probabilities = tf.nn.softmax(logits)
        score = sample_quality.classifier_score(probabilities)
        self.assertIsInstance(score, float)
        self.assertAllClose(
            score, _brute_force_classifier_score(probabilities.numpy()), rtol=1e-5
        )

    def test_rows_slightly_off_one_are_renormalised(self):
        # Low-precision softmax rows can sum to 1 +- a few 1e-4; the score must
        # be that of the normalised rows, not of scaled-up "probabilities".
        probabilities = np.random.default_rng(23).dirichlet(np.ones(5), size=12)
        scale = np.where(np.arange(12) % 2 == 0, 1.0009, 0.9991)[:, None]
        self.assertAllClose(
            sample_quality.classifier_score(probabilities * scale),
            sample_quality.classifier_score(probabilities),
            rtol=1e-12,
        )

    @parameterized.named_parameters(
        ("one_dimensional", [0.5, 0.5], "shape \\(2,\\)"),
        ("empty", np.zeros((0, 3)), "shape \\(0, 3\\)"),
        ("negative", [[1.5, -0.5]], "negative entries"),
        ("logits", [[2.0, 1.0], [0.3, 0.1]], "row 0 sums to 3"),
        ("nan", [[np.nan, 1.0]], "1 NaN or infinite"),
    )
    def test_bad_probabilities_raise_clear_errors(self, probabilities, message):
        with self.assertRaisesRegex(ValueError, message):
            sample_quality.classifier_score(probabilities)


class ConditionalAccuracyTest(parameterized.TestCase, tf.test.TestCase):
    def test_hand_computed_overall_and_per_label(self):
        target = [0, 0, 0, 1, 1, 2, 2, 2, 2]
        predicted = [0, 1, 0, 1, 1, 0, 2, 1, 0]
        result = sample_quality.conditional_accuracy(predicted, target, num_classes=4)
        self.assertAllClose(result["overall"], 5.0 / 9.0)
        self.assertAllClose(result["per_label"][:3], [2.0 / 3.0, 1.0, 1.0 / 4.0])
        self.assertIsNone(result["per_label"][3])  # no example targeted class 3
        self.assertEqual(result["per_label_count"], [3, 2, 4, 0])

    def test_matches_loop_reference(self):
        rng = np.random.default_rng(30)
        target = rng.integers(0, 10, size=500)
        predicted = np.where(rng.random(500) < 0.8, target, rng.integers(0, 10, size=500))
        result = sample_quality.conditional_accuracy(predicted, target, 10)
        for label in range(10):
            chosen = target == label
            self.assertAllClose(
                result["per_label"][label], np.mean(predicted[chosen] == label)
            )
        self.assertAllClose(result["overall"], np.mean(predicted == target))

    def test_types_are_plain_python_for_json(self):
        result = sample_quality.conditional_accuracy(
            tf.constant([1, 0], tf.int64), np.array([1, 1], np.int32), 2
        )
        self.assertIsInstance(result["overall"], float)
        self.assertIsNone(result["per_label"][0])
        self.assertIsInstance(result["per_label"][1], float)
        self.assertIsInstance(result["per_label_count"][1], int)
        self.assertAllClose(result["overall"], 0.5)

    def test_integral_floats_are_accepted(self):
        result = sample_quality.conditional_accuracy([1.0, 2.0], [1, 2], 3)
        self.assertEqual(result["overall"], 1.0)

    @parameterized.named_parameters(
        (
            "out_of_range",
            [0, 3],
            [0, 1],
            3,
            "predicted_labels contains label 3.*\\[0, 2\\]",
        ),
        ("negative_target", [0, 1], [0, -1], 3, "target_labels contains label -1"),
        ("lengths", [0, 1, 1], [0, 1], 3, "3 entries and target_labels has 2"),
        ("empty", [], [], 3, "empty"),
        (
            "two_dimensional",
            [[0, 1]],
            [[0, 1]],
            3,
            "predicted_labels has shape \\(1, 2\\)",
        ),
        ("fractional", [0.5, 1.0], [0, 1], 3, "non-integer"),
        ("num_classes", [0], [0], 0, "num_classes is 0"),
    )
    def test_bad_labels_raise_clear_errors(self, predicted, target, num_classes, message):
        with self.assertRaisesRegex(ValueError, message):
            sample_quality.conditional_accuracy(predicted, target, num_classes)


class ReconstructionErrorsTest(parameterized.TestCase, tf.test.TestCase):
    def test_hand_computed_values(self):
        images = np.array([[1.0, 0.0], [1.0, 0.5]])
        reconstructions = np.array([[0.5, 0.25], [1.0, 0.5]])
        result = sample_quality.reconstruction_errors(images, reconstructions)
        expected_bce = (math.log(2.0) - math.log(0.75) + 0.0 + math.log(2.0)) / 4.0
        self.assertAllClose(result["binary_cross_entropy"], expected_bce, atol=1e-6)
        self.assertAllClose(result["mean_squared_error"], (0.25 + 0.0625) / 4.0)

    def test_agrees_with_bernoulli_log_prob(self):
        rng = np.random.default_rng(40)
        images = (rng.random((4, 8, 8, 1)) > 0.5).astype(np.float32)
        reconstructions = rng.uniform(0.01, 0.99, size=(4, 8, 8, 1))
        expected = -np.mean(
            tfd.Bernoulli(probs=reconstructions, dtype=tf.float64).log_prob(images)
        )
        result = sample_quality.reconstruction_errors(images, reconstructions)
        self.assertAllClose(result["binary_cross_entropy"], expected, rtol=1e-10)
        self.assertAllClose(
            result["mean_squared_error"], np.mean((images - reconstructions) ** 2)
        )

    def test_certain_and_wrong_pixels_are_clipped_not_infinite(self):
        images = np.array([[1.0, 0.0]])
        reconstructions = np.array([[0.0, 1.0]])
        result = sample_quality.reconstruction_errors(images, reconstructions)
        self.assertAllClose(
            result["binary_cross_entropy"],
            -math.log(sample_quality.PROBABILITY_EPSILON),
            rtol=1e-6,
        )
        self.assertAllClose(result["mean_squared_error"], 1.0)

    def test_perfect_binary_reconstruction_is_near_zero(self):
        images = np.array([[[1.0, 0.0], [0.0, 1.0]]])
        result = sample_quality.reconstruction_errors(images, images)
        self.assertBetween(result["binary_cross_entropy"], 0.0, 1e-6)
        self.assertEqual(result["mean_squared_error"], 0.0)

    @parameterized.named_parameters(
        (
            "shapes",
            np.zeros((2, 3)),
            np.zeros((2, 4)),
            "images has shape \\(2, 3\\).*\\(2, 4\\)",
        ),
        (
            "uint8_scale",
            np.full((2, 2), 255.0),
            np.zeros((2, 2)),
            "images has values in \\[255",
        ),
        ("logits", np.zeros((2, 2)), np.full((2, 2), -3.0), "reconstructions has values"),
        ("empty", np.zeros((0, 2)), np.zeros((0, 2)), "at least one pixel"),
        ("nan", np.zeros((1, 2)), np.array([[np.nan, 0.0]]), "reconstructions has 1 NaN"),
    )
    def test_bad_inputs_raise_clear_errors(self, images, reconstructions, message):
        with self.assertRaisesRegex(ValueError, message):
            sample_quality.reconstruction_errors(images, reconstructions)


if __name__ == "__main__":
    tf.test.main()
