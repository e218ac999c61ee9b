"""Generating images with a trained (conditional) VAE, and reading user images.

Two operations, both returning picture grids ready for `vae.pictures.save_png`:

* `sample_grid`: prior draws decoded with chosen labels, one column per label;
  row r uses the same z in every column, so a row shows one style across the
  labels.
* `style_transfer_grid`: user images encoded (with their own labels) to their
  posterior means, which carry the style, and decoded with each target label:
  one row per source image, its original first.

`load_image` turns a PNG (or any format imageio reads) into the model's input:
grayscale intensities in [0, 1] with MNIST's polarity (a white digit on black),
or RGB intensities in [0, 1] for a colour model.
"""

from __future__ import annotations

from collections.abc import Sequence

import imageio.v2 as imageio
import numpy as np
import tensorflow as tf

from vae import models
from vae import pictures

INVERT_CHOICES = ("auto", "true", "false")


class ImageError(ValueError):
    """A user-supplied image cannot be used; the message names the file."""


def _to_grayscale(image: np.ndarray) -> np.ndarray:
    """[h, w], [h, w, 1], [h, w, 3] or [h, w, 4] -> float [h, w] in [0, 1].

    Transparent pixels of an RGBA image count as background (white), as they
    look in an image viewer.
    """
    if np.issubdtype(image.dtype, np.integer):
        image = image.astype(np.float64) / np.iinfo(image.dtype).max
    image = image.astype(np.float64)
    if image.ndim == 2:
        return image
    if image.shape[-1] == 4:
        alpha = image[..., 3:]
        image = image[..., :3] * alpha + (1.0 - alpha)
    if image.shape[-1] == 3:
        # ITU-R 601 luma, the weights most image libraries use.
        return image @ np.array([0.299, 0.587, 0.114])
    return image[..., 0]


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """[h, w], [h, w, 1], [h, w, 3] or [h, w, 4] -> float [h, w, 3] in [0, 1];
    transparent pixels become white, as for `_to_grayscale`."""
    if np.issubdtype(image.dtype, np.integer):
        image = image.astype(np.float64) / np.iinfo(image.dtype).max
    image = image.astype(np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 4:
        alpha = image[..., 3:]
        image = image[..., :3] * alpha + (1.0 - alpha)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def load_image(
    path: str, image_shape: Sequence[int], *, resize: bool = False, invert: str = "auto"
) -> np.ndarray:
    """Reads one image as the model's input, `[*image_shape]` float32 in [0, 1].

    Args:
      path: the image file.
      image_shape: `(height, width, 1)` or `(height, width, 3)`, the model's
        input shape.
      resize: when False, anything but a `height x width` image with the
        model's channels (one, or three: RGB) is refused; when True, colour is
        converted to gray (or gray to RGB) and the size is changed (bilinear,
        with antialiasing) to `height x width`.
      invert: "true" or "false", or "auto": for a gray model, invert when the
        border is brighter than the middle, i.e. a dark digit on a light
        background, since the models learnt white digits on black; a colour
        image is never inverted by "auto".

    Raises:
      ImageError: the file is missing, not an image, or (without `resize`)
        not the expected size or channels; the model's channels are neither
        1 nor 3; `invert` is unknown.
    """
    if invert not in INVERT_CHOICES:
        raise ImageError(f"invert must be one of {INVERT_CHOICES}, got {invert!r}.")
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise ImageError(
            f"Only gray (1-channel) and RGB (3-channel) models "
            f"are supported here; the model takes images of "
            f"shape {tuple(image_shape)}."
        )
    kind = "grayscale" if channels == 1 else "RGB"
    raw = _read_picture(
        path,
        f"a PNG of a {height}x{width} grayscale digit"
        if channels == 1
        else f"a {height}x{width} RGB image",
    )
    raw_channels = 1 if raw.ndim == 2 else raw.shape[-1]
    if not resize and (raw.shape[:2] != (height, width) or raw_channels != channels):
        raise ImageError(
            f"{path} is {raw.shape[1]}x{raw.shape[0]} with {raw_channels} "
            f"channel(s); the model expects {width}x{height} {kind} images. "
            f"Pass --resize to convert it (to "
            f"{'gray' if channels == 1 else 'RGB'}, and to that size)."
        )
    pixels = _to_grayscale(raw)[..., None] if channels == 1 else _to_rgb(raw)
    if pixels.shape[:2] != (height, width):
        pixels = tf.image.resize(
            pixels, (height, width), method="bilinear", antialias=True
        ).numpy()
    pixels = np.clip(pixels, 0.0, 1.0)
    # "auto" inverts a dark digit on a light background; colour images are
    # taken as they are.
    if invert == "true" or (
        invert == "auto" and channels == 1 and _looks_dark_on_light(pixels[..., 0])
    ):
        pixels = 1.0 - pixels
    return pixels.astype(np.float32)


def _read_picture(path: str, expected: str) -> np.ndarray:
    """The pixels of one picture file, `[h, w]` or `[h, w, 1|3|4]`, or an
    `ImageError` naming the file and `expected` (what the model takes)."""
    try:
        raw = np.asarray(imageio.imread(path))
    except FileNotFoundError:
        raise ImageError(f"The image {path} does not exist.") from None
    except Exception as error:  # imageio raises many types for a bad file.
        raise ImageError(
            f"{path} is not an image imageio can read ({type(error).__name__}: "
            f"{error}); expected {expected}."
        ) from None
    if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[-1] not in (1, 3, 4)):
        raise ImageError(
            f"{path} has array shape {raw.shape}, which is not a "
            "single picture (expected height x width, with 1, 3 "
            "or 4 channels)."
        )
    return raw


