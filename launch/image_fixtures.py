"""Demo image sets written as image folders, for make_image_folder and tests.

`coloured_shapes` draws a small synthetic RGB set and `write_image_folder`
writes any image set as the class-subfolder layout that
`vae.image_folders.load_image_folder` reads, so that `--dataset=folder` can
be tried without downloading anything. They make inputs for the library and
are not part of it, so they live beside the program that uses them
(`launch/make_image_folder.py`).
"""

from collections.abc import Sequence
import os

import imageio.v3 as iio
import numpy as np

from vae import image_folders


def write_image_folder(
    root: str,
    images: np.ndarray,
    labels: Sequence[int] | None,
    class_names: Sequence[str] = (),
    *,
    extension: str = ".png",
) -> list[str]:
    """Writes images as files in class subfolders.

    The inverse of `vae.image_folders.load_image_folder`.

    Args:
        root: the folder to write into (created if missing).
        images: uint8 `[N, height, width, 1 or 3]`.
        labels: class index of each image, or None to write the images directly
            into `root` (unlabelled).
        class_names: name of each class's subfolder; default: the label number.
        extension: ".png" or ".bmp" (lossless), or ".jpg".

    Returns:
        The paths written, in order.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(
            f"write_image_folder expects uint8 images [N, height, width, 1 or 3]; "
            f"got {images.dtype} {list(images.shape)}."
        )
    if extension.lower() not in image_folders.IMAGE_EXTENSIONS:
        raise ValueError(
            f"extension must be one of "
            f"{image_folders.IMAGE_EXTENSIONS}; got {extension!r}."
        )
    paths = []
    digits = len(str(max(len(images) - 1, 0)))
    for index, pixels in enumerate(images):
        directory = root
        if labels is not None:
            label = int(labels[index])
            directory = os.path.join(
                root, class_names[label] if class_names else str(label)
            )
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{index:0{digits}d}{extension}")
        iio.imwrite(path, pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        paths.append(path)
    return paths


SHAPE_CLASSES = ("circle", "square", "triangle")


def coloured_shapes(
    num_images: int, image_size: int = 32, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A small synthetic RGB image set: one filled shape per image.

    Each image shows a circle, a square or a triangle (label 0, 1, 2, in turn)
    of a random colour, size and position on a background of another random
    colour, so that the class is the shape and colour carries no label. Handy
    for trying colour models and image folders without downloading anything.

    Args:
        num_images: how many images.
        image_size: their height and width in pixels (at least 8).
        seed: of the colours, sizes and positions.

    Returns:
        uint8 `[num_images, image_size, image_size, 3]` images and int64
        `[num_images]` labels; the class names are `SHAPE_CLASSES`.
    """
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer; got {num_images!r}.")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8; got {image_size!r}.")
    rng = np.random.default_rng(seed)
    labels = np.arange(num_images, dtype=np.int64) % len(SHAPE_CLASSES)
    rows, columns = np.mgrid[0:image_size, 0:image_size] + 0.5
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    for index, label in enumerate(labels):
        background, foreground = rng.integers(0, 256, size=(2, 3))
        # Keep the shape visible: at least 96 levels apart in some channel.
        while np.abs(background - foreground).max() < 96:
            foreground = rng.integers(0, 256, size=3)
        radius = rng.uniform(0.2, 0.4) * image_size
        centre_row, centre_column = rng.uniform(radius, image_size - radius, size=2)
        dy, dx = rows - centre_row, columns - centre_column
        if label == 0:
            inside = dy**2 + dx**2 <= radius**2
        elif label == 1:
            inside = (np.abs(dy) <= radius * 0.8) & (np.abs(dx) <= radius * 0.8)
        else:  # Apex up: the half-width grows from 0 at the top to radius at the base.
            inside = (np.abs(dy) <= radius) & (np.abs(dx) <= (dy + radius) / 2)
        images[index] = np.where(inside[..., np.newaxis], foreground, background)
    return images, labels
