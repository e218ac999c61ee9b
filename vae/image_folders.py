"""Your own images: folders of PNG, JPEG and BMP files, converted once and cached.

A folder is read in one of these layouts (hidden entries, whose names start
with ".", are ignored everywhere):

    ROOT/<class>/**/<image>          labelled: one subfolder per class
    ROOT/<image>                     unlabelled: every image has label 0
    ROOT/train/..., ROOT/test/...    either of the above in each split folder

Class labels are the class subfolder names in sorted (code point) order: the
first name is label 0. With `train/` and `test/` the classes are those of
`train/`, and `test/` may hold only classes that `train/` has. Without them a
fixed fraction of each class is held out as the test split: the
`round(test_fraction * n)` images of the class whose relative paths have the
smallest SHA-256 digests. The choice depends on nothing but the paths, so it
is the same for every run and seed, and adding images moves no existing image
from one split to the other unless it shifts the count.

Every image is converted to uint8 `[height, width, channels]`:

* 16-bit images are scaled to 8 bits (x / 257, rounded).
* Transparent pixels are composited onto white, as an image viewer shows them.
* `channels=1` turns colour into gray with the ITU-R 601 luma weights
  (0.299 R + 0.587 G + 0.114 B, the weights most image libraries use);
  `channels=3` repeats gray into three equal channels; `channels=0` keeps
  gray data gray (1 channel) when every image is gray (one channel, or three
  equal ones) and makes everything RGB otherwise.
* `image_size=(height, width)` resizes every image of another size with
  `tf.image.resize(method="bilinear", antialias=True)`: bilinear
  interpolation when enlarging, and when shrinking a triangle filter as wide
  as the scale factor, which averages the source pixels each output pixel
  covers instead of aliasing. The aspect ratio is not kept: the image is
  stretched to the size. Without `image_size` every image must already have
  the same size.

Conversion reads every file, which takes a while for a large folder, so its
result is cached: one uncompressed `.npz` file per folder and setting in
`cache_dir`, named by a SHA-256 key of the sorted relative paths, sizes and
modification times of the images and of the conversion settings. Changing,
adding, removing or touching an image, or asking for another size or channel
count, gives a new key; the same folder and settings load the cached arrays
at once. The file is written to a temporary name in the same directory and
renamed into place, so a crash or an error mid-way never leaves a
half-written cache entry, and readers never see one.

Files whose extension is not an image extension (`IMAGE_EXTENSIONS`) are
skipped with a warning, or refused with `non_image_files="refuse"`. A file with
an image extension that cannot be decoded is always an error.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
import dataclasses
import hashlib
import json
import math
import os
import time
import zipfile

from absl import logging
import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from vae import atomic_files

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
NON_IMAGE_POLICIES = ("skip", "refuse")
# 0: decided by the images (gray stays gray, anything coloured becomes RGB).
CHANNEL_CHOICES = (0, 1, 3)
TRAIN_FOLDER = "train"
TEST_FOLDER = "test"

# Bump when the layout of a cache file or the meaning of its key changes, so
# that entries written by an older version are not mistaken for current ones.
_CACHE_FORMAT = 1
_CACHE_PREFIX = "image-folder-"
# ITU-R BT.601 luma weights.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
# How many skipped files a warning or an error names before "and N more".
_FILES_NAMED = 5


class ImageFolderError(ValueError):
    """A folder or file cannot be used; the message names it and what was expected."""


class ImageFolderNotFoundError(ImageFolderError, FileNotFoundError):
    """The folder does not exist."""


@dataclasses.dataclass(frozen=True)
class ImageFolderArrays:
    """Every image of a folder, converted, in a fixed order.

    Attributes:
        images: uint8 `[N, height, width, channels]`.
        labels: int64 `[N]` class indices (all 0 for an unlabelled folder).
        relative_paths: the N files' paths relative to the folder, '/'-separated.
        in_test_folder: bool `[N]`: the file lies under `test/` (all False when
            the folder has no `train/` and `test/` subfolders).
        class_names: the class subfolder names, label `i` being `class_names[i]`;
            empty for an unlabelled folder.
        has_split_folders: whether the folder has `train/` and `test/` subfolders.
        source: where the arrays came from, for logs.
    """

    images: np.ndarray
    labels: np.ndarray
    relative_paths: tuple[str, ...]
    in_test_folder: np.ndarray
    class_names: tuple[str, ...]
    has_split_folders: bool
    source: str

    @property
    def num_classes(self) -> int:
        """Number of label classes: 1 for an unlabelled folder."""
        return max(1, len(self.class_names))

    def split(self, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Indices `(train, test)` of the examples in each split.

        With `train/` and `test/` subfolders the split is theirs; otherwise it is
        `held_out_test_mask(relative_paths, labels, test_fraction)`.

        Raises:
            ImageFolderError: either split would be empty.
        """
        if self.has_split_folders:
            is_test = self.in_test_folder
        else:
            is_test = held_out_test_mask(self.relative_paths, self.labels, test_fraction)
        train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        if self.has_split_folders and (not len(train) or not len(test)):
            empty = TRAIN_FOLDER if not len(train) else TEST_FOLDER
            raise ImageFolderError(
                f"{self.source}: its {empty}/ subfolder holds no images; expected "
                f"images in both {TRAIN_FOLDER}/ and {TEST_FOLDER}/."
            )
        if not len(train) or not len(test):
            empty = "training" if not len(train) else "test"
            raise ImageFolderError(
                f"{self.source}: holding out test_fraction={test_fraction} of its "
                f"{len(self.labels)} images leaves the {empty} split empty; expected "
                f"at least one image in each. Add images, change test_fraction "
                f"(--test_fraction), or put the images in {TRAIN_FOLDER}/ and "
                f"{TEST_FOLDER}/ subfolders."
            )
        return train, test


