"""Multi-worker training: two local processes joined by TF_CONFIG.

Each worker is a process of its own with one CPU device, the two talking
over 127.0.0.1 ports, as machines of a cluster would. The trainer-level run
(tests/distribute_cases.py) has no noise, so it must follow one device's
trajectory; the program-level run checks what `vae-train
--strategy=multi_worker` leaves behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

import tensorflow as tf

from tests import distribute_cases
from tests import testing_utils


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


def run_workers(command_for_worker, num_workers=2, timeout=300):
    """Starts one process per worker, with TF_CONFIG naming free local
    ports, and waits for all of them.

    Args:
      command_for_worker: worker index -> argument list (after `python`).

    Returns:
      The completed processes' (return code, stderr), in worker order.
    """
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(num_workers)]
    launched = []
    try:
        for index in range(num_workers):
            tf_config = {
                "cluster": {"worker": addresses},
                "task": {"type": "worker", "index": index},
            }
            stderr = tempfile.TemporaryFile("w+")
            launched.append(
                (
                    subprocess.Popen(
                        [sys.executable, *command_for_worker(index)],
                        cwd=testing_utils.REPO_ROOT,
                        env=testing_utils.program_environment(
                            {"TF_CONFIG": json.dumps(tf_config)}
                        ),
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                        text=True,
                    ),
                    stderr,
                )
            )
        results = []
        for process, stderr in launched:
            process.wait(timeout=timeout)
            stderr.seek(0)
            results.append((process.returncode, stderr.read()))
        return results
    finally:
        for process, stderr in launched:
            if process.poll() is None:
                process.kill()
                process.wait()
            stderr.close()


class TwoWorkersTest(tf.test.TestCase):
    def _worker_runs(self, workdir, *kill_at_batch):
        outputs = [
            os.path.join(self.root, f"worker{index}-{len(kill_at_batch)}.json")
            for index in range(2)
        ]

        def command(index):
            # Only the chief (worker 0) is signalled.
            kill = [str(value) for value in kill_at_batch] if index == 0 else []
            return [
                "-m",
                "tests.distribute_cases",
                "worker",
                outputs[index],
                workdir,
                *kill,
            ]

        for returncode, stderr in run_workers(command):
            self.assertEqual(returncode, 0, stderr[-4000:])
        results = []
        for path in outputs:
            with open(path) as stream:
                results.append(json.load(stream))
        return results

    def test_stop_on_one_worker_stops_both_and_resume_matches_one_device(self):
        self.root = self.create_tempdir().full_path
        reference = distribute_cases.autoencoder_run(
            os.path.join(self.root, "reference"), tf.distribute.get_strategy()
        )
        workdir = os.path.join(self.root, "two_workers")

        # SIGUSR1 reaches the chief only, in epoch 2: both workers stop
        # after the same step, with a checkpoint in the chief's workdir.
        chief, worker = self._worker_runs(workdir, 1, 4)
        self.assertTrue(chief["is_chief"])
        self.assertFalse(worker["is_chief"])
        for stopped in (chief, worker):
            self.assertFalse(stopped["completed"])
            self.assertEqual(stopped["stop_signal"], signal.SIGUSR1)
        self.assertEqual(chief["global_step"], worker["global_step"])
        steps_per_epoch = distribute_cases.AUTOENCODER_STEPS_PER_EPOCH
        self.assertBetween(
            chief["global_step"], steps_per_epoch + 1, 2 * steps_per_epoch - 1
        )
        self.assertTrue(
            tf.io.gfile.glob(os.path.join(workdir, "checkpoints", "ckpt-*.index"))
        )
        # The other worker saved to a temporary directory and deleted it.
        self.assertNotStartsWith(worker["checkpoint_directory"], workdir)
        self.assertFalse(worker["checkpoint_directory_left"])

        # The same command again: both resume from the chief's checkpoint and
        # end where one device ends on the same global batches.
        chief, worker = self._worker_runs(workdir)
        for resumed in (chief, worker):
            self.assertTrue(resumed["completed"])
            self.assertEqual(resumed["global_step"], reference["global_step"])
            for mine, theirs in zip(resumed["weights"], reference["weights"]):
                self.assertAllClose(mine, theirs, rtol=1e-4, atol=1e-5)
        self.assertAllClose(chief["train_mse"], reference["train_mse"], rtol=1e-4)
        self.assertAllClose(chief["test_mse"], reference["test_mse"], rtol=1e-4)
        # Only the chief evaluates; the other worker's history holds the
        # chief's evaluation of epoch 1, restored from its checkpoint.
        self.assertEqual(worker["test_mse"][1:], [None, None])
        self.assertFalse(worker["checkpoint_directory_left"])

    def test_sampled_latents_on_two_workers_follow_one_device(self):
        # Each worker holds half of every global batch; its latent noise is
        # its rows of the global draw, so the run is the one-device run.
        self.root = self.create_tempdir().full_path
        outputs = [os.path.join(self.root, f"elbo{index}.json") for index in range(2)]
        for returncode, stderr in run_workers(
            lambda index: ["-m", "tests.distribute_cases", "elbo_worker", outputs[index]]
        ):
            self.assertEqual(returncode, 0, stderr[-4000:])
        with open(outputs[0]) as stream:
            chief = json.load(stream)
        reference = distribute_cases._elbo_run(
            tf.distribute.get_strategy(), regularised=False
        )
        self.assertAllClose(chief["train_elbo"], reference["train_elbo"], rtol=1e-4)
        self.assertAllClose(chief["test_elbo"], reference["test_elbo"], rtol=1e-4)


class TrainProgramTest(tf.test.TestCase):
    def test_vae_train_on_two_workers_writes_only_the_chiefs_workdir(self):
        root = self.create_tempdir().full_path
        workdir = os.path.join(root, "run")
        arguments = [
            "--dataset=toy2d",
            "--architecture=mlp",
            "--likelihood=gaussian",
            "--hidden_units=16",
            "--latent_dim=2",
            "--epochs=1",
            "--batch_size=50",
            "--progress=none",
            f"--workdir={workdir}",
        ]
        results = run_workers(
            lambda index: ["-m", "launch.train", "--strategy=multi_worker", *arguments]
        )
        for returncode, stderr in results:
            self.assertEqual(returncode, 0, stderr[-4000:])
        # TensorFlow's own log line: the two processes formed one cluster.
        self.assertIn("num_workers = 2", results[1][1])
        for name in (
            "run.json",
            "flags.txt",
            "metrics.json",
            "export",
            "checkpoints",
            "tensorboard",
        ):
            self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
        with open(os.path.join(workdir, "launches.log")) as stream:
            self.assertLen(stream.read().splitlines(), 1)  # the chief's
        with open(os.path.join(workdir, "metrics.json")) as stream:
            final = json.load(stream)["final"]
        self.assertEqual(final["global_step"], 2000 // 50)
        # One epoch of this model on one device reaches about -3.06 nats.
        self.assertBetween(final["test"]["elbo"], -3.6, -2.6)


if __name__ == "__main__":
    tf.test.main()
