"""Measures one implementation of one preset; run by launch/benchmark.py.

Each measurement runs in a process of its own, so that its peak memory is
its own and the flags of the preset's training program (launch/train.py or
launch/train_vaegan.py, which define some of the same names) never meet. The
process takes one JSON argument, trains for `warmup_windows + windows`
windows of `window_steps` steps, and prints one line starting with
`RESULT_PREFIX` followed by the JSON of what it measured.

A window is one "epoch" of `window_steps` batches for both implementations:
the framework's trainer times its compiled loops (`epoch_train_seconds` in
its metrics, which leaves out checkpoints and evaluation), and Keras' `fit`
is timed from `on_epoch_begin` to `on_epoch_end`. The first window holds the
tracing and compilation, so `first_step_seconds` is the first window's time
less a steady window's share of its steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

RESULT_PREFIX = "BENCHMARK_RESULT "
# Program -> the trainer it runs by default.
PROGRAMS = {"vae-train": "elbo", "vae-train-vaegan": "vaegan"}
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_arrays(num_train: int, num_classes: int, seed: int = 0):
    """MNIST-shaped random digits: 28x28 uint8 images and labels.

    Throughput does not depend on what the pixels show, so tests and quick
    runs use these instead of the real files.
    """
    from vae import datasets  # Imported late: TensorFlow loads with it.

    rng = np.random.default_rng(seed)

    def split(count):
        return datasets.ArraySplit(
            images=rng.integers(0, 256, (count, 28, 28, 1), dtype=np.uint8),
            labels=rng.integers(0, num_classes, count).astype(np.int64),
        )

    return datasets.DatasetArrays(
        name="synthetic",
        train=split(num_train),
        validation=None,
        test=split(num_classes * 10),
        num_classes=num_classes,
        source="generated",
    )


def _load_arrays(config, data_dir: str | None):
    from vae import datasets

    if data_dir is None:
        return synthetic_arrays(60000, datasets.NUM_CLASSES["mnist"])
    return dataclasses.replace(
        config.data, data_dir=data_dir, validation_size=0, allow_download=False
    ).load(config.trainer.seed)


def _windows_summary(
    window_seconds: Sequence[float],
    warmup_windows: int,
    window_steps: int,
    batch_size: int,
) -> dict:
    steady = list(window_seconds[warmup_windows:])
    median = statistics.median(steady)
    return {
        "images_per_second": window_steps * batch_size / median,
        "window_seconds": list(window_seconds),
        "steady_spread": (max(steady) - min(steady)) / median,
        "first_step_seconds": max(
            0.0, window_seconds[0] - median * (window_steps - 1) / window_steps
        ),
    }


# ------------------------------------------------------------- FLOPs
def _op_flops(op) -> int:
    """Multiply-adds x 2 of one matmul or convolution op, from static shapes;
    0 for every other op (elementwise work is small beside these)."""

    def shape(tensor):
        return tensor.shape.as_list()

    kind = op.type
    if kind in ("MatMul", "BatchMatMulV2"):
        left = shape(op.inputs[0])
        transpose_left = op.get_attr("transpose_a" if kind == "MatMul" else "adj_x")
        inner = left[-2] if transpose_left else left[-1]
        return 2 * int(np.prod(shape(op.outputs[0]))) * inner
    if kind == "Conv2D":
        kernel = shape(op.inputs[1])
        return 2 * int(np.prod(shape(op.outputs[0]))) * int(np.prod(kernel[:3]))
    if kind in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):
        # The two gradients of a Conv2D (and a Conv2DTranspose's forward
        # pass): as many multiply-adds as the convolution whose output
        # gradient they read. BackpropFilter's output is the kernel's shape.
        kernel = shape(op.inputs[1] if kind == "Conv2DBackpropInput" else op.outputs[0])
        gradient = shape(op.inputs[2])
        return 2 * int(np.prod(gradient)) * int(np.prod(kernel[:3]))
    return 0


def graph_flops(concrete_function) -> int:
    """FLOPs of one call of a traced function, counting the matmuls and
    convolutions of its graph (not those inside loop bodies)."""
    return sum(_op_flops(op) for op in concrete_function.graph.get_operations())


def _framework_step_flops(trainer, element_spec, train_logs: dict) -> float:
    """FLOPs of one training step: the step graph for single-update trainers;
    for the VAE-GAN, whose updates run inside while loops, each update's
    graph times the mean number of updates per step measured in the run."""
    import tensorflow as tf

    if not hasattr(trainer, "discriminator_update"):
        return float(
            graph_flops(
                trainer.compiled_step.get_concrete_function(
                    element_spec, tf.TensorSpec([2], tf.int32)
                )
            )
        )
    images = tf.TensorSpec.from_spec(element_spec["image"])
    labels = tf.TensorSpec.from_spec(element_spec["label_onehot"])
    seed = tf.TensorSpec([2], tf.int32)
    per_update = {
        name: graph_flops(
            tf.function(getattr(trainer, f"{name}_update")).get_concrete_function(
                images, labels, seed
            )
        )
        for name in ("discriminator", "generator")
    }
    return (
        per_update["discriminator"] * train_logs["discriminator_updates"]
        + per_update["generator"] * train_logs["generator_updates"]
    )


# ------------------------------------------------------------- profile
def _op_category(op_type: str) -> str:
    if op_type.startswith(("Conv2D", "Conv3D", "DepthwiseConv")):
        return "convolution"
    if "MatMul" in op_type:
        return "matmul"
    if op_type == "IDLE":
        return "idle"
    return "other ops"


def profile_window(run_window: Callable[[], None], steps: int) -> dict:
    """Runs one window under TensorFlow's profiler; returns milliseconds per
    step spent in each op type (its self time, summed over threads) and in
    each category: convolution, matmul, other ops, and idle (time in the
    traced span when no op ran: Python, the loop around the step)."""
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    logdir = tempfile.mkdtemp(prefix="vae-benchmark-profile-")
    try:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        try:
            run_window()
        finally:
            wall = time.perf_counter() - start
            tf.profiler.experimental.stop()
        paths = [
            os.path.join(root, name)
            for root, _, names in os.walk(logdir)
            for name in names
            if name.endswith(".xplane.pb")
        ]
        tables = json.loads(
            _pywrap_profiler_plugin.xspace_to_tools_data(paths, "framework_op_stats", {})[
                0
            ]
        )
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    columns = [column["id"] for column in tables[0]["cols"]]
    by_type: dict[str, float] = {}
    for row in tables[0]["rows"]:
        values = dict(zip(columns, (cell["v"] for cell in row["c"])))
        by_type[values["type"]] = (
            by_type.get(values["type"], 0.0) + values["total_self_time"] / 1000 / steps
        )
    categories: dict[str, float] = {}
    for op_type, milliseconds in by_type.items():
        category = _op_category(op_type)
        categories[category] = categories.get(category, 0.0) + milliseconds
    top = dict(sorted(by_type.items(), key=lambda item: -item[1])[:12])
    return {
        "wall_ms_per_step": wall * 1000 / steps,
        "category_ms_per_step": categories,
        "top_op_ms_per_step": top,
    }


# ------------------------------------------------------ implementations
def _preset_config(program: str, preset_flags: Sequence[str], workdir: str):
    from launch import train

    train.parse_flags(
        [
            program,
            *preset_flags,
            f"--workdir={workdir}",
            "--nopictures",
            "--noexport",
            "--progress=none",
            "--evaluate_every_epochs=0",
        ],
        default_trainer=PROGRAMS[program],
    )
    return train.config_from_flags()


def run_framework(spec: dict, workdir: str) -> dict:
    """The framework's trainer on the preset, as vae-train builds it."""
    import tensorflow as tf

    from launch import experiment
    from trainers import registry
    from vae import models

    config = _preset_config(spec["program"], spec["flags"], workdir)
    arrays = _load_arrays(config, spec.get("data_dir"))
    windows = spec["warmup_windows"] + spec["windows"]
    trainer_config = dataclasses.replace(
        config.trainer,
        epochs=windows,
        steps_per_loop=min(config.trainer.steps_per_loop, spec["window_steps"]),
        log_every_steps=10**9,
        max_checkpoints_to_keep=1,
    )
    config = dataclasses.replace(config, trainer=trainer_config)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(config.trainer.seed)
    model = registry.resolve(config.trainer_name).model_class(config.model)
    # vae-train's data source, cut into windows and without evaluation.
    data = dataclasses.replace(
        experiment.build_data_source(config, arrays),
        steps_per_epoch=spec["window_steps"],
        eval_batches={},
    )
    trainer = experiment.make_trainer(config, model, data, hooks=())
    result = trainer.train()
    epochs = result.metrics["epochs"]
    summary = _windows_summary(
        [epoch["epoch_train_seconds"] for epoch in epochs],
        spec["warmup_windows"],
        spec["window_steps"],
        config.batch_size,
    )
    steady_logs = epochs[-1]["train"]
    if spec.get("profile"):
        # One more window, resumed from the run's last checkpoint.
        trainer.config = dataclasses.replace(trainer_config, epochs=windows + 1)
        summary["profile"] = profile_window(trainer.train, spec["window_steps"])
    element_spec = data.train_batches(0, 0).element_spec
    summary.update(
        parameters=models.num_parameters(model),
        batch_size=config.batch_size,
        flops_per_step=_framework_step_flops(trainer, element_spec, steady_logs),
        steps_per_loop=trainer_config.steps_per_loop,
        jit_compile=trainer_config.jit_compile,
        deterministic=config.deterministic,
    )
    return summary


