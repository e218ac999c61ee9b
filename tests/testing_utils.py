"""Helpers shared by the tests: tiny IDX datasets written on the fly, tiny
models and data sources to train them on, and the launch programs run as a
user runs them."""

import contextlib
import gzip
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
import tf_keras

from trainers import base
from vae import datasets
from vae import models
from vae import vaegan

_IDX_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
}


def idx_bytes(array, *, compress=True, magic=None, dims=None):
    """Encodes `array` as an IDX file; `magic` / `dims` override the header."""
    array = np.asarray(array)
    if dims is None:
        dims = array.shape
    if magic is None:
        magic = (_IDX_TYPE_CODES[array.dtype] << 8) | len(dims)
    header = magic.to_bytes(4, "big") + b"".join(
        int(size).to_bytes(4, "big") for size in dims
    )
    payload = array.astype(array.dtype.newbyteorder(">")).tobytes()
    data = header + payload
    return gzip.compress(data) if compress else data


def numbered_images(num_examples, height=28, width=28):
    """uint8 [N, H, W] images whose first pixel is the example number."""
    images = np.random.default_rng(num_examples).integers(
        0, 256, size=(num_examples, height, width), dtype=np.uint8
    )
    images[:, 0, 0] = np.arange(num_examples) % 256
    return images


def write_file(directory, file_name, data):
    """Writes bytes to directory/file_name (creating the directory)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name)
    with open(path, "wb") as stream:
        stream.write(data)
    return path


def write_fake_mnist(directory, *, num_train=20, num_test=7, train_labels=None, skip=()):
    """Writes the four MNIST IDX files; returns the arrays that were written.

    Images are random noise except that the first pixel numbers the example,
    so tests can tell examples apart.
    """
    arrays = {
        "train_images": numbered_images(num_train),
        "train_labels": (
            (np.arange(num_train) % 10).astype(np.uint8)
            if train_labels is None
            else train_labels
        ),
        "test_images": numbered_images(num_test)[:, ::-1],
        "test_labels": (np.arange(num_test) * 3 % 10).astype(np.uint8),
    }
    for key, file_name in datasets.IDX_FILE_NAMES.items():
        if key not in skip:
            write_file(directory, file_name, idx_bytes(arrays[key]))
    return arrays


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The smallest model the launch programs train in seconds on two cores; each
# test adds the flags it needs after these.
TINY_MLP_FLAGS = (
    "--architecture=mlp",
    "--hidden_units=8",
    "--latent_dim=2",
    "--batch_size=32",
    "--eval_batch_size=64",
)

# Tiny on purpose: the tests share two CPU cores with training runs.
TINY_VAEGAN = vaegan.VaeGanConfig(
    image_shape=(8, 8, 1),
    latent_dim=2,
    num_classes=3,
    encoder_filters=(4, 4),
    encoder_dense_units=(8,),
    decoder_base_channels=4,
    decoder_filters=(4, 4),
    discriminator_filters=(4, 4),
    similarity_channels=2,
)

# 8x8 -> 3x3 -> 1x1 in the encoder, 2x2 -> 4x4 -> 8x8 in the decoder.
SMALL_CONV = models.ModelConfig(
    image_shape=(8, 8, 1),
    latent_dim=2,
    encoder_filters=(4, 8),
    encoder_strides=(2, 2),
    decoder_base_channels=4,
    decoder_filters=(8, 4),
    decoder_strides=(2, 2),
)


def tiny_conv_config(image_shape, **settings):
    """A two-layer SAME-padded conv VAE with four channels a layer."""
    return models.ModelConfig(
        architecture="conv",
        image_shape=image_shape,
        latent_dim=2,
        encoder_filters=(4, 4),
        encoder_strides=(2, 2),
        encoder_padding="SAME",
        decoder_base_channels=4,
        decoder_filters=(4, 4),
        decoder_strides=(2, 2),
        **settings,
    )


def mlp_config(image_shape, hidden_units, *, latent_dim=2, **settings):
    """An MLP VAE's config: the quickest model to build and train."""
    return models.ModelConfig(
        architecture="mlp",
        image_shape=image_shape,
        latent_dim=latent_dim,
        hidden_units=hidden_units,
        **settings,
    )


def toy2d_splits(num_train=200, num_test=60):
    """The first points of the toy2d data set's training and test splits."""
    arrays = datasets.load_dataset("toy2d", seed=0)
    train = datasets.ArraySplit(
        arrays.train.images[:num_train], arrays.train.labels[:num_train]
    )
    test = datasets.ArraySplit(
        arrays.test.images[:num_test], arrays.test.labels[:num_test]
    )
    return train, test


