"""Tests for trainers/workdir_lock.py."""

import os
import signal
import socket

import tensorflow as tf

from tests import testing_utils
from trainers import workdir_lock


class WorkdirLockTest(tf.test.TestCase):
    def test_second_holder_is_refused_with_the_first_ones_pid_and_host(self):
        workdir = self.create_tempdir().full_path
        first = workdir_lock.WorkdirLock(workdir)
        first.acquire()
        first.record_holder()
        # flock locks belong to open files: a second open in the same
        # process conflicts too, as another process's would.
        with self.assertRaises(workdir_lock.WorkdirBusyError) as caught:
            workdir_lock.WorkdirLock(workdir).acquire()
        message = str(caught.exception)
        self.assertIn(f"pid {os.getpid()}", message)
        self.assertIn(f"host {socket.gethostname()}", message)
        self.assertIn(workdir, message)
        first.release()
        with workdir_lock.WorkdirLock(workdir) as again:
            self.assertTrue(again.held)

    def test_refused_acquire_changes_nothing(self):
        workdir = self.create_tempdir().full_path
        holder = workdir_lock.WorkdirLock(workdir)
        holder.acquire()
        holder.record_holder()
        with open(holder.path) as stream:
            before = stream.read()
        with self.assertRaises(workdir_lock.WorkdirBusyError):
            workdir_lock.WorkdirLock(workdir).acquire()
        with open(holder.path) as stream:
            self.assertEqual(stream.read(), before)
        holder.release()

    def test_lock_is_recovered_after_its_holder_is_killed(self):
        workdir = self.create_tempdir().full_path
        with testing_utils.workdir_lock_holder(workdir) as process:
            with self.assertRaisesRegex(
                workdir_lock.WorkdirBusyError, f"pid {process.pid} "
            ):
                workdir_lock.WorkdirLock(workdir).acquire()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        # The file stays behind, but the kernel dropped the lock.
        self.assertTrue(os.path.exists(os.path.join(workdir, "lock")))
        with workdir_lock.WorkdirLock(workdir) as lock:
            self.assertTrue(lock.held)


if __name__ == "__main__":
    tf.test.main()
