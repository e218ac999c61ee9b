"""Tests for trainers/stop_signals.py and the programs' early handlers:
signals that arrive together, or before training starts, end in a
checkpoint and the documented exit status."""

import os
import signal
import subprocess
import sys
import unittest

from launch import exit_codes
from tests import testing_utils
from trainers import stop_signals

_TOY_FLAGS = (
    "--dataset=toy2d",
    "--architecture=mlp",
    "--likelihood=gaussian",
    "--hidden_units=8",
    "--batch_size=100",
    "--epochs=1",
    "--steps_per_loop=5",
    "--progress=none",
    "--export=false",
)


class StopRequestTest(unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.request = stop_signals.StopRequest()
        self.assertTrue(self.request.install())
        self.addCleanup(self.request.uninstall)

    def test_second_signal_does_not_abort_and_term_wins(self):
        os.kill(os.getpid(), signal.SIGUSR1)
        self.assertEqual(self.request.signal_number, signal.SIGUSR1)
        # Before: a second signal raised KeyboardInterrupt (no checkpoint,
        # exit -2); now it is noted and the stop goes on.
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        self.assertEqual(self.request.received, [signal.SIGUSR1, signal.SIGTERM])
        self.assertEqual(self.request.signal_number, signal.SIGTERM)

    def test_ctrl_c_twice_still_means_now(self):
        os.kill(os.getpid(), signal.SIGINT)
        with self.assertRaises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)

    def test_uninstall_restores_the_previous_handlers(self):
        self.request.uninstall()
        self.assertIs(signal.getsignal(signal.SIGUSR1), signal.SIG_DFL)


class EarlySignalProgramTest(unittest.TestCase):
    """Signals delivered right after the handlers are installed, before
    TensorFlow is imported (as launch/entry_points.py installs them)."""

    def test_signals_before_training_end_in_a_checkpoint_and_143(self):
        workdir = os.path.join(testing_utils.private_temp_dir(), "run")
        program = (
            "import os, signal, sys\n"
            "from trainers import stop_signals\n"
            "stop_signals.install_for_process()\n"
            "assert 'tensorflow' not in sys.modules\n"
            # What scancel --full did: USR1, then TERM, twice.
            "for number in (signal.SIGUSR1, signal.SIGTERM, signal.SIGTERM):\n"
            "    os.kill(os.getpid(), number)\n"
            "sys.argv = ['vae-train'] + sys.argv[1:]\n"
            "from launch import train\n"
            "train.run_main()\n"
        )
        arguments = [*_TOY_FLAGS, f"--workdir={workdir}"]
        result = subprocess.run(
            [sys.executable, "-c", program, *arguments],
            cwd=testing_utils.REPO_ROOT,
            env=testing_utils.program_environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(
            result.returncode,
            exit_codes.stopped_by(signal.SIGTERM),
            result.stderr[-3000:],
        )
        self.assertIn("Stopped by SIGTERM at global step 0", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertTrue(
            os.path.exists(os.path.join(workdir, "checkpoints", "checkpoint"))
        )
        # The same command resumes from it and completes.
        rerun = testing_utils.run_module("launch.train", arguments)
        self.assertEqual(rerun.returncode, 0, rerun.stderr[-3000:])
        with open(os.path.join(workdir, "launches.log")) as stream:
            launches = stream.read().splitlines()
        self.assertEqual(len(launches), 2, launches)
        self.assertIn(" start: ", launches[0])
        self.assertIn(" resume: ", launches[1])


if __name__ == "__main__":
    unittest.main()
