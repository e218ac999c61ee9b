"""The 2-D toy data: a noisy arc and a noisy circle, and distances to them.

The toy "disconnected manifold" of reference 000: points near two curves
that do not touch, an arc y = sin(x) for x in [-2.2, 2.2] (label 0) and the
circle of radius 0.5 around (1.5, -0.5) (label 1), each with Gaussian noise
of standard deviation 0.06 per coordinate. `vae.datasets.load_dataset(
"toy2d")` serves them like any other dataset; this module draws them, gives
the noise-free curves, and measures how far points lie from the curves.

Squared error alone cannot tell the experiment's two autoencoders apart
well: a reconstruction on the bridge between the curves and one on the wrong
side of the same curve may be equally far from the input. What the
experiment is about is whether reconstructions lie *on the data manifold*,
so its number is the distance from each reconstruction to the nearer of the
two noise-free curves (`manifold_distance_summary`). The data points
themselves are about 0.05 away; an autoencoder that projects onto the curves
scores close to 0, one whose reconstructions smear between them scores much
more.
"""

from __future__ import annotations

import math

import numpy as np

POINTS_PER_CURVE = 1000
NOISE_STD = 0.06
ARC_X_RANGE = (-2.2, 2.2)
CIRCLE_CENTER = (1.5, -0.5)
CIRCLE_RADIUS = 0.5
CURVE_NAMES = ("arc", "circle")

# The view every picture of the toy uses, whatever the points, so that
# pictures of different models line up.
VIEW_X = (-2.5, 2.5)
VIEW_Y = (-1.5, 1.5)

# A point farther than twice the noise from both curves counts as off the
# manifold: only about 1 in 20 noisy data points are that far, so such a
# reconstruction lies between the curves or across the circle rather than
# within the noise.
OFF_MANIFOLD_DISTANCE = 0.12

# Arc samples for the coarse nearest-point search; a golden-section refinement
# between neighbouring samples then makes the distance exact to ~1e-9.
_ARC_SEARCH_SAMPLES = 2201
_ARC_REFINE_STEPS = 48


def draw_points(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draws one split: `POINTS_PER_CURVE` noisy points on each curve.

    Args:
        rng: the generator the positions, the noise and the order come from.

    Returns:
        float32 `[2 * POINTS_PER_CURVE, 2]` points and int64 labels (0: arc,
        1: circle), in shuffled order so that any prefix (the first points
        plotted, say) mixes both curves.
    """
    n = POINTS_PER_CURVE
    arc_x = rng.uniform(*ARC_X_RANGE, size=n)
    arc = np.stack([arc_x, np.sin(arc_x)], axis=1)
    angles = rng.uniform(0.0, 2.0 * np.pi, size=n)
    circle = np.asarray(CIRCLE_CENTER) + CIRCLE_RADIUS * np.stack(
        [np.cos(angles), np.sin(angles)], axis=1
    )
    points = np.concatenate([arc, circle]) + rng.normal(0.0, NOISE_STD, size=(2 * n, 2))
    labels = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    order = rng.permutation(2 * n)
    return points[order].astype(np.float32), labels[order]


def true_curves(num_points: int) -> list[np.ndarray]:
    """The noise-free curves, for plotting.

    Args:
        num_points: points per curve (>= 2), evenly spaced along x for the
            arc and along the angle for the circle (first and last point
            coincide).

    Returns:
        [arc, circle], each float32 `[num_points, 2]`.
    """
    if not isinstance(num_points, (int, np.integer)) or num_points < 2:
        raise ValueError(f"num_points must be an integer >= 2; got {num_points!r}.")
    arc_x = np.linspace(*ARC_X_RANGE, num_points)
    arc = np.stack([arc_x, np.sin(arc_x)], axis=1)
    angles = np.linspace(0.0, 2.0 * np.pi, num_points)
    circle = np.asarray(CIRCLE_CENTER) + CIRCLE_RADIUS * np.stack(
        [np.cos(angles), np.sin(angles)], axis=1
    )
    return [arc.astype(np.float32), circle.astype(np.float32)]


def distance_to_manifold(points: np.ndarray) -> np.ndarray:
    """Euclidean distance from each point to the nearer of the two curves.

    The circle distance is exact (| |p - c| - r |). The arc distance comes
    from a dense sampling of the arc followed by a golden-section refinement
    between the neighbours of the nearest sample, accurate to about 1e-9.

    Args:
        points: float `[N, 2]`.

    Returns:
        float64 `[N]` distances.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f"distance_to_manifold expects points of shape [N, 2]; got "
            f"{list(points.shape)}."
        )
    circle_distance = np.abs(
        np.linalg.norm(points - np.asarray(CIRCLE_CENTER), axis=1) - CIRCLE_RADIUS
    )
    return np.minimum(circle_distance, _distance_to_arc(points))


