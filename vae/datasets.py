"""Datasets: MNIST, Fashion-MNIST, dSprites, your own images and a 2-D toy set, held
in memory and served by tf.data.

Loading and serving are separate steps:

1. `load_dataset` returns a `DatasetArrays`: plain NumPy arrays for the train,
      optional validation and test splits. Image sets keep their raw uint8 pixels
      ([N, height, width, channels]: [N, 28, 28, 1] for MNIST); the toy set is
      float32 points ([N, 2]).
2. `train_batches` and `eval_batches` turn one split into a `tf.data.Dataset`
      of dictionaries ready for a model: pixels scaled to [0, 1] (optionally
      binarized), integer labels and one-hot labels.

Training order is a pure function of `(seed, epoch)`: each epoch's batches are
computed from a NumPy permutation, not from a stateful shuffle buffer. A
trainer that stops after `k` batches of an epoch can therefore resume with
`skip_batches=k` and see exactly the batches it would have seen, without
checkpointing the input pipeline. Dynamic binarization (a fresh Bernoulli draw
of every pixel; Salakhutdinov & Murray, 2008) is seeded by
`(seed, epoch, batch index)` for the same reason.

MNIST and Fashion-MNIST are read from the four standard gzip IDX files
(LeCun et al.), from a Keras-style `.npz` archive, or, when allowed, fetched by
the Keras downloader. Other image sets of any size, gray or RGB, come as

* "idx": four IDX files (train/test images and labels, gzip or plain) in a
  directory, images `[N, h, w]` or `[N, h, w, c]`;
* "npz": a Keras-style `.npz` archive (x_train, y_train, x_test, y_test);
* "folder": a folder of PNG, JPEG or BMP files, labelled by class subfolder
  (see `vae.image_folders`, which converts and caches them).

"dsprites" (64x64 sprites with five known generating factors, read from the
published archive or rendered locally; see `vae.dsprites`) is the one dataset
whose splits carry `factors`, which the disentanglement metrics read.
"toy2d" (points near an arc and a circle) is drawn by `vae.toy2d`, which also
measures distances to its curves.

Their example shape and number of classes (largest label + 1, or the number
of class subfolders) come from the data, and `image_size` and `channels`
convert them on loading. Every file is checked and a problem is reported as a
`DataError` that names the file and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses
import glob
import gzip
import math
import os
import weakref
import zipfile
import zlib

from absl import logging
import numpy as np
import tensorflow as tf

from vae import dsprites
from vae import image_folders
from vae import toy2d

DATASET_NAMES = ("mnist", "fashion_mnist", "toy2d", "idx", "npz", "folder", "dsprites")
# Datasets whose splits carry the generating factors (`ArraySplit.factors`).
FACTOR_DATASETS = ("dsprites",)
# Datasets whose example shape and number of classes only the data can tell.
DATA_DEFINED_DATASETS = ("idx", "npz", "folder")
BINARIZATIONS = ("none", "static", "dynamic")
# Label classes of each dataset of fixed shape: what a conditional model is
# built for.
NUM_CLASSES = {
    "mnist": 10,
    "fashion_mnist": 10,
    "toy2d": 2,
    "dsprites": dsprites.FACTOR_SIZES[0],
}
EXAMPLE_SHAPES = {
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "toy2d": (2,),
    "dsprites": (64, 64, 1),
}

# File names as published by LeCun et al. and mirrored for Fashion-MNIST.
IDX_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Name patterns of the four files of an "idx" dataset: the MNIST names and
# their relatives (EMNIST's "emnist-letters-train-images-idx3-ubyte.gz",
# "test-" for "t10k-", "idx4" for colour images).
IDX_FILE_PATTERNS = {
    "train_images": ("*train-images-idx*",),
    "train_labels": ("*train-labels-idx*",),
    "test_images": ("*t10k-images-idx*", "*test-images-idx*"),
    "test_labels": ("*t10k-labels-idx*", "*test-labels-idx*"),
}

_IMAGE_SIZE = 28
_NUM_IMAGE_CLASSES = 10

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_LABELS_MAGIC = 0x00000801
_IDX_IMAGES_MAGIC = 0x00000803
_GZIP_MAGIC = b"\x1f\x8b"

# Distinct first entries for np.random.SeedSequence so that the validation
# split, the epoch order and the evaluation binarization drawn from one user
# seed are independent streams.
_VALIDATION_STREAM = 0x56414C
_SHUFFLE_STREAM = 0x534855
_BINARIZE_STREAM = 0x42494E
# Dynamic binarization in NumPy draws this many examples at a time so that a
# 60000-image split does not need a float buffer of the full split.
_BINARIZE_CHUNK = 4096


class DataError(ValueError):
    """A data file or array is unusable; the message names it and what was expected."""


class DataNotFoundError(DataError, FileNotFoundError):
    """Data could not be found; the message names the directory and the files expected."""


@dataclasses.dataclass(frozen=True)
class ArraySplit:
    """One split of a dataset, held in memory.

    Attributes:
        images: uint8 [N, height, width, channels] raw pixels for the image sets
            ([N, 28, 28, 1] for MNIST); float32 [N, 2] points for toy2d.
        labels: int64 [N] class indices.
        factors: int64 [N, K] indices of the generating factors of each example
            (dsprites: shape, scale, orientation, position x, position y), or None
            for datasets whose factors are unknown.
        factor_values: float32 [N, K] the values of those factors, or None.
    """

    images: np.ndarray
    labels: np.ndarray
    factors: np.ndarray | None = None
    factor_values: np.ndarray | None = None

    def __post_init__(self):
        if self.labels.ndim != 1 or self.images.ndim < 2:
            raise ValueError(
                f"ArraySplit expects images of shape [N, ...] and labels of shape "
                f"[N]; got images {self.images.shape} and labels "
                f"{self.labels.shape}."
            )
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"ArraySplit has {self.images.shape[0]} images but "
                f"{self.labels.shape[0]} labels; expected one label per image."
            )

        for field in ("factors", "factor_values"):
            array = getattr(self, field)
            if array is not None and (
                array.ndim != 2 or array.shape[0] != self.labels.shape[0]
            ):
                raise ValueError(
                    f"ArraySplit has {self.labels.shape[0]} examples but {field} "
                    f"of shape {array.shape}; expected [N, num_factors]."
                )

    @property
    def num_examples(self) -> int:
        """Number of examples N in the split."""
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray) -> ArraySplit:
        """The examples at `indices`, with their factors."""
        return ArraySplit(
            self.images[indices],
            self.labels[indices],
            None if self.factors is None else self.factors[indices],
            None if self.factor_values is None else self.factor_values[indices],
        )


@dataclasses.dataclass(frozen=True)
class DatasetArrays:
    """All splits of one dataset.

    Attributes:
        name: one of `DATASET_NAMES`.
        train: the training split (without the validation examples).
        validation: examples held out of the training files, or None.
        test: the official test split (a folder's: see `vae.image_folders`).
        num_classes: number of label classes (10 for MNIST, 2 for toy2d; 1 for
            an unlabelled folder).
        source: where the data came from, for logs ("idx files in DIR",
            "npz file PATH", "keras download", "generated (seed 3)",
            "image folder DIR").
        class_names: the name of each label, for a folder with class
            subfolders; empty where labels are plain numbers.
        factor_names: the name of each generating factor, where the splits
            carry `factors` (dsprites); empty otherwise.
        factor_sizes: the number of values of each factor.
    """

    name: str
    train: ArraySplit
    validation: ArraySplit | None
    test: ArraySplit
    num_classes: int
    source: str
    class_names: tuple[str, ...] = ()
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()

    @property
    def example_shape(self) -> tuple[int, ...]:
        """Shape of one example: (height, width, channels) for images, (2,) for
        toy2d."""
        return tuple(int(d) for d in self.train.images.shape[1:])


# ---------------------------------------------------------------------------
# IDX files.


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (gzip-compressed or plain) into a NumPy array.

    The format (LeCun et al.) is a big-endian magic number `0x0000TTDD` (T: type
    code, D: number of dimensions), D big-endian uint32 sizes, then the values
    in row-major order. MNIST labels use magic 0x00000801 and images 0x00000803.

    Args:
        path: file to read. Compression is detected from the content, not the name.

    Returns:
        An array of shape [d_1, ..., d_D] in native byte order (uint8 for MNIST).

    Raises:
        DataNotFoundError: the file does not exist.
        DataError: the file cannot be read, the gzip stream is corrupt or
            truncated, the magic number is not an IDX one, or the sizes in the
            header disagree with the amount of data.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError as err:
        raise DataNotFoundError(
            f"IDX file {path!r} does not exist; expected a gzip-compressed or "
            f"plain IDX file at that path."
        ) from err
    except OSError as err:
        raise DataError(
            f"IDX file {path!r} could not be read ({err.strerror or err}); "
            f"expected a readable gzip-compressed or plain IDX file."
        ) from err

    if raw[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(
                f"IDX file {path!r} is not a complete gzip stream ({err}); the "
                f"file is probably truncated or corrupt. Expected a gzip-compressed "
                f"IDX file: download it again."
            ) from err
    else:
        data = raw

    if len(data) < 4:
        raise DataError(
            f"IDX file {path!r} holds only {len(data)} bytes after "
            f"decompression; expected at least a 4-byte IDX magic number."
        )
    magic = int.from_bytes(data[:4], "big")
    type_code, num_dims = data[2], data[3]
    if data[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES or num_dims == 0:
        raise DataError(
            f"IDX file {path!r} starts with magic number 0x{magic:08X}, which is "
            f"not an IDX header; expected 0x0000TTDD with type code TT in "
            f"{{{', '.join(f'0x{code:02X}' for code in _IDX_DTYPES)}}} and DD >= 1 "
            f"dimensions (MNIST labels use 0x{_IDX_LABELS_MAGIC:08X}, images "
            f"0x{_IDX_IMAGES_MAGIC:08X})."
        )

    header_size = 4 + 4 * num_dims
    if len(data) < header_size:
        raise DataError(
            f"IDX file {path!r} ends inside its header: magic 0x{magic:08X} "
            f"announces {num_dims} dimension sizes ({header_size} header bytes) "
            f"but the file holds {len(data)} bytes."
        )
    dims = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(num_dims)
    )
    dtype = _IDX_DTYPES[type_code]
    expected_bytes = math.prod(dims) * dtype.itemsize
    payload_bytes = len(data) - header_size
    if payload_bytes != expected_bytes:
        raise DataError(
            f"IDX file {path!r} has a header announcing shape {list(dims)} of "
            f"{dtype.itemsize}-byte values ({expected_bytes} data bytes) but holds "
            f"{payload_bytes} data bytes; the file is truncated or its header is "
            f"wrong."
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)
    # astype copies into a writeable array in native byte order.
    return values.astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------------------
# Loading.


def load_dataset(
    name: str,
    data_dir: str | None = None,
    *,
    validation_size: int = 0,
    seed: int = 0,
    allow_download: bool = True,
    image_size: Sequence[int] | int = (),
    channels: int = 0,
    test_fraction: float = 0.1,
    cache_dir: str | None = None,
    non_image_files: str = "skip",
    train_subset: int = 0,
) -> DatasetArrays:
    """Loads a dataset into memory.

    For "mnist" and "fashion_mnist" the sources are tried in this order:
    the four IDX files `IDX_FILE_NAMES` in `data_dir`; a Keras-style archive
    `<name>.npz` (keys x_train, y_train, x_test, y_test) in `data_dir`; the
    Keras downloader, if `allow_download`. Loaded arrays are checked: 28x28
    uint8 images, one label per image, labels in [0, 9].

    "idx" reads the four IDX files matching `IDX_FILE_PATTERNS` in `data_dir`
    (exactly one per role), "npz" the Keras-style archive `data_dir` (or the
    only .npz file in the directory `data_dir`): uint8 images `[N, h, w]` or
    `[N, h, w, c]` with 1 or 3 channels, non-negative integer labels; the
    number of classes is the largest label + 1. "folder" reads the image
    folder `data_dir` with `vae.image_folders.load_image_folder`; its classes
    are its class subfolders, and its test split is its `test/` subfolder or
    else `test_fraction` of each class. For these three, `image_size` and
    `channels` convert the images as `vae.image_folders` describes.

    "dsprites" reads the published archive `dsprites.ARCHIVE_NAME` when
    `data_dir` holds it (or is its path), and otherwise renders the images (cached
    in `cache_dir`) as `vae.dsprites` describes; its labels are the shape, its
    splits carry the five factors, and its test split is a fixed set of 10,000
    images (see `dsprites.split_indices`).

    "toy2d" is generated from `seed` (`data_dir` is ignored): 1000 points on the
    arc y = sin(x), x in [-2.2, 2.2] (label 0), and 1000 points on the circle of
    radius 0.5 centred at (1.5, -0.5) (label 1), each with Gaussian noise of
    standard deviation 0.06, in shuffled order (`vae.toy2d.draw_points`). The
    test split is a second independent draw of the same size.

    Args:
        name: one of `DATASET_NAMES`.
        data_dir: directory holding the files, or None to download.
        validation_size: number of training examples to hold out as the
            validation split (chosen by a permutation seeded by `seed`); 0 for none.
        seed: non-negative seed for the toy data and the validation split.
        allow_download: whether the Keras downloader may be used when `data_dir`
            holds neither the IDX files nor the archive.
        image_size: "idx", "npz", "folder" only: `()` keeps the images' size,
            `n` or `(n,)` resizes to n x n, `(height, width)` to that size.
        channels: "idx", "npz", "folder" only: 1 (gray), 3 (RGB), or 0 (as the
            files are; for a folder, gray if every image is gray, else RGB).
        test_fraction: "folder" without `test/` only: the share of each class
            held out as the test split, in (0, 1).
        cache_dir: "folder" only: where converted folders are cached; None
            converts every time.
        non_image_files: "folder" only: "skip" (with a warning) or "refuse"
            files that are not images by their extension.
        train_subset: "dsprites" only: train on this many images (a fixed
            random subset of those outside the test split); 0 for all.

    Returns:
        The splits; `validation` is None when `validation_size` is 0.

    Raises:
        ValueError: unknown `name`, or a bad `validation_size`, `seed` or
            conversion setting, or a conversion setting for a dataset of fixed
            shape.
        DataNotFoundError: `data_dir` is missing, or holds only some of the IDX
            files, or holds none of the expected files and downloading is off.
        DataError: a file is corrupt or its contents are not as expected.
    """
    if name not in DATASET_NAMES:
        raise ValueError(
            f"Unknown dataset name {name!r}; expected one of {DATASET_NAMES}."
        )
    _check_seed(seed, "seed")
    if (
        not isinstance(validation_size, (int, np.integer))
        or isinstance(validation_size, bool)
        or validation_size < 0
    ):
        raise ValueError(
            f"validation_size must be a non-negative integer; got {validation_size!r}."
        )
    image_size = image_folders.normalize_image_size(image_size)
    channels = image_folders.check_channels(channels)
    if name not in DATA_DEFINED_DATASETS and (image_size or channels):
        raise ValueError(
            f"image_size={image_size} and channels={channels} convert the images "
            f"of the datasets {DATA_DEFINED_DATASETS}; {name} has the fixed shape "
            f"{EXAMPLE_SHAPES[name]}, so expected image_size=() and channels=0. "
            f"(Its IDX files can be read as dataset 'idx' and converted.)"
        )

    if train_subset and name != "dsprites":
        raise ValueError(
            f"train_subset={train_subset} limits the training images of dsprites; "
            f"dataset {name} has no such option, so expected train_subset=0."
        )
    class_names = ()
    factor_names, factor_sizes = (), ()
    if name == "dsprites":
        train, test, source = _load_dsprites(data_dir, cache_dir, train_subset)
        num_classes = NUM_CLASSES[name]
        factor_names, factor_sizes = dsprites.FACTOR_NAMES, dsprites.FACTOR_SIZES
    elif name == "toy2d":
        rng = np.random.default_rng(seed)
        train = ArraySplit(*toy2d.draw_points(rng))
        test = ArraySplit(*toy2d.draw_points(rng))
        num_classes = 2
        source = f"generated (seed {seed})"
    elif name == "folder":
        train, test, class_names, source = _load_folder(
            data_dir,
            image_size=image_size,
            channels=channels,
            test_fraction=test_fraction,
            cache_dir=cache_dir,
            non_image_files=non_image_files,
        )
        num_classes = max(1, len(class_names))
    elif name in DATA_DEFINED_DATASETS:
        train, test, source = (
            _load_idx_directory(data_dir) if name == "idx" else _load_any_npz(data_dir)
        )
        train, test = (
            ArraySplit(
                image_folders.convert_images(
                    split.images, image_size=image_size, channels=channels
                ),
                split.labels,
            )
            for split in (train, test)
        )
        if train.images.shape[1:] != test.images.shape[1:]:
            raise DataError(
                f"The {source} hold training images of shape "
                f"{train.images.shape[1:]} but test images of shape "
                f"{test.images.shape[1:]}; expected one shape for both. Set "
                f"image_size (--image_size) and channels (--channels) to "
                f"convert both to one."
            )
        num_classes = (
            int(max(train.labels.max(initial=0), test.labels.max(initial=0))) + 1
        )
    else:
        train, test, source = _load_image_dataset(name, data_dir, allow_download)
        num_classes = _NUM_IMAGE_CLASSES

    validation = None
    if validation_size > 0:
        if validation_size >= train.num_examples:
            raise ValueError(
                f"validation_size={validation_size} leaves no training examples: "
                f"the {name} training split has {train.num_examples} examples, so "
                f"expected validation_size < {train.num_examples}."
            )
        order = np.random.default_rng([_VALIDATION_STREAM, seed]).permutation(
            train.num_examples
        )
        # Sorting keeps both parts in file order, which makes them easy to inspect.
        validation_indices = np.sort(order[:validation_size])
        train_indices = np.sort(order[validation_size:])
        validation = train.subset(validation_indices)
        train = train.subset(train_indices)

    return DatasetArrays(
        name=name,
        train=train,
        validation=validation,
        test=test,
        num_classes=num_classes,
        source=source,
        class_names=tuple(class_names),
        factor_names=factor_names,
        factor_sizes=factor_sizes,
    )


def _load_dsprites(
    data_dir: str | None, cache_dir: str | None, train_subset: int
) -> tuple[ArraySplit, ArraySplit, str]:
    """Reads or renders dSprites; returns (train, test, source)."""
    try:
        arrays = dsprites.load(data_dir, cache_dir)
    except dsprites.DspritesError as error:
        raise DataError(str(error)) from None
    splits = []
    for indices in dsprites.split_indices(arrays.num_examples, train_subset):
        factors = arrays.factor_classes[indices]
        splits.append(
            ArraySplit(
                arrays.images(indices),
                factors[:, 0].copy(),
                factors,
                arrays.factor_values[indices],
            )
        )
    return splits[0], splits[1], arrays.source


def _load_folder(
    root: str | None,
    *,
    image_size: tuple[int, ...],
    channels: int,
    test_fraction: float,
    cache_dir: str | None,
    non_image_files: str,
) -> tuple[ArraySplit, ArraySplit, tuple[str, ...], str]:
    """Reads an image folder; returns (train, test, class names, source)."""
    image_folders.check_test_fraction(test_fraction)
    if root is None:
        raise DataNotFoundError(
            "Dataset 'folder' needs data_dir, the folder of images to read; none "
            "was given."
        )
    try:
        folder = image_folders.load_image_folder(
            root,
            image_size=image_size,
            channels=channels,
            cache_dir=cache_dir,
            non_image_files=non_image_files,
        )
        train_indices, test_indices = folder.split(test_fraction)
    except image_folders.ImageFolderNotFoundError as error:
        raise DataNotFoundError(str(error)) from None
    except image_folders.ImageFolderError as error:
        raise DataError(str(error)) from None
    train = ArraySplit(folder.images[train_indices], folder.labels[train_indices])
    test = ArraySplit(folder.images[test_indices], folder.labels[test_indices])
    return train, test, folder.class_names, folder.source


def _load_idx_directory(data_dir: str | None) -> tuple[ArraySplit, ArraySplit, str]:
    """Reads the four IDX files of dataset "idx"; returns (train, test, source)."""
    patterns = ", ".join(" or ".join(names) for names in IDX_FILE_PATTERNS.values())
    if data_dir is None or not os.path.isdir(data_dir):
        raise DataNotFoundError(
            f"Data directory {data_dir!r} for dataset 'idx' does not exist (or is "
            f"not a directory); expected a directory holding four IDX files named "
            f"like {patterns} (gzip-compressed or plain)."
        )
    paths = {}
    for role, role_patterns in IDX_FILE_PATTERNS.items():
        matches = sorted(
            {
                path
                for pattern in role_patterns
                for path in glob.glob(os.path.join(data_dir, pattern))
            }
        )
        if len(matches) != 1:
            found = (
                "none"
                if not matches
                else ", ".join(os.path.basename(path) for path in matches)
            )
            raise DataNotFoundError(
                f"Data directory {data_dir!r} for dataset 'idx' should hold exactly "
                f"one file named like {' or '.join(role_patterns)} (the "
                f"{role.replace('_', ' ')}); found {found}. Expected the four files "
                f"{patterns}; keep one dataset per directory."
            )
        paths[role] = matches[0]
    splits = [
        _checked_any_image_split(
            read_idx(paths[f"{split}_images"]),
            read_idx(paths[f"{split}_labels"]),
            images_origin=paths[f"{split}_images"],
            labels_origin=paths[f"{split}_labels"],
        )
        for split in ("train", "test")
    ]
    return splits[0], splits[1], f"idx files in {data_dir}"


def _load_any_npz(path: str | None) -> tuple[ArraySplit, ArraySplit, str]:
    """Reads the archive of dataset "npz"; returns (train, test, source)."""
    if path is not None and os.path.isdir(path):
        archives = sorted(glob.glob(os.path.join(path, "*.npz")))
        if len(archives) != 1:
            raise DataNotFoundError(
                f"Data directory {path!r} for dataset 'npz' holds "
                f"{len(archives)} .npz files "
                f"({', '.join(map(os.path.basename, archives)) or 'none'}); expected "
                f"exactly one, or pass the archive's path itself."
            )
        path = archives[0]
    if path is None or not os.path.isfile(path):
        raise DataNotFoundError(
            f"Archive {path!r} for dataset 'npz' does not exist; expected the path "
            f"of a Keras-style .npz file with keys {list(NPZ_KEYS)} (or a directory "
            f"holding one)."
        )
    train, test = _load_npz(path, check_split=_checked_any_image_split)
    return train, test, f"npz file {path}"


def _load_image_dataset(
    name: str, data_dir: str | None, allow_download: bool
) -> tuple[ArraySplit, ArraySplit, str]:
    """Finds and reads MNIST or Fashion-MNIST; returns (train, test, source)."""
    npz_name = f"{name}.npz"
    expected = (
        f"the four IDX files {', '.join(IDX_FILE_NAMES.values())}, or "
        f"a Keras-style archive {npz_name}"
    )

    if data_dir is None:
        if not allow_download:
            raise DataNotFoundError(
                f"No data_dir was given for {name} and allow_download is False, so "
                f"there is nowhere to read the data from; pass a directory holding "
                f"{expected}, or allow the Keras download."
            )
        return _download_with_keras(name)

    if not os.path.isdir(data_dir):
        raise DataNotFoundError(
            f"Data directory {data_dir!r} for {name} does not exist (or is not a "
            f"directory); expected a directory holding {expected}."
        )

    idx_paths = {
        key: os.path.join(data_dir, file_name)
        for key, file_name in IDX_FILE_NAMES.items()
    }
    present = [key for key, path in idx_paths.items() if os.path.exists(path)]
    npz_path = os.path.join(data_dir, npz_name)

    if len(present) == len(idx_paths):
        train = _checked_image_split(
            read_idx(idx_paths["train_images"]),
            read_idx(idx_paths["train_labels"]),
            images_origin=idx_paths["train_images"],
            labels_origin=idx_paths["train_labels"],
        )
        test = _checked_image_split(
            read_idx(idx_paths["test_images"]),
            read_idx(idx_paths["test_labels"]),
            images_origin=idx_paths["test_images"],
            labels_origin=idx_paths["test_labels"],
        )
        return train, test, f"idx files in {data_dir}"

    if os.path.exists(npz_path):
        return (*_load_npz(npz_path), f"npz file {npz_path}")

    if present:
        # Some IDX files but not all: almost certainly an incomplete copy, which
        # a silent download would hide.
        missing = [IDX_FILE_NAMES[key] for key in idx_paths if key not in present]
        raise DataNotFoundError(
            f"Data directory {data_dir!r} for {name} holds only some of the IDX "
            f"files: {', '.join(missing)} missing. Expected all four of "
            f"{', '.join(IDX_FILE_NAMES.values())} (or an archive {npz_name})."
        )

    if not allow_download:
        raise DataNotFoundError(
            f"Data directory {data_dir!r} holds no {name} data and "
            f"allow_download is False; expected {expected} in that directory."
        )
    logging.info(
        "No %s files in %s (expected %s); trying the Keras download.",
        name,
        data_dir,
        expected,
    )
    return _download_with_keras(name)


def _load_npz(path: str, check_split=None) -> tuple[ArraySplit, ArraySplit]:
    """Reads a Keras-style archive with keys x_train, y_train, x_test, y_test.

    `check_split(images, labels, images_origin=, labels_origin=)` checks and
    packs each split; by default as MNIST (`_checked_image_split`).
    """
    check_split = check_split or _checked_image_split
    try:
        with np.load(path, allow_pickle=False) as archive:
            present_keys = sorted(archive.files)
            arrays = {key: archive[key] for key in NPZ_KEYS if key in present_keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"Archive {path!r} could not be read as a NumPy .npz file ({err}); "
            f"expected a Keras-style archive with keys {list(NPZ_KEYS)}."
        ) from err
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise DataError(
            f"Archive {path!r} lacks the keys {missing}: it holds {present_keys} "
            f"but expected {list(NPZ_KEYS)}, as written by the Keras datasets."
        )
    train = check_split(
        arrays["x_train"],
        arrays["y_train"],
        images_origin=f"{path} [x_train]",
        labels_origin=f"{path} [y_train]",
    )
    test = check_split(
        arrays["x_test"],
        arrays["y_test"],
        images_origin=f"{path} [x_test]",
        labels_origin=f"{path} [y_test]",
    )
    return train, test


def _download_with_keras(name: str) -> tuple[ArraySplit, ArraySplit, str]:
    """Fetches the data with the Keras downloader (cached under ~/.keras)."""
    logging.info("Downloading %s with the Keras dataset downloader.", name)
    try:
        import tf_keras  # pylint: disable=g-import-not-at-top

        keras_datasets = tf_keras.datasets
    except ImportError:
        keras_datasets = tf.keras.datasets
    loader = getattr(keras_datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as err:  # pylint: disable=broad-except
        # Keras reports network failures with a plain Exception.
        raise DataNotFoundError(
            f"Downloading {name} with Keras failed ({err}); expected network "
            f"access, or pass data_dir pointing at a directory holding the four "
            f"IDX files {', '.join(IDX_FILE_NAMES.values())}."
        ) from err
    origin = f"Keras {name} download"
    train = _checked_image_split(
        x_train, y_train, images_origin=origin, labels_origin=origin
    )
    test = _checked_image_split(
        x_test, y_test, images_origin=origin, labels_origin=origin
    )
    return train, test, "keras download"


def _checked_image_split(
    images: np.ndarray, labels: np.ndarray, *, images_origin: str, labels_origin: str
) -> ArraySplit:
    """Checks raw image/label arrays and packs them as uint8 [N, 28, 28, 1]."""
    shape_ok = (
        images.ndim in (3, 4)
        and images.shape[1:3] == (_IMAGE_SIZE, _IMAGE_SIZE)
        and (images.ndim == 3 or images.shape[3] == 1)
    )
    if not shape_ok or images.dtype != np.uint8:
        raise DataError(
            f"Images from {images_origin} have shape {list(images.shape)} and "
            f"dtype {images.dtype}; expected uint8 images of shape "
            f"[N, {_IMAGE_SIZE}, {_IMAGE_SIZE}] (IDX magic "
            f"0x{_IDX_IMAGES_MAGIC:08X})."
        )
    _check_label_array(
        labels,
        images,
        labels_origin=labels_origin,
        images_origin=images_origin,
        format_note=f" (IDX magic 0x{_IDX_LABELS_MAGIC:08X})",
    )
    out_of_range = np.flatnonzero((labels < 0) | (labels >= _NUM_IMAGE_CLASSES))
    if out_of_range.size:
        first = int(out_of_range[0])
        raise DataError(
            f"Labels from {labels_origin} hold {out_of_range.size} values outside "
            f"[0, {_NUM_IMAGE_CLASSES - 1}] (the first is {labels[first]} at "
            f"index {first}); expected class indices 0 to "
            f"{_NUM_IMAGE_CLASSES - 1}."
        )
    return ArraySplit(
        images=images.reshape(images.shape[0], _IMAGE_SIZE, _IMAGE_SIZE, 1),
        labels=labels.astype(np.int64),
    )


def _check_label_array(
    labels: np.ndarray,
    images: np.ndarray,
    *,
    labels_origin: str,
    images_origin: str,
    format_note: str = "",
) -> None:
    """Integer labels of shape [N], one per image, or a `DataError`."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"Labels from {labels_origin} have shape {list(labels.shape)} and "
            f"dtype {labels.dtype}; expected integer labels of shape [N]"
            f"{format_note}."
        )
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"Labels from {labels_origin} count {labels.shape[0]} examples but "
            f"images from {images_origin} count {images.shape[0]}; expected one "
            f"label per image."
        )


