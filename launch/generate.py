r"""Draws digits of chosen labels, and redraws your own images as other labels.

    vae-generate --workdir=runs/keras_cvae_mlp --labels=0,1,2,3,4,5,6,7,8,9

    vae-generate --workdir=runs/keras_cvae_mlp --images=my_seven.png \
        --image_labels=7 --target_labels=0,1,2,3,4,5,6,7,8,9

The first writes OUTPUT_DIR/samples.png: one column per label, each row one
prior draw z decoded with every label. The second encodes each image (with
the label it shows) and decodes its code with every target label, writing
OUTPUT_DIR/style_transfer.png: one row per image, the image first. Images are
expected in the model's size and channels (28x28 grayscale PNGs for MNIST;
RGB for a colour model); --resize converts others. For a gray model, a dark
digit on a light background is inverted to MNIST's white-on-black unless
--invert=false.
The model comes from the run's latest checkpoint or (--source=saved_model)
its export.
"""

import dataclasses
import json
import os

from absl import app
from absl import flags
from absl import logging

from launch import errors
from launch import flag_types
from launch import runs
from vae import atomic_files
from vae import generation
from vae import pictures

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained run (vae-train).")
_SOURCE = flags.DEFINE_enum(
    "source",
    "checkpoint",
    runs.SOURCES,
    "checkpoint: the latest checkpoint; saved_model: WORKDIR/export.",
)
_LABELS = flag_types.DEFINE_int_list(
    "labels",
    [],
    "Labels to draw samples of, one column each (a conditional "
    "model); empty with no --images: all labels (or, for an unconditional "
    "model, plain samples).",
    minimum=0,
)
_ROWS = flags.DEFINE_integer(
    "rows", 8, "Rows of the sample grid.", lower_bound=1, upper_bound=100
)
_IMAGES = flags.DEFINE_list(
    "images", [], "Image files whose style to transfer (comma-separated)."
)
_IMAGE_LABELS = flag_types.DEFINE_int_list(
    "image_labels", [], "The label each of --images shows, in order.", minimum=0
)
_TARGET_LABELS = flag_types.DEFINE_int_list(
    "target_labels", [], "Labels to redraw --images as; empty: all labels.", minimum=0
)
_RESIZE = flags.DEFINE_boolean(
    "resize",
    False,
    "Convert images that are not of the model's size and "
    "channels (to gray or RGB, then to the model's size) instead of refusing "
    "them.",
)
_INVERT = flags.DEFINE_enum(
    "invert",
    "auto",
    generation.INVERT_CHOICES,
    "Invert images to white-on-black; auto: when the border is light (gray models only).",
)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where the PNGs go; unset: WORKDIR/generated."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the prior draws.", lower_bound=0)
_ZOOM = flags.DEFINE_integer(
    "zoom",
    1,
    "Enlarge the written pictures by this factor (each pixel "
    "becomes a zoom x zoom square), for viewing.",
    lower_bound=1,
    upper_bound=16,
)

flags.mark_flag_as_required("workdir")


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    workdir: str
    source: str = "checkpoint"
    labels: tuple[int, ...] = ()
    rows: int = 8
    images: tuple[str, ...] = ()
    image_labels: tuple[int, ...] = ()
    target_labels: tuple[int, ...] = ()
    resize: bool = False
    invert: str = "auto"
    output_dir: str | None = None
    seed: int = 0
    zoom: int = 1


def _save(path: str, picture, zoom: int) -> None:
    picture = pictures.to_uint8(picture)
    if zoom > 1:
        picture = picture.repeat(zoom, axis=0).repeat(zoom, axis=1)
    pictures.save_png(path, picture)


def run_generation(config: GenerateConfig) -> dict:
    """Checks every input, loads the model, writes the grids; returns paths."""
    if len(config.image_labels) != len(config.images):
        raise errors.ConfigError(
            f"--image_labels has {len(config.image_labels)} entries for "
            f"{len(config.images)} --images; expected the label of each "
            "image, in the same order."
        )
    identity = runs.read_run_identity(config.workdir)
    model_config = runs.model_config(config.workdir, identity)
    num_classes = model_config.num_classes
    try:
        if num_classes:
            generation.check_labels(config.labels, num_classes, "--labels")
            generation.check_labels(config.image_labels, num_classes, "--image_labels")
            generation.check_labels(config.target_labels, num_classes, "--target_labels")
        elif config.labels or config.images:
            raise ValueError(
                f"The model in {config.workdir} is unconditional, so it draws "
                "no given labels and transfers no style; --labels and "
                "--images need a model trained with --conditional."
            )
        images = [
            generation.load_image(
                path, model_config.image_shape, resize=config.resize, invert=config.invert
            )
            for path in config.images
        ]
    except ValueError as error:  # Includes generation.ImageError.
        raise errors.ConfigError(str(error)) from None

    model, source = runs.load_model(config.workdir, identity, config.source)
    output_dir = config.output_dir or os.path.join(config.workdir, "generated")
    os.makedirs(output_dir, exist_ok=True)
    written = {"source": source}
    if images:
        targets = list(config.target_labels) or list(range(num_classes))
        path = os.path.join(output_dir, "style_transfer.png")
        _save(
            path,
            generation.style_transfer_grid(model, images, config.image_labels, targets),
            config.zoom,
        )
        written["style_transfer"] = path
    if config.labels or not images:
        labels = list(config.labels) or list(range(num_classes))
        path = os.path.join(output_dir, "samples.png")
        _save(
            path,
            generation.sample_grid(model, labels, config.rows, seed=config.seed),
            config.zoom,
        )
        written["samples"] = path
    atomic_files.write_json(
        os.path.join(output_dir, "generated.json"),
        {**written, "config": dataclasses.asdict(config)},
    )
    return written


def main(argv):
    errors.reject_positional_arguments(argv)
    config = GenerateConfig(
        workdir=_WORKDIR.value,
        source=_SOURCE.value,
        labels=tuple(_LABELS.value),
        rows=_ROWS.value,
        images=tuple(_IMAGES.value),
        image_labels=tuple(_IMAGE_LABELS.value),
        target_labels=tuple(_TARGET_LABELS.value),
        resize=_RESIZE.value,
        invert=_INVERT.value,
        output_dir=_OUTPUT_DIR.value,
        seed=_SEED.value,
        zoom=_ZOOM.value,
    )
    with errors.exit_on_user_error():
        written = run_generation(config)
    for key, path in written.items():
        if key != "source":
            logging.info("Wrote %s.", path)
    print(json.dumps(written, indent=1))


def run_main():
    """Console-script entry point (`vae-generate`)."""
    app.run(main, flags_parser=errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
