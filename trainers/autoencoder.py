"""The autoencoder trainer, and how the toy 2-D experiment is measured and drawn.

Training minimises the mean squared reconstruction error, as Keras's "mse"
loss does: the squared error averaged over the coordinates of each example,
then over the batch. A conditional autoencoder gets the batch's one-hot labels
("label_onehot"); an unconditional one gets none.

Squared error alone cannot tell the two autoencoders of the toy experiment
apart well: a reconstruction on the bridge between the two curves and one on
the wrong side of the same curve may be equally far from the input. What the
experiment is about is whether reconstructions lie *on the data manifold*, so
its number is the distance from each reconstruction of a test point to the
nearer of the two noise-free curves (`manifold_distance_summary`). The data
points themselves are about 0.05 away (Gaussian noise of standard deviation
0.06 in each coordinate); an autoencoder that projects onto the curves scores
close to 0, one whose reconstructions smear between them scores much more.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from trainers import base
from vae import autoencoder as autoencoder_lib
from vae import datasets
from vae import pictures

# The view of the toy data used for every picture, as in the reference plots,
# so that pictures of different models can be compared pixel for pixel.
TOY2D_VIEW_X = (-2.5, 2.5)
TOY2D_VIEW_Y = (-1.5, 1.5)

# Light versions of the palette's blue and orange for the two classes of data
# points, so that the true curves and the reconstructions stand out on them.
_DATA_COLOURS = np.array([(166, 200, 228), (255, 205, 150)], np.uint8)
_CURVE_COLOUR = np.array((40, 40, 40), np.uint8)
_RECONSTRUCTION_COLOUR = pictures.PALETTE[3]  # red
_FRAME_COLOUR = np.array((60, 60, 60), np.uint8)
_WHITE = np.array((255, 255, 255), np.uint8)

# A reconstruction farther than twice the toy data's noise (standard deviation
# 0.06 per coordinate) from both curves counts as off the manifold: only about
# 1 in 20 noisy data points are that far, so such a reconstruction lies
# between the curves or across the circle rather than within the noise.
OFF_MANIFOLD_DISTANCE = 0.12


def squared_error_per_example(points: tf.Tensor,
                              reconstructions: tf.Tensor) -> tf.Tensor:
    """Squared error averaged over each example's coordinates.

    Args:
        points: float32 `[batch, dim]`.
        reconstructions: float32 `[batch, dim]`.

    Returns:
        float32 `[batch]`; its batch mean is Keras's "mse" loss.
    """
    return tf.reduce_mean(tf.math.squared_difference(points, reconstructions),
                          axis=-1)


class AutoencoderTrainer(base.Trainer):
    """Trains an `Autoencoder` on mean squared reconstruction error.

    Args:
        model: the autoencoder; a conditional one is given each batch's
            "label_onehot".
        optimizer: updates all of `model.trainable_variables`.
        config: loop settings.
        data: batches with "image" `[batch, dim]` and "label_onehot"
            `[batch, num_classes]` entries (as `vae.datasets` gives them).
        hooks: epoch-end hooks.
        name: module name.
        strategy: see `base.Trainer`.
    """

    def __init__(self, model: autoencoder_lib.Autoencoder, optimizer: Any,
                 config: base.TrainerConfig, data: base.DataSource,
                 hooks: Sequence[base.Hook] = (),
                 name: Optional[str] = None,
                 strategy: Optional[tf.distribute.Strategy] = None):
        super().__init__(
            model=model,
            optimizers={"autoencoder": (optimizer, model.trainable_variables)},
            config=config, data=data, hooks=hooks, name=name,
            strategy=strategy)

    def train_step(self, batch: Mapping[str, tf.Tensor],
                   seed: tf.Tensor) -> base.Logs:
        del seed  # Deterministic: an autoencoder draws no noise.
        points = batch["image"]
        variables = self.optimized_variables["autoencoder"]
        with tf.GradientTape() as tape:
            reconstructions = self.model.reconstruct(points, datasets.conditioning_labels(self.model, batch))
            loss = tf.reduce_mean(
                squared_error_per_example(points, reconstructions))
        gradients = tape.gradient(loss, variables)
        self.optimizers["autoencoder"].apply_gradients(zip(gradients, variables))
        return {"mse": loss}

    def eval_step(self, batch: Mapping[str, tf.Tensor]) -> base.Logs:
        # The distance to the manifold is measured afterwards in NumPy
        # (`manifold_distance_summary`): it has no closed form for the arc.
        points = batch["image"]
        reconstructions = self.model.reconstruct(points, datasets.conditioning_labels(self.model, batch))
        return {"mse": squared_error_per_example(points, reconstructions)}


# ---------------------------------------------------------------------------
# Measuring the toy experiment.


def reconstruct_points(model: autoencoder_lib.Autoencoder, points: np.ndarray,
                       labels: np.ndarray) -> np.ndarray:
    """Reconstructions of `points`, with their labels for a conditional model.

    Args:
        model: the autoencoder.
        points: float `[n, dim]`.
        labels: integer `[n]` class indices (unused by an unconditional model).

    Returns:
        float32 `[n, dim]`.
    """
    label_onehot = None
    if model.is_conditional:
        label_onehot = tf.one_hot(np.asarray(labels), model.config.num_classes,
                                  dtype=tf.float32)
    return model.reconstruct(np.asarray(points, np.float32),
                             label_onehot).numpy()


def manifold_distance_summary(reconstructions: np.ndarray) -> dict[str, float]:
    """Mean and median distance from points to the true toy2d curves.

    Args:
        reconstructions: float `[n, 2]`, e.g. an autoencoder's reconstructions
            of the test points.

    Returns:
        "mean" and "median" of the Euclidean distance from each point to the
        nearer of the two noise-free curves, and "fraction_off_manifold", the
        fraction of points farther than `OFF_MANIFOLD_DISTANCE`.
    """
    distances = datasets.distance_to_toy2d_manifold(reconstructions)
    return {"mean": float(np.mean(distances)),
            "median": float(np.median(distances)),
            "fraction_off_manifold": float(
                np.mean(distances > OFF_MANIFOLD_DISTANCE))}


def reconstruction_report(points: np.ndarray,
                          reconstructions: np.ndarray) -> dict[str, float]:
    """The experiment's numbers for one model.

    Args:
        points: float `[n, 2]` test points.
        reconstructions: float `[n, 2]` their reconstructions.

    Returns:
        test_mse (squared error averaged over coordinates and points), the
        mean and median distance from the reconstructions to the true curves,
        and the fraction of reconstructions off the manifold (see
        `manifold_distance_summary`).
    """
    points = np.asarray(points, np.float64)
    reconstructions = np.asarray(reconstructions, np.float64)
    if points.shape != reconstructions.shape:
        raise ValueError(
            f"Got points of shape {list(points.shape)} but reconstructions of "
            f"shape {list(reconstructions.shape)}; expected one reconstruction "
            "per point.")
    distance = manifold_distance_summary(reconstructions)
    return {
        "test_mse": float(np.mean((points - reconstructions)**2)),
        "mean_distance_to_manifold": distance["mean"],
        "median_distance_to_manifold": distance["median"],
        "fraction_off_manifold": distance["fraction_off_manifold"],
    }


# ---------------------------------------------------------------------------
# Pictures of the toy experiment.


def _paint_points(canvas: np.ndarray, points: np.ndarray, colours: np.ndarray,
                  radius: int) -> None:
    """Paints a disc of `radius` pixels per point; points outside are clipped.

    `colours` is one RGB triple for all points or `[n, 3]`, one per point.
    """
    height, width = canvas.shape[:2]
    points = np.asarray(points, np.float64)
    finite = np.all(np.isfinite(points), axis=1)
    points = points[finite]
    colours = np.asarray(colours, np.uint8)
    if colours.ndim == 2:
        colours = colours[finite]
    # Larger y is drawn higher, as on a plot.
    columns = np.round((points[:, 0] - TOY2D_VIEW_X[0]) /
                       (TOY2D_VIEW_X[1] - TOY2D_VIEW_X[0]) * (width - 1))
    rows = np.round((TOY2D_VIEW_Y[1] - points[:, 1]) /
                    (TOY2D_VIEW_Y[1] - TOY2D_VIEW_Y[0]) * (height - 1))
    span = np.arange(-radius, radius + 1)
    for row_offset in span:
        for column_offset in span:
            # r*r + r rather than r*r keeps small discs round, not diamonds.
            if row_offset**2 + column_offset**2 > radius * radius + radius:
                continue
            disc_rows = (rows + row_offset).astype(np.int64)
            disc_columns = (columns + column_offset).astype(np.int64)
            inside = ((disc_rows >= 0) & (disc_rows < height) &
                      (disc_columns >= 0) & (disc_columns < width))
            selected = colours[inside] if colours.ndim == 2 else colours
            canvas[disc_rows[inside], disc_columns[inside]] = selected


def toy2d_reconstruction_picture(points: np.ndarray, labels: np.ndarray,
                                 reconstructions: np.ndarray, *,
                                 width: int = 640,
                                 height: int = 384) -> np.ndarray:
    """Draws data points, the true curves and reconstructions of the toy data.

    The view is x in [-2.5, 2.5], y in [-1.5, 1.5] (`TOY2D_VIEW_X`,
    `TOY2D_VIEW_Y`), whatever the points, so that pictures of different
    models line up; anything outside is clipped. Layers, bottom to top: data
    points in light blue (label 0, the arc) and light orange (label 1, the
    circle), the noise-free curves as dark grey lines, the reconstructions as
    red discs.

    Args:
        points: float `[n, 2]` data points.
        labels: integer `[n]` their labels (0 or 1).
        reconstructions: float `[m, 2]`.
        width: picture width in pixels (at least 16).
        height: picture height in pixels (at least 16).

    Returns:
        uint8 RGB `[height, width, 3]` on a white background, with a frame.
    """
    points = np.asarray(points)
    labels = np.asarray(labels)
    reconstructions = np.asarray(reconstructions)
    for name, value in (("points", points), ("reconstructions", reconstructions)):
        if value.ndim != 2 or value.shape[1] != 2:
            raise ValueError(f"{name} has shape {list(value.shape)}; expected "
                             "[num_points, 2].")
    if labels.shape != (points.shape[0],) or (
            labels.size and (labels.min() < 0 or labels.max() > 1)):
        raise ValueError(
            f"labels must be one toy2d label (0 or 1) per point, shape "
            f"[{points.shape[0]}]; got shape {list(labels.shape)}.")
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value < 16:
            raise ValueError(f"{name} must be an integer >= 16; got {value!r}.")

    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = _WHITE
    # Discs grow with the picture so that a large picture is not all speckle.
    scale = max(1, min(width, height) // 256)
    _paint_points(canvas, points, _DATA_COLOURS[labels.astype(np.int64)],
                  radius=scale)
    # Dense enough that neighbouring samples touch: a curve, not dots.
    for curve in datasets.toy2d_true_curves(4 * max(width, height)):
        _paint_points(canvas, curve, _CURVE_COLOUR, radius=scale // 2)
    _paint_points(canvas, reconstructions, _RECONSTRUCTION_COLOUR,
                  radius=scale + 1)
    canvas[[0, -1], :] = _FRAME_COLOUR
    canvas[:, [0, -1]] = _FRAME_COLOUR
    return canvas


def side_by_side(left: np.ndarray, right: np.ndarray,
                 gap: int = 8) -> np.ndarray:
    """Two RGB pictures of equal height next to each other, `gap` white columns apart."""
    if left.shape[0] != right.shape[0]:
        raise ValueError(f"Pictures of heights {left.shape[0]} and "
                         f"{right.shape[0]}; expected equal heights.")
    spacer = np.empty((left.shape[0], gap, 3), np.uint8)
    spacer[:] = _WHITE
    return np.concatenate([left, spacer, right], axis=1)