def _distance_to_arc(points: np.ndarray) -> np.ndarray:
    """Distance from float64 `[N, 2]` points to the arc y = sin(x), x in range."""
    low, high = ARC_X_RANGE
    grid = np.linspace(low, high, _ARC_SEARCH_SAMPLES)
    spacing = grid[1] - grid[0]
    px, py = points[:, :1], points[:, 1:]

    def squared_distance(x):
        return (x - px[:, 0]) ** 2 + (np.sin(x) - py[:, 0]) ** 2

    # Coarse search in chunks, bounding memory at ~chunk x samples floats.
    nearest = np.empty(points.shape[0])
    chunk = 1024
    for start in range(0, points.shape[0], chunk):
        stop = start + chunk
        d2 = (px[start:stop] - grid) ** 2 + (py[start:stop] - np.sin(grid)) ** 2
        nearest[start:stop] = grid[np.argmin(d2, axis=1)]
    coarse = squared_distance(nearest)

    # Golden-section search for the minimum between the neighbouring samples.
    inverse_golden = (math.sqrt(5.0) - 1.0) / 2.0
    a = np.maximum(nearest - spacing, low)
    b = np.minimum(nearest + spacing, high)
    for _ in range(_ARC_REFINE_STEPS):
        c = b - inverse_golden * (b - a)
        d = a + inverse_golden * (b - a)
        keep_left = squared_distance(c) < squared_distance(d)
        b = np.where(keep_left, d, b)
        a = np.where(keep_left, a, c)
    refined = squared_distance(0.5 * (a + b))
    return np.sqrt(np.minimum(coarse, refined))


def manifold_distance_summary(points: np.ndarray) -> dict[str, float]:
    """Mean and median distance from points to the curves.

    Args:
        points: float `[n, 2]`, e.g. an autoencoder's reconstructions of the
            test points.

    Returns:
        "mean" and "median" of `distance_to_manifold`, and
        "fraction_off_manifold", the fraction of points farther than
        `OFF_MANIFOLD_DISTANCE`.
    """
    distances = distance_to_manifold(points)
    return {
        "mean": float(np.mean(distances)),
        "median": float(np.median(distances)),
        "fraction_off_manifold": float(np.mean(distances > OFF_MANIFOLD_DISTANCE)),
    }


def reconstruction_report(
    points: np.ndarray, reconstructions: np.ndarray
) -> dict[str, float]:
    """The experiment's numbers for one model.

    Args:
        points: float `[n, 2]` test points.
        reconstructions: float `[n, 2]` their reconstructions.

    Returns:
        test_mse (squared error averaged over coordinates and points), the
        mean and median distance from the reconstructions to the curves, and
        the fraction of reconstructions off the manifold (see
        `manifold_distance_summary`).
    """
    points = np.asarray(points, np.float64)
    reconstructions = np.asarray(reconstructions, np.float64)
    if points.shape != reconstructions.shape:
        raise ValueError(
            f"Got points of shape {list(points.shape)} but reconstructions of "
            f"shape {list(reconstructions.shape)}; expected one reconstruction "
            "per point."
        )
    distance = manifold_distance_summary(reconstructions)
    return {
        "test_mse": float(np.mean((points - reconstructions) ** 2)),
        "mean_distance_to_manifold": distance["mean"],
        "median_distance_to_manifold": distance["median"],
        "fraction_off_manifold": distance["fraction_off_manifold"],
    }
