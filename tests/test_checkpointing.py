"""Tests for trainers/checkpointing.py through the base trainer: damaged
checkpoints, a damaged state file, leftovers of killed saves, failed saves."""

import os
import shutil
import signal

import tensorflow as tf

from tests import testing_utils
from tests.test_base import LinearModel
from tests.test_base import RegressionTrainer
from tests.test_base import regression_data
from trainers import base
from trainers import checkpointing


class CrashingTrainer(RegressionTrainer):
    """Raises at the end of epoch `crash_at` (0-based), after the epoch's
    evaluation and before its checkpoint: what a crash or a kill in the
    evaluation or the hooks leaves."""

    crash_at = None

    def on_epoch_end(self, epoch, logs):
        if epoch == self.crash_at:
            raise RuntimeError(f"crash at the end of epoch {epoch}")


class SignalledTrainer(RegressionTrainer):
    """Receives SIGTERM at the end of epoch `signal_at` (0-based), after
    the epoch's evaluation: what a scheduler's preemption during it does."""

    signal_at = None

    def on_epoch_end(self, epoch, logs):
        if epoch == self.signal_at:
            signal.raise_signal(signal.SIGTERM)


def make_trainer(workdir, epochs, trainer_class=RegressionTrainer):
    data, _ = regression_data()
    return trainer_class(
        LinearModel(),
        base.TrainerConfig(
            workdir=workdir, epochs=epochs, steps_per_loop=3, progress="none"
        ),
        data,
    )


# What a run of 3 epochs leaves when it stops between the third epoch's end
# and its checkpoint: two epochs' checkpoints and the third's end, written
# before its evaluation.
AFTER_THE_THIRD_EPOCHS_END = [
    "before-evaluation.data-00000-of-00001",
    "before-evaluation.index",
    "checkpoint",
    "ckpt-1.data-00000-of-00001",
    "ckpt-1.index",
    "ckpt-2.data-00000-of-00001",
    "ckpt-2.index",
]


def weights(trainer):
    return [float(trainer.model.weight.numpy()), float(trainer.model.bias.numpy())]


class CheckpointingTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The uninterrupted 3-epoch run every resumed one must match.
        reference = make_trainer(
            os.path.join(tf.compat.v1.test.get_temp_dir(), "reference"), 3
        )
        cls.reference_metrics = testing_utils.without_timings(
            reference.train().metrics["epochs"]
        )
        cls.reference_weights = weights(reference)

    def two_epochs(self):
        workdir = self.create_tempdir().full_path
        make_trainer(workdir, 2).train()
        return workdir, os.path.join(workdir, "checkpoints")

    def test_truncated_newest_checkpoint_falls_back_to_the_one_before(self):
        workdir, checkpoint_dir = self.two_epochs()
        data_file = os.path.join(checkpoint_dir, "ckpt-2.data-00000-of-00001")
        with open(data_file, "r+b") as stream:
            stream.truncate(os.path.getsize(data_file) // 2)
        trainer = make_trainer(workdir, 3)
        with self.assertLogs(level="WARNING") as logs:
            result = trainer.train()
        text = "\n".join(logs.output)
        self.assertIn("ckpt-2 cannot be read", text)
        self.assertIn("ckpt-1, the newest checkpoint that can be read", text)
        self.assertTrue(result.completed)
        self.assertEqual(result.global_step, 24)
        # Resumed from epoch 1's end: the same weights as never stopping.
        self.assertEqual(weights(trainer), self.reference_weights)
        self.assertLen(result.metrics["epochs"], 3)

    def test_garbage_state_file_does_not_restart_from_scratch(self):
        workdir, checkpoint_dir = self.two_epochs()
        with open(os.path.join(checkpoint_dir, "checkpoint"), "w") as stream:
            stream.write("this is { not a checkpoint state\n")
        trainer = make_trainer(workdir, 3)
        with self.assertLogs(level="INFO") as logs:
            result = trainer.train()
        # Resumed from ckpt-2 (step 16), not from step 0.
        self.assertIn("ckpt-2: global step 16", "\n".join(logs.output))
        self.assertEqual(result.global_step, 24)
        self.assertEqual(weights(trainer), self.reference_weights)
        self.assertEqual(
            [os.path.basename(path) for path in trainer.checkpoint_manager.checkpoints],
            ["ckpt-1", "ckpt-2", "ckpt-3"],
        )
        self.assertEqual(
            os.path.basename(tf.train.latest_checkpoint(checkpoint_dir)), "ckpt-3"
        )

    def test_no_readable_checkpoint_stops_before_writing_anything(self):
        workdir, checkpoint_dir = self.two_epochs()
        for number in (1, 2):
            with open(
                os.path.join(checkpoint_dir, f"ckpt-{number}.index"), "wb"
            ) as stream:
                stream.write(b"garbage")
        tensorboard = os.path.join(workdir, "tensorboard")
        events_before = sorted(os.listdir(tensorboard))
        trainer = make_trainer(workdir, 3)
        with self.assertRaises(checkpointing.CheckpointUnreadableError) as caught:
            trainer.train()
        message = str(caught.exception)
        self.assertIn("ckpt-1", message)
        self.assertIn("ckpt-2", message)
        self.assertIn(checkpoint_dir, message)
        # No new TensorBoard events file, no new checkpoint.
        self.assertEqual(sorted(os.listdir(tensorboard)), events_before)
        self.assertEqual(
            checkpointing.numbered_checkpoints(checkpoint_dir),
            [
                (1, os.path.join(checkpoint_dir, "ckpt-1")),
                (2, os.path.join(checkpoint_dir, "ckpt-2")),
            ],
        )

    def test_leftover_temporary_folders_are_removed(self):
        workdir, checkpoint_dir = self.two_epochs()
        # A kill during the save of ckpt-2 left its folder behind (the save
        # of ckpt-3, next, would only clean up its own).
        leftover = os.path.join(checkpoint_dir, "ckpt-2_temp")
        os.makedirs(leftover)
        with open(os.path.join(leftover, "part-00000-of-00001.index"), "wb") as stream:
            stream.write(b"half")
        make_trainer(workdir, 3).train()
        self.assertFalse(os.path.exists(leftover))

    def test_failed_save_removes_its_files_and_keeps_the_previous(self):
        workdir, checkpoint_dir = self.two_epochs()
        trainer = make_trainer(workdir, 3)
        checkpoint = trainer.checkpoint
        real_write = checkpoint._write

        def write_half_then_fail(prefix, options=None):
            del options  # Holds the manager's callbacks, which must not run.
            # What a full disk leaves: a new checkpoint's files, one of them
            # cut short, and a temporary folder; then SaveV2 fails.
            real_write(prefix)
            data_file = prefix + ".data-00000-of-00001"
            with open(data_file, "r+b") as stream:
                stream.truncate(os.path.getsize(data_file) // 2)
            os.makedirs(prefix + "_temp")
            raise tf.errors.ResourceExhaustedError(
                None,
                None,
                f"{prefix}_temp/part-00000-of-00001.data; No space left on device",
            )

        def write_numbered_half_then_fail(prefix, options=None):
            if os.path.basename(prefix) == checkpointing.BEFORE_EVALUATION_NAME:
                return real_write(prefix, options=options)
            return write_half_then_fail(prefix, options)

        checkpoint._write = write_numbered_half_then_fail
        with self.assertRaises(checkpointing.CheckpointWriteError) as caught:
            trainer.train()
        message = str(caught.exception)
        self.assertIn(os.path.join(checkpoint_dir, "ckpt-3"), message)
        self.assertIn("the disk is full", message)
        self.assertIn("ckpt-2", message)
        self.assertEqual(sorted(os.listdir(checkpoint_dir)), AFTER_THE_THIRD_EPOCHS_END)
        self.assertIsNone(
            checkpointing.unreadable_reason(os.path.join(checkpoint_dir, "ckpt-2"))
        )
        # And the next launch resumes exactly: from epoch 3's end written
        # before its evaluation, which is newer than ckpt-2.
        self.assertIn(
            f"Restored {os.path.join(checkpoint_dir, 'before-evaluation')}: "
            "global step 24",
            self.resumed_to_the_end(workdir),
        )

    def test_failed_write_before_the_evaluation_keeps_the_previous(self):
        workdir, checkpoint_dir = self.two_epochs()
        trainer = make_trainer(workdir, 3)

        def fail(prefix, options=None):
            del options
            os.makedirs(prefix + "_temp")
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

        trainer.checkpoint._write = fail
        with self.assertRaises(checkpointing.CheckpointWriteError) as caught:
            trainer.train()
        message = str(caught.exception)
        self.assertIn(os.path.join(checkpoint_dir, "before-evaluation"), message)
        self.assertIn("the previous checkpoint, ", message)
        self.assertIn("ckpt-2, is intact", message)
        self.assertNotIn("before-evaluation_temp", os.listdir(checkpoint_dir))

    def resumed_to_the_end(self, workdir, level="INFO"):
        """Runs the 3-epoch trainer again on `workdir`, checks that it ends
        as the uninterrupted run did, and returns its log."""
        resumed = make_trainer(workdir, 3)
        with self.assertLogs(level=level) as logs:
            result = resumed.train()
        self.assertEqual(result.global_step, 24)
        self.assertEqual(weights(resumed), self.reference_weights)
        self.assertEqual(
            testing_utils.without_timings(result.metrics["epochs"]),
            self.reference_metrics,
        )
        return "\n".join(logs.output)

    def crashed_in_the_third_epochs_end(self):
        workdir = self.create_tempdir().full_path
        crashing = make_trainer(workdir, 3, CrashingTrainer)
        crashing.crash_at = 2
        with self.assertRaisesRegex(RuntimeError, "crash at the end of epoch 2"):
            crashing.train()
        return workdir, os.path.join(workdir, "checkpoints")

    def test_crash_in_an_epochs_end_costs_only_its_evaluation(self):
        workdir, checkpoint_dir = self.crashed_in_the_third_epochs_end()
        self.assertEqual(sorted(os.listdir(checkpoint_dir)), AFTER_THE_THIRD_EPOCHS_END)
        log = self.resumed_to_the_end(workdir)
        # No step trained again: the run resumed at the third epoch's end
        # and ran only its evaluation.
        self.assertIn(
            "before-evaluation: global step 24, 2 epochs completed; the "
            "evaluation of the epoch that ended there runs now",
            log,
        )
        # Done with once the epoch's own checkpoint is written.
        self.assertEqual(
            sorted(name for name in os.listdir(checkpoint_dir) if "index" in name),
            ["ckpt-1.index", "ckpt-2.index", "ckpt-3.index"],
        )

    def test_unreadable_checkpoint_before_the_evaluation_falls_back(self):
        workdir, checkpoint_dir = self.crashed_in_the_third_epochs_end()
        data_file = os.path.join(checkpoint_dir, "before-evaluation.data-00000-of-00001")
        with open(data_file, "r+b") as stream:
            stream.truncate(os.path.getsize(data_file) // 2)
        # The third epoch trains again from ckpt-2: the same run.
        self.assertIn(
            "before-evaluation, written at an epoch's end before its "
            "evaluation, cannot be read",
            self.resumed_to_the_end(workdir, level="WARNING"),
        )

    def test_signal_during_the_evaluation_stops_on_the_epochs_checkpoint(self):
        workdir = self.create_tempdir().full_path
        checkpoint_dir = os.path.join(workdir, "checkpoints")
        signalled = make_trainer(workdir, 3, SignalledTrainer)
        signalled.signal_at = 1
        stopped = signalled.train()
        # Stopped at the second epoch's end, without a step more, and
        # without a second checkpoint of that step.
        self.assertFalse(stopped.completed)
        self.assertEqual(stopped.stop_signal, signal.SIGTERM)
        self.assertEqual(stopped.global_step, 16)
        self.assertEqual(
            [number for number, _ in checkpointing.numbered_checkpoints(checkpoint_dir)],
            [1, 2],
        )
        self.resumed_to_the_end(workdir)

    def test_stale_checkpoint_before_the_evaluation_is_ignored_and_removed(self):
        # A kill between an epoch's checkpoint and the removal of the one
        # written before its evaluation leaves an older one behind.
        workdir, checkpoint_dir = self.two_epochs()
        for suffix in (".index", ".data-00000-of-00001"):
            shutil.copy(
                os.path.join(checkpoint_dir, "ckpt-1" + suffix),
                os.path.join(checkpoint_dir, "before-evaluation" + suffix),
            )
        self.assertIn("ckpt-2: global step 16", self.resumed_to_the_end(workdir))
        self.assertFalse(
            os.path.exists(os.path.join(checkpoint_dir, "before-evaluation.index"))
        )


class ListingTest(tf.test.TestCase):
    def test_numbered_checkpoints_sorts_by_number_not_name(self):
        directory = self.create_tempdir().full_path
        for name in (
            "ckpt-10.index",
            "ckpt-9.index",
            "ckpt-9.data-00000-of-00001",
            "ckpt-11_temp",
            "checkpoint",
            "ckpt-x.index",
        ):
            open(os.path.join(directory, name), "w").close()
        self.assertEqual(
            [number for number, _ in checkpointing.numbered_checkpoints(directory)],
            [9, 10],
        )
        self.assertEqual(
            checkpointing.remove_temporary_leftovers(directory),
            [os.path.join(directory, "ckpt-11_temp")],
        )
        self.assertEqual(
            checkpointing.numbered_checkpoints(os.path.join(directory, "missing")), []
        )


if __name__ == "__main__":
    tf.test.main()
