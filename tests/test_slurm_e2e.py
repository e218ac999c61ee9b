"""End-to-end tests of vae-submit on a real single-node Slurm.

Every job is submitted with vae-submit (`python -m launch.submit`) and runs
the `vae-train` console script on tiny fake MNIST (tests/testing_utils.py),
on the cluster of tests/slurm_cluster.py. They skip where Slurm cannot be
had (the skip says why), and are marked `slurm`: `pytest -m "not slurm"`
leaves them out.

The jobs take most of a minute each on a 2-core machine (TensorFlow's start
and tracing), so the scenarios run side by side: the module fixture starts
each scenario's driver (submit, wait for the moment to act, signal, wait for
the end) in a thread of its own, and each test waits for its scenario and
checks what it found. Runs that should end alike are compared with the
1-task reference run: same data, model, seed and steps, so an exact resume
ends with the same final metrics.
"""

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests import testing_utils

pytestmark = pytest.mark.slurm

_EPOCHS = 8
_TRAIN_FLAGS = (
    "--dataset=mnist",
    "--architecture=mlp",
    "--hidden_units=8",
    "--latent_dim=2",
    "--batch_size=8",
    "--steps_per_loop=2",
    "--progress=none",
    "--pictures=false",
    "--export=false",
)
_STEPS_PER_EPOCH = 64 // 8
# Each test's scenarios: only those of the selected tests run.
_SCENARIOS_OF_TESTS = {
    "test_one_task_run": ("one_task",),
    "test_two_workers_match_one_and_end_cleanly": ("one_task", "two_tasks"),
    "test_scancel_usr1_checkpoints_requeues_and_resumes[usr1_batch]": (
        "one_task",
        "usr1_batch",
    ),
    "test_scancel_usr1_checkpoints_requeues_and_resumes[usr1_step]": (
        "one_task",
        "usr1_step",
    ),
    "test_scancel_usr1_checkpoints_requeues_and_resumes[usr1_full]": (
        "one_task",
        "usr1_full",
    ),
    "test_time_limit_warning_checkpoints_requeues_and_resumes": (
        "one_task",
        "time_limit",
    ),
    "test_sweep_requeues_only_the_signalled_task": ("sweep",),
    "test_scancel_cancels_with_a_checkpoint": ("cancel",),
    "test_killed_worker_is_named_and_the_requeue_resumes": ("two_tasks", "kill_worker"),
}
_END_STATES = (
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
)
_TIMEOUT = 420


