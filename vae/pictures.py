"""Pictures of what a VAE has learnt: image grids, latent manifolds, latent scatter plots.

Everything here is plain NumPy on host arrays and returns `uint8` pictures that
`save_png` / `save_gif` write to disk, so the trainers can call these functions
from eager bookkeeping code without pulling a plotting library into the
project. The scatter plot draws its own axes, tick labels and legend with a
tiny built-in bitmap font, because the only dependencies allowed are NumPy,
imageio and the standard library.

Conventions shared by all functions:

* Image batches are `[num_images, height, width, channels]` floats in
  `[0, 1]` (values outside are clipped, NaN becomes 0) or `uint8`; `channels`
  is 1 (grayscale) or 3 (RGB). A `[num_images, height, width]` batch is read
  as grayscale.
* Grids are returned as `uint8`; grayscale grids are 2-D `[height, width]` so
  the PNG is written as a grayscale file, RGB grids are `[height, width, 3]`.
* Files are written atomically: to `path + ".tmp"` first, then moved over
  `path` with `os.replace`, so a crash never leaves a half-written picture.
"""

from __future__ import annotations

import math
import os
import statistics
from typing import Callable, Sequence

import imageio.v3 as iio
import numpy as np

from vae import atomic_files

__all__ = [
    "PALETTE",
    "to_uint8",
    "image_grid",
    "reconstruction_grid",
    "gaussian_quantile_grid",
    "latent_manifold",
    "latent_scatter",
    "save_png",
    "save_gif",
]

# Tableau's ten qualitative colours: distinguishable from each other, on white,
# and in the common forms of colour blindness better than a hue wheel.
PALETTE = np.array(
    [
        (31, 119, 180),   # blue
        (255, 127, 14),   # orange
        (44, 160, 44),    # green
        (214, 39, 40),    # red
        (148, 103, 189),  # purple
        (140, 86, 75),    # brown
        (227, 119, 194),  # pink
        (127, 127, 127),  # grey
        (188, 189, 34),   # olive
        (23, 190, 207),   # cyan
    ],
    dtype=np.uint8,
)

_WHITE = (255, 255, 255)
_FRAME_COLOUR = (60, 60, 60)
_TEXT_COLOUR = (30, 30, 30)
_GRID_LINE_COLOUR = (230, 230, 230)

# The smallest scatter canvas that still leaves room for tick labels, a legend
# and a plot area a reader can make something of.
_MIN_SCATTER_SIZE = 96

# A 7-pixel-high bitmap font: one string per row, '#' = ink. Glyphs may differ
# in width ('.' is narrow) so that numbers such as "0.5" do not look spaced out.
_GLYPHS = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "+": (".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
    ".": ("..", "..", "..", "..", "..", "##", "##"),
    "e": (".....", ".....", ".###.", "#...#", "#####", "#....", ".###."),
    " ": ("...", "...", "...", "...", "...", "...", "..."),
}
_GLYPH_HEIGHT = 7
_GLYPH_MASKS = {
    character: np.array([[pixel == "#" for pixel in row] for row in rows], dtype=bool)
    for character, rows in _GLYPHS.items()
}


