"""End-to-end: what a launch does with a diverging run, a workdir that is in
use or unusable, a kill -9 during a checkpoint save or an evaluation, and
presets run from another directory. Subprocesses, as users run the programs."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from tests import test_dsprites
from tests import testing_utils
from vae import dsprites

_TINY_MODEL_FLAGS = [
    *testing_utils.TINY_MLP_FLAGS,
    "--optimizer=adam",
    "--binarization=dynamic",
    "--progress=log",
    "--pictures=false",
]


# vae-train whose second checkpoint save stops half-way (its data file cut
# short, a temporary folder left), touches argv[1], and waits to be killed.
_SLOW_SAVE_TRAIN = """
import os, sys, time
import tensorflow as tf
marker = sys.argv[1]
real_write = tf.train.Checkpoint._write
saves = []
def write(self, prefix, options=None):
    # The numbered saves only (not an epoch's end written before its
    # evaluation): the second is ckpt-2.
    numbered = os.path.basename(prefix).startswith("ckpt-")
    if numbered:
        saves.append(prefix)
    if numbered and len(saves) == 2:
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


# vae-train whose second evaluation touches argv[1] and waits to be killed.
_SLOW_EVALUATION_TRAIN = """
import sys, time
from trainers import base
marker = sys.argv[1]
real_evaluate = base.Trainer.evaluate
calls = []
def evaluate(self):
    calls.append(1)
    if len(calls) == 2:
        open(marker, "w").close()
        time.sleep(600)
    return real_evaluate(self)
base.Trainer.evaluate = evaluate
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
        with testing_utils.workdir_lock_holder(busy) as holder:
            diverging = os.path.join(root, "diverging")
            results = testing_utils.run_modules_concurrently(
                [
                    ("launch.train", [f"--workdir={a_file}", *common]),
                    (
                        "launch.train",
                        [f"--workdir={os.path.join(a_file, 'run')}", *common],
                    ),
                    ("launch.train", [f"--workdir={busy}", *common]),
                    (
                        "launch.train",
                        [f"--workdir={diverging}", *common, "--learning_rate=1e4"],
                    ),
                ]
            )
        workdir_file, parent_file, in_use, diverged = results
        testing_utils.assert_clear_error(
            self, workdir_file, a_file, "is a file, not a directory"
        )
        testing_utils.assert_clear_error(
            self, parent_file, a_file, "is a file, not a directory"
        )
        testing_utils.assert_clear_error(
            self, in_use, "is in use by another launch", f"pid {holder.pid} on host"
        )
        self.assertEqual(os.listdir(busy), ["lock"])
        # Exit status 3 (exit_codes.DIVERGED), the step named, nothing saved
        # from the bad weights.
        testing_utils.assert_clear_error(
            self,
            diverged,
            "Training diverged: at global step ",
            "non-finite",
            exit_code=3,
        )
        self.assertFalse(os.path.exists(os.path.join(diverging, "export")))
        self.assertEqual(
            tf.io.gfile.glob(os.path.join(diverging, "checkpoints", "*")), []
        )


class KillDuringSaveTest(tf.test.TestCase):
    def killed_then_resumed(self, script):
        """Runs vae-train under `script` until it touches its marker, kills
        it with SIGKILL, runs the same command again; returns the workdir,
        the rerun, and an uninterrupted run's final metrics."""
        root = self.create_tempdir().full_path
        data_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(data_dir, num_train=320, num_test=32)
        common = [
            f"--data_dir={data_dir}",
            "--epochs=3",
            "--export=false",
            "--steps_per_loop=3",
            *_TINY_MODEL_FLAGS,
        ]
        reference_dir = os.path.join(root, "reference")
        workdir = os.path.join(root, "killed")
        marker = os.path.join(root, "marker")
        with tempfile.TemporaryFile("w+") as stderr:
            killed = subprocess.Popen(
                [sys.executable, "-c", script, marker, f"--workdir={workdir}", *common],
                env=testing_utils.program_environment(),
                cwd=testing_utils.REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                reference = testing_utils.run_module(
                    "launch.train", [f"--workdir={reference_dir}", *common]
                )
                wait_for(marker, killed)
                killed.send_signal(signal.SIGKILL)
                killed.wait(timeout=60)
            finally:
                if killed.poll() is None:
                    killed.kill()
                    killed.wait()
        self.assertEqual(reference.returncode, 0, reference.stderr[-3000:])
        with open(os.path.join(reference_dir, "metrics.json")) as stream:
            uninterrupted = json.load(stream)["final"]
        # What the kill left, before the rerun changes it.
        left = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
        resumed = testing_utils.run_module(
            "launch.train", [f"--workdir={workdir}", *common]
        )
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        with open(os.path.join(workdir, "metrics.json")) as stream:
            final = json.load(stream)["final"]
        for key in ("global_step", "train", "test"):
            self.assertEqual(final[key], uninterrupted[key], key)
        return workdir, left, resumed

    def test_kill_9_during_a_checkpoint_save_resumes_exactly(self):
        workdir, left, resumed = self.killed_then_resumed(_SLOW_SAVE_TRAIN)
        checkpoint_dir = os.path.join(workdir, "checkpoints")
        self.assertIn("ckpt-2_temp", left)
        self.assertIn("ckpt-2 cannot be read", resumed.stderr)
        self.assertFalse(os.path.exists(os.path.join(checkpoint_dir, "ckpt-2_temp")))

    def test_kill_9_during_the_evaluation_costs_only_the_evaluation(self):
        workdir, left, resumed = self.killed_then_resumed(_SLOW_EVALUATION_TRAIN)
        self.assertIn("before-evaluation.index", left)
        self.assertNotIn("ckpt-2.index", left)
        # The rerun starts at the second epoch's end (10 steps of 32 images
        # each) and trains none of it again.
        self.assertIn(
            "before-evaluation: global step 20, 1 epochs completed; the "
            "evaluation of the epoch that ended there runs now",
            resumed.stderr,
        )
        self.assertNotIn("epoch 2/3 step", resumed.stderr)
        self.assertNotIn(
            "before-evaluation.index", os.listdir(os.path.join(workdir, "checkpoints"))
        )


# Trains each preset named after argv[1:4] (program, data dir, root) for one
# epoch, one after another in this process, as `vae-train --flagfile=PRESET`
# parses it: one process per program keeps TensorFlow's start-up to two.
_RUN_PRESETS = """
import json, os, sys
from absl import flags
default_trainer, root, *runs = sys.argv[1:]
from launch import experiment, train
completed = {}
for run in runs:
    preset, data_dir, *extra = run.split(" ")
    flags.FLAGS.unparse_flags()
    name = os.path.basename(preset)
    train.parse_flags([
        "vae-train", "--flagfile=" + preset, "--data_dir=" + data_dir,
        "--workdir=" + os.path.join(root, name), "--epochs=1",
        "--batch_size=8", "--eval_batch_size=8", "--pictures=false",
        "--export=false", "--progress=none", *extra], default_trainer)
    completed[name] = experiment.run_training(
        train.config_from_flags()).completed
print("COMPLETED " + json.dumps(completed))
"""


def _preset_trainer(path):
    """The --trainer a preset names (in it or a flagfile it includes)."""
    trainer = "elbo"
    with open(path) as stream:
        for line in stream:
            line = line.strip()
            if line.startswith("--flagfile="):
                trainer = _preset_trainer(
                    os.path.join(os.path.dirname(path), line.split("=", 1)[1])
                )
            elif line.startswith("--trainer="):
                trainer = line.split("=", 1)[1]
    return trainer


class PresetsFromAnotherDirectoryTest(tf.test.TestCase):
    """Every preset runs from outside the repository, as an installed user
    runs it: one epoch on tiny fake data (MNIST, or dSprites for its
    presets), one process per trainer."""

    def test_every_preset_trains_from_another_directory(self):
        root = self.create_tempdir().full_path
        mnist_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(mnist_dir, num_train=16, num_test=8)
        dsprites_dir = os.path.join(root, "fake_dsprites")
        os.makedirs(dsprites_dir)
        test_dsprites._write_fake_archive(  # pylint: disable=protected-access
            os.path.join(dsprites_dir, dsprites.ARCHIVE_NAME), num_images=40
        )
        elsewhere = os.path.join(root, "elsewhere")
        os.makedirs(elsewhere)
        configs = os.path.join(testing_utils.REPO_ROOT, "launch", "configs")
        presets = sorted(name for name in os.listdir(configs) if name.endswith(".flags"))
        self.assertGreaterEqual(len(presets), 8)
        by_trainer = {}
        for name in presets:
            path = os.path.join(configs, name)
            run = (
                f"{path} {dsprites_dir} --train_subset=16"
                if name.startswith("dsprites")
                else f"{path} {mnist_dir}"
            )
            by_trainer.setdefault(_preset_trainer(path), []).append(run)
        processes = []
        for trainer, runs in by_trainer.items():
            stdout = tempfile.TemporaryFile("w+")
            stderr = tempfile.TemporaryFile("w+")
            processes.append(
                (
                    stdout,
                    stderr,
                    subprocess.Popen(
                        [sys.executable, "-c", _RUN_PRESETS, trainer, root, *runs],
                        cwd=elsewhere,
                        env=testing_utils.program_environment(),
                        stdout=stdout,
                        stderr=stderr,
                        text=True,
                    ),
                )
            )
        completed = {}
        for stdout, stderr, process in processes:
            process.wait(timeout=900)
            stdout.seek(0)
            stderr.seek(0)
            output, errors = stdout.read(), stderr.read()
            stdout.close()
            stderr.close()
            self.assertEqual(process.returncode, 0, errors[-3000:])
            completed.update(json.loads(output.split("COMPLETED ", 1)[1].splitlines()[0]))
        self.assertEqual(completed, {name: True for name in presets})


if __name__ == "__main__":
    tf.test.main()