def _checked_any_image_split(
    images: np.ndarray, labels: np.ndarray, *, images_origin: str, labels_origin: str
) -> ArraySplit:
    """Checks image/label arrays of any size; packs them as uint8 [N, h, w, c]."""
    if (
        images.dtype != np.uint8
        or images.ndim not in (3, 4)
        or (images.ndim == 4 and images.shape[3] not in (1, 3))
        or images.shape[0] < 1
        or min(images.shape[1:3]) < 1
    ):
        raise DataError(
            f"Images from {images_origin} have shape {list(images.shape)} and "
            f"dtype {images.dtype}; expected at least one uint8 image, shaped "
            f"[N, height, width] (gray) or [N, height, width, 1 or 3] (gray or "
            f"RGB)."
        )
    _check_label_array(
        labels, images, labels_origin=labels_origin, images_origin=images_origin
    )
    negative = np.flatnonzero(labels < 0)
    if negative.size:
        raise DataError(
            f"Labels from {labels_origin} hold {negative.size} negative values "
            f"(the first is {labels[negative[0]]} at index {negative[0]}); "
            f"expected class indices 0, 1, 2, ..."
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    return ArraySplit(images=images, labels=labels.astype(np.int64))


# ---------------------------------------------------------------------------
# Serving batches.


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Number of full batches in one epoch (the remainder is dropped)."""
    _check_positive_int(batch_size, "batch_size")
    if num_examples < 0:
        raise ValueError(f"num_examples must be non-negative; got {num_examples!r}.")
    return int(num_examples) // int(batch_size)


def binarize_numpy(images_uint8: np.ndarray, binarization: str, seed: int) -> np.ndarray:
    """Scales raw pixels to [0, 1] with the same rule as the tf.data pipelines.

    "none": x / 255. "static": 1 where x / 255 > 0.5, else 0. "dynamic": a
    Bernoulli(x / 255) draw per pixel from a generator seeded by `seed` (the
    same seed gives the same result; this is the draw `eval_batches` uses).

    Args:
        images_uint8: uint8 [N, ...] raw pixels. Float data (toy2d) is also
            accepted with "none" and returned as float32 unchanged.
        binarization: one of `BINARIZATIONS`.
        seed: non-negative seed for "dynamic".

    Returns:
        float32 array of the input's shape.
    """
    images_uint8 = np.asarray(images_uint8)
    _check_binarization(binarization, images_uint8.dtype)
    if np.issubdtype(images_uint8.dtype, np.floating):
        return images_uint8.astype(np.float32)
    _check_seed(seed, "seed")
    values, scale = _binarize_to_uint8(images_uint8, binarization, seed)
    return values.astype(np.float32) / np.float32(scale)


def _binarize_to_uint8(
    images: np.ndarray, binarization: str, seed: int
) -> tuple[np.ndarray, float]:
    """Returns (values, scale) with values / scale the [0, 1] image; uint8."""
    if binarization == "none":
        return images, 255.0
    if binarization == "static":
        # x / 255 > 0.5 exactly when x >= 128; comparing integers avoids rounding.
        return (images > 127).astype(np.uint8), 1.0
    rng = np.random.default_rng([_BINARIZE_STREAM, seed])
    binary = np.empty(images.shape, np.uint8)
    for start in range(0, images.shape[0], _BINARIZE_CHUNK):
        chunk = images[start : start + _BINARIZE_CHUNK]
        probabilities = chunk.astype(np.float32) / np.float32(255.0)
        uniform = rng.random(chunk.shape, dtype=np.float32)
        binary[start : start + _BINARIZE_CHUNK] = uniform < probabilities
    return binary, 1.0


# id(images), id(labels) of a split -> its arrays as tensors (images as
# stored, labels int32). Made once per split rather than once per epoch: the
# dataset of an epoch captures them, and a dataset is only freed when
# Python's cycle collector next runs, so a copy per epoch (47 MB for MNIST)
# piled up between collections, which grow rarer as a run goes on.
_SPLIT_TENSORS: dict[tuple[int, int], tuple[tf.Tensor, tf.Tensor]] = {}


def _split_tensors(split: ArraySplit) -> tuple[tf.Tensor, tf.Tensor]:
    key = (id(split.images), id(split.labels))
    tensors = _SPLIT_TENSORS.get(key)
    if tensors is None:
        tensors = (tf.constant(split.images), tf.constant(split.labels.astype(np.int32)))
        _SPLIT_TENSORS[key] = tensors
        # The entry goes with the arrays, so that a later array given the
        # same id never finds this one's tensors.
        for array in (split.images, split.labels):
            weakref.finalize(array, _SPLIT_TENSORS.pop, key, None)
    return tensors


def train_batches(
    split: ArraySplit,
    *,
    batch_size: int,
    epoch: int,
    seed: int,
    binarization: str,
    num_classes: int,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """One training epoch of full batches in an order fixed by (seed, epoch).

    The same (seed, epoch) always gives the same batches, so a run resumed
    after `k` batches of an epoch passes `skip_batches=k` and continues
    exactly where it stopped. The last `N mod batch_size` examples of each
    epoch's permutation are dropped so that every batch has the same shape.

    Args:
        split: the examples.
        batch_size: examples per batch, at most N.
        epoch: non-negative epoch number; each epoch has its own order.
        seed: non-negative seed of the order (and of dynamic binarization).
        binarization: one of `BINARIZATIONS`: "none" gives x / 255; "static"
            gives 1 where x / 255 > 0.5; "dynamic" draws Bernoulli(x / 255) afresh
            every epoch, seeded by (seed, epoch, batch index) so a resumed epoch
            sees the same draws. Float data (toy2d) must use "none" and is passed
            through unchanged.
        num_classes: K, the one-hot depth; every label must be in [0, K).
        skip_batches: number of leading batches of the epoch to leave out.

    Returns:
        A dataset of `steps_per_epoch(N, batch_size) - skip_batches` elements,
        each a dict with static shapes:
            image: float32 [batch_size, *example_shape] in [0, 1].
            label: int32 [batch_size].
            label_onehot: float32 [batch_size, K].
    """
    _check_binarization(binarization, split.images.dtype)
    _check_labels(split.labels, num_classes)
    _check_seed(seed, "seed")
    _check_seed(epoch, "epoch")
    num_batches = steps_per_epoch(split.num_examples, batch_size)
    if num_batches == 0:
        raise ValueError(
            f"batch_size={batch_size} is larger than the split, which has "
            f"{split.num_examples} examples; expected batch_size <= "
            f"{split.num_examples} so that an epoch has at least one full batch."
        )
    if (
        not isinstance(skip_batches, (int, np.integer))
        or not 0 <= skip_batches <= num_batches
    ):
        raise ValueError(
            f"skip_batches must be an integer in [0, {num_batches}] (the number "
            f"of batches in an epoch of {split.num_examples} examples at batch "
            f"size {batch_size}); got {skip_batches!r}."
        )

    order = np.random.default_rng([_SHUFFLE_STREAM, seed, epoch]).permutation(
        split.num_examples
    )
    batch_indices = order[: num_batches * batch_size].reshape(num_batches, batch_size)[
        skip_batches:
    ]
    # Absolute batch numbers, so that dynamic binarization of a resumed epoch
    # matches the uninterrupted one.
    batch_numbers = np.arange(skip_batches, num_batches, dtype=np.int64)

    images, labels = _split_tensors(split)
    epoch_seed = tf.constant([seed, epoch], dtype=tf.int64)
    is_float = np.issubdtype(split.images.dtype, np.floating)

    def make_batch(batch_number, indices):
        pixels = tf.gather(images, indices)
        if is_float:
            image = tf.cast(pixels, tf.float32)
        elif binarization == "none":
            image = tf.cast(pixels, tf.float32) / 255.0
        elif binarization == "static":
            image = tf.cast(pixels > 127, tf.float32)
        else:
            batch_seed = tf.random.experimental.stateless_fold_in(
                epoch_seed, batch_number
            )
            uniform = tf.random.stateless_uniform(tf.shape(pixels), seed=batch_seed)
            image = tf.cast(uniform < tf.cast(pixels, tf.float32) / 255.0, tf.float32)
        label = tf.gather(labels, indices)
        return {
            "image": image,
            "label": label,
            "label_onehot": tf.one_hot(label, num_classes, dtype=tf.float32),
        }

    dataset = tf.data.Dataset.from_tensor_slices((batch_numbers, batch_indices))
    dataset = dataset.map(
        make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def eval_batches(
    split: ArraySplit, *, batch_size: int, seed: int, binarization: str, num_classes: int
) -> tf.data.Dataset:
    """The whole split in order, in batches of one fixed shape.

    The last batch is padded up to `batch_size` with zero images and zero
    one-hot labels; `mask` tells real examples (1) from padding (0), so
    `sum(mask * per_example_value) / sum(mask)` is an exact split average.

    Args:
        split: the examples.
        batch_size: examples per batch.
        seed: non-negative seed of the dynamic binarization, which is drawn once
            for the whole split (with `binarize_numpy`) so that every call with the
            same seed evaluates on the same binary images.
        binarization: one of `BINARIZATIONS` (see `train_batches`).
        num_classes: K, the one-hot depth; every label must be in [0, K).

    Returns:
        A dataset of ceil(N / batch_size) elements, each a dict with static
        shapes:
            image: float32 [batch_size, *example_shape] in [0, 1].
            label: int32 [batch_size] (0 for padding).
            label_onehot: float32 [batch_size, K] (all zero for padding).
            mask: float32 [batch_size].
    """
    _check_binarization(binarization, split.images.dtype)
    _check_labels(split.labels, num_classes)
    _check_seed(seed, "seed")
    _check_positive_int(batch_size, "batch_size")
    if split.num_examples == 0:
        raise ValueError(
            "eval_batches got an empty split; expected at least one example to evaluate."
        )

    num_batches = -(-split.num_examples // batch_size)
    positions = np.arange(num_batches * batch_size).reshape(num_batches, batch_size)
    masks = (positions < split.num_examples).astype(np.float32)
    indices = np.where(positions < split.num_examples, positions, 0)

    # Binarizing the whole split up front (uint8, so a quarter of the float
    # size) makes the batches equal `binarize_numpy` of the split exactly.
    if np.issubdtype(split.images.dtype, np.floating):
        values, scale = split.images.astype(np.float32), 1.0
    else:
        values, scale = _binarize_to_uint8(split.images, binarization, seed)
    images = tf.constant(values)
    labels = tf.constant(split.labels.astype(np.int32))
    example_rank = split.images.ndim - 1

    def make_batch(batch_indices, mask):
        image = tf.cast(tf.gather(images, batch_indices), tf.float32) / scale
        image *= tf.reshape(mask, [batch_size] + [1] * example_rank)
        label = tf.gather(labels, batch_indices) * tf.cast(mask, tf.int32)
        label_onehot = tf.one_hot(label, num_classes, dtype=tf.float32)
        return {
            "image": image,
            "label": label,
            "label_onehot": label_onehot * mask[:, None],
            "mask": mask,
        }

    dataset = tf.data.Dataset.from_tensor_slices((indices, masks))
    # A sequential map: a gather is cheap next to the model's step, and the
    # prefetch below overlaps it. A parallel one here is rewritten by
    # TensorFlow 2.21 under op determinism (the programs' default) when the
    # trainer evaluates, and the rewrite logs an error every epoch ("NodeDef
    # mentions attribute use_unbounded_threadpool").
    dataset = dataset.map(make_batch)
    return dataset.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------
# Argument checks.


def conditioning_labels(model, batch: Mapping[str, tf.Tensor]) -> tf.Tensor | None:
    """What a model's methods take as `labels` for a batch of
    `train_batches` or `eval_batches`: its one-hot "label_onehot" when the
    model is conditional (`model.is_conditional`), else None."""
    if getattr(model, "is_conditional", False):
        return batch["label_onehot"]
    return None


def _check_binarization(binarization: str, dtype: np.dtype) -> None:
    if binarization not in BINARIZATIONS:
        raise ValueError(
            f"Unknown binarization {binarization!r}; expected one of {BINARIZATIONS}."
        )
    if np.issubdtype(dtype, np.floating):
        if binarization != "none":
            raise ValueError(
                f"binarization={binarization!r} was requested for float data "
                f"(dtype {dtype}, e.g. toy2d points), which are not pixel "
                f"intensities; expected binarization='none'."
            )
    elif dtype != np.uint8:
        raise ValueError(
            f"Images have dtype {dtype}; expected uint8 pixels (0 to 255) or "
            f"float points (toy2d)."
        )


def _check_labels(labels: np.ndarray, num_classes: int) -> None:
    _check_positive_int(num_classes, "num_classes")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Labels range over [{labels.min()}, {labels.max()}] but "
            f"num_classes={num_classes}; expected every label in "
            f"[0, {num_classes - 1}]."
        )


def _check_positive_int(value: int, what: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{what} must be a positive integer; got {value!r}.")


def _check_seed(value: int, what: str) -> None:
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, bool)
        or not 0 <= value < 2**63
    ):
        raise ValueError(f"{what} must be an integer in [0, 2**63); got {value!r}.")


__all__ = (
    "ArraySplit",
    "BINARIZATIONS",
    "DATASET_NAMES",
    "DATA_DEFINED_DATASETS",
    "DataError",
    "DataNotFoundError",
    "DatasetArrays",
    "EXAMPLE_SHAPES",
    "FACTOR_DATASETS",
    "IDX_FILE_NAMES",
    "IDX_FILE_PATTERNS",
    "NPZ_KEYS",
    "binarize_numpy",
    "eval_batches",
    "load_dataset",
    "read_idx",
    "steps_per_epoch",
    "train_batches",
)
