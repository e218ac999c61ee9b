"""Figures with axes: latent scatter plots, training curves, the toy 2-D plots.

Each figure is built as a `matplotlib.figure.Figure` (`*_figure` functions,
whose axes, labels and legends tests can read) and turned into a `uint8` RGB
picture `[height, width, 3]` by `render`, which `vae.pictures.save_png`
writes and `tf.summary.image` shows. Rendering goes through the Agg canvas
directly, never through pyplot, so no global figure state is created and
nothing needs a display. Image grids (reconstructions, samples, manifolds,
traversals) have no axes and stay in `vae.pictures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from typing import Any

import matplotlib
from matplotlib import figure as figure_lib
from matplotlib import lines
from matplotlib import ticker
from matplotlib.backends import backend_agg
import numpy as np

from vae import toy2d

# Pixels per inch of every figure: sizes below are in pixels / DPI.
DPI = 100

# The splits of a metrics record, in the order their lines are drawn, and
# their colours: the same in every panel, so one legend reads for all.
SPLITS = ("train", "validation", "test")
_SPLIT_COLOURS = {"train": "tab:blue", "validation": "tab:green", "test": "tab:orange"}

# Quantities drawn first, in this order, and what their panels are titled;
# any other numeric key follows in sorted order, titled by its name.
_KNOWN_QUANTITIES = {
    "elbo": "ELBO (higher is better)",
    "reconstruction": "reconstruction: -log p(x|z)",
    "kl": "KL(q(z|x) || p(z))",
}
_PANEL_COLUMNS = 3

# Light versions of blue and orange for the toy's two classes of data points,
# so that the true curves and the reconstructions stand out on them.
_TOY2D_DATA_COLOURS = ("#a6c8e4", "#ffcd96")
_TOY2D_CURVE_COLOUR = "#282828"
_TOY2D_RECONSTRUCTION_COLOUR = "#d62728"


def render(figure: figure_lib.Figure) -> np.ndarray:
    """Draws `figure` with the Agg rasteriser.

    Args:
        figure: any matplotlib figure.

    Returns:
        uint8 RGB `[height, width, 3]`, height and width the figure's size in
        inches times its DPI.
    """
    canvas = backend_agg.FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _new_figure(width: int, height: int) -> figure_lib.Figure:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or value < 100:
            raise ValueError(
                f"{name}={value!r}; expected a figure size of at least 100 "
                "pixels, so that labels and a legend fit."
            )
    # Constrained layout keeps the size fixed and fits labels and legends
    # inside it: every epoch's picture has the same shape.
    return figure_lib.Figure(
        figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained"
    )


# ---------------------------------------------------------------------------
# Latent scatter plots.


def class_colours(num_classes: int) -> np.ndarray:
    """One RGBA colour per class, float `[num_classes, 4]`.

    Tableau's qualitative colours (distinguishable on white and in the common
    forms of colour blindness) for up to 20 classes; beyond, evenly spaced
    colours of a perceptually ordered map, since no qualitative set has that
    many distinct colours.
    """
    if num_classes <= 10:
        return matplotlib.colormaps["tab10"](np.arange(num_classes))
    if num_classes <= 20:
        return matplotlib.colormaps["tab20"](np.arange(num_classes))
    return matplotlib.colormaps["turbo"](np.linspace(0.0, 1.0, num_classes))


def _checked_scatter_inputs(points, labels, num_classes, class_names):
    points = np.asarray(points)
    if (
        points.ndim != 2
        or points.shape[1] != 2
        or not np.issubdtype(points.dtype, np.number)
    ):
        raise ValueError(
            f"points has shape {points.shape} and dtype {points.dtype}, but "
            "numeric coordinates shaped [num_points, 2] were expected."
        )
    labels = np.asarray(labels)
    if labels.shape != (points.shape[0],):
        raise ValueError(
            f"labels has shape {labels.shape}, but one label per point, shape "
            f"({points.shape[0]},), was expected."
        )
    if (
        not isinstance(num_classes, (int, np.integer))
        or isinstance(num_classes, bool)
        or num_classes < 1
    ):
        raise ValueError(
            f"num_classes is {num_classes!r}, but a positive integer was expected."
        )
    if labels.size and (
        not np.issubdtype(labels.dtype, np.number)
        or not np.all(np.isfinite(labels))
        or np.any(labels != np.round(labels))
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise ValueError(
            f"labels contain values outside the integers 0 .. {num_classes - 1} "
            f"(found {np.unique(labels)[:10].tolist()}), but class indices "
            f"below num_classes={num_classes} were expected."
        )
    if class_names and len(class_names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names for num_classes="
            f"{num_classes}; expected one name per class, or none."
        )
    finite = np.all(np.isfinite(points), axis=1)
    return (points[finite].astype(np.float64), labels[finite].astype(np.int64))


def latent_scatter_figure(
    points: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    class_names: Sequence[str] = (),
    title: str = "Posterior means of test images",
    width: int = 640,
    height: int = 512,
) -> figure_lib.Figure:
    """2-D latent codes as dots coloured by class, with a legend of the classes.

    Points are drawn in the order given (a later point covers an earlier
    one), whatever their class, so that no class hides the others
    wholesale. Points with a NaN or infinite coordinate are left out. The
    legend lists every class that has a point, by name.

    Args:
        points: `[num_points, 2]`, e.g. posterior means of the first two
            latent dimensions.
        labels: `[num_points]` integer class of each point in
            `[0, num_classes)`.
        num_classes: number of classes (fixes each class's colour, so that a
            class keeps its colour in every picture).
        class_names: the name of each class; default: the class number.
        title: the figure's title.
        width: picture width in pixels (at least 100).
        height: picture height in pixels (at least 100).

    Returns:
        The figure, with one axes.

    Raises:
        ValueError: if the shapes disagree, a label is out of range, the
            names do not match the classes, or the size is too small.
    """
    points, labels = _checked_scatter_inputs(points, labels, num_classes, class_names)
    figure = _new_figure(width, height)
    axes = figure.add_subplot()
    colours = class_colours(int(num_classes))
    axes.scatter(points[:, 0], points[:, 1], c=colours[labels], s=6, linewidths=0)
    axes.set_xlabel("latent dimension 1")
    axes.set_ylabel("latent dimension 2")
    axes.set_title(title)
    axes.grid(True, color="0.9")
    axes.set_axisbelow(True)
    present = np.unique(labels)
    if present.size:
        names = [class_names[label] if class_names else str(label) for label in present]
        handles = [
            lines.Line2D(
                [], [], linestyle="", marker="o", markersize=6, color=colours[label]
            )
            for label in present
        ]
        axes.legend(
            handles,
            names,
            title="class",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            fontsize="small",
            ncols=math.ceil(present.size / 20),
        )
    return figure


def latent_scatter(
    points: np.ndarray, labels: np.ndarray, num_classes: int, **options: Any
) -> np.ndarray:
    """`latent_scatter_figure(points, labels, num_classes, **options)`, rendered.

    Returns:
        uint8 RGB `[height, width, 3]`.
    """
    return render(latent_scatter_figure(points, labels, num_classes, **options))


# ---------------------------------------------------------------------------
# Training curves.


def _number_or_nan(value: Any) -> float | None:
    """A metric as a float (NaN for JSON's null), or None if not a number."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    return float(value)


def _is_finite_number(value: Any) -> bool:
    number = _number_or_nan(value)
    return number is not None and math.isfinite(number)


def curve_quantities(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The quantities a training-curve figure of `history` has panels for.

    Every key of any record's `SPLITS` entries that has a finite number in
    some record: the ELBO's terms first, the rest (a VAE-GAN's losses, an
    autoencoder's mse) sorted.
    """
    found = set()
    for record in history:
        for split in SPLITS:
            values = record.get(split)
            if isinstance(values, Mapping):
                found.update(
                    key for key, value in values.items() if _is_finite_number(value)
                )
    known = [key for key in _KNOWN_QUANTITIES if key in found]
    return known + sorted(found - set(known))


def training_curves_figure(
    history: Sequence[Mapping[str, Any]],
    *,
    title: str = "Training curves",
    panel_width: int = 360,
    panel_height: int = 270,
) -> figure_lib.Figure:
    """Per-epoch metrics: one panel per quantity, one line per split.

    Args:
        history: the per-epoch records of a run, as in metrics.json's
            "epochs": each has "epoch" (1-based) and a mapping of metric name
            to value for each split it was measured on ("train", "test",
            "validation"). Values that are not numbers are left out; a null
            (a metric that was not finite) leaves a gap.
        title: the figure's title.
        panel_width: width of one panel in pixels.
        panel_height: height of one panel in pixels.

    Returns:
        The figure: panels in rows of up to three, titled by quantity, with
        the epoch on the x axis and a legend of the splits.

    Raises:
        ValueError: if no record has a numeric metric.
    """
    quantities = curve_quantities(history)
    if not quantities:
        raise ValueError(
            f"None of the {len(history)} epoch records has a numeric metric "
            f"under {SPLITS}; expected records as in metrics.json's epochs."
        )
    records = sorted(history, key=lambda record: record["epoch"])
    columns = min(_PANEL_COLUMNS, len(quantities))
    rows = math.ceil(len(quantities) / columns)
    figure = _new_figure(columns * panel_width, rows * panel_height + 40)
    figure.suptitle(title)
    all_axes = figure.subplots(rows, columns, squeeze=False)
    for index, quantity in enumerate(quantities):
        axes = all_axes.flat[index]
        for split in SPLITS:
            epochs, values = [], []
            for record in records:
                value = record.get(split, {}).get(quantity, "absent")
                number = _number_or_nan(value)
                if number is not None:
                    epochs.append(record["epoch"])
                    values.append(number)
            if epochs:
                # Markers: a one-epoch run is one point, which a line
                # alone would not show.
                axes.plot(
                    epochs,
                    values,
                    marker="o",
                    markersize=3,
                    color=_SPLIT_COLOURS[split],
                    label=split,
                )
        axes.set_title(_KNOWN_QUANTITIES.get(quantity, quantity), fontsize="medium")
        axes.set_xlabel("epoch")
        axes.set_ylabel(quantity)
        # Whole epochs only, down to the single tick of a one-epoch run.
        axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))
        axes.grid(True, color="0.9")
        axes.legend(fontsize="small")
    for axes in all_axes.flat[len(quantities) :]:
        axes.set_visible(False)
    return figure


def training_curves(history: Sequence[Mapping[str, Any]], **options: Any) -> np.ndarray:
    """`training_curves_figure(history, **options)`, rendered.

    Returns:
        uint8 RGB `[height, width, 3]`.
    """
    return render(training_curves_figure(history, **options))


# ---------------------------------------------------------------------------
# The toy 2-D experiment.


def toy2d_figure(
    points: np.ndarray,
    labels: np.ndarray,
    reconstructions: Mapping[str, np.ndarray],
    *,
    title: str = "toy2d: test points, true curves and reconstructions",
    panel_width: int = 640,
    height: int = 460,
) -> figure_lib.Figure:
    """The toy data, its true curves and reconstructions, one panel per model.

    Every panel shows the same view, x in `toy2d.VIEW_X` and y in
    `toy2d.VIEW_Y` (anything outside is clipped), with equal scales on both
    axes, so that panels and pictures of different models line up. Layers,
    bottom to top: data points in light blue (label 0, the arc) and light
    orange (label 1, the circle), the noise-free curves in dark grey, the
    reconstructions in red.

    Args:
        points: float `[n, 2]` data points.
        labels: integer `[n]` their labels (0 or 1).
        reconstructions: panel title -> float `[m, 2]` that model's
            reconstructions, panels left to right in this order.
        title: the figure's title.
        panel_width: width of one panel in pixels.
        height: picture height in pixels.

    Returns:
        The figure, one axes per model.
    """
    points = np.asarray(points)
    labels = np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f"points has shape {list(points.shape)}; expected [num_points, 2]."
        )
    for name, value in reconstructions.items():
        if np.ndim(value) != 2 or np.shape(value)[1] != 2:
            raise ValueError(
                f"reconstructions[{name!r}] has shape {list(np.shape(value))};"
                " expected [num_points, 2]."
            )
    if labels.shape != (points.shape[0],) or (
        labels.size and (labels.min() < 0 or labels.max() > 1)
    ):
        raise ValueError(
            f"labels must be one toy2d label (0 or 1) per point, shape "
            f"[{points.shape[0]}]; got shape {list(labels.shape)}."
        )
    if not reconstructions:
        raise ValueError(
            "reconstructions is empty; expected at least one "
            "model's reconstructions to draw."
        )
    figure = _new_figure(panel_width * len(reconstructions), height)
    figure.suptitle(title)
    all_axes = figure.subplots(
        1, len(reconstructions), squeeze=False, sharex=True, sharey=True
    )[0]
    curves = toy2d.true_curves(1000)
    for axes, (panel_title, reconstructed) in zip(all_axes, reconstructions.items()):
        for label, curve_name in enumerate(toy2d.CURVE_NAMES):
            chosen = points[labels == label]
            axes.scatter(
                chosen[:, 0],
                chosen[:, 1],
                s=4,
                linewidths=0,
                color=_TOY2D_DATA_COLOURS[label],
                label=f"data: {curve_name} (label {label})",
            )
        for index, curve in enumerate(curves):
            axes.plot(
                curve[:, 0],
                curve[:, 1],
                color=_TOY2D_CURVE_COLOUR,
                linewidth=1.0,
                label="true curves" if index == 0 else None,
            )
        reconstructed = np.asarray(reconstructed)
        axes.scatter(
            reconstructed[:, 0],
            reconstructed[:, 1],
            s=6,
            linewidths=0,
            color=_TOY2D_RECONSTRUCTION_COLOUR,
            label="reconstructions",
        )
        axes.set_xlim(*toy2d.VIEW_X)
        axes.set_ylim(*toy2d.VIEW_Y)
        axes.set_aspect("equal")
        axes.set_title(panel_title, fontsize="medium")
        axes.set_xlabel("x")
        axes.set_ylabel("y")
        axes.legend(loc="upper left", fontsize="small", markerscale=2.0)
    return figure


def toy2d_picture(
    points: np.ndarray,
    labels: np.ndarray,
    reconstructions: Mapping[str, np.ndarray],
    **options: Any,
) -> np.ndarray:
    """`toy2d_figure(points, labels, reconstructions, **options)`, rendered.

    Returns:
        uint8 RGB `[height, width, 3]`.
    """
    return render(toy2d_figure(points, labels, reconstructions, **options))