class Scenarios:
    """Submits and drives the jobs of this module's tests."""

    def __init__(self, cluster, root):
        self.cluster = cluster
        self.root = root
        self.data_dir = os.path.join(root, "fake_mnist")
        testing_utils.write_fake_mnist(self.data_dir, num_train=64, num_test=16)
        # The jobs run the checkout's programs with this Python's packages.
        self.environment = testing_utils.program_environment(
            {
                **cluster.environment(),
                "PATH": (
                    os.path.dirname(sys.executable)
                    + os.pathsep
                    + cluster.environment()["PATH"]
                ),
            }
        )

    def submit(self, name, *submit_flags, epochs=_EPOCHS, extra_flags=()):
        """vae-submit's job id for a run in ROOT/name."""
        workdir = os.path.join(self.root, name)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "launch.submit",
                "--cpus_per_task=1",
                *submit_flags,
                "--",
                "vae-train",
                *_TRAIN_FLAGS,
                f"--epochs={epochs}",
                f"--data_dir={self.data_dir}",
                f"--workdir={workdir}",
                *extra_flags,
            ],
            cwd=testing_utils.REPO_ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        match = re.search(r"Submitted job (\d+)", result.stdout)
        assert match, result.stdout
        return match.group(1), workdir

    def scancel(self, *arguments):
        self.cluster.run("scancel", *arguments)

    def wait_for_training(self, workdir, job_id):
        """Waits until the first epoch ended (its metrics are written)."""
        path = os.path.join(workdir, "metrics.json")
        deadline = time.monotonic() + _TIMEOUT
        while not os.path.exists(path):
            state = self.cluster.job_field(job_id, "JobState")
            assert state not in _END_STATES, (
                f"job {job_id} ended ({state}) before training"
            )
            assert time.monotonic() < deadline, f"job {job_id} never trained"
            time.sleep(0.05)

    def finish(self, job_id, workdir, log_dir=None):
        """Waits for the job's end; returns what the tests check."""
        state = self.cluster.wait_for_state(job_id, _END_STATES, timeout=_TIMEOUT)
        return {
            "job": job_id,
            "state": state,
            "restarts": int(self.cluster.job_field(job_id, "Restarts") or 0),
            "log": _slurm_log(log_dir or workdir, job_id),
            "final": _final_metrics(workdir),
            "launches": _launches(workdir),
            "workdir": workdir,
        }

    # ------------------------------------------------------------ scenarios
    def one_task(self):
        return self.finish(*self.submit("one_task"))

    def two_tasks(self):
        # With the export, the chief works on for seconds after the other
        # worker is done: the case that logged StartAbort on the chief.
        return self.finish(
            *self.submit(
                "two_tasks", "--tasks_per_node=2", extra_flags=("--export=true",)
            )
        )

    def usr1(self, name, *scancel_flags):
        job_id, workdir = self.submit(name)
        self.wait_for_training(workdir, job_id)
        self.scancel("--signal=USR1", *scancel_flags, job_id)
        return self.finish(job_id, workdir)

    def time_limit(self):
        # The warning is due 20 s after the start, and Slurm sends it up to
        # a minute early: at its first time-limit check (every 30 s), which
        # may come before srun has started the training step. The batch
        # script gets it (--signal=B:...) and forwards it: while TensorFlow
        # loads or early in training, a checkpoint, exit 138 and a requeue.
        job_id, workdir = self.submit("time_limit", "--time=2", "--signal_seconds=100")
        deadline = time.monotonic() + _TIMEOUT
        while int(self.cluster.job_field(job_id, "Restarts") or 0) < 1:
            state = self.cluster.job_field(job_id, "JobState")
            assert state not in _END_STATES, (
                f"job {job_id} ended ({state}) without a requeue: "
                + _slurm_log(workdir, job_id)
            )
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # The rerun would be warned again 20 s in: give it time to finish.
        self.cluster.run("scontrol", "update", f"JobId={job_id}", "TimeLimit=15")
        return self.finish(job_id, workdir)

    def sweep(self):
        # Point 0 ends quickly; points 1 and 2 train on. The last task of an
        # array holds the array's own job id, which a requeue of
        # $SLURM_JOB_ID would turn into a requeue of the whole array.
        array_id, workdir = self.submit(
            "sweep", f"--sweep=epochs=1,{_EPOCHS + 4},{_EPOCHS + 5}"
        )
        tasks = [f"{array_id}_{task}" for task in range(3)]
        task_dirs = [
            os.path.join(workdir, f"epochs={epochs}")
            for epochs in (1, _EPOCHS + 4, _EPOCHS + 5)
        ]
        self.cluster.wait_for_state(
            tasks[0], ("COMPLETED",) + _END_STATES, timeout=_TIMEOUT
        )
        self.wait_for_training(task_dirs[2], tasks[2])
        signalled_job_id = self.cluster.job_field(tasks[2], "JobId")
        self.scancel("--signal=USR1", tasks[2])
        # An array's logs are WORKDIR/slurm-ARRAYID_TASK.out.
        return {
            "array_id": array_id,
            "signalled_job_id": signalled_job_id,
            "tasks": [
                self.finish(task, task_dir, log_dir=workdir)
                for task, task_dir in zip(tasks, task_dirs)
            ],
        }

    def cancel(self):
        job_id, workdir = self.submit("cancel")
        self.wait_for_training(workdir, job_id)
        self.scancel(job_id)
        return self.finish(job_id, workdir)

    def kill_worker(self):
        job_id, workdir = self.submit("kill_worker", "--tasks_per_node=2")
        self.wait_for_training(workdir, job_id)
        # scontrol listpids: PID JOBID STEPID LOCALID GLOBALID.
        listing = self.cluster.run("scontrol", "listpids", job_id).stdout
        pids = [
            int(fields[0])
            for fields in (line.split() for line in listing.splitlines()[1:])
            if len(fields) == 5 and fields[2] == "0" and fields[4] == "1"
        ]
        assert pids, listing
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return self.finish(job_id, workdir)


