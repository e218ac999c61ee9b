"""Every program starts and lists its flags: one cheap end-to-end check per
program for the fast tier (the slow tier runs each program's work)."""

import subprocess
import sys

from absl.testing import absltest

from tests import testing_utils

# Program module -> flags its help must list (its own, and for vae-train the
# plug-in trainer's objective fields).
PROGRAMS = {
    "launch.train": ("--workdir", "--trainer", "--kl_warmup_epochs"),
    "launch.train_vaegan": ("--workdir", "--gan_weights", "--d_threshold"),
    "launch.evaluate": ("--workdir", "--num_importance_samples"),
    "launch.compare": ("--evaluations", "--output"),
    "launch.generate": ("--workdir", "--image_labels"),
    "launch.toy2d": ("--workdir", "--learning_rate_schedule"),
    "launch.submit": ("--sweep", "--nodes"),
    "launch.benchmark": ("--presets", "--repeats"),
    "launch.memory_benchmark": ("--rss_log",),
    "launch.make_image_folder": ("--source", "--output_dir"),
}


class ProgramsStartTest(absltest.TestCase):
    def test_every_program_lists_its_flags(self):
        # All at once: most of each start is importing TensorFlow.
        processes = {
            module: subprocess.Popen(
                [sys.executable, "-m", module, "--helpfull"],
                cwd=testing_utils.REPO_ROOT,
                env=testing_utils.program_environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for module in PROGRAMS
        }
        for module, process in processes.items():
            stdout, stderr = process.communicate(timeout=300)
            with self.subTest(module=module):
                # absl's help flags exit with status 1 after the help.
                self.assertIn(process.returncode, (0, 1), stderr[-2000:])
                for flag in PROGRAMS[module]:
                    self.assertIn(flag, stdout + stderr)
                self.assertNotIn("Traceback", stderr)


if __name__ == "__main__":
    absltest.main()