# ---------------------------------------------------------------------------
# Arguments.


def normalize_image_size(image_size: Sequence[int] | int | None) -> tuple[int, ...]:
    """`()` (keep sizes), `n` or `(n,)` (n x n), or `(height, width)` -> `()` or `(h, w)`.

    Raises:
        ValueError: anything else, naming the value.
    """
    if image_size is None:
        return ()
    values = (
        (image_size,) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    )
    if len(values) > 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
        for v in values
    ):
        raise ValueError(
            f"image_size must be empty (keep the images' own size), one positive "
            f"integer n (n x n) or two (height, width); got {image_size!r}."
        )
    if len(values) == 1:
        return (int(values[0]), int(values[0]))
    return tuple(int(v) for v in values)


def check_channels(channels: int) -> int:
    """Returns `channels` if it is one of `CHANNEL_CHOICES`; raises ValueError."""
    if (
        not isinstance(channels, (int, np.integer))
        or isinstance(channels, bool)
        or channels not in CHANNEL_CHOICES
    ):
        raise ValueError(
            f"channels must be 1 (grayscale), 3 (RGB) or 0 (gray if every image "
            f"is gray, else RGB); got {channels!r}."
        )
    return int(channels)


def check_test_fraction(test_fraction: float) -> float:
    """Returns `test_fraction` if it lies strictly between 0 and 1; raises ValueError."""
    if (
        not isinstance(test_fraction, (int, float, np.floating))
        or isinstance(test_fraction, bool)
        or not 0 < test_fraction < 1
    ):
        raise ValueError(
            f"test_fraction must be a number strictly between 0 and 1 (the share "
            f"of each class held out as the test split); got {test_fraction!r}."
        )
    return float(test_fraction)


# ---------------------------------------------------------------------------
# Converting pixels.