# ----------------------------------------------------------------------------
# Image grids.
# ----------------------------------------------------------------------------


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Converts pictures with values in `[0, 1]` to `uint8` in `[0, 255]`.

    Args:
      images: Array of any shape. Floating-point (or boolean) values are
        clipped to `[0, 1]`, NaN becomes 0, and the result is rounded to the
        nearest of the 256 levels. A `uint8` array is returned unchanged (as a
        copy) because it is already in the target range.

    Returns:
      `uint8` array of the same shape.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.copy()
    values = np.nan_to_num(images.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_image_batch(images: np.ndarray, argument_name: str) -> np.ndarray:
    """Returns `images` as a `uint8` `[N, H, W, C]` batch with C in {1, 3}."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or min(array.shape[:3]) < 1:
        raise ValueError(
            f"`{argument_name}` has shape {array.shape}, but a non-empty batch of images "
            "shaped [num_images, height, width, channels] with 1 (grayscale) or 3 (RGB) "
            "channels, or [num_images, height, width] for grayscale, was expected."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(
            f"`{argument_name}` has dtype {array.dtype}, but numeric pixel values "
            "(floats in [0, 1] or uint8) were expected."
        )
    return to_uint8(array)


def _is_integer_at_least(value, minimum: int) -> bool:
    """True for a Python or NumPy integer (not a bool) that is at least `minimum`."""
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and value >= minimum
    )


def _check_grid_arguments(num_columns: int, padding: int, pad_value: float) -> None:
    if not _is_integer_at_least(num_columns, 1):
        raise ValueError(f"`num_columns` is {num_columns!r}, but a positive integer was expected.")
    if not _is_integer_at_least(padding, 0):
        raise ValueError(
            f"`padding` is {padding!r}, but a non-negative integer number of pixels was expected."
        )
    if not (isinstance(pad_value, (int, float, np.number)) and 0.0 <= float(pad_value) <= 1.0):
        raise ValueError(
            f"`pad_value` is {pad_value!r}, but a brightness in [0, 1] (0 black, 1 white) "
            "was expected."
        )


def image_grid(
    images: np.ndarray,
    num_columns: int,
    padding: int = 2,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tiles a batch of images into one picture, filling rows left to right.

    Image `i` lands in row `i // num_columns`, column `i % num_columns`. Every
    tile is surrounded by `padding` pixels of `pad_value`, including the outer
    border, so tile `(row, column)` starts at pixel
    `(padding + row * (height + padding), padding + column * (width + padding))`.
    Cells after the last image in the final row are filled with `pad_value`.
    `num_columns` larger than the number of images is reduced to it so a short
    batch does not produce a mostly empty picture.

    Args:
      images: `[num_images, height, width, channels]` floats in `[0, 1]` or
        `uint8`, channels 1 or 3 (`[num_images, height, width]` is grayscale).
      num_columns: Tiles per row, a positive integer.
      padding: Pixels between tiles and around the border.
      pad_value: Brightness of the padding in `[0, 1]`.

    Returns:
      `uint8` picture `[rows * (height + padding) + padding,
      columns * (width + padding) + padding]` for grayscale input, with a
      trailing axis of 3 for RGB input.

    Raises:
      ValueError: If the batch shape or an argument is not as described.
    """
    _check_grid_arguments(num_columns, padding, pad_value)
    tiles = _as_image_batch(images, "images")
    num_images, height, width, channels = tiles.shape
    num_columns = min(int(num_columns), num_images)
    num_rows = -(-num_images // num_columns)
    padding = int(padding)
    canvas = np.full(
        (
            num_rows * (height + padding) + padding,
            num_columns * (width + padding) + padding,
            channels,
        ),
        to_uint8(np.float64(pad_value)),
        dtype=np.uint8,
    )
    for index in range(num_images):
        row, column = divmod(index, num_columns)
        top = padding + row * (height + padding)
        left = padding + column * (width + padding)
        canvas[top : top + height, left : left + width] = tiles[index]
    return canvas[..., 0] if channels == 1 else canvas


def reconstruction_grid(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    num_columns: int,
    padding: int = 2,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tiles originals with each reconstruction directly below its original.

    The images are split into chunks of `num_columns`; each chunk becomes a
    row of originals followed by a row of their reconstructions, so original
    `i` is in grid row `2 * (i // num_columns)` and its reconstruction in the
    row after it, same column. A short final chunk leaves blank (`pad_value`)
    cells on the right of both its rows.

    Args:
      originals: `[num_images, height, width, channels]` in `[0, 1]` or uint8.
      reconstructions: Same shape as `originals`.
      num_columns: Images per row (reduced to `num_images` if larger).
      padding: Pixels between tiles and around the border.
      pad_value: Brightness of padding and blank cells in `[0, 1]`.

    Returns:
      `uint8` picture laid out as by `image_grid`: 2-D for grayscale,
      `[..., 3]` for RGB.

    Raises:
      ValueError: If the two batches differ in shape or an argument is bad.
    """
    _check_grid_arguments(num_columns, padding, pad_value)
    original_tiles = _as_image_batch(originals, "originals")
    reconstruction_tiles = _as_image_batch(reconstructions, "reconstructions")
    if original_tiles.shape != reconstruction_tiles.shape:
        raise ValueError(
            f"`originals` have shape {np.shape(originals)} but `reconstructions` have shape "
            f"{np.shape(reconstructions)}; one reconstruction per original, of the same image "
            "shape, was expected."
        )
    num_images = original_tiles.shape[0]
    num_columns = min(int(num_columns), num_images)
    num_chunks = -(-num_images // num_columns)
    interleaved = np.full(
        (2 * num_chunks * num_columns,) + original_tiles.shape[1:],
        to_uint8(np.float64(pad_value)),
        dtype=np.uint8,
    )
    for chunk in range(num_chunks):
        chunk_images = slice(chunk * num_columns, min((chunk + 1) * num_columns, num_images))
        count = chunk_images.stop - chunk_images.start
        first_original = 2 * chunk * num_columns
        first_reconstruction = first_original + num_columns
        interleaved[first_original : first_original + count] = original_tiles[chunk_images]
        interleaved[first_reconstruction : first_reconstruction + count] = (
            reconstruction_tiles[chunk_images]
        )
    return image_grid(interleaved, num_columns, padding=padding, pad_value=pad_value)


# ----------------------------------------------------------------------------
# Latent manifold.
# ----------------------------------------------------------------------------


def gaussian_quantile_grid(grid_size: int, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """Standard-normal quantiles at evenly spaced probabilities.

    Spacing the grid evenly in probability rather than in `z` puts as many
    grid points in each stretch of latent space as the prior puts mass there,
    which is why VAE manifold pictures traditionally use it (Kingma & Welling,
    2014, figure 4).

    Args:
      grid_size: Number of points, a positive integer.
      low: Probability of the first point, in `(0, 1)`.
      high: Probability of the last point, in `(low, 1)`.

    Returns:
      float64 `[grid_size]`: `inv_cdf(p)` for `p` in
      `linspace(low, high, grid_size)`, increasing. A one-point grid is the
      quantile of `(low + high) / 2` (0 for the default, symmetric bounds).

    Raises:
      ValueError: If `grid_size < 1` or not `0 < low < high < 1`.
    """
    if not _is_integer_at_least(grid_size, 1):
        raise ValueError(f"`grid_size` is {grid_size!r}, but a positive integer was expected.")
    if not 0.0 < low < high < 1.0:
        raise ValueError(
            f"The quantile bounds are low={low!r}, high={high!r}, but probabilities with "
            "0 < low < high < 1 were expected (the normal quantile is infinite at 0 and 1)."
        )
    if grid_size == 1:
        probabilities = [0.5 * (low + high)]
    else:
        probabilities = np.linspace(low, high, int(grid_size))
    standard_normal = statistics.NormalDist()
    return np.array([standard_normal.inv_cdf(float(p)) for p in probabilities], dtype=np.float64)


def _manifold_latents(latent_dim: int, grid_size: int, low: float, high: float) -> np.ndarray:
    """The `z` values `latent_manifold` decodes, in row-major grid order."""
    quantiles = gaussian_quantile_grid(grid_size, low, high)
    if latent_dim == 1:
        return quantiles[:, np.newaxis].astype(np.float32)
    latents = np.zeros((grid_size * grid_size, latent_dim), dtype=np.float32)
    # Row-major order: the first dimension changes fastest, along a row; the
    # second is constant along a row and decreases down the picture so that
    # larger values are at the top, as on a plot's y axis.
    latents[:, 0] = np.tile(quantiles, grid_size)
    latents[:, 1] = np.repeat(quantiles[::-1], grid_size)
    return latents


def latent_manifold(
    decode_fn: Callable[[np.ndarray], np.ndarray],
    latent_dim: int,
    image_shape: Sequence[int],
    grid_size: int = 20,
    *,
    low: float = 0.05,
    high: float = 0.95,
    padding: int = 0,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Decodes a grid of latent codes into one picture of the learnt manifold.

    The first latent dimension takes the values `gaussian_quantile_grid(
    grid_size, low, high)` along each row, left to right; the second takes the
    same values along each column, largest at the top; any further dimensions
    are held at 0 (the prior mean). With `latent_dim == 1` the picture is a
    single row over the first dimension. All `z` are decoded in one call.

    Args:
      decode_fn: Maps `z` float32 `[num_codes, latent_dim]` to images
        `[num_codes, *image_shape]` in `[0, 1]` (NumPy or an eager tensor),
        e.g. `lambda z: model.decode_mean(z).numpy()`.
      latent_dim: Size of the latent space, a positive integer.
      image_shape: `(height, width, channels)` with 1 or 3 channels, or
        `(height, width)`.
      grid_size: Points per latent dimension.
      low: Probability of the smallest grid value.
      high: Probability of the largest grid value.
      padding: Pixels between tiles (0 gives the classic seamless picture).
      pad_value: Brightness of the padding in `[0, 1]`.

    Returns:
      `uint8` picture of `grid_size x grid_size` tiles (`1 x grid_size` for a
      one-dimensional latent space); 2-D for grayscale, `[..., 3]` for RGB.

    Raises:
      ValueError: If `latent_dim` or `image_shape` is unusable, or
        `decode_fn` returns the wrong shape.
    """
    if not _is_integer_at_least(latent_dim, 1):
        raise ValueError(f"`latent_dim` is {latent_dim!r}, but a positive integer was expected.")
    image_shape = tuple(int(size) for size in image_shape)
    if (
        len(image_shape) not in (2, 3)
        or min(image_shape) < 1
        or (len(image_shape) == 3 and image_shape[2] not in (1, 3))
    ):
        raise ValueError(
            f"`image_shape` is {image_shape}, but a latent manifold picture needs images "
            "shaped (height, width) or (height, width, channels) with 1 or 3 channels, "
            "such as (28, 28, 1); two-dimensional point data such as toy2d has no "
            "picture to tile."
        )
    latents = _manifold_latents(int(latent_dim), int(grid_size), low, high)
    decoded = np.asarray(decode_fn(latents))
    expected_shape = (latents.shape[0],) + image_shape
    if decoded.shape != expected_shape:
        raise ValueError(
            f"`decode_fn` returned an array of shape {decoded.shape} for latent codes of "
            f"shape {latents.shape}, but shape {expected_shape} (one image of `image_shape` "
            "per code) was expected."
        )
    num_columns = int(grid_size)
    return image_grid(decoded, num_columns, padding=padding, pad_value=pad_value)


# ----------------------------------------------------------------------------
# Scatter plot with a built-in bitmap font.
# ----------------------------------------------------------------------------


def _text_mask(text: str, scale: int) -> np.ndarray:
    """Boolean ink mask `[7 * scale, text_width * scale]` for `text`."""
    columns = []
    for position, character in enumerate(text):
        if position:
            columns.append(np.zeros((_GLYPH_HEIGHT, 1), dtype=bool))
        columns.append(_GLYPH_MASKS.get(character, _GLYPH_MASKS[" "]))
    if not columns:
        return np.zeros((_GLYPH_HEIGHT * scale, 0), dtype=bool)
    mask = np.concatenate(columns, axis=1)
    return mask.repeat(scale, axis=0).repeat(scale, axis=1)


def _text_width(text: str, scale: int) -> int:
    return _text_mask(text, scale).shape[1]


def _paint_mask(canvas: np.ndarray, mask: np.ndarray, top: int, left: int, colour) -> None:
    """Paints `colour` where `mask` is set, with `mask`'s corner at (top, left), clipped."""
    height, width = mask.shape
    canvas_top, canvas_left = max(top, 0), max(left, 0)
    canvas_bottom = min(top + height, canvas.shape[0])
    canvas_right = min(left + width, canvas.shape[1])
    if canvas_bottom <= canvas_top or canvas_right <= canvas_left:
        return
    visible = mask[canvas_top - top : canvas_bottom - top, canvas_left - left : canvas_right - left]
    canvas[canvas_top:canvas_bottom, canvas_left:canvas_right][visible] = colour


def _paint_rectangle(canvas, top: int, left: int, bottom: int, right: int, colour) -> None:
    """Fills rows [top, bottom) and columns [left, right), clipped to the canvas."""
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, canvas.shape[0]), min(right, canvas.shape[1])
    if bottom > top and right > left:
        canvas[top:bottom, left:right] = colour


def _disc_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets of a filled disc; `r*r + r` rounds small discs nicely."""
    span = np.arange(-radius, radius + 1)
    row_offsets, column_offsets = np.meshgrid(span, span, indexing="ij")
    inside = row_offsets**2 + column_offsets**2 <= radius * radius + radius
    return row_offsets[inside], column_offsets[inside]


def _data_range(values: np.ndarray) -> tuple[float, float]:
    """An axis range holding all `values` with a 5% margin, never empty."""
    if values.size == 0:
        return -1.0, 1.0
    low, high = float(values.min()), float(values.max())
    span = high - low
    # A single point (or a constant coordinate) has no span to scale by; give
    # it a range around the value so it is drawn in the middle of the axis.
    if not span > max(abs(low), abs(high)) * 1e-9:
        half_width = max(1.0, 0.1 * abs(low))
        return low - half_width, high + half_width
    return low - 0.05 * span, high + 0.05 * span


def _nice_ticks(low: float, high: float, target_count: int = 5) -> tuple[np.ndarray, list[str]]:
    """Tick values at 1, 2 or 5 times a power of ten inside [low, high], with labels."""
    raw_step = (high - low) / target_count
    exponent = math.floor(math.log10(raw_step))
    fraction = raw_step / 10.0**exponent
    # Round to the nearest of 1, 2, 5, 10 (Heckbert, "Nice numbers for graph
    # labels", Graphics Gems, 1990): about `target_count` ticks, 3 to 8 always.
    if fraction < 1.5:
        multiple = 1.0
    elif fraction < 3.0:
        multiple = 2.0
    elif fraction < 7.0:
        multiple = 5.0
    else:
        multiple = 10.0
    step = multiple * 10.0**exponent
    # Integer tick indices avoid the drift of repeatedly adding `step`.
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    values = np.arange(first, last + 1, dtype=np.float64) * step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    labels = []
    for value in values:
        if decimals > 5 or largest >= 1e6:
            label = f"{value:.3g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
        else:
            label = f"{value:.{decimals}f}"
        if label.startswith("-") and float(label) == 0.0:
            label = label[1:]
        labels.append(label)
    return values, labels


def _check_scatter_inputs(points, labels, num_classes, size):
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2 or not np.issubdtype(points.dtype, np.number):
        raise ValueError(
            f"`points` has shape {points.shape} and dtype {points.dtype}, but numeric "
            "coordinates shaped [num_points, 2] were expected."
        )
    labels = np.asarray(labels)
    if labels.shape != (points.shape[0],):
        raise ValueError(
            f"`labels` has shape {labels.shape}, but one label per point, shape "
            f"({points.shape[0]},), was expected."
        )
    if not _is_integer_at_least(num_classes, 1):
        raise ValueError(f"`num_classes` is {num_classes!r}, but a positive integer was expected.")
    if labels.size and (
        not np.issubdtype(labels.dtype, np.number)
        or not np.all(np.isfinite(labels))
        or np.any(labels != np.round(labels))
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise ValueError(
            f"`labels` contain values outside the integers 0 .. {num_classes - 1} "
            f"(found {np.unique(labels)[:10].tolist()}...), but class indices below "
            f"`num_classes`={num_classes} were expected."
        )
    if not _is_integer_at_least(size, _MIN_SCATTER_SIZE):
        raise ValueError(
            f"`size` is {size!r}, but a picture size of at least {_MIN_SCATTER_SIZE} pixels "
            "was expected so the axes, labels and legend fit."
        )
    return points.astype(np.float64), labels.astype(np.int64), int(num_classes), int(size)


def latent_scatter(
    points: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    size: int = 512,
) -> np.ndarray:
    """Draws 2-D points as discs coloured by label, with axes and a legend.

    Colours come from `PALETTE` (label `k` gets `PALETTE[k % 10]`, so they
    repeat beyond ten classes). Points are drawn in the order given; where
    discs overlap the later point is on top. Points with a NaN or infinite
    coordinate are dropped. The axes span the finite points with a 5% margin
    (a range of +-1, or +-10%, around a single point or a constant
    coordinate), have ticks at round values with labels, and larger y is
    drawn higher. The legend on the right lists each class's colour and
    number (as many as fit, then "...").

    Args:
      points: `[num_points, 2]` coordinates, e.g. latent means `[batch, 2]`.
      labels: `[num_points]` integer class of each point, in
        `[0, num_classes)`.
      num_classes: Number of classes to show in the legend.
      size: Width and height of the picture in pixels (at least 96). The font,
        discs and tick marks scale with it (one font pixel per 256 pixels).

    Returns:
      `uint8` RGB picture `[size, size, 3]` on a white background.

    Raises:
      ValueError: If the shapes disagree, a label is out of range, or `size`
        is too small.
    """
    points, labels, num_classes, size = _check_scatter_inputs(points, labels, num_classes, size)
    finite = np.all(np.isfinite(points), axis=1)
    points, labels = points[finite], labels[finite]

    scale = max(1, size // 256)
    text_height = _GLYPH_HEIGHT * scale
    gap = 2 * scale
    tick_length = 3 * scale
    frame_width = max(1, scale // 2)
    point_radius = scale
    swatch_radius = 3 * scale

    x_range = _data_range(points[:, 0])
    y_range = _data_range(points[:, 1])
    x_ticks, x_tick_labels = _nice_ticks(*x_range)
    y_ticks, y_tick_labels = _nice_ticks(*y_range)

    # Legend entries: as many classes as fit beside the plot, else "...".
    entry_height = max(text_height, 2 * swatch_radius + 1) + 2 * scale
    class_names = [str(k) for k in range(num_classes)]
    legend_text_width = max(_text_width(name, scale) for name in class_names + ["..."])
    legend_width = 2 * swatch_radius + 1 + gap + legend_text_width
    widest_x_label = max((_text_width(label, scale) for label in x_tick_labels), default=0)
    widest_y_label = max((_text_width(label, scale) for label in y_tick_labels), default=0)

    # Plot area [top, bottom) x [left, right): margins leave room for tick
    # labels (half of the last x label hangs past the right edge) and legend.
    top = 3 * gap + text_height // 2
    left = 2 * gap + widest_y_label + tick_length + frame_width
    bottom = size - (gap + tick_length + gap + text_height + frame_width)
    legend_left = size - 2 * gap - legend_width
    right = legend_left - max(2 * gap, widest_x_label // 2 + gap) - frame_width
    if right - left < 16 or bottom - top < 16:
        raise ValueError(
            f"`size`={size} leaves no room for the plot once tick labels and a legend for "
            f"{num_classes} classes are drawn; a larger size was expected."
        )

    canvas = np.full((size, size, 3), _WHITE, dtype=np.uint8)

    def to_column(x):
        fraction = (np.asarray(x, dtype=np.float64) - x_range[0]) / (x_range[1] - x_range[0])
        return np.round(left + fraction * (right - left - 1)).astype(np.int64)

    def to_row(y):
        fraction = (np.asarray(y, dtype=np.float64) - y_range[0]) / (y_range[1] - y_range[0])
        return np.round(bottom - 1 - fraction * (bottom - top - 1)).astype(np.int64)

    # Grid lines first so everything else is drawn over them.
    for column in to_column(x_ticks):
        _paint_rectangle(canvas, top, column, bottom, column + 1, _GRID_LINE_COLOUR)
    for row in to_row(y_ticks):
        _paint_rectangle(canvas, row, left, row + 1, right, _GRID_LINE_COLOUR)

    # Points: record the index of the last point covering each pixel (ufunc.at
    # is exact for repeated pixels, unlike fancy assignment), then colour.
    if points.shape[0]:
        point_rows, point_columns = to_row(points[:, 1]), to_column(points[:, 0])
        topmost_point = np.full((size, size), -1, dtype=np.int64)
        order = np.arange(points.shape[0])
        for row_offset, column_offset in zip(*_disc_offsets(point_radius)):
            rows, columns = point_rows + row_offset, point_columns + column_offset
            inside = (rows >= top) & (rows < bottom) & (columns >= left) & (columns < right)
            np.maximum.at(topmost_point, (rows[inside], columns[inside]), order[inside])
        covered = topmost_point >= 0
        canvas[covered] = PALETTE[labels[topmost_point[covered]] % len(PALETTE)]

    # Frame just outside the plot area, then ticks and their labels.
    outer_left, outer_right = left - frame_width, right + frame_width
    _paint_rectangle(canvas, top - frame_width, outer_left, top, outer_right, _FRAME_COLOUR)
    _paint_rectangle(canvas, bottom, outer_left, bottom + frame_width, outer_right, _FRAME_COLOUR)
    _paint_rectangle(canvas, top, outer_left, bottom, left, _FRAME_COLOUR)
    _paint_rectangle(canvas, top, right, bottom, outer_right, _FRAME_COLOUR)

    label_top = bottom + frame_width + tick_length + gap
    previous_label_right = -(10**9)
    for column, label in zip(to_column(x_ticks), x_tick_labels):
        _paint_rectangle(
            canvas, bottom + frame_width, column, bottom + frame_width + tick_length, column + 1,
            _FRAME_COLOUR,
        )
        mask = _text_mask(label, scale)
        label_left = int(column) - mask.shape[1] // 2
        # Skip a label that would run into its neighbour rather than smear both.
        if label_left >= previous_label_right + gap:
            _paint_mask(canvas, mask, label_top, label_left, _TEXT_COLOUR)
            previous_label_right = label_left + mask.shape[1]
    previous_label_top = 10**9
    for row, label in zip(to_row(y_ticks), y_tick_labels):
        _paint_rectangle(
            canvas, row, left - frame_width - tick_length, row + 1, left - frame_width,
            _FRAME_COLOUR,
        )
        mask = _text_mask(label, scale)
        label_row = int(row) - text_height // 2
        if label_row + text_height + gap <= previous_label_top:
            label_left = left - frame_width - tick_length - gap - mask.shape[1]
            _paint_mask(canvas, mask, label_row, label_left, _TEXT_COLOUR)
            previous_label_top = label_row

    # Legend: a disc of each class's colour followed by its number.
    max_entries = max(1, (bottom - top) // entry_height)
    shown = class_names
    if len(class_names) > max_entries:
        shown = class_names[: max_entries - 1] + ["..."]
    swatch_rows, swatch_columns = _disc_offsets(swatch_radius)
    for entry, name in enumerate(shown):
        entry_top = top + entry * entry_height
        centre_row = entry_top + entry_height // 2
        text_left = legend_left + 2 * swatch_radius + 1 + gap
        if name != "...":
            colour = PALETTE[int(name) % len(PALETTE)]
            canvas[centre_row + swatch_rows, legend_left + swatch_radius + swatch_columns] = colour
        _paint_mask(
            canvas, _text_mask(name, scale), centre_row - text_height // 2, text_left, _TEXT_COLOUR
        )
    return canvas


# ----------------------------------------------------------------------------
# Files.
# ----------------------------------------------------------------------------


def _as_savable(image: np.ndarray, argument_name: str) -> np.ndarray:
    """`uint8` `[H, W]` or `[H, W, 3|4]`; floats in [0, 1] are converted, [H, W, 1] squeezed."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if (
        array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[-1] not in (3, 4))
        or min(array.shape[:2], default=0) < 1
        or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool)
    ):
        raise ValueError(
            f"`{argument_name}` has shape {array.shape} and dtype {array.dtype}, but a "
            "picture shaped [height, width] (grayscale) or [height, width, 3 or 4] "
            "(RGB/RGBA), uint8 or floats in [0, 1], was expected."
        )
    return to_uint8(array)


