"""dSprites: 64x64 binary sprites whose five generating factors are known.

dSprites (Matthey, Higgins, Hassabis and Lerchner 2017, "dSprites: Disentanglement
testing Sprites dataset") holds one image for every combination of

    factor        values                                   count
    shape         square, ellipse, heart                   3
    scale         linspace(0.5, 1, 6)                      6
    orientation   linspace(0, 2 pi, 40) (radians)          40
    position x    linspace(0, 1, 32)                       32
    position y    linspace(0, 1, 32)                       32

737,280 images in all, in row-major order of the factors as listed (position y
varies fastest), so image `i` has the factor indices
`np.unravel_index(i, FACTOR_SIZES)`. The published archive
`dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` holds `imgs` (uint8
[737280, 64, 64], values 0/1), `latents_values` and `latents_classes` ([737280, 6]:
a constant colour column, then the five factors above). When the directory given
holds that archive it is read; nothing is ever downloaded.

Without the archive the images are rendered here by the following procedure,
which follows the published definition (shapes, scale, orientation and position
ranges, rotation about the sprite's centre) but is not pixel-identical to it:

* A pixel (row r, column c) is the square [r, r + 1) x [c, c + 1) of a 64 x 64
  canvas and is sampled once, at its centre (r + 0.5, c + 0.5); it is 1 when that
  point lies inside the sprite, else 0 (no anti-aliasing: the images are binary,
  as the originals are).
* The sprite's centre sits at column `11 + 42 * x` and row `11 + 42 * y`, so x
  moves it left to right and y top to bottom, and the largest sprite stays
  (almost) inside the canvas at every position.
* A point at offset (dc, dr) pixels from the centre has sprite coordinates
  (u, v) = R(-theta) (dc, -dr) / (10 * scale), where R is the rotation matrix and
  theta the orientation: the sprite turns counter-clockwise on screen as theta
  grows, about its own centre, and one sprite unit is 10 pixels at scale 1.
* In sprite coordinates (v pointing up) the shapes are the square
  max(|u|, |v|) <= 0.75 (15 pixels wide at scale 1), the ellipse
  u^2 + (v / 0.5)^2 <= 1 (20 x 10 pixels), and the heart
  (a^2 + b^2 - 1)^3 - a^2 b^3 <= 0 with (a, b) = 1.118 (u, v) + (0, 0.118): the
  classical heart curve, whose bounding box is [-1.139, 1.139] x [-1, 1.236],
  shifted so that its box is centred on the sprite's centre and scaled to a
  half-height of one unit.

As in the original, orientation 0 and 2 pi give the same image, and the square
(ellipse) repeats every quarter (half) turn: orientation is only identifiable
modulo those symmetries, which caps what any representation can score on it.

Rendering is vectorised over the 32 x 32 positions of one (shape, scale,
orientation) triple: the sprite coordinates are an outer sum of a [32, 64] term
in x and columns and a [32, 64] term in y and rows, so the 4M point tests of a
triple are a few NumPy array operations. The result is bit-packed along the
columns (`np.packbits`: 8 bytes a row, 512 bytes an image, 377 MB for all) and
cached, like a converted image folder, in one uncompressed `.npz` file in
`cache_dir` written to a temporary name and renamed into place. Its name and
content carry a key hashed from this procedure's constants, so a change of the
procedure renders again instead of reading stale images.

Splits: a fixed set of `TEST_SIZE` images, drawn by a permutation with a
constant seed (not the run's seed, so every run and every program sees the same
test images), is the test split; the metrics of `vae.disentanglement` run on
it. The rest is the training split, or a subset of `train_subset` of them (also
drawn with a constant seed) to keep CPU runs small: only the chosen images are
unpacked, at 4 KB an image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import zipfile

from absl import logging
import numpy as np

from vae import atomic_files

ARCHIVE_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
ARCHIVE_KEYS = ("imgs", "latents_values", "latents_classes")
IMAGE_SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "position_x", "position_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
NUM_IMAGES = int(np.prod(FACTOR_SIZES))
# Values as in the published latents_values (its shape column counts 1, 2, 3).
FACTOR_VALUES = (
    np.arange(1.0, 4.0),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2.0 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
TEST_SIZE = 10000

# The rendering procedure of the module docstring.
_POSITION_OFFSET = 11.0
_POSITION_RANGE = 42.0
_PIXELS_PER_UNIT = 10.0
_SQUARE_HALF_SIDE = 0.75
_ELLIPSE_SEMI_AXES = (1.0, 0.5)
_HEART_SCALE = 1.118
_HEART_SHIFT = 0.118
_RENDER_VERSION = 1
_CACHE_PREFIX = "dsprites-rendered-"

# Constant seeds of the test split and of the training subset.
_TEST_STREAM = 0x445350
_SUBSET_STREAM = 0x535542


class DspritesError(ValueError):
    """The archive is unusable; the message names it and what was expected."""


@dataclasses.dataclass(frozen=True)
class DspritesArrays:
    """dSprites images and factors (all of them, or the archive's).

    Attributes:
        packed: uint8 [N, 64, 8]: each image's rows, bit-packed along the columns
            (`np.unpackbits(packed, axis=-1)` gives the 0/1 pixels).
        factor_classes: int64 [N, 5] factor indices (shape, scale, orientation,
            position x, position y), each in [0, FACTOR_SIZES[k]).
        factor_values: float32 [N, 5] the factor values (shape as 1, 2, 3, as in
            the archive).
        source: where the images came from, for logs.
    """

    packed: np.ndarray
    factor_classes: np.ndarray
    factor_values: np.ndarray
    source: str

    @property
    def num_examples(self) -> int:
        return int(self.packed.shape[0])

    def images(self, indices: np.ndarray) -> np.ndarray:
        """uint8 [len(indices), 64, 64, 1] images of the given indices, 0 or 255."""
        bits = np.unpackbits(self.packed[np.asarray(indices)], axis=-1)
        return (bits * np.uint8(255))[..., np.newaxis]


def factor_grid() -> np.ndarray:
    """int64 [NUM_IMAGES, 5]: the factor indices of every image in dataset order."""
    return np.stack(np.unravel_index(np.arange(NUM_IMAGES), FACTOR_SIZES), axis=1).astype(
        np.int64
    )


def factor_values_of(classes: np.ndarray) -> np.ndarray:
    """float32 [N, 5] values of int [N, 5] factor indices."""
    classes = np.asarray(classes)
    return np.stack(
        [FACTOR_VALUES[k][classes[:, k]] for k in range(len(FACTOR_SIZES))], axis=1
    ).astype(np.float32)


def _sprite_inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether sprite coordinates (u, v) (v up) lie inside shape 0, 1 or 2."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF_SIDE
    if shape == 1:
        a, b = _ELLIPSE_SEMI_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    a = _HEART_SCALE * u
    b = _HEART_SCALE * v + _HEART_SHIFT
    a2 = a * a
    return (a2 + b * b - 1.0) ** 3 - a2 * b**3 <= 0.0


def render_triple(shape: int, scale_index: int, orientation_index: int) -> np.ndarray:
    """Renders one (shape, scale, orientation) at all 32 x 32 positions.

    Args:
        shape: shape index (0 square, 1 ellipse, 2 heart).
        scale_index: in [0, 6).
        orientation_index: in [0, 40).

    Returns:
        bool [32, 32, 64, 64]: [position x, position y, row, column].
    """
    scale = FACTOR_VALUES[1][scale_index]
    theta = FACTOR_VALUES[2][orientation_index]
    centres = _POSITION_OFFSET + _POSITION_RANGE * FACTOR_VALUES[3]
    pixels = np.arange(IMAGE_SIZE) + 0.5
    unit = _PIXELS_PER_UNIT * scale
    # Offsets in sprite units: dc[k, c] for x position k, up[l, r] for y position l
    # (v points up, rows down, hence the sign).
    dc = ((pixels[np.newaxis, :] - centres[:, np.newaxis]) / unit).astype(np.float32)
    up = (-(pixels[np.newaxis, :] - centres[:, np.newaxis]) / unit).astype(np.float32)
    cos, sin = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    # (u, v) = R(-theta) (dc, up): outer sums over [x, y, row, column].
    u = (cos * dc)[:, np.newaxis, np.newaxis, :] + (sin * up)[
        np.newaxis, :, :, np.newaxis
    ]
    v = (-sin * dc)[:, np.newaxis, np.newaxis, :] + (cos * up)[
        np.newaxis, :, :, np.newaxis
    ]
    return _sprite_inside(shape, u, v)


def render_all() -> np.ndarray:
    """Renders every dSprites image; uint8 [NUM_IMAGES, 64, 64 / 8] bit-packed rows."""
    per_triple = FACTOR_SIZES[3] * FACTOR_SIZES[4]
    packed = np.empty((NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE // 8), np.uint8)
    start = time.perf_counter()
    triple = 0
    for shape in range(FACTOR_SIZES[0]):
        for scale_index in range(FACTOR_SIZES[1]):
            for orientation_index in range(FACTOR_SIZES[2]):
                bits = render_triple(shape, scale_index, orientation_index)
                packed[triple * per_triple : (triple + 1) * per_triple] = np.packbits(
                    bits.reshape(per_triple, IMAGE_SIZE, IMAGE_SIZE), axis=-1
                )
                triple += 1
    logging.info(
        "Rendered %d dSprites images in %.1f s.", NUM_IMAGES, time.perf_counter() - start
    )
    return packed


def render_key() -> str:
    """SHA-256 of the rendering procedure's constants: the cache entry's key."""
    definition = {
        "version": _RENDER_VERSION,
        "image_size": IMAGE_SIZE,
        "factor_sizes": FACTOR_SIZES,
        "factor_values": [values.tolist() for values in FACTOR_VALUES],
        "position": [_POSITION_OFFSET, _POSITION_RANGE],
        "pixels_per_unit": _PIXELS_PER_UNIT,
        "square": _SQUARE_HALF_SIDE,
        "ellipse": _ELLIPSE_SEMI_AXES,
        "heart": [_HEART_SCALE, _HEART_SHIFT],
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def cache_path(cache_dir: str) -> str:
    """The cache entry of the rendered images in `cache_dir`."""
    return os.path.join(cache_dir, f"{_CACHE_PREFIX}{render_key()[:32]}.npz")


def _read_cache(path: str, key: str) -> np.ndarray | None:
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if str(archive["key"]) != key:
                raise ValueError("written for another key")
            packed = archive["packed"]
        if packed.shape != (NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE // 8):
            raise ValueError(f"holds images of shape {packed.shape}")
        return packed
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        logging.warning(
            "Ignoring the unusable dSprites cache entry %s (%s); "
            "rendering the images again.",
            path,
            error,
        )
        return None


def rendered(cache_dir: str | None) -> DspritesArrays:
    """Every image rendered by this module's procedure, from the cache if there."""
    key = render_key()
    path = cache_path(cache_dir) if cache_dir else None
    packed = _read_cache(path, key) if path else None
    source = f"rendered dSprites (cached in {path})"
    if packed is None:
        packed = render_all()
        source = "rendered dSprites"
        if path:
            try:
                atomic_files.write_npz(path, {"key": np.array(key), "packed": packed})
                logging.info("Cached the rendered dSprites images in %s.", path)
            except OSError as error:
                # The cache only saves time: a run without it is still right.
                logging.warning(
                    "Could not cache the rendered dSprites images in %s "
                    "(%s); the next run will render them again.",
                    path,
                    error,
                )
    classes = factor_grid()
    return DspritesArrays(
        packed=packed,
        factor_classes=classes,
        factor_values=factor_values_of(classes),
        source=source,
    )


def read_archive(path: str) -> DspritesArrays:
    """Reads the published archive (or any .npz with its three keys).

    Raises:
        DspritesError: the file cannot be read, lacks a key, or its arrays do not
            have the archive's shapes (imgs [N, 64, 64] of 0/1; latents [N, 6] with
            factor indices in range).
    """
    expected = (
        f"the dSprites archive {ARCHIVE_NAME} with keys {list(ARCHIVE_KEYS)}: "
        f"imgs uint8 [N, 64, 64] of 0/1, latents_values and latents_classes "
        f"[N, 6] (colour, then {', '.join(FACTOR_NAMES)})"
    )
    try:
        # The published archive also holds a pickled `metadata` entry, which
        # allow_pickle=False never reads because it is never asked for.
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ARCHIVE_KEYS if key not in archive.files]
            if missing:
                raise DspritesError(
                    f"Archive {path!r} lacks the keys {missing} (it holds "
                    f"{sorted(archive.files)}); expected {expected}."
                )
            imgs = archive["imgs"]
            values = archive["latents_values"]
            classes = archive["latents_classes"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, DspritesError):
            raise
        raise DspritesError(
            f"Archive {path!r} could not be read as a NumPy .npz "
            f"file ({error}); expected {expected}."
        ) from error
    n = imgs.shape[0] if imgs.ndim else 0
    if (
        imgs.ndim != 3
        or imgs.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)
        or n == 0
        or values.shape != (n, 6)
        or classes.shape != (n, 6)
        or not np.issubdtype(classes.dtype, np.integer)
        or imgs.max() > 1
    ):
        raise DspritesError(
            f"Archive {path!r} holds imgs {imgs.dtype} {list(imgs.shape)} (largest "
            f"value {imgs.max() if imgs.size else 'none'}), latents_values "
            f"{list(values.shape)} and latents_classes {classes.dtype} "
            f"{list(classes.shape)}; expected {expected}."
        )
    factor_classes = classes[:, 1:].astype(np.int64)
    if ((factor_classes < 0) | (factor_classes >= np.asarray(FACTOR_SIZES))).any():
        raise DspritesError(
            f"Archive {path!r} has latents_classes outside the factor sizes "
            f"{FACTOR_SIZES} ({', '.join(FACTOR_NAMES)}); expected {expected}."
        )
    return DspritesArrays(
        packed=np.packbits(imgs.astype(bool), axis=-1),
        factor_classes=factor_classes,
        factor_values=values[:, 1:].astype(np.float32),
        source=f"dSprites archive {path}",
    )