def run_keras(spec: dict, workdir: str) -> dict:
    """The Keras reference (launch/keras_reference.py) with `fit`."""
    import keras
    import tensorflow as tf

    from launch import keras_reference
    from vae import datasets

    config = _preset_config(spec["program"], spec["flags"], workdir)
    arrays = _load_arrays(config, spec.get("data_dir"))
    keras.utils.set_random_seed(config.trainer.seed)
    objective = config.objective
    is_vaegan = config.trainer_name == "vaegan"
    if not is_vaegan:
        model = keras_reference.KerasVae(
            config.model, beta=objective.beta, kl_estimator=objective.kl
        )
        model.compile(
            optimizer=keras_reference.make_optimizer(
                objective.optimizer, objective.learning_rate
            )
        )
    else:
        model = keras_reference.KerasVaeGan(
            config.model, objective, objective.optimizer, objective.learning_rates()
        )
        model.compile()
    images = datasets.binarize_numpy(
        arrays.train.images, config.data.binarization, config.trainer.seed
    )
    images = images.astype(np.float32)
    if config.data.binarization == "none":
        images /= 255.0
    conditional = config.model.num_classes > 0
    inputs = (
        (images, keras.utils.to_categorical(arrays.train.labels, arrays.num_classes))
        if conditional
        else images
    )
    # A repeated tf.data pipeline, so that every window has its full number
    # of steps: with arrays and steps_per_epoch, fit ends an "epoch" early
    # when a pass over the data runs out, which would time short windows.
    # Elements are `(x,)`, so that Keras reads `(images, labels)` as one
    # input rather than as (x, y).
    dataset = (
        tf.data.Dataset.from_tensor_slices((inputs,))
        .shuffle(len(images), seed=config.trainer.seed)
        .batch(config.batch_size, drop_remainder=True)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    # Optimiser steps taken, to check each window ran all its steps.
    counter = model.player_optimizers["discriminator"] if is_vaegan else model.optimizer
    window_seconds: list[float] = []
    window_steps: list[int] = []

    class WindowTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.first_step = int(counter.iterations.numpy())
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            window_seconds.append(time.perf_counter() - self.start)
            window_steps.append(int(counter.iterations.numpy()) - self.first_step)

    def fit(epochs, callbacks=()):
        model.fit(
            dataset,
            epochs=epochs,
            steps_per_epoch=spec["window_steps"],
            verbose=0,
            callbacks=list(callbacks),
        )

    fit(spec["warmup_windows"] + spec["windows"], [WindowTimer()])
    if window_steps != [spec["window_steps"]] * len(window_steps):
        raise RuntimeError(
            f"Keras ran {window_steps} steps per window; "
            f"expected {spec['window_steps']} each."
        )
    summary = _windows_summary(
        window_seconds, spec["warmup_windows"], spec["window_steps"], config.batch_size
    )
    if spec.get("profile"):
        summary["profile"] = profile_window(lambda: fit(1), spec["window_steps"])
    summary.update(
        parameters=keras_reference.num_parameters(model),
        batch_size=config.batch_size,
        keras_version=keras.__version__,
        jit_compile=bool(model.jit_compile),
    )
    return summary


IMPLEMENTATIONS: dict[str, Callable[[dict, str], dict]] = {
    "framework": run_framework,
    "keras": run_keras,
}


def main(argv: Sequence[str]) -> None:
    spec = json.loads(argv[1])
    os.chdir(REPOSITORY_ROOT)  # The presets are named from here.
    workdir = tempfile.mkdtemp(prefix="vae-benchmark-")
    try:
        result = IMPLEMENTATIONS[spec["implementation"]](spec, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # ru_maxrss is in KiB on Linux.
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