def _read(path):
    try:
        with open(path) as stream:
            return stream.read()
    except FileNotFoundError:
        return ""


def _slurm_log(directory, job_id=""):
    """The Slurm log(s) of the job (an array task: ARRAYID_TASK) there."""
    if not os.path.isdir(directory):
        return ""
    return "".join(
        _read(os.path.join(directory, name))
        for name in sorted(os.listdir(directory))
        if name.startswith(f"slurm-{job_id}")
    )


def _final_metrics(workdir):
    text = _read(os.path.join(workdir, "metrics.json"))
    return json.loads(text).get("final") if text else None


def _launches(workdir):
    return _read(os.path.join(workdir, "launches.log")).splitlines()


@pytest.fixture(scope="module")
def outcomes(slurm_cluster, tmp_path_factory, request):
    """name -> Future of each scenario's findings, all started at once (the
    scenarios of the selected tests only)."""
    scenarios = Scenarios(slurm_cluster, str(tmp_path_factory.mktemp("slurm_e2e")))
    runs = {
        "one_task": scenarios.one_task,
        "two_tasks": scenarios.two_tasks,
        "usr1_batch": lambda: scenarios.usr1("usr1_batch", "--batch"),
        "usr1_step": lambda: scenarios.usr1("usr1_step"),
        "usr1_full": lambda: scenarios.usr1("usr1_full", "--full"),
        "time_limit": scenarios.time_limit,
        "sweep": scenarios.sweep,
        "cancel": scenarios.cancel,
        "kill_worker": scenarios.kill_worker,
    }
    wanted = {
        scenario
        for item in request.session.items
        for scenario in _SCENARIOS_OF_TESTS.get(item.name, ())
    }
    runs = {name: run for name, run in runs.items() if name in wanted}
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max(1, len(runs))) as pool:
        yield {name: pool.submit(run) for name, run in runs.items()}
    print(
        f"\nSlurm end-to-end scenarios {sorted(runs)}: {time.monotonic() - started:.0f} s"
    )


def _assert_same_final(final, reference, tolerance):
    """Same epoch, step and test/train metrics (to `tolerance`)."""
    assert final is not None and reference is not None
    assert final["epoch"] == reference["epoch"] == _EPOCHS
    assert final["global_step"] == reference["global_step"]
    for split in ("train", "test"):
        for key, value in reference[split].items():
            assert final[split][key] == pytest.approx(value, abs=tolerance), (split, key)


def _assert_requeued_and_resumed(outcome, reference, signal_name):
    log = outcome["log"]
    assert outcome["state"] == "COMPLETED", log[-3000:]
    assert f"Stopped by {signal_name}" in log, log[-3000:]
    assert "requeueing job" in log
    assert outcome["restarts"] == 1
    launches = outcome["launches"]
    assert len(launches) == 2 and " resume: " in launches[1], launches
    assert "Traceback" not in log, log[-3000:]
    # Exact resume: the interrupted run ends as the uninterrupted one.
    _assert_same_final(outcome["final"], reference, 1e-6)