def save_png(path: str | os.PathLike, image_uint8: np.ndarray) -> None:
    """Writes a picture to a PNG file atomically, creating parent directories.

    Args:
      path: Destination file name.
      image_uint8: `uint8` `[height, width]` (grayscale), `[height, width, 1]`
        (written as grayscale) or `[height, width, 3 | 4]`. Floats in `[0, 1]`
        are converted with `to_uint8`.

    Raises:
      ValueError: If the picture has an unusable shape or dtype.
      OSError: If the file cannot be written; no partial file is left.
    """
    image = _as_savable(image_uint8, "image_uint8")
    atomic_files.write_atomically(
        path, lambda temporary_path: iio.imwrite(temporary_path, image, extension=".png")
    )


def save_gif(
    path: str | os.PathLike,
    frames: Sequence[np.ndarray],
    seconds_per_frame: float = 0.5,
) -> None:
    """Writes pictures as a looping animated GIF atomically.

    GIF stores at most 256 colours per frame, so photographs lose detail;
    grids of grayscale or few-colour pictures come through exactly. Identical
    consecutive frames may be merged into one longer frame by the encoder.

    Args:
      path: Destination file name.
      frames: Non-empty sequence of pictures of one shape, each as accepted by
        `save_png`.
      seconds_per_frame: How long each frame is shown, positive.

    Raises:
      ValueError: If there are no frames, they differ in shape, or the delay
        is not positive.
      OSError: If the file cannot be written; no partial file is left.
    """
    frames = [_as_savable(frame, f"frames[{index}]") for index, frame in enumerate(frames)]
    if not frames:
        raise ValueError("`frames` is empty, but at least one picture was expected for the GIF.")
    shapes = sorted({frame.shape for frame in frames})
    if len(shapes) > 1:
        raise ValueError(
            f"`frames` have different shapes {shapes}, but every frame of a GIF was expected "
            "to have the same shape."
        )
    if not (isinstance(seconds_per_frame, (int, float, np.number)) and seconds_per_frame > 0):
        raise ValueError(
            f"`seconds_per_frame` is {seconds_per_frame!r}, but a positive number of seconds "
            "was expected."
        )
    stacked = np.stack(frames)
    # The Pillow writer takes the delay in milliseconds; loop=0 loops forever.
    duration_ms = max(1, int(round(float(seconds_per_frame) * 1000)))
    atomic_files.write_atomically(
        path,
        lambda temporary_path: iio.imwrite(
            temporary_path, stacked, extension=".gif", duration=duration_ms, loop=0
        ),
    )