def two_class_split(num_examples, seed, image_shape, *, noise=40, brightness=200):
    """uint8 images of two classes a model tells apart at once: label 0 has a
    bright top half, label 1 a bright left half, over uniform noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=num_examples)
    images = rng.integers(0, noise, size=(num_examples, *image_shape))
    images[labels == 0, : image_shape[0] // 2] += brightness
    images[labels == 1, :, : image_shape[1] // 2] += brightness
    return datasets.ArraySplit(
        images=np.clip(images, 0, 255).astype(np.uint8), labels=labels.astype(np.int64)
    )


def array_data_source(
    train,
    test,
    *,
    batch_size,
    eval_batch_size,
    binarization,
    num_classes,
    seed=0,
    eval_binarization=None,
    signal_at_batch=None,
    signal_number=None,
):
    """A DataSource over two in-memory splits, evaluated on `test`.

    With `signal_at_batch=(epoch, batch)`, the input pipeline sends
    `signal_number` to this process when it makes that batch, as a cluster
    scheduler would before a time limit.
    """
    steps_per_epoch = datasets.steps_per_epoch(train.num_examples, batch_size)

    def train_batches(epoch, skip_batches):
        dataset = datasets.train_batches(
            train,
            batch_size=batch_size,
            epoch=epoch,
            seed=seed,
            binarization=binarization,
            num_classes=num_classes,
            skip_batches=skip_batches,
        )
        if signal_at_batch is None or signal_at_batch[0] != epoch:
            return dataset

        def maybe_signal(index):
            if int(index) == signal_at_batch[1]:
                os.kill(os.getpid(), signal_number)
            return index

        indices = tf.data.Dataset.range(skip_batches, steps_per_epoch)
        return (
            tf.data.Dataset.zip((dataset, indices))
            .map(
                lambda batch, index: (
                    batch,
                    tf.py_function(maybe_signal, [index], tf.int64),
                )
            )
            .map(lambda batch, index: batch)
        )

    def test_batches():
        return datasets.eval_batches(
            test,
            batch_size=eval_batch_size,
            seed=seed,
            binarization=eval_binarization or binarization,
            num_classes=num_classes,
        )

    return base.DataSource(
        train_batches=train_batches,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        eval_batches={"test": test_batches},
    )


def looped_trainer_config(workdir, *, epochs, seed=3, steps_per_loop=2):
    """A TrainerConfig that logs once a loop and draws no progress bar."""
    return base.TrainerConfig(
        workdir=workdir,
        epochs=epochs,
        seed=seed,
        steps_per_loop=steps_per_loop,
        log_every_steps=steps_per_loop,
        progress="none",
    )


class LinearModel(tf.Module):
    """y = w * x + b with scalar w and b."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.weight = tf.Variable(0.0, name="weight")
        self.bias = tf.Variable(0.0, name="bias")

    def __call__(self, x):
        return self.weight * x + self.bias


def without_timings(history):
    """metrics.json's epoch records without what depends on the clock, for
    comparing a resumed run with an uninterrupted one."""
    timing_keys = {
        "images_per_second",
        "epoch_train_seconds",
        "total_train_seconds",
        "wall_seconds",
    }
    return [
        {key: value for key, value in record.items() if key not in timing_keys}
        for record in history
    ]


class RegressionTrainer(base.Trainer):
    """A subclass written the way users write one: only the maths of a step.

    Least squares with plain SGD: the update is linear in the gradient, so a
    wrong scaling over replicas shows at once."""

    def __init__(self, model, config, data):
        super().__init__(
            model=model,
            optimizers={
                "regression": (tf_keras.optimizers.SGD(0.1), model.trainable_variables)
            },
            config=config,
            data=data,
        )

    def train_step(self, batch, seed):
        variables = self.optimized_variables["regression"]
        with tf.GradientTape() as tape:
            error = self.model(batch["x"]) - batch["y"]
            loss = tf.reduce_mean(tf.square(error))
        gradients = tape.gradient(loss, variables)
        self.optimizers["regression"].apply_gradients(zip(gradients, variables))
        # A constant metric: a mean over replicas keeps it 1 (a sum would not).
        return {"loss": loss, "steps": tf.constant(1, tf.int32)}

    def eval_step(self, batch):
        return {"squared_error": tf.square(self.model(batch["x"]) - batch["y"])}


def program_environment(extra_environment=None):
    """The environment a launch program runs in under test: this checkout
    importable, TensorFlow's C++ logging quiet."""
    environment = dict(os.environ)
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    environment["PYTHONPATH"] = REPO_ROOT
    environment.update(extra_environment or {})
    return environment


def run_module(module, arguments, *, timeout=300, extra_environment=None):
    """Runs `python -m module arguments...` from the repository root, as a
    user would, and returns the completed process (stdout and stderr as
    text)."""
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=REPO_ROOT,
        env=program_environment(extra_environment),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def private_cache_environment():
    """Environment that keeps the programs' dataset and classifier caches in
    the test's temporary directory, never in the user's cache."""
    return {"VAE_CACHE_DIR": os.path.join(tf.compat.v1.test.get_temp_dir(), "cache")}


def run_module_with_private_cache(module, arguments, **settings):
    """`run_module` in `private_cache_environment()`."""
    return run_module(
        module, arguments, extra_environment=private_cache_environment(), **settings
    )