def _looks_dark_on_light(gray: np.ndarray) -> bool:
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(border.mean()) > 0.5


def _one_hot(labels: Sequence[int], num_classes: int) -> tf.Tensor:
    return tf.one_hot(np.asarray(labels, np.int32), num_classes, dtype=tf.float32)


def check_labels(labels: Sequence[int], num_classes: int, what: str) -> None:
    """Raises ValueError naming the first label outside [0, num_classes)."""
    for label in labels:
        if not 0 <= label < num_classes:
            raise ValueError(
                f"{what}: label {label} is out of range; the model knows "
                f"{num_classes} classes, 0 to {num_classes - 1}."
            )


def sample_grid(model, labels: Sequence[int], rows: int, *, seed: int = 0) -> np.ndarray:
    """Prior samples decoded with `labels`: one column per label, `rows` rows.

    For an unconditional model pass no labels; the grid is then `rows` x
    `rows` samples.

    Returns:
      The picture, float in [0, 1], as `vae.pictures.image_grid` makes it.
    """
    rng = np.random.default_rng(seed)
    if not getattr(model, "is_conditional", False):
        if labels:
            raise ValueError(
                "This model is unconditional, so it cannot draw "
                "samples of given labels; leave the labels out."
            )
        latent = rng.standard_normal([rows * rows, model.latent_dim])
        # The model's own prior: a VampPrior's mixture, a two-level p(z1).
        images = model.decode_mean(models.prior_draws(model, latent, seed)).numpy()
        return pictures.image_grid(images, num_columns=rows)
    check_labels(labels, model.num_classes, "sample labels")
    latent = np.repeat(rng.standard_normal([rows, model.latent_dim]), len(labels), axis=0)
    all_labels = np.tile(np.asarray(labels), rows)
    images = model.decode_mean(
        tf.constant(latent, tf.float32), _one_hot(all_labels, model.num_classes)
    ).numpy()
    return pictures.image_grid(images, num_columns=len(labels))


def transfer_style(
    model, images: np.ndarray, image_labels: Sequence[int], target_labels: Sequence[int]
) -> np.ndarray:
    """Each image's style decoded with every target label.

    Args:
      model: a conditional VAE.
      images: `[n, *image_shape]` in [0, 1].
      image_labels: the label of each image (what it shows).
      target_labels: labels to decode with.

    Returns:
      `[len(target_labels), n, *image_shape]`: entry [t, i] is image i drawn
      as `target_labels[t]`.
    """
    if not getattr(model, "is_conditional", False):
        raise ValueError(
            "Style transfer needs a conditional model (trained "
            "with --conditional); this one is unconditional."
        )
    check_labels(image_labels, model.num_classes, "image labels")
    check_labels(target_labels, model.num_classes, "target labels")
    images = tf.constant(images, tf.float32)
    codes = model.encode(images, _one_hot(image_labels, model.num_classes)).mean()
    return np.stack(
        [
            model.decode_mean(
                codes, _one_hot([target] * len(image_labels), model.num_classes)
            ).numpy()
            for target in target_labels
        ]
    )


def style_transfer_grid(
    model, images: np.ndarray, image_labels: Sequence[int], target_labels: Sequence[int]
) -> np.ndarray:
    """One row per image: the image itself, then its style as each target."""
    transferred = transfer_style(model, images, image_labels, target_labels)
    rows = np.concatenate(
        [np.asarray(images)[:, None], np.swapaxes(transferred, 0, 1)], axis=1
    )
    return pictures.image_grid(
        rows.reshape(-1, *rows.shape[2:]), num_columns=1 + len(target_labels)
    )