def _to_uint8(raw: np.ndarray, origin: str) -> np.ndarray:
    """Decoded pixels -> uint8 `[h, w, c]` with c in 1..4."""
    if raw.ndim == 2:
        raw = raw[..., np.newaxis]
    if raw.ndim != 3 or raw.shape[-1] not in (1, 2, 3, 4) or min(raw.shape[:2]) < 1:
        raise ImageFolderError(
            f"{origin} decodes to an array of shape {list(raw.shape)}; expected one "
            f"picture of height x width pixels with 1 (gray), 2 (gray and alpha), "
            f"3 (RGB) or 4 (RGBA) channels."
        )
    if raw.dtype == np.uint8:
        return raw
    if raw.dtype == bool:
        return raw.astype(np.uint8) * 255
    if raw.dtype == np.uint16:
        return ((raw.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise ImageFolderError(
        f"{origin} decodes to pixels of dtype {raw.dtype}; expected 8-bit or "
        f"16-bit unsigned integers (or 1-bit)."
    )


def _without_alpha(pixels: np.ndarray) -> np.ndarray:
    """uint8 `[h, w, 1..4]` -> `[h, w, 1 or 3]`, transparent parts onto white."""
    if pixels.shape[-1] not in (2, 4):
        return pixels
    colour = pixels[..., :-1].astype(np.float32)
    alpha = pixels[..., -1:].astype(np.float32) / 255.0
    blended = colour * alpha + 255.0 * (1.0 - alpha)
    return np.round(blended).astype(np.uint8)


def _is_gray(pixels: np.ndarray) -> bool:
    """One channel, or three equal ones."""
    return pixels.shape[-1] == 1 or bool(
        (pixels[..., 0] == pixels[..., 1]).all()
        and (pixels[..., 0] == pixels[..., 2]).all()
    )


def _with_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """uint8 `[..., 1 or 3]` -> `[..., channels]` (gray by ITU-R 601 luma)."""
    if pixels.shape[-1] == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    if _is_gray(pixels):
        return np.ascontiguousarray(pixels[..., :1])
    luma = pixels.astype(np.float64) @ _LUMA_WEIGHTS
    return np.round(luma).clip(0, 255).astype(np.uint8)[..., np.newaxis]


def resize_images(images: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Resizes uint8 `[N, h, w, c]` to `[N, *image_size, c]` (bilinear, antialiased).

    Returns the input unchanged when it already has that size.
    """
    if tuple(images.shape[1:3]) == tuple(image_size):
        return images
    resized = tf.image.resize(
        tf.convert_to_tensor(images, tf.float32),
        image_size,
        method="bilinear",
        antialias=True,
    )
    return np.round(resized.numpy()).clip(0, 255).astype(np.uint8)


def convert_images(
    images: np.ndarray, *, image_size: Sequence[int] = (), channels: int = 0
) -> np.ndarray:
    """Applies a folder's conversion to an in-memory uint8 `[N, h, w, c]` batch.

    For datasets read from IDX or .npz files: `channels` 0 keeps the channels,
    1 or 3 converts (see the module docstring); `image_size` resizes.

    Args:
        images: uint8 `[N, height, width, 1 or 3]`.
        image_size: `()`, `(n,)` or `(height, width)`.
        channels: one of `CHANNEL_CHOICES`.

    Returns:
        uint8 `[N, height', width', channels']`.
    """
    image_size = normalize_image_size(image_size)
    channels = check_channels(channels)
    if channels:
        images = _with_channels(images, channels)
    if image_size:
        images = resize_images(images, image_size)
    return images


def _decode(path: str, origin: str) -> np.ndarray:
    """Reads one image file as uint8 `[h, w, 1 or 3]`."""
    try:
        # Pillow (imageio's own dependency) reads all three formats; naming it
        # keeps imageio from trying every other plugin on a broken file.
        raw = np.asarray(iio.imread(path, plugin="pillow"))
    except Exception as error:  # pylint: disable=broad-except
        # imageio raises many types for a bad file (OSError, ValueError, ...).
        raise ImageFolderError(
            f"Image {origin} could not be read ({type(error).__name__}: {error}); "
            f"expected a readable PNG, JPEG or BMP file. Remove or replace it."
        ) from None
    return _without_alpha(_to_uint8(raw, origin))


# ---------------------------------------------------------------------------
# Scanning the folder.


@dataclasses.dataclass(frozen=True)
class _ImageFile:
    relative_path: str
    label: int
    in_test_folder: bool
    size: int
    mtime_ns: int


def _visible_entries(directory: str) -> list[os.DirEntry]:
    with os.scandir(directory) as entries:
        return sorted(
            (entry for entry in entries if not entry.name.startswith(".")),
            key=lambda entry: entry.name,
        )


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _named(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_FILES_NAMED])
    more = len(paths) - _FILES_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


class _Scan:
    """The files of a folder, by layout; see the module docstring."""

    def __init__(self, root: str):
        self.root = root
        self.files: list[_ImageFile] = []
        self.non_image_files: list[str] = []
        self.class_names: tuple[str, ...] = ()
        entries = _visible_entries(root)
        directories = {entry.name for entry in entries if entry.is_dir()}
        self.has_split_folders = bool({TRAIN_FOLDER, TEST_FOLDER} & directories)
        if self.has_split_folders:
            self._scan_split_folders(entries, directories)
        else:
            self.class_names = self._scan_split("", labelled=bool(directories))
        self.non_image_files.sort()

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def _scan_split_folders(self, entries, directories) -> None:
        missing = {TRAIN_FOLDER, TEST_FOLDER} - directories
        others = sorted(
            entry.name
            for entry in entries
            if entry.name not in (TRAIN_FOLDER, TEST_FOLDER) and entry.is_dir()
        )
        if missing or others:
            problem = (
                f"has no {missing.pop()}/ subfolder"
                if missing
                else f"also holds the subfolders {others}"
            )
            raise ImageFolderError(
                f"Image folder {self.root!r} has a {TRAIN_FOLDER}/ or {TEST_FOLDER}/ "
                f"subfolder but {problem}; expected either both {TRAIN_FOLDER}/ and "
                f"{TEST_FOLDER}/ and nothing else (each holding class subfolders "
                f"or images), or class subfolders / images without them."
            )
        for entry in entries:
            if not entry.is_dir():
                self._stray_file(entry.path, f"beside {TRAIN_FOLDER}/ and {TEST_FOLDER}/")
        train_classes = self._scan_split(TRAIN_FOLDER, labelled=None)
        first_test = len(self.files)
        self._scan_split(
            TEST_FOLDER, labelled=bool(train_classes), class_names=train_classes
        )
        self.class_names = train_classes
        self.files[first_test:] = [
            dataclasses.replace(file, in_test_folder=True)
            for file in self.files[first_test:]
        ]

    def _stray_file(self, path: str, where: str) -> None:
        relative = self._relative(path)
        if _is_image_name(relative):
            raise ImageFolderError(
                f"Image folder {self.root!r} holds the image {relative} {where}; "
                f"expected images only inside the class subfolders (or no "
                f"subfolders at all, for unlabelled images). Move it into a class "
                f"subfolder or out of the folder."
            )
        self.non_image_files.append(relative)

    def _add_file(self, path: str, label: int, stat: os.stat_result) -> None:
        self.files.append(
            _ImageFile(self._relative(path), label, False, stat.st_size, stat.st_mtime_ns)
        )

    def _scan_split(
        self,
        split: str,
        *,
        labelled: bool | None,
        class_names: tuple[str, ...] | None = None,
    ) -> tuple[str, ...]:
        """Scans ROOT/split (ROOT for ""); returns its class names ((): unlabelled).

        `labelled` None lets the folder decide; `class_names`, when given, are
        the classes this split may use (those of train/).
        """
        directory = os.path.join(self.root, split) if split else self.root
        entries = _visible_entries(directory)
        subfolders = [entry for entry in entries if entry.is_dir()]
        if labelled is None:
            labelled = bool(subfolders)
        where = f"{split}/" if split else "the folder"
        if not labelled:
            if subfolders:
                raise ImageFolderError(
                    f"Image folder {self.root!r}: {TRAIN_FOLDER}/ holds images "
                    f"directly (unlabelled) but {where} has the subfolders "
                    f"{[entry.name for entry in subfolders]}; expected the same "
                    f"layout in both."
                )
            for entry in entries:
                if _is_image_name(entry.name):
                    self._add_file(entry.path, 0, entry.stat())
                else:
                    self.non_image_files.append(self._relative(entry.path))
            return ()

        names = tuple(entry.name for entry in subfolders)
        if not names:
            raise ImageFolderError(
                f"Image folder {self.root!r}: {TRAIN_FOLDER}/ has class subfolders "
                f"but {where} has none; expected the same layout in both."
            )
        if class_names is not None:
            unknown = sorted(set(names) - set(class_names))
            if unknown:
                raise ImageFolderError(
                    f"Image folder {self.root!r}: {where} has the class subfolders "
                    f"{unknown}, which {TRAIN_FOLDER}/ lacks; expected only classes "
                    f"that {TRAIN_FOLDER}/ has ({list(class_names)})."
                )
        label_of = {
            name: index
            for index, name in enumerate(
                class_names if class_names is not None else names
            )
        }
        for entry in entries:
            if not entry.is_dir():
                self._stray_file(entry.path, f"in {where}, beside the class subfolders")
        for class_entry in subfolders:
            count = len(self.files)
            for parent, child_dirs, files in os.walk(class_entry.path):
                child_dirs[:] = sorted(d for d in child_dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    path = os.path.join(parent, name)
                    if _is_image_name(name):
                        self._add_file(path, label_of[class_entry.name], os.stat(path))
                    else:
                        self.non_image_files.append(self._relative(path))
            # os.walk lists a folder's files before its subfolders' files; the
            # order of the relative paths is what every run agrees on.
            self.files[count:] = sorted(
                self.files[count:], key=lambda file: file.relative_path
            )
            # test/ may lack images of a class; train/ may not.
            if len(self.files) == count and class_names is None:
                raise ImageFolderError(
                    f"Image folder {self.root!r}: the class subfolder "
                    f"{self._relative(class_entry.path)}/ holds no images "
                    f"({', '.join(IMAGE_EXTENSIONS)}); expected at least one per "
                    f"class. Remove the empty class or add its images."
                )
        return names

    def cache_key(self, image_size: tuple[int, ...], channels: int) -> str:
        """SHA-256 of what the converted arrays depend on; see the module docstring."""
        record = {
            "format": _CACHE_FORMAT,
            "image_size": list(image_size),
            "channels": channels,
            "files": [
                [file.relative_path, file.size, file.mtime_ns] for file in self.files
            ],
        }
        return hashlib.sha256(json.dumps(record).encode()).hexdigest()


# ---------------------------------------------------------------------------
# The held-out test split.


def held_out_test_mask(
    relative_paths: Sequence[str], labels: np.ndarray, test_fraction: float
) -> np.ndarray:
    """Which examples form the test split of a folder without `test/`.

    In each class, the `floor(test_fraction * n + 0.5)` examples whose relative
    paths have the smallest SHA-256 digests.

    Args:
        relative_paths: one path per example.
        labels: int `[N]` class of each example.
        test_fraction: in (0, 1).

    Returns:
        bool `[N]`, True for the test examples.
    """
    test_fraction = check_test_fraction(test_fraction)
    labels = np.asarray(labels)
    digests = [hashlib.sha256(path.encode()).hexdigest() for path in relative_paths]
    is_test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(math.floor(test_fraction * len(members) + 0.5))
        chosen = sorted(members, key=lambda index: digests[index])[:count]
        is_test[chosen] = True
    return is_test


# ---------------------------------------------------------------------------
# Reading and caching.


def _cache_path(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, f"{_CACHE_PREFIX}{key[:32]}.npz")


def _read_cache(path: str, key: str) -> dict | None:
    """The arrays of a cache entry, or None when it is missing or unusable."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        if str(arrays["key"]) != key:
            raise ValueError("written for another key")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        logging.warning(
            "Ignoring the unusable cache entry %s (%s); converting the folder again.",
            path,
            error,
        )
        return None


def _convert(
    root: str, scan: _Scan, image_size: tuple[int, ...], channels: int
) -> np.ndarray:
    """Reads and converts every image of the scan; uint8 `[N, h, w, c]`."""
    start = time.perf_counter()
    decoded = [
        _decode(
            os.path.join(root, file.relative_path),
            repr(os.path.join(root, file.relative_path)),
        )
        for file in scan.files
    ]
    if not image_size:
        sizes = collections.defaultdict(list)
        for file, pixels in zip(scan.files, decoded):
            sizes[pixels.shape[:2]].append(file.relative_path)
        if len(sizes) > 1:
            examples = "; ".join(
                f"{paths[0]} is {size[0]}x{size[1]} (height x width)"
                for size, paths in list(sizes.items())[:3]
            )
            raise ImageFolderError(
                f"Image folder {root!r} holds images of {len(sizes)} different sizes "
                f"({examples}); expected all of one size, or an image_size "
                f"(--image_size=H,W or --image_size=N) to resize them to."
            )
    if not channels:
        channels = 1 if all(_is_gray(pixels) for pixels in decoded) else 3
    by_size = collections.defaultdict(list)
    for index, pixels in enumerate(decoded):
        by_size[pixels.shape[:2]].append(index)
    output_size = image_size or decoded[0].shape[:2]
    images = np.empty((len(decoded), *output_size, channels), np.uint8)
    for indices in by_size.values():
        batch = np.stack([_with_channels(decoded[index], channels) for index in indices])
        images[indices] = resize_images(batch, output_size)
    logging.info(
        "Converted %d images of %s in %.1f s.",
        len(decoded),
        root,
        time.perf_counter() - start,
    )
    return images


def load_image_folder(
    root: str,
    *,
    image_size: Sequence[int] | int = (),
    channels: int = 0,
    cache_dir: str | None = None,
    non_image_files: str = "skip",
) -> ImageFolderArrays:
    """Reads (or loads from the cache) every image of a folder.

    Args:
        root: the folder; see the module docstring for its layouts.
        image_size: `()` to keep the images' size (then they must all have the
            same), `n` or `(n,)` for n x n, or `(height, width)`.
        channels: 1 (grayscale), 3 (RGB) or 0 (gray when every image is gray,
            else RGB).
        cache_dir: where converted folders are cached; None converts every time.
        non_image_files: "skip" (with a warning) or "refuse" files whose
            extension is not in `IMAGE_EXTENSIONS`.

    Returns:
        The converted images with their labels and paths.

    Raises:
        ValueError: a bad `image_size`, `channels` or `non_image_files`.
        FileNotFoundError: `root` is not a directory (an `ImageFolderError` too).
        ImageFolderError: the folder holds no images, an image cannot be read, or
            the images differ in size and no `image_size` is given, or the layout
            is not one of those above; the message names the file or folder.
    """
    image_size = normalize_image_size(image_size)
    channels = check_channels(channels)
    if non_image_files not in NON_IMAGE_POLICIES:
        raise ValueError(
            f"non_image_files must be one of {NON_IMAGE_POLICIES}; got "
            f"{non_image_files!r}."
        )
    if not os.path.isdir(root):
        raise ImageFolderNotFoundError(
            f"Image folder {root!r} does not exist (or is not a directory); expected "
            f"a directory of {', '.join(IMAGE_EXTENSIONS)} images, in class "
            f"subfolders or directly inside it."
        )
    try:
        scan = _Scan(root)
    except OSError as error:
        raise ImageFolderError(
            f"Image folder {root!r} could not be listed ({error}); expected a "
            f"readable directory."
        ) from None
    if scan.non_image_files:
        if non_image_files == "refuse":
            raise ImageFolderError(
                f"Image folder {root!r} holds {len(scan.non_image_files)} file(s) that "
                f"are not images by their extension ({_named(scan.non_image_files)}); "
                f"expected only {', '.join(IMAGE_EXTENSIONS)} files. Remove them, or "
                f"skip them (--non_image_files=skip)."
            )
        logging.warning(
            "Skipping %d files in %s that are not images by their extension "
            "(%s): only %s files are read.",
            len(scan.non_image_files),
            root,
            _named(scan.non_image_files),
            ", ".join(IMAGE_EXTENSIONS),
        )
    if not scan.files:
        raise ImageFolderError(
            f"Image folder {root!r} holds no images; expected "
            f"{', '.join(IMAGE_EXTENSIONS)} files in class subfolders or directly "
            f"inside it."
        )

    key = scan.cache_key(image_size, channels)
    cache_path = _cache_path(cache_dir, key) if cache_dir else None
    cached = _read_cache(cache_path, key) if cache_path else None
    if cached is not None:
        images = cached["images"]
        source = f"image folder {root} (cached in {cache_path})"
    else:
        images = _convert(root, scan, image_size, channels)
        source = f"image folder {root}"
        if cache_path:
            try:
                atomic_files.write_npz(
                    cache_path, {"key": np.array(key), "images": images}
                )
                logging.info("Cached the converted images of %s in %s.", root, cache_path)
            except OSError as error:
                # The cache only saves time: a run without it is still right.
                logging.warning(
                    "Could not cache the converted images of %s in %s "
                    "(%s); the next run will convert them again.",
                    root,
                    cache_path,
                    error,
                )
    return ImageFolderArrays(
        images=images,
        labels=np.array([file.label for file in scan.files], np.int64),
        relative_paths=tuple(file.relative_path for file in scan.files),
        in_test_folder=np.array([file.in_test_folder for file in scan.files], bool),
        class_names=scan.class_names,
        has_split_folders=scan.has_split_folders,
        source=source,
    )