def test_one_task_run(outcomes):
    outcome = outcomes["one_task"].result()
    assert outcome["state"] == "COMPLETED", outcome["log"][-3000:]
    assert outcome["final"]["global_step"] == _EPOCHS * _STEPS_PER_EPOCH
    assert outcome["restarts"] == 0
    assert "Traceback" not in outcome["log"]


def test_two_workers_match_one_and_end_cleanly(outcomes):
    outcome = outcomes["two_tasks"].result()
    reference = outcomes["one_task"].result()["final"]
    log = outcome["log"]
    assert outcome["state"] == "COMPLETED", log[-3000:]
    assert outcome["restarts"] == 0
    # Each worker takes half of every batch; the chief's metrics are one
    # device's.
    _assert_same_final(outcome["final"], reference, 1e-3)
    # A successful run logs no errors (issue 19: StartAbort on the chief).
    for fragment in ("StartAbort", "tasks have crashed", "Traceback", "UNAVAILABLE"):
        assert fragment not in log, log[-3000:]


@pytest.mark.parametrize("name", ["usr1_batch", "usr1_step", "usr1_full"])
def test_scancel_usr1_checkpoints_requeues_and_resumes(outcomes, name):
    _assert_requeued_and_resumed(
        outcomes[name].result(), outcomes["one_task"].result()["final"], "SIGUSR1"
    )


def test_time_limit_warning_checkpoints_requeues_and_resumes(outcomes):
    _assert_requeued_and_resumed(
        outcomes["time_limit"].result(), outcomes["one_task"].result()["final"], "SIGUSR1"
    )


def test_sweep_requeues_only_the_signalled_task(outcomes):
    outcome = outcomes["sweep"].result()
    done, running, signalled = outcome["tasks"]
    # The signalled task holds the array's job id: the case where
    # `scontrol requeue $SLURM_JOB_ID` requeued every task.
    assert outcome["signalled_job_id"] == outcome["array_id"]
    for task in outcome["tasks"]:
        assert task["state"] == "COMPLETED", task["log"][-3000:]
    # The others ran once: the completed one was not run again, the running
    # one not cancelled "due to job requeue".
    for task, epochs in ((done, 1), (running, _EPOCHS + 4)):
        assert len(task["launches"]) == 1, task["launches"]
        assert task["restarts"] == 0
        assert task["final"]["epoch"] == epochs
        assert "requeue" not in task["log"].lower(), task["log"][-3000:]
    assert "requeueing job " + outcome["array_id"] + "_2" in signalled["log"]
    assert signalled["restarts"] == 1
    assert len(signalled["launches"]) == 2
    assert signalled["final"]["epoch"] == _EPOCHS + 5


def test_scancel_cancels_with_a_checkpoint(outcomes):
    outcome = outcomes["cancel"].result()
    log = outcome["log"]
    assert outcome["state"] == "CANCELLED"
    assert outcome["restarts"] == 0
    assert "Stopped by SIGTERM" in log, log[-3000:]
    assert "requeueing" not in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    # The checkpoint the stop wrote is the latest one, and complete.
    match = re.search(r"checkpoint (\S+) written", log)
    assert match, log[-3000:]
    checkpoint_dir = os.path.join(outcome["workdir"], "checkpoints")
    with open(os.path.join(checkpoint_dir, "checkpoint")) as stream:
        assert os.path.basename(match.group(1)) in stream.readline()
    assert os.path.exists(match.group(1) + ".index")


def test_killed_worker_is_named_and_the_requeue_resumes(outcomes):
    outcome = outcomes["kill_worker"].result()
    log = outcome["log"]
    assert outcome["state"] == "COMPLETED", log[-3000:]
    assert outcome["restarts"] == 1
    lost = [line for line in log.splitlines() if "Lost worker 1" in line]
    assert len(lost) == 1, log[-3000:]
    assert "exits with status 75" in lost[0]
    assert "Traceback" not in log, log[-3000:]
    assert "a worker was lost" in log
    _assert_same_final(outcome["final"], outcomes["two_tasks"].result()["final"], 1e-6)
