"""End-to-end: what a launch does with a diverging run, a workdir that is in
use or unusable, a kill -9 during a checkpoint save, and presets run from
another directory. Subprocesses, as users run the programs."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from tests import testing_utils

_TINY_MODEL_FLAGS = [
    "--architecture=mlp", "--hidden_units=8", "--latent_dim=2",
    "--batch_size=32", "--eval_batch_size=64", "--optimizer=adam",
    "--binarization=dynamic", "--progress=log", "--pictures=false",
]

# Holds the lock of the workdir given as argv[1], says so, then waits.
_LOCK_HOLDER = """
import sys, time
from trainers import workdir_lock
lock = workdir_lock.WorkdirLock(sys.argv[1])
lock.acquire()
lock.record_holder()
print("held", flush=True)
time.sleep(300)
"""

# vae-train whose second checkpoint save stops half-way (its data file cut
# short, a temporary folder left), touches argv[1], and waits to be killed.
_SLOW_SAVE_TRAIN = """
import os, sys, time
import tensorflow as tf
marker = sys.argv[1]
real_write = tf.train.Checkpoint._write
saves = []
def write(self, prefix, options=None):
    saves.append(prefix)
    if len(saves) == 2:
        real_write(self, prefix)  # Without the manager's callbacks.
        data = prefix + ".data-00000-of-00001"
        with open(data, "r+b") as stream:
            stream.truncate(os.path.getsize(data) // 2)
        os.makedirs(prefix + "_temp", exist_ok=True)
        open(marker, "w").close()
        time.sleep(600)
    return real_write(self, prefix, options)
tf.train.Checkpoint._write = write
from launch import train
sys.argv = ["vae-train", *sys.argv[2:]]
train.run_main()
"""


def wait_for(path, process, seconds=240):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if process.poll() is not None:
            raise AssertionError(f"ended early: {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


class RefusedLaunchTest(tf.test.TestCase):

    def test_each_refusal_is_one_paragraph_with_its_status(self):
        root = self.create_tempdir().full_path
        data_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(data_dir, num_train=64, num_test=16)
        common = [f"--data_dir={data_dir}", "--epochs=2", *_TINY_MODEL_FLAGS]
        a_file = os.path.join(root, "a_file")
        open(a_file, "w").close()
        busy = os.path.join(root, "busy")
        os.makedirs(busy)
        holder = subprocess.Popen(
            [sys.executable, "-c", _LOCK_HOLDER, busy],
            env=testing_utils.program_environment(), stdout=subprocess.PIPE,
            text=True)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "held")
            diverging = os.path.join(root, "diverging")
            results = testing_utils.run_modules_concurrently([
                ("launch.train", [f"--workdir={a_file}", *common]),
                ("launch.train",
                 [f"--workdir={os.path.join(a_file, 'run')}", *common]),
                ("launch.train", [f"--workdir={busy}", *common]),
                ("launch.train", [f"--workdir={diverging}", *common,
                                  "--learning_rate=1e4"]),
            ])
        finally:
            holder.kill()
            holder.wait()
            holder.stdout.close()
        workdir_file, parent_file, in_use, diverged = results
        testing_utils.assert_clear_error(self, workdir_file, a_file,
                                         "is a file, not a directory")
        testing_utils.assert_clear_error(self, parent_file, a_file,
                                         "is a file, not a directory")
        testing_utils.assert_clear_error(
            self, in_use, "is in use by another launch",
            f"pid {holder.pid} on host")
        self.assertEqual(os.listdir(busy), ["lock"])
        # Exit status 3 (exit_codes.DIVERGED), the step named, nothing saved
        # from the bad weights.
        testing_utils.assert_clear_error(
            self, diverged, "Training diverged: at global step ",
            "non-finite", exit_code=3)
        self.assertFalse(os.path.exists(os.path.join(diverging, "export")))
        self.assertEqual(
            tf.io.gfile.glob(os.path.join(diverging, "checkpoints", "*")), [])


class KillDuringSaveTest(tf.test.TestCase):

    def test_kill_9_during_a_checkpoint_save_resumes_exactly(self):
        root = self.create_tempdir().full_path
        data_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(data_dir, num_train=320, num_test=32)
        common = [f"--data_dir={data_dir}", "--epochs=3", "--export=false",
                  "--steps_per_loop=3", *_TINY_MODEL_FLAGS]
        reference_dir = os.path.join(root, "reference")
        workdir = os.path.join(root, "killed")
        marker = os.path.join(root, "saving")
        with tempfile.TemporaryFile("w+") as stderr:
            killed = subprocess.Popen(
                [sys.executable, "-c", _SLOW_SAVE_TRAIN, marker,
                 f"--workdir={workdir}", *common],
                env=testing_utils.program_environment(),
                cwd=testing_utils.REPO_ROOT, stdout=subprocess.DEVNULL,
                stderr=stderr)
            try:
                reference = testing_utils.run_module(
                    "launch.train", [f"--workdir={reference_dir}", *common])
                wait_for(marker, killed)
                killed.send_signal(signal.SIGKILL)
                killed.wait(timeout=60)
            finally:
                if killed.poll() is None:
                    killed.kill()
                    killed.wait()
        self.assertEqual(reference.returncode, 0, reference.stderr[-3000:])
        checkpoint_dir = os.path.join(workdir, "checkpoints")
        self.assertTrue(os.path.isdir(os.path.join(checkpoint_dir,
                                                   "ckpt-2_temp")))

        resumed = testing_utils.run_module("launch.train",
                                           [f"--workdir={workdir}", *common])
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        self.assertIn("ckpt-2 cannot be read", resumed.stderr)
        self.assertFalse(os.path.exists(os.path.join(checkpoint_dir,
                                                     "ckpt-2_temp")))
        with open(os.path.join(workdir, "metrics.json")) as stream:
            mine = json.load(stream)["final"]
        with open(os.path.join(reference_dir, "metrics.json")) as stream:
            theirs = json.load(stream)["final"]
        for key in ("global_step", "train", "test"):
            self.assertEqual(mine[key], theirs[key], key)


class PresetsFromAnotherDirectoryTest(tf.test.TestCase):
    """Every preset runs from outside the repository, as an installed user
    runs it: one epoch on a tiny fake MNIST."""

    def test_every_preset_trains_from_another_directory(self):
        root = self.create_tempdir().full_path
        data_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(data_dir, num_train=16, num_test=8)
        elsewhere = os.path.join(root, "elsewhere")
        os.makedirs(elsewhere)
        configs = os.path.join(testing_utils.REPO_ROOT, "launch", "configs")
        presets = sorted(name for name in os.listdir(configs)
                         if name.endswith(".flags"))
        self.assertGreaterEqual(len(presets), 8)
        processes = []
        # Two at a time: each is mostly TensorFlow starting up.
        for start in range(0, len(presets), 2):
            batch = []
            for name in presets[start:start + 2]:
                module = ("launch.train_vaegan" if name.startswith("cvae_gan")
                          else "launch.train")
                stderr = tempfile.TemporaryFile("w+")
                batch.append((name, stderr, subprocess.Popen(
                    [sys.executable, "-m", module,
                     f"--flagfile={os.path.join(configs, name)}",
                     f"--data_dir={data_dir}",
                     f"--workdir={os.path.join(root, name)}", "--epochs=1",
                     "--batch_size=8", "--eval_batch_size=8",
                     "--pictures=false", "--export=false", "--progress=none"],
                    cwd=elsewhere, env=testing_utils.program_environment(),
                    stdout=subprocess.DEVNULL, stderr=stderr, text=True)))
            for name, stderr, process in batch:
                process.wait(timeout=600)
                stderr.seek(0)
                processes.append((name, process.returncode, stderr.read()))
                stderr.close()
        for name, returncode, stderr in processes:
            self.assertEqual(returncode, 0, f"{name}: {stderr[-2000:]}")
            self.assertTrue(os.path.exists(
                os.path.join(root, name, "metrics.json")), name)


if __name__ == "__main__":
    tf.test.main()
