"""Helpers shared by the tests: tiny IDX datasets written on the fly."""

import gzip
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from vae import datasets

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
    return data_dir, workdir


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