def load(data_dir: str | None, cache_dir: str | None) -> DspritesArrays:
    """The archive in `data_dir` (a directory holding it, or its path), else the
    rendered images."""
    if data_dir:
        path = data_dir
        if os.path.isdir(data_dir):
            path = os.path.join(data_dir, ARCHIVE_NAME)
        if os.path.isfile(path):
            return read_archive(path)
        logging.info("No dSprites archive at %s; rendering the images instead.", path)
    return rendered(cache_dir)


def split_indices(
    num_examples: int, train_subset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The (train, test) example indices, each sorted.

    The test split is `min(TEST_SIZE, num_examples // 10)` examples chosen by a
    permutation with a constant seed; the training split is the rest, or
    `train_subset` of them (0: all) chosen with another constant seed.

    Raises:
        ValueError: `train_subset` is negative or more than the rest.
    """
    test_size = min(TEST_SIZE, num_examples // 10)
    order = np.random.default_rng(_TEST_STREAM).permutation(num_examples)
    test = np.sort(order[:test_size])
    train = np.sort(order[test_size:])
    if (
        not isinstance(train_subset, (int, np.integer))
        or isinstance(train_subset, bool)
        or not 0 <= train_subset <= len(train)
    ):
        raise ValueError(
            f"train_subset={train_subset!r} training images of dSprites were asked "
            f"for; expected an integer from 0 (all) to {len(train)}, the images "
            f"outside the test split."
        )
    if train_subset:
        chosen = np.random.default_rng(_SUBSET_STREAM).choice(
            len(train), size=train_subset, replace=False
        )
        train = np.sort(train[chosen])
    return train, test


__all__ = (
    "ARCHIVE_KEYS",
    "ARCHIVE_NAME",
    "DspritesArrays",
    "DspritesError",
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "FACTOR_VALUES",
    "NUM_IMAGES",
    "SHAPE_NAMES",
    "TEST_SIZE",
    "cache_path",
    "factor_grid",
    "factor_values_of",
    "load",
    "read_archive",
    "render_all",
    "render_key",
    "render_triple",
    "rendered",
    "split_indices",
)
