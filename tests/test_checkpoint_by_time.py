"""Tests for checkpoints by time (TrainerConfig.checkpoint_every_seconds,
--checkpoint_every_seconds) and the lost-worker report of
launch/multi_worker.py."""

import tensorflow as tf

from launch import exit_codes
from launch import multi_worker
from tests import test_base
from trainers import base


class CheckpointEverySecondsTest(tf.test.TestCase):
    def _saves(self, seconds):
        data, _ = test_base.regression_data()  # 8 steps per epoch.
        trainer = test_base.RegressionTrainer(
            test_base.LinearModel(),
            base.TrainerConfig(
                workdir=self.create_tempdir().full_path,
                epochs=1,
                steps_per_loop=2,
                progress="none",
                checkpoint_every_seconds=seconds,
            ),
            data,
        )
        self.assertTrue(trainer.train().completed)
        return int(trainer.checkpoint.save_counter.numpy())

    def test_due_after_every_loop_mid_epoch(self):
        # Loops end at steps 2, 4, 6 (mid-epoch: due each time) and 8 (the
        # epoch end, which checkpoints anyway): 3 + 1 saves.
        self.assertEqual(self._saves(1e-9), 4)
        # Never due, or off: the epoch end only.
        self.assertEqual(self._saves(1e9), 1)
        self.assertEqual(self._saves(0.0), 1)

    def test_negative_is_refused(self):
        with self.assertRaisesRegex(ValueError, "checkpoint_every_seconds"):
            base.TrainerConfig(
                workdir="w", epochs=1, checkpoint_every_seconds=-1.0
            ).validate()


class LostWorkerReportTest(tf.test.TestCase):
    def test_names_the_lost_worker(self):
        workers = ["a:1", "b:2", "c:3"]
        error = tf.errors.UnavailableError(
            None,
            None,
            "Collective ops is aborted by: task "
            "/job:worker/replica:0/task:2 is unavailable\nmore detail",
        )
        message = multi_worker.describe(error, workers, 0, global_step=12)
        self.assertStartsWith(
            message,
            "Lost worker 2 (c:3) at global step "
            "12: it stopped answering (UnavailableError: "
            "Collective ops is aborted by: task",
        )
        self.assertIn(
            f"Worker 0 (a:1) exits with status {exit_codes.LOST_WORKER}", message
        )
        self.assertNotIn("more detail", message)

    def test_two_workers_the_other_one_is_lost(self):
        error = tf.errors.UnavailableError(
            None,
            None,
            "Graph execution error:\n\nCollective ops is aborted "
            "by: recvmsg:Connection reset by peer",
        )
        self.assertStartsWith(
            multi_worker.describe(error, ["a:1", "b:2"], 1),
            "Lost worker 0 (a:1): it stopped answering (UnavailableError: "
            "Collective ops is aborted by: recvmsg:Connection reset by peer)",
        )
        self.assertStartsWith(
            multi_worker.describe(error, ["a:1", "b:2", "c:3"], 1),
            "Lost another worker of the 3: it stopped answering",
        )


if __name__ == "__main__":
    tf.test.main()
