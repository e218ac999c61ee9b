"""Tests for launch/submit.py: Slurm batch scripts, sweeps and requeueing.

No Slurm here: `bash -n` checks the scripts, and small stand-ins for srun,
sbatch and scontrol (shell scripts on PATH that record how they were called)
let the scripts and the program run as they would on a cluster.
"""

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time

import tensorflow as tf

from launch import exit_codes
from launch import submit
from tests import testing_utils

_COMMAND = (
    "vae-train",
    "--flagfile=launch/configs/tf_tutorial_conv.flags",
    "--workdir=runs/sweep",
)


def _config(**overrides):
    fields = dict(command=_COMMAND, working_directory="/home/me/vae")
    fields.update(overrides)
    return submit.SubmitConfig(**fields)


def _directives(script):
    return [
        line[len("#SBATCH ") :]
        for line in script.splitlines()
        if line.startswith("#SBATCH ")
    ]


def _write_executable(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as stream:
        stream.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return path


def _fake_slurm(directory):
    """srun (runs its command, noting its pid), scontrol and sbatch (note
    their arguments) in directory/bin; returns the environment to use."""
    bin_dir = os.path.join(directory, "bin")
    os.makedirs(bin_dir)
    # srun notes its options and VAE_WORKER_PORT, then runs the command.
    _write_executable(
        bin_dir,
        "srun",
        "#!/bin/bash\n"
        'echo "$@" >> "$FAKE_SLURM/srun.log"\n'
        'echo "${VAE_WORKER_PORT:-}" > "$FAKE_SLURM/port"\n'
        'echo $$ > "$FAKE_SLURM/srun.pid"\n'
        'while [[ "$1" == --* ]]; do shift; done\n'
        'exec "$@"\n',
    )
    _write_executable(
        bin_dir, "scontrol", '#!/bin/bash\necho "$@" >> "$FAKE_SLURM/scontrol.log"\n'
    )
    _write_executable(
        bin_dir,
        "sbatch",
        '#!/bin/bash\necho "$@" >> "$FAKE_SLURM/sbatch.log"\necho "12345;cluster1"\n',
    )
    return {"PATH": bin_dir + os.pathsep + os.environ["PATH"], "FAKE_SLURM": directory}


def _read(path):
    with open(path) as stream:
        return stream.read()


class ExitCodeTest(tf.test.TestCase):
    def test_requeue_status_is_sigusr1s(self):
        self.assertEqual(exit_codes.stopped_by(signal.SIGTERM), 143)
        self.assertEqual(exit_codes.REQUEUE, 128 + signal.SIGUSR1)
        self.assertEqual(exit_codes.REQUEUE_SIGNAL, signal.SIGUSR1)


class SweepTest(tf.test.TestCase):
    def test_values_by_comma_or_semicolon(self):
        self.assertEqual(
            submit.parse_sweep("learning_rate=1e-3,3e-4"),
            submit.Sweep("learning_rate", ("1e-3", "3e-4")),
        )
        self.assertEqual(
            submit.parse_sweep("--hidden_units=512,256;128"),
            submit.Sweep("hidden_units", ("512,256", "128")),
        )

    def test_bad_sweeps_are_refused_naming_them(self):
        cases = {
            "learning_rate": "is not NAME=V1,V2",
            "1x=2": "is not NAME=V1,V2",
            "workdir=a,b": "sets --workdir itself",
            "latent_dim=2,,8": "has an empty value",
            "latent_dim=2,2": "repeats a value",
        }
        for text, fragment in cases.items():
            with self.subTest(text=text):
                with self.assertRaisesRegex(ValueError, fragment) as caught:
                    submit.parse_sweep(text)
                self.assertIn(repr(text), str(caught.exception))

    def test_grid_is_every_combination_last_flag_fastest(self):
        points = submit.grid_points(
            [
                submit.Sweep("learning_rate", ("1e-3", "3e-4")),
                submit.Sweep("latent_dim", ("2", "8")),
            ]
        )
        self.assertEqual(
            points,
            [
                {"learning_rate": "1e-3", "latent_dim": "2"},
                {"learning_rate": "1e-3", "latent_dim": "8"},
                {"learning_rate": "3e-4", "latent_dim": "2"},
                {"learning_rate": "3e-4", "latent_dim": "8"},
            ],
        )
        self.assertEqual(submit.grid_points([]), [{}])
        self.assertEqual(submit.point_name(points[1]), "learning_rate=1e-3,latent_dim=8")
        self.assertEqual(submit.point_name({"data_dir": "a b/c"}), "data_dir=a_b_c")

    def test_time_limits_in_slurms_formats(self):
        for text, seconds in (
            ("90", 5400),
            ("10:30", 630),
            ("04:00:00", 14400),
            ("1-12", 129600),
            ("2-00:30", 174600),
            ("1-0:0:5", 86405),
        ):
            self.assertEqual(submit.time_limit_seconds(text), seconds, text)
        with self.assertRaisesRegex(ValueError, "'4h' is not a Slurm time"):
            submit.time_limit_seconds("4h")


class BatchScriptTest(tf.test.TestCase):
    def _check_syntax(self, script):
        path = os.path.join(self.create_tempdir().full_path, "job.sh")
        with open(path, "w") as stream:
            stream.write(script)
        result = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_multi_node_job(self):
        script = submit.batch_script(
            _config(
                nodes=2,
                gpus_per_node=4,
                cpus_per_task=16,
                time="04:00:00",
                partition="gpu",
                account="proj",
                job_name="conv",
                setup=("source .venv/bin/activate",),
                sbatch_options=("--qos=high",),
            )
        )
        self._check_syntax(script)
        self.assertEqual(
            _directives(script),
            [
                "--job-name=conv",
                "--nodes=2",
                "--ntasks-per-node=1",
                "--gpus-per-node=4",
                "--cpus-per-task=16",
                "--time=04:00:00",
                "--partition=gpu",
                "--account=proj",
                "--output=/home/me/vae/runs/sweep/slurm-%j.out",
                "--open-mode=append",
                "--signal=B:USR1@180",
                "--requeue",
                "--qos=high",
            ],
        )
        self.assertIn("cd /home/me/vae || exit 1\nsource .venv/bin/activate\n", script)
        # One worker per node: the command gets the multi-worker strategy.
        self.assertIn(
            "\nsrun vae-train "
            "--flagfile=launch/configs/tf_tutorial_conv.flags "
            "--workdir=runs/sweep --strategy=multi_worker &\n",
            script,
        )
        self.assertIn(f'if [ "$status" -eq {exit_codes.REQUEUE} ] || ', script)
        self.assertIn('  requeue="stopped by SIGUSR1 with a checkpoint"\n', script)
        self.assertIn('scontrol requeue "${this_job}"', script)
        self.assertNotIn("--array", script)
        self.assertNotIn("--exclusive", script)

    def test_strategy_follows_the_resources(self):
        def srun_line(**resources):
            script = submit.batch_script(_config(**resources))
            return [line for line in script.splitlines() if line.startswith("srun ")][
                0
            ].rstrip(" &")

        self.assertTrue(srun_line(gpus_per_node=4).endswith("--strategy=mirrored"))
        self.assertNotIn("--strategy", srun_line(gpus_per_node=1))
        self.assertNotIn("--strategy", srun_line())
        # A strategy the command names itself is kept...
        self.assertTrue(
            srun_line(
                gpus_per_node=4, command=_COMMAND + ("--strategy=default",)
            ).endswith("--strategy=default")
        )
        # ... unless it cannot use several nodes.
        with self.assertRaisesRegex(ValueError, "--strategy=mirrored, but --nodes=2"):
            submit.batch_script(
                _config(nodes=2, command=_COMMAND + ("--strategy", "mirrored"))
            )
        # Several workers on one node: multi-worker, GPUs shared out.
        self.assertTrue(srun_line(tasks_per_node=2).endswith("--strategy=multi_worker"))
        self.assertTrue(
            srun_line(tasks_per_node=2, gpus_per_node=2).endswith(
                "--strategy=multi_worker"
            )
        )
        self.assertIn(
            "#SBATCH --gpus-per-task=2\n",
            submit.batch_script(_config(tasks_per_node=2, gpus_per_node=4)),
        )
        self.assertTrue(
            srun_line(tasks_per_node=2, gpus_per_node=4).endswith(
                "--strategy=multi_worker"
            )
        )
        with self.assertRaisesRegex(
            ValueError, "--gpus_per_node=3 cannot be shared evenly by --tasks_per_node=2"
        ):
            submit.batch_script(_config(tasks_per_node=2, gpus_per_node=3))

    def test_sweep_is_a_job_array_with_one_workdir_per_point(self):
        script = submit.batch_script(
            _config(
                gpus_per_node=1,
                time="30",
                sweeps=(
                    submit.parse_sweep("learning_rate=1e-3,3e-4"),
                    submit.parse_sweep("hidden_units=512,256;128"),
                ),
            )
        )
        self._check_syntax(script)
        directives = _directives(script)
        self.assertIn("--array=0-3", directives)
        self.assertIn("--output=/home/me/vae/runs/sweep/slurm-%A_%a.out", directives)
        self.assertIn("--job-name=vae-sweep", directives)

        # Run the script's grid-point selection with a stand-in srun.
        root = self.create_tempdir().full_path
        environment = _fake_slurm(root)
        body = script.replace("cd /home/me/vae || exit 1", f"cd {root}")
        path = os.path.join(root, "job.sh")
        with open(path, "w") as stream:
            stream.write(
                body.replace(" vae-train --flagfile", " echo vae-train --flagfile")
            )
        for task, expected in (
            (
                0,
                [
                    "--learning_rate=1e-3",
                    "--hidden_units=512,256",
                    "--workdir=runs/sweep/learning_rate=1e-3,hidden_units=512,256",
                ],
            ),
            (
                3,
                [
                    "--learning_rate=3e-4",
                    "--hidden_units=128",
                    "--workdir=runs/sweep/learning_rate=3e-4,hidden_units=128",
                ],
            ),
        ):
            result = subprocess.run(
                ["bash", path],
                capture_output=True,
                text=True,
                env={
                    **os.environ,
                    **environment,
                    "SLURM_ARRAY_TASK_ID": str(task),
                    "SLURM_JOB_ID": "9",
                },
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            arguments = shlex.split(result.stdout)
            self.assertEqual(arguments[:3], list(_COMMAND))
            # The point's flags come last, so they override the command's.
            self.assertEqual(arguments[3:], expected)
        result = subprocess.run(
            ["bash", path],
            capture_output=True,
            text=True,
            env={**os.environ, **environment, "SLURM_ARRAY_TASK_ID": "4"},
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("no grid point 4", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "scontrol.log")))

    def test_unusable_settings_are_refused_naming_them(self):
        cases = [
            (dict(command=()), "No training command"),
            (dict(command=("--workdir=x",)), "starts with the flag"),
            (dict(command=("vae-train", "--flagfile=x.flags")), "has no --workdir=DIR"),
            (
                dict(time="2", signal_seconds=120),
                "--signal_seconds=120 is not shorter than the time limit --time=2",
            ),
            (dict(sbatch_options=("qos=high",)), "'qos=high' is not an"),
            (
                dict(sweeps=(submit.Sweep("beta", ("1",)), submit.Sweep("beta", ("2",)))),
                "names --beta twice",
            ),
        ]
        for overrides, fragment in cases:
            with self.subTest(fragment=fragment):
                with self.assertRaisesRegex(ValueError, fragment):
                    submit.batch_script(_config(**overrides))


def _run_script(
    test_case, config, srun_body, environment=(), signal_to=None, signal_when="ready"
):
    """Runs `config`'s batch script with stand-ins for Slurm, srun running
    `srun_body` (bash) instead of the training command. With `signal_to`,
    sends that signal to the script (as Slurm's time-limit warning and
    scancel --batch do) once the file `signal_when` exists in the stand-ins'
    directory ("ready": srun has started). Returns (exit status, the
    stand-ins' directory)."""
    root = test_case.create_tempdir().full_path
    fake = _fake_slurm(root)
    _write_executable(
        os.path.join(root, "bin"),
        "srun",
        "#!/bin/bash\n"
        'echo "$@" >> "$FAKE_SLURM/srun.log"\n'
        'echo "${VAE_WORKER_PORT:-}" > "$FAKE_SLURM/port"\n' + srun_body + "\n",
    )
    script = submit.batch_script(config).replace(
        f"cd {config.working_directory} || exit 1", f"cd {root}"
    )
    path = os.path.join(root, "job.sh")
    with open(path, "w") as stream:
        stream.write(script)
    job = subprocess.Popen(
        ["bash", path],
        env={**os.environ, **fake, "SLURM_JOB_ID": "77", **dict(environment)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if signal_to is not None:
        ready = os.path.join(root, signal_when)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            test_case.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        job.send_signal(signal_to)
    job.communicate(timeout=60)
    return job.returncode, root


def _scontrol_calls(root):
    path = os.path.join(root, "scontrol.log")
    return _read(path).splitlines() if os.path.exists(path) else []


def _signal_during_setup(test_case, signal_number):
    """`_run_script` with a signal to the script while its setup lines run."""
    return _run_script(
        test_case,
        _config(setup=('touch "$FAKE_SLURM/setup"', "sleep 1")),
        _WAITING_TRAINER,
        signal_to=signal_number,
        signal_when="setup",
    )


# A training process that waits for a signal and exits as the trainer does.
_WAITING_TRAINER = (
    "trap 'echo USR1 >> \"$FAKE_SLURM/got\"; exit 138' USR1\n"
    "trap 'echo TERM >> \"$FAKE_SLURM/got\"; exit 143' TERM\n"
    'touch "$FAKE_SLURM/ready"\n'
    "while :; do sleep 0.05; done"
)


class ScriptBehaviourTest(tf.test.TestCase):
    """What the batch script does with srun's status and with signals."""

    def test_array_task_requeues_itself_only(self):
        # The last task of an array has the array's own job id: requeueing
        # $SLURM_JOB_ID there requeued every task of the array.
        status, root = _run_script(
            self,
            _config(sweeps=(submit.parse_sweep("beta=1,2,3"),)),
            "exit 138",
            {
                "SLURM_JOB_ID": "40",
                "SLURM_ARRAY_JOB_ID": "40",
                "SLURM_ARRAY_TASK_ID": "2",
            },
        )
        self.assertEqual(status, 0)
        self.assertEqual(_scontrol_calls(root), ["requeue 40_2"])

    def test_usr1_to_the_script_reaches_training_and_requeues(self):
        status, root = _run_script(
            self, _config(), _WAITING_TRAINER, signal_to=signal.SIGUSR1
        )
        self.assertEqual(status, 0)
        self.assertEqual(_read(os.path.join(root, "got")).split(), ["USR1"])
        self.assertEqual(_scontrol_calls(root), ["requeue 77"])

    def test_usr1_before_srun_started_reaches_training(self):
        # Slurm may send the time-limit warning up to a minute early: at the
        # start of a short job, while the setup lines run.
        status, root = _signal_during_setup(self, signal.SIGUSR1)
        self.assertEqual(status, 0)
        self.assertEqual(_read(os.path.join(root, "got")).split(), ["USR1"])
        self.assertEqual(_scontrol_calls(root), ["requeue 77"])

    def test_term_before_srun_started_ends_the_job_without_training(self):
        status, root = _signal_during_setup(self, signal.SIGTERM)
        self.assertEqual(status, exit_codes.stopped_by(signal.SIGTERM))
        self.assertFalse(os.path.exists(os.path.join(root, "srun.log")))
        self.assertEqual(_scontrol_calls(root), [])

    def test_usr1_that_srun_drops_is_sent_again(self):
        # srun drops a signal that comes before it has started the training
        # processes; here srun ignores the first one.
        status, root = _run_script(
            self,
            _config(),
            "trap '' USR1\ntouch \"$FAKE_SLURM/ready\"\nsleep 0.5\n" + _WAITING_TRAINER,
            signal_to=signal.SIGUSR1,
        )
        self.assertEqual(status, 0)
        self.assertEqual(_read(os.path.join(root, "got")).split(), ["USR1"])
        self.assertEqual(_scontrol_calls(root), ["requeue 77"])

    def test_term_to_the_script_reaches_training_and_ends_the_job(self):
        status, root = _run_script(
            self, _config(), _WAITING_TRAINER, signal_to=signal.SIGTERM
        )
        self.assertEqual(status, exit_codes.stopped_by(signal.SIGTERM))
        self.assertEqual(_read(os.path.join(root, "got")).split(), ["TERM"])
        self.assertEqual(_scontrol_calls(root), [])

    def test_lost_worker_requeues_a_bounded_number_of_times(self):
        two_workers = _config(tasks_per_node=2)
        for srun_status, environment, requeued in (
            (exit_codes.LOST_WORKER, {}, True),
            (137, {}, True),  # A worker killed by SIGKILL.
            (137, {"SLURM_RESTART_COUNT": "10"}, False),
            (exit_codes.stopped_by(signal.SIGTERM), {}, False),
            (1, {}, False),
        ):
            with self.subTest(status=srun_status, environment=environment):
                status, root = _run_script(
                    self, two_workers, f"exit {srun_status}", environment
                )
                self.assertEqual(
                    _scontrol_calls(root), ["requeue 77"] if requeued else []
                )
                self.assertEqual(status, 0 if requeued else srun_status)
        # One process: a kill is not a lost worker.
        status, root = _run_script(self, _config(), "exit 137")
        self.assertEqual((status, _scontrol_calls(root)), (137, []))

    def test_whole_nodes_by_default_shared_by_their_workers(self):
        config = _config(tasks_per_node=2)
        self.assertIn("#SBATCH --exclusive\n", submit.batch_script(config))
        _, root = _run_script(self, config, "exit 0", {"SLURM_CPUS_ON_NODE": "8"})
        self.assertEqual(
            _read(os.path.join(root, "srun.log")).split()[0], "--cpus-per-task=4"
        )
        # A free port block for the workers, in the range the script uses.
        port = int(_read(os.path.join(root, "port")))
        self.assertTrue(20000 <= port < 32767, port)
        _, root = _run_script(self, _config(cpus_per_task=3), "exit 0")
        self.assertNotIn("--cpus-per-task", _read(os.path.join(root, "srun.log")))
        self.assertEqual(_read(os.path.join(root, "port")).strip(), "")


class ProgramTest(tf.test.TestCase):
    def test_writing_a_script_does_not_load_tensorflow(self):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\n"
                "from launch import submit\n"
                "print(sorted(name for name in sys.modules\n"
                "             if name.split('.')[0] in ('tensorflow', 'vae',\n"
                "                                       'trainers')))",
            ],
            cwd=testing_utils.REPO_ROOT,
            env=testing_utils.program_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "[]")

    def test_dry_run_prints_the_script(self):
        result = testing_utils.run_module(
            "launch.submit",
            [
                "--gpus_per_node=1",
                "--time=1:00:00",
                "--dry_run",
                "--sweep=learning_rate=1e-3,3e-4",
                "--sweep=latent_dim=2,8",
                "--",
                *_COMMAND,
            ],
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertTrue(result.stdout.startswith("#!/bin/bash\n"))
        self.assertIn("#SBATCH --array=0-3\n", result.stdout)
        self.assertIn(f"cd {testing_utils.REPO_ROOT} || exit 1", result.stdout)
        self.assertFalse(
            os.path.exists(os.path.join(testing_utils.REPO_ROOT, "runs", "sweep"))
        )

    def test_submits_with_sbatch_and_prints_the_job_id(self):
        root = self.create_tempdir().full_path
        workdir = os.path.join(root, "run")
        result = testing_utils.run_module(
            "launch.submit",
            ["--time=10", "--", "vae-train", f"--workdir={workdir}"],
            extra_environment=_fake_slurm(root),
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn(f"Submitted job 12345 (workdir {workdir}).", result.stdout)
        scripts = tf.io.gfile.glob(os.path.join(workdir, "submit-*.sbatch"))
        self.assertLen(scripts, 1)
        self.assertEqual(
            _read(os.path.join(root, "sbatch.log")).split(), ["--parsable", scripts[0]]
        )
        self.assertIn("#SBATCH --time=10\n", _read(scripts[0]))

    def test_bad_input_is_one_paragraph_and_status_2(self):
        cases = (
            (["--nodes=0", "--", *_COMMAND], "--nodes"),
            (
                ["--sweep=latent_dim", "--", *_COMMAND],
                "--sweep='latent_dim' is not NAME=V1,V2",
            ),
            (["--time=soon", "--", *_COMMAND], "--time='soon'"),
        )
        results = testing_utils.run_modules_concurrently(
            [("launch.submit", arguments) for arguments, _ in cases]
        )
        for (_, fragment), result in zip(cases, results):
            with self.subTest(fragment=fragment):
                testing_utils.assert_clear_error(self, result, fragment)

    def test_missing_sbatch_is_reported(self):
        root = self.create_tempdir().full_path
        result = testing_utils.run_module(
            "launch.submit",
            ["--", "vae-train", f"--workdir={root}/run"],
            extra_environment={"PATH": os.path.dirname(sys.executable)},
        )
        testing_utils.assert_clear_error(self, result, "sbatch was not found on PATH")


class RequeueTest(tf.test.TestCase):
    """The whole path: SIGUSR1 before the time limit, checkpoint, exit 138,
    `scontrol requeue`, and the requeued job resumes the run."""

    def test_signalled_run_requeues_and_the_rerun_resumes(self):
        root = self.create_tempdir().full_path
        workdir = os.path.join(root, "run")
        script = submit.batch_script(
            submit.SubmitConfig(
                command=(
                    sys.executable,
                    "-m",
                    "launch.train",
                    "--dataset=toy2d",
                    "--architecture=mlp",
                    "--likelihood=gaussian",
                    "--hidden_units=8",
                    "--batch_size=10",
                    "--epochs=4",
                    "--steps_per_loop=1",
                    "--progress=none",
                    "--export=false",
                    f"--workdir={workdir}",
                ),
                working_directory=testing_utils.REPO_ROOT,
                time="60",
            )
        )
        path = os.path.join(root, "job.sh")
        with open(path, "w") as stream:
            stream.write(script)
        environment = testing_utils.program_environment(
            {**_fake_slurm(root), "SLURM_JOB_ID": "77"}
        )

        job = subprocess.Popen(
            ["bash", path],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        metrics_path = os.path.join(workdir, "metrics.json")
        deadline = time.monotonic() + 240
        while not os.path.exists(metrics_path):
            self.assertIsNone(job.poll(), "training ended too early")
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        # What Slurm does before the time limit (`--signal=USR1@...`).
        trainer_pid = int(_read(os.path.join(root, "srun.pid")))
        os.kill(trainer_pid, signal.SIGUSR1)
        stdout, stderr = job.communicate(timeout=120)
        self.assertEqual(job.returncode, 0, stderr[-3000:])
        self.assertIn("Stopped by SIGUSR1", stderr)
        self.assertIn("requeueing job 77", stdout)
        self.assertEqual(
            _read(os.path.join(root, "scontrol.log")).split(), ["requeue", "77"]
        )
        with open(metrics_path) as stream:
            stopped_epochs = len(json.load(stream)["epochs"])
        self.assertLess(stopped_epochs, 4)

        # Slurm starts the requeued job: the same script, which resumes.
        rerun = subprocess.run(
            ["bash", path], env=environment, capture_output=True, text=True, timeout=300
        )
        self.assertEqual(rerun.returncode, 0, rerun.stderr[-3000:])
        self.assertLen(
            _read(os.path.join(root, "scontrol.log")).splitlines(), 1
        )  # No second requeue.
        with open(metrics_path) as stream:
            final = json.load(stream)["final"]
        self.assertEqual(final["epoch"], 4)
        self.assertEqual(final["global_step"], 4 * 2000 // 10)
        self.assertIn("resume", _read(os.path.join(workdir, "launches.log")))


if __name__ == "__main__":
    tf.test.main()