def start_module(module, arguments, *, extra_environment=None):
    """Starts `python -m module arguments...` as `run_module` runs it, and
    returns the process (stderr piped as text, stdout discarded)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        cwd=REPO_ROOT,
        env=program_environment(extra_environment),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_after_first_epoch(test_case, arguments, workdir, *, extra_environment=None):
    """Starts `launch.train arguments...`, sends it SIGTERM once it has
    written `metrics.json` (its first epoch), and checks that it stopped with
    status 128 + SIGTERM; returns its stderr."""
    process = start_module("launch.train", arguments, extra_environment=extra_environment)
    metrics_path = os.path.join(workdir, "metrics.json")
    wait_while_running(test_case, process, lambda: os.path.exists(metrics_path))
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    test_case.assertEqual(process.returncode, 128 + signal.SIGTERM, stderr)
    return stderr


# Holds the lock of the workdir given as argv[1], says "held", then waits.
_LOCK_HOLDER_SCRIPT = """
import sys, time
from trainers import workdir_lock
lock = workdir_lock.WorkdirLock(sys.argv[1])
lock.acquire()
lock.record_holder()
print("held", flush=True)
time.sleep(300)
"""


@contextlib.contextmanager
def workdir_lock_holder(workdir):
    """Another process that holds `workdir`'s lock for the `with` block (or
    until the block kills it); yields the process."""
    process = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER_SCRIPT, workdir],
        env=program_environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if process.stdout.readline().strip() != "held":
            raise AssertionError(f"the lock holder of {workdir} did not start")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()


def wait_while_running(test_case, process, done, timeout=240):
    """Polls until `done()` is true, failing the test if `process` ends or
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not done():
        test_case.assertIsNone(process.poll(), "the program ended too early")
        test_case.assertLess(
            time.monotonic(), deadline, "timed out waiting for the program"
        )
        time.sleep(0.02)


def assert_clear_error(test_case, result, *fragments, exit_code=2):
    """The program failed with `exit_code`, no traceback, and its message
    holds every fragment."""
    test_case.assertEqual(result.returncode, exit_code, result.stderr[-2000:])
    test_case.assertNotIn("Traceback", result.stderr)
    for fragment in fragments:
        test_case.assertIn(fragment, result.stderr)


def private_temp_dir():
    """A new directory under the test temp dir, which every test class
    shares: a class that writes fixed names there must not meet another's."""
    return tempfile.mkdtemp(dir=tf.compat.v1.test.get_temp_dir())


def train_on_fake_mnist(root, workdir_name, train_flags, *, num_train=64, num_test=16):
    """Writes fake MNIST to ROOT/fake_mnist and trains `launch.train` on it
    in ROOT/workdir_name; returns (data_dir, workdir)."""
    data_dir = os.path.join(root, "fake_mnist")
    write_fake_mnist(data_dir, num_train=num_train, num_test=num_test)
    workdir = os.path.join(root, workdir_name)
    result = run_module(
        "launch.train", [f"--data_dir={data_dir}", f"--workdir={workdir}", *train_flags]
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    assert_logs_no_errors(result.stderr)
    return data_dir, workdir


# An error-level line of absl or TensorFlow's C++ logging: "E1206 22:01:02..."
_ERROR_LINE = re.compile(r"^E\d{4} ", re.MULTILINE)


def assert_logs_no_errors(stderr):
    """A successful run logs no errors. The one exception is TensorFlow's
    CUDA probe on a machine with CUDA libraries but no GPU driver ("failed
    call to cuInit"), which is the machine's, not the run's."""
    errors = [
        line
        for line in stderr.splitlines()
        if _ERROR_LINE.match(line) and "failed call to cuInit" not in line
    ]
    if errors:
        raise AssertionError("a successful run logged errors:\n" + "\n".join(errors))


def run_modules_concurrently(runs, *, timeout=300, extra_environment=None):
    """`run_module` for several `(module, arguments)` at once; returns their
    completed processes, in order.

    For programs that only read what they share (say, checks of one
    workdir): most of a program's time under test is starting Python and
    TensorFlow, which overlaps. Output goes through files, so a chatty
    program cannot block on a full pipe while another is waited for.
    """
    launched = []
    try:
        for module, arguments in runs:
            stdout = tempfile.TemporaryFile("w+")
            stderr = tempfile.TemporaryFile("w+")
            launched.append(
                (
                    subprocess.Popen(
                        [sys.executable, "-m", module, *arguments],
                        cwd=REPO_ROOT,
                        env=program_environment(extra_environment),
                        stdout=stdout,
                        stderr=stderr,
                        text=True,
                    ),
                    stdout,
                    stderr,
                )
            )
        results = []
        for process, *streams in launched:
            process.wait(timeout=timeout)
            outputs = []
            for stream in streams:
                stream.seek(0)
                outputs.append(stream.read())
            results.append(
                subprocess.CompletedProcess(process.args, process.returncode, *outputs)
            )
        return results
    finally:
        for process, *streams in launched:
            if process.poll() is None:  # Timed out, or another one did.
                process.kill()
                process.wait()
            for stream in streams:
                stream.close()
