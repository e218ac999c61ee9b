"""Tests for vae/toy2d.py: the toy data, its curves and distances to them."""

import math

import numpy as np
import tensorflow as tf

from vae import toy2d


class DataAndCurvesTest(tf.test.TestCase):
    def test_points_lie_near_their_curve(self):
        points, labels = toy2d.draw_points(np.random.default_rng(0))
        self.assertEqual(points.shape, (2000, 2))
        self.assertEqual(points.dtype, np.float32)
        self.assertAllEqual(np.bincount(labels), [1000, 1000])
        points = points.astype(np.float64)
        circle_gap = np.abs(np.linalg.norm(points - [1.5, -0.5], axis=1) - 0.5)
        arc_gap = np.abs(points[:, 1] - np.sin(points[:, 0]))
        # Noise std 0.06: 0.3 is five standard deviations.
        self.assertLess(np.max(circle_gap[labels == 1]), 0.3)
        self.assertLess(np.max(arc_gap[labels == 0]), 0.3 * math.sqrt(2))
        self.assertBetween(float(np.max(points[labels == 0, 0])), 2.0, 2.5)
        # Mean distance of isotropic noise to a curve is std * sqrt(2 / pi).
        distance = toy2d.distance_to_manifold(points)
        self.assertAllClose(np.mean(distance), 0.06 * math.sqrt(2 / math.pi), atol=0.006)

    def test_true_curves(self):
        arc, circle = toy2d.true_curves(101)
        self.assertEqual(arc.shape, (101, 2))
        self.assertEqual(circle.shape, (101, 2))
        self.assertAllClose(arc[[0, -1], 0], [-2.2, 2.2])
        self.assertAllClose(arc[:, 1], np.sin(arc[:, 0]), atol=1e-6)
        self.assertAllClose(
            np.linalg.norm(circle - [1.5, -0.5], axis=1), np.full(101, 0.5), atol=1e-6
        )

    def test_distance_is_zero_on_the_curves(self):
        # 333 points do not coincide with the search grid of the arc.
        points = np.concatenate(toy2d.true_curves(333))
        self.assertAllClose(toy2d.distance_to_manifold(points), np.zeros(666), atol=1e-6)

    def test_distance_of_known_off_curve_points(self):
        points = np.array(
            [
                [1.5, -0.5],  # circle centre: 0.5 from the circle, ~1.5 from the arc
                [2.3, -0.5],  # 0.3 outside the circle
                # 0.1 along the normal (-1, 1) / sqrt(2) of the arc at the origin,
                # where the arc has no curvature.
                [-0.1 / math.sqrt(2), 0.1 / math.sqrt(2)],
                [-3.0, 0.0],  # beyond the left end of the arc
                [0.0, 1.0],
            ]
        )
        # Reference for the last two: brute force over a very fine arc.
        fine_x = np.linspace(-2.2, 2.2, 2_000_001)
        brute = [np.min(np.hypot(fine_x - x, np.sin(fine_x) - y)) for x, y in points[3:]]
        self.assertAllClose(
            toy2d.distance_to_manifold(points), [0.5, 0.3, 0.1] + brute, atol=1e-6
        )

    def test_distance_rejects_bad_shape(self):
        with self.assertRaisesRegex(ValueError, r"\[N, 2\].*\[4, 3\]"):
            toy2d.distance_to_manifold(np.zeros((4, 3)))


class MeasurementTest(tf.test.TestCase):
    def test_points_on_the_curves_are_at_distance_zero(self):
        on_curves = np.concatenate(toy2d.true_curves(50))
        summary = toy2d.manifold_distance_summary(on_curves)
        self.assertAllClose([summary["mean"], summary["median"]], [0.0, 0.0], atol=1e-6)

    def test_known_distances(self):
        points = np.array(
            [
                [1.5, -0.5],  # circle centre: the radius, 0.5, from the circle
                [1.5, 0.2],  # 0.2 above the top of the circle
                [1.5, -0.5 - 0.8],  # 0.3 below its bottom
                [0.0, 0.0],  # on the arc
            ]
        )
        summary = toy2d.manifold_distance_summary(points)
        self.assertAllClose(summary["mean"], (0.5 + 0.2 + 0.3 + 0.0) / 4, atol=1e-6)
        self.assertAllClose(summary["median"], (0.2 + 0.3) / 2, atol=1e-6)
        # All but the point on the arc are beyond OFF_MANIFOLD_DISTANCE (0.12).
        self.assertAllClose(summary["fraction_off_manifold"], 3 / 4)

    def test_reconstruction_report(self):
        points = np.array([[0.0, 0.0], [1.5, 0.1]], np.float32)
        reconstructions = np.array([[0.0, 0.0], [1.5, 0.0]], np.float32)
        report = toy2d.reconstruction_report(points, reconstructions)
        self.assertEqual(
            set(report),
            {
                "test_mse",
                "mean_distance_to_manifold",
                "median_distance_to_manifold",
                "fraction_off_manifold",
            },
        )
        self.assertAllClose(report["test_mse"], 0.01 / 4, atol=1e-7)
        self.assertAllClose(report["mean_distance_to_manifold"], 0.0, atol=1e-6)
        with self.assertRaisesRegex(ValueError, "one reconstruction per point"):
            toy2d.reconstruction_report(points, reconstructions[:1])


if __name__ == "__main__":
    tf.test.main()
