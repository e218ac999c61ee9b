r"""Writes an image folder to try --dataset=folder with: PNGs in class subfolders.

Two sources:

    # Fashion-MNIST's first 3000 test images as PNGs, one subfolder per class:
    python -m launch.make_image_folder --source=fashion_mnist \
        --data_dir=../shared/data/fashion_mnist --split=test \
        --num_images=3000 --output_dir=data/fashion_pngs

    # 240 generated 32x32 RGB images of coloured circles, squares, triangles:
    python -m launch.make_image_folder --source=shapes --num_images=240 \
        --output_dir=data/shapes_rgb

then `vae-train --dataset=folder --data_dir=data/fashion_pngs ...`.

--source is mnist, fashion_mnist, idx or npz (read from --data_dir as
vae-train reads them) or shapes (`launch.image_fixtures.coloured_shapes`).
--split=test or train writes that split's images into class subfolders;
--split=both writes train/ and test/ folders, each with class subfolders.
Class subfolders are named so that their sorted order is the label order:
Fashion-MNIST's "0_t-shirt_top" ... "9_ankle_boot", shapes' "0_circle",
"1_square", "2_triangle", otherwise the zero-padded label ("00" ... "25").
The output folder must not exist yet, or be empty.
"""

from collections.abc import Sequence
import dataclasses
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np

from launch import errors
from launch import image_fixtures
from vae import datasets

SOURCES = ("mnist", "fashion_mnist", "idx", "npz", "shapes")
SPLITS = ("test", "train", "both")
FORMATS = ("png", "bmp", "jpg")
FASHION_MNIST_CLASSES = (
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)

_SOURCE = flags.DEFINE_enum("source", None, SOURCES, "Where the images come from.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir",
    None,
    "mnist, fashion_mnist, idx, npz: where the data lie (as vae-train's --data_dir).",
)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "The image folder to write; must not exist or be empty."
)
_SPLIT = flags.DEFINE_enum(
    "split", "test", SPLITS, "Which split to write; both: train/ and test/ subfolders."
)
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images",
    0,
    "Images per split: the first N in the data's order (0: "
    "all); shapes: how many to draw (0: 200).",
    lower_bound=0,
)
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", 32, "shapes: height and width in pixels.", lower_bound=8
)
_FORMAT = flags.DEFINE_enum("format", "png", FORMATS, "Image file format.")
_SEED = flags.DEFINE_integer("seed", 0, "shapes: seed of the drawing.", lower_bound=0)

flags.mark_flags_as_required(["source", "output_dir"])

_DEFAULT_NUM_SHAPES = 200


@dataclasses.dataclass(frozen=True)
class MakeFolderConfig:
    source: str
    output_dir: str
    data_dir: str | None = None
    split: str = "test"
    num_images: int = 0
    image_size: int = 32
    image_format: str = "png"
    seed: int = 0


def _class_names(source: str, num_classes: int) -> Sequence[str]:
    """Subfolder names whose sorted order is the label order."""
    if source == "fashion_mnist":
        return [f"{label}_{name}" for label, name in enumerate(FASHION_MNIST_CLASSES)]
    if source == "shapes":
        return [
            f"{label}_{name}" for label, name in enumerate(image_fixtures.SHAPE_CLASSES)
        ]
    width = len(str(num_classes - 1))
    return [f"{label:0{width}d}" for label in range(num_classes)]


def _splits(config: MakeFolderConfig):
    """[(subfolder, images, labels, num_classes)] to write."""
    names = ["train", "test"] if config.split == "both" else [config.split]
    if config.source == "shapes":
        count = config.num_images or _DEFAULT_NUM_SHAPES
        return [
            (
                name,
                *image_fixtures.coloured_shapes(
                    count, config.image_size, seed=config.seed + index
                ),
                len(image_fixtures.SHAPE_CLASSES),
            )
            for index, name in enumerate(names)
        ]
    arrays = datasets.load_dataset(config.source, config.data_dir, allow_download=False)
    chosen = []
    for name in names:
        split = getattr(arrays, name)
        count = config.num_images or split.num_examples
        chosen.append(
            (name, split.images[:count], split.labels[:count], arrays.num_classes)
        )
    return chosen


def make_image_folder(config: MakeFolderConfig) -> dict:
    """Writes the folder; returns {split: number of images written}.

    Raises:
      errors.ConfigError: the output folder holds files already.
      datasets.DataError: the source data cannot be read.
    """
    if os.path.exists(config.output_dir) and (
        not os.path.isdir(config.output_dir) or os.listdir(config.output_dir)
    ):
        raise errors.ConfigError(
            f"--output_dir={config.output_dir} exists and is not an empty "
            "directory; expected a new or empty one, so that the folder holds "
            "only the images written now."
        )
    counts = {}
    for name, images, labels, num_classes in _splits(config):
        root = (
            os.path.join(config.output_dir, name)
            if config.split == "both"
            else config.output_dir
        )
        image_fixtures.write_image_folder(
            root,
            np.asarray(images),
            labels,
            _class_names(config.source, num_classes),
            extension=f".{config.image_format}",
        )
        counts[name] = int(len(images))
        logging.info("Wrote %d %s images to %s.", len(images), name, root)
    return counts


def main(argv):
    errors.reject_positional_arguments(argv)
    config = MakeFolderConfig(
        source=_SOURCE.value,
        output_dir=_OUTPUT_DIR.value,
        data_dir=_DATA_DIR.value,
        split=_SPLIT.value,
        num_images=_NUM_IMAGES.value,
        image_size=_IMAGE_SIZE.value,
        image_format=_FORMAT.value,
        seed=_SEED.value,
    )
    with errors.exit_on_user_error():
        counts = make_image_folder(config)
    print(" ".join(f"{name}={count}" for name, count in counts.items()))


if __name__ == "__main__":
    app.run(main, flags_parser=errors.parse_flags_or_exit)
