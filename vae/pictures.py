"""Pictures of what a VAE has learnt: image grids and latent manifolds.

Everything here is plain NumPy on host arrays and returns `uint8` pictures that
`save_png` / `save_gif` write to disk, so the trainers can call these functions
from eager bookkeeping code. Figures with axes (scatter plots, training
curves) are drawn by matplotlib in `vae.figures`.

Conventions shared by all functions:

* Image batches are `[num_images, height, width, channels]` floats in
  `[0, 1]` (values outside are clipped, NaN becomes 0) or `uint8`; `channels`
  is 1 (grayscale) or 3 (RGB). A `[num_images, height, width]` batch is read
  as grayscale.
* Grids are returned as `uint8`; grayscale grids are 2-D `[height, width]` so
  the PNG is written as a grayscale file, RGB grids are `[height, width, 3]`.
* Files are written atomically (`vae.atomic_files.write_atomically`), so a
  crash never leaves a half-written picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import os
import statistics

import imageio.v3 as iio
import numpy as np

from vae import atomic_files

__all__ = [
    "to_uint8",
    "image_grid",
    "reconstruction_grid",
    "gaussian_quantile_grid",
    "latent_manifold",
    "save_png",
    "save_gif",
]


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
        raise ValueError(
            f"`num_columns` is {num_columns!r}, but a positive integer was expected."
        )
    if not _is_integer_at_least(padding, 0):
        raise ValueError(
            f"`padding` is {padding!r}, but a non-negative integer number of pixels was expected."
        )
    if not (
        isinstance(pad_value, (int, float, np.number)) and 0.0 <= float(pad_value) <= 1.0
    ):
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
        chunk_images = slice(
            chunk * num_columns, min((chunk + 1) * num_columns, num_images)
        )
        count = chunk_images.stop - chunk_images.start
        first_original = 2 * chunk * num_columns
        first_reconstruction = first_original + num_columns
        interleaved[first_original : first_original + count] = original_tiles[
            chunk_images
        ]
        interleaved[first_reconstruction : first_reconstruction + count] = (
            reconstruction_tiles[chunk_images]
        )
    return image_grid(interleaved, num_columns, padding=padding, pad_value=pad_value)


# ----------------------------------------------------------------------------
# Latent manifold.
# ----------------------------------------------------------------------------


def gaussian_quantile_grid(
    grid_size: int, low: float = 0.05, high: float = 0.95
) -> np.ndarray:
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
        raise ValueError(
            f"`grid_size` is {grid_size!r}, but a positive integer was expected."
        )
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
    return np.array(
        [standard_normal.inv_cdf(float(p)) for p in probabilities], dtype=np.float64
    )


def _manifold_latents(
    latent_dim: int, grid_size: int, low: float, high: float
) -> np.ndarray:
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
        raise ValueError(
            f"`latent_dim` is {latent_dim!r}, but a positive integer was expected."
        )
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
    frames = [
        _as_savable(frame, f"frames[{index}]") for index, frame in enumerate(frames)
    ]
    if not frames:
        raise ValueError(
            "`frames` is empty, but at least one picture was expected for the GIF."
        )
    shapes = sorted({frame.shape for frame in frames})
    if len(shapes) > 1:
        raise ValueError(
            f"`frames` have different shapes {shapes}, but every frame of a GIF was expected "
            "to have the same shape."
        )
    if not (
        isinstance(seconds_per_frame, (int, float, np.number)) and seconds_per_frame > 0
    ):
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
