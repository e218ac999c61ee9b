r"""Submits a training command to Slurm: one job, or a job array over a grid.

    vae-submit [options] -- TRAINING COMMAND

turns a training command (`vae-train ...` or `vae-train-vaegan ...`, with
its flags or flagfile, as you would run it yourself) into a Slurm batch
script and submits it with sbatch. Examples (from the repository root):

    vae-submit --nodes=2 --gpus_per_node=4 --time=04:00:00 \
        --partition=gpu --account=myproject -- \
        vae-train --flagfile=launch/configs/tf_tutorial_conv.flags \
        --data_dir=$HOME/data/mnist --workdir=runs/conv_2x4

    vae-submit --gpus_per_node=1 --time=1:00:00 --dry_run \
        --sweep=learning_rate=1e-3,3e-4 --sweep=latent_dim=2,8 -- \
        vae-train --flagfile=launch/configs/tf_tutorial_conv.flags \
        --workdir=runs/sweep

The script

* asks for `--nodes` nodes with one task each and `--gpus_per_node` GPUs
  per node, and adds `--strategy=multi_worker` to the command for several
  nodes (each task a worker; the cluster comes from the Slurm job step) or
  `--strategy=mirrored` for several GPUs on one node, unless the command
  names a strategy itself;
* for a sweep (`--sweep=NAME=V1,V2,...`, repeated for a grid; separate
  values with ';' when they hold commas, as in
  `--sweep='hidden_units=512,256;128'`), is a job array with one task per
  grid point: the task's point is picked by $SLURM_ARRAY_TASK_ID, its flags
  are added after the command's (so they override it), and its workdir is
  WORKDIR/NAME1=V1,NAME2=V2;
* asks Slurm for SIGUSR1 `--signal_seconds` before the time limit, sent to
  the script, which forwards it (and SIGTERM) to the training processes,
  and marks the job requeueable. The trainer checkpoints on SIGUSR1 and
  exits with `exit_codes.REQUEUE` (138); the script then requeues the job,
  and the requeued job runs the same command, which resumes from the
  checkpoint.
  A SIGTERM (scancel, or preemption) also checkpoints, but is not requeued
  by the script: after a scancel the job should end, and a preempted job is
  requeued by Slurm itself (`--requeue`).

Slurm writes the job's output to WORKDIR/slurm-JOBID.out (for an array,
WORKDIR/slurm-ARRAYID_TASK.out), appending after a requeue; the script is
kept beside it. `--dry_run` prints the script and submits nothing;
otherwise sbatch is called and the job id printed. The workdir must be on a
filesystem that every node sees.
"""

from collections.abc import Sequence
import dataclasses
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags

# Not launch.errors, whose data and workdir errors load TensorFlow: writing
# a script must stay quick (tests/test_submit.py checks).
from launch import exit_codes
from launch import user_errors

_NODES = flags.DEFINE_integer("nodes", 1, "Nodes to train on.", lower_bound=1)
_TASKS_PER_NODE = flags.DEFINE_integer(
    "tasks_per_node",
    1,
    "Training processes (workers) per node; more than "
    "one worker in all trains with --strategy=multi_worker (added to the "
    "command). With GPUs, each worker gets gpus_per_node / tasks_per_node "
    "of them.",
    lower_bound=1,
)
_GPUS_PER_NODE = flags.DEFINE_integer(
    "gpus_per_node", 0, "GPUs per node (0: CPU only).", lower_bound=0
)
_CPUS_PER_TASK = flags.DEFINE_integer(
    "cpus_per_task",
    0,
    "CPU cores per worker. 0: whole nodes (sbatch "
    "--exclusive), their cores shared evenly between the node's workers; "
    "give a number to share nodes with other jobs (for a sweep of small "
    "runs, say).",
    lower_bound=0,
)
_TIME = flags.DEFINE_string(
    "time",
    None,
    "Time limit of each job, in Slurm's format: MINUTES, "
    "HOURS:MINUTES:SECONDS or DAYS-HOURS[:MINUTES[:SECONDS]]. Unset: the "
    "partition's default.",
)
_PARTITION = flags.DEFINE_string("partition", None, "Slurm partition.")
_ACCOUNT = flags.DEFINE_string("account", None, "Slurm account to charge.")
_JOB_NAME = flags.DEFINE_string(
    "job_name", None, "Slurm job name. Unset: vae- and the workdir's name."
)
_SWEEP = flags.DEFINE_multi_string(
    "sweep",
    [],
    "NAME=V1,V2,...: run the command once per value of flag "
    "--NAME; repeat for a grid over several flags (one job array task per "
    "point). Separate values with ';' when they contain commas.",
)
_SIGNAL_SECONDS = flags.DEFINE_integer(
    "signal_seconds",
    180,
    "Seconds before the time limit at which Slurm "
    "sends SIGUSR1: the trainer then finishes its loop of steps, "
    "checkpoints and the job requeues itself. Leave time for one loop and a "
    "checkpoint (Slurm may signal up to a minute early).",
    lower_bound=1,
)
_SETUP = flags.DEFINE_multi_string(
    "setup",
    [],
    "A shell line run before training, e.g. 'source "
    ".venv/bin/activate' or 'module load cuda' (repeatable). The job starts "
    "in the directory vae-submit was run from, with its environment.",
)
_SBATCH_OPTION = flags.DEFINE_multi_string(
    "sbatch_option",
    [],
    "More sbatch options, written as #SBATCH lines, e.g. --qos=high (repeatable).",
)
_DRY_RUN = flags.DEFINE_boolean(
    "dry_run", False, "Print the batch script; submit nothing."
)

# Flags that vae-submit sets per run; a sweep over them would clash.
_RESERVED_FLAGS = ("workdir", "strategy", "flagfile")
_FLAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TIME_FORMAT = re.compile(
    r"(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
    r"|(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)"
    r"|(?P<mm>\d+):(?P<ss>\d+)"
    r"|(?P<minutes>\d+))\Z"
)
# Prints the first of N consecutive ports (argv[1]) that are free on this
# node, from a random start in 20000-32767 (below Linux's ephemeral ports).
_FREE_PORTS = """
import random, socket, sys
count = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 32768 - count)
    try:
        for port in range(base, base + count):
            with socket.socket() as probe:
                probe.bind(("", port))
    except OSError:
        continue
    print(base)
    break
""".strip()
# A multi-worker job that lost a worker is requeued at most this many times
# (SLURM_RESTART_COUNT counts every requeue), so that a worker that dies
# every time (out of memory, say) does not requeue forever.
_MAX_LOST_WORKER_REQUEUES = 10
# Characters kept in a grid point's directory name; others become '_'.
_UNSAFE_PATH_CHARACTERS = re.compile(r"[^A-Za-z0-9._=,+-]")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One swept flag: `--name` takes each of `values` in turn."""

    name: str
    values: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SubmitConfig:
    """Everything a batch script needs; built from flags by `main`.

    Attributes:
      command: the training command, program first, as the user gave it.
      working_directory: where the job runs the command (absolute).
      nodes, tasks_per_node, gpus_per_node, cpus_per_task, time,
        partition, account, job_name, signal_seconds, setup, sbatch_options,
        sweeps: see the flags of the same names (cpus_per_task 0: whole
        nodes).
    """

    command: tuple[str, ...]
    working_directory: str
    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 0
    time: str | None = None
    partition: str | None = None
    account: str | None = None
    job_name: str | None = None
    signal_seconds: int = 180
    setup: tuple[str, ...] = ()
    sbatch_options: tuple[str, ...] = ()
    sweeps: tuple[Sweep, ...] = ()


def parse_sweep(text: str) -> Sweep:
    """`NAME=V1,V2` (or `NAME=V1;V2` for values with commas) as a Sweep.

    Raises:
      ValueError: naming what is wrong with `text`.
    """
    name, separator, values_text = text.partition("=")
    name = name.strip().lstrip("-")
    if not separator or not _FLAG_NAME.match(name):
        raise ValueError(
            f"--sweep={text!r} is not NAME=V1,V2,...; expected "
            "a flag name, '=', and its values, as in "
            "--sweep=learning_rate=1e-3,3e-4."
        )
    if name in _RESERVED_FLAGS:
        raise ValueError(
            f"--sweep={text!r}: vae-submit sets --{name} itself "
            "for each run, so it cannot be swept."
        )
    values = [
        value.strip() for value in values_text.split(";" if ";" in values_text else ",")
    ]
    if not values or any(not value for value in values):
        raise ValueError(
            f"--sweep={text!r} has an empty value; expected "
            "NAME=V1,V2,... with every value given."
        )
    if len(set(values)) != len(values):
        raise ValueError(
            f"--sweep={text!r} repeats a value; each point of the grid must differ."
        )
    return Sweep(name, tuple(values))


def grid_points(sweeps: Sequence[Sweep]) -> list[dict[str, str]]:
    """Every combination of the swept values, the last flag varying fastest.

    Returns:
      One {flag name: value} per point; [{}] without sweeps.
    """
    names = [sweep.name for sweep in sweeps]
    return [
        dict(zip(names, values))
        for values in itertools.product(*(sweep.values for sweep in sweeps))
    ]


def point_name(point: dict[str, str]) -> str:
    """The directory name of a grid point: NAME1=V1,NAME2=V2 (characters
    other than letters, digits and ._=,+- become '_')."""
    return _UNSAFE_PATH_CHARACTERS.sub(
        "_", ",".join(f"{name}={value}" for name, value in point.items())
    )


def time_limit_seconds(text: str) -> int:
    """Seconds in a Slurm time limit (see --time).

    Raises:
      ValueError: `text` is not in one of Slurm's formats.
    """
    match = _TIME_FORMAT.match(text.strip())
    if not match:
        raise ValueError(
            f"--time={text!r} is not a Slurm time limit; expected MINUTES, "
            "MINUTES:SECONDS, HOURS:MINUTES:SECONDS or "
            "DAYS-HOURS[:MINUTES[:SECONDS]], e.g. 04:00:00 or 1-12."
        )
    parts = {
        key: int(value) for key, value in match.groupdict().items() if value is not None
    }
    if "days" in parts:
        return (
            parts["days"] * 86400
            + parts["dh"] * 3600
            + parts.get("dm", 0) * 60
            + parts.get("ds", 0)
        )
    if "h" in parts:
        return parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if "mm" in parts:
        return parts["mm"] * 60 + parts["ss"]
    return parts["minutes"] * 60


def _last_flag_value(command: Sequence[str], name: str) -> str | None:
    """The value of the last --name=VALUE or --name VALUE in `command`."""
    value = None
    for index, argument in enumerate(command):
        for prefix in (f"--{name}=", f"-{name}="):
            if argument.startswith(prefix):
                value = argument[len(prefix) :]
        if argument in (f"--{name}", f"-{name}") and index + 1 < len(command):
            value = command[index + 1]
    return value


def workdir_of(command: Sequence[str]) -> str:
    """The training command's --workdir.

    Raises:
      ValueError: the command line does not give one.
    """
    workdir = _last_flag_value(command, "workdir")
    if not workdir:
        raise ValueError(
            "The training command has no --workdir=DIR on its command line "
            f"({shlex.join(command)}); vae-submit needs it there (not only "
            "in a flagfile): the job's log goes to it, and a sweep puts one "
            "workdir per grid point under it."
        )
    return workdir


def num_workers(config: SubmitConfig) -> int:
    """Training processes of one run: nodes x tasks per node."""
    return config.nodes * config.tasks_per_node


def strategy_flags(config: SubmitConfig) -> list[str]:
    """The --strategy flag to add to the command for the resources asked
    for, or none when the command names one that fits (or one device
    suffices).

    Raises:
      ValueError: the command's own --strategy cannot use the resources.
    """
    given = _last_flag_value(config.command, "strategy")
    gpus_per_task = config.gpus_per_node // config.tasks_per_node
    wanted = (
        "multi_worker"
        if num_workers(config) > 1
        else "mirrored"
        if gpus_per_task > 1
        else None
    )
    if given is None:
        return [f"--strategy={wanted}"] if wanted else []
    if num_workers(config) > 1 and given != "multi_worker":
        raise ValueError(
            f"The training command has --strategy={given}, but --nodes="
            f"{config.nodes} and --tasks_per_node={config.tasks_per_node} "
            "make several workers, which need --strategy=multi_worker; "
            "remove --strategy from the command and vae-submit adds the "
            "right one."
        )
    return []


def validate(config: SubmitConfig) -> None:
    """Raises ValueError naming the first unusable setting."""
    if not config.command:
        raise ValueError(
            "No training command: give it after '--', e.g. "
            "vae-submit --time=1:00:00 -- vae-train "
            "--flagfile=launch/configs/tf_tutorial_conv.flags "
            "--workdir=runs/conv."
        )
    if config.command[0].startswith("-"):
        raise ValueError(
            f"The training command starts with the flag "
            f"{config.command[0]!r}; expected the program first (vae-train, "
            "vae-train-vaegan or python -m launch.train), then its flags."
        )
    workdir_of(config.command)
    strategy_flags(config)
    if config.gpus_per_node % config.tasks_per_node:
        raise ValueError(
            f"--gpus_per_node={config.gpus_per_node} cannot be shared evenly "
            f"by --tasks_per_node={config.tasks_per_node} workers; give a "
            "multiple of the tasks per node."
        )
    names = [sweep.name for sweep in config.sweeps]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(
                f"--sweep names --{name} twice; give all its values in one --sweep."
            )
    if config.time is not None:
        limit = time_limit_seconds(config.time)
        if config.signal_seconds >= limit:
            raise ValueError(
                f"--signal_seconds={config.signal_seconds} is not shorter "
                f"than the time limit --time={config.time} ({limit} s); the "
                "warning must come before the end."
            )
    for option in config.sbatch_options:
        if not option.startswith("-") or "\n" in option:
            raise ValueError(
                f"--sbatch_option={option!r} is not an sbatch "
                "option; expected one option such as "
                "--qos=high."
            )
    for line in config.setup:
        if "\n" in line:
            raise ValueError(
                f"--setup={line!r} holds a line break; give one --setup per line."
            )


def batch_script(config: SubmitConfig) -> str:
    """The Slurm batch script for `config` (validated first).

    Raises:
      ValueError: see `validate`.
    """
    validate(config)
    workdir = workdir_of(config.command)
    points = grid_points(config.sweeps)
    is_array = bool(config.sweeps)
    job_name = config.job_name or (
        "vae-" + (os.path.basename(os.path.normpath(workdir)) or "run")
    )
    signal_name = exit_codes.REQUEUE_SIGNAL.name[len("SIG") :]
    # Absolute, as Slurm opens it before the script's `cd`.
    log_path = os.path.join(
        config.working_directory,
        workdir,
        "slurm-%A_%a.out" if is_array else "slurm-%j.out",
    )

    workers = num_workers(config)
    directives = [
        f"--job-name={job_name}",
        f"--nodes={config.nodes}",
        f"--ntasks-per-node={config.tasks_per_node}",
    ]
    if config.gpus_per_node and config.tasks_per_node > 1:
        directives.append(
            f"--gpus-per-task={config.gpus_per_node // config.tasks_per_node}"
        )
    elif config.gpus_per_node:
        directives.append(f"--gpus-per-node={config.gpus_per_node}")
    if config.cpus_per_task:
        directives.append(f"--cpus-per-task={config.cpus_per_task}")
    else:
        directives.append("--exclusive")
    if config.time is not None:
        directives.append(f"--time={config.time}")
    if config.partition:
        directives.append(f"--partition={config.partition}")
    if config.account:
        directives.append(f"--account={config.account}")
    if is_array:
        directives.append(f"--array=0-{len(points) - 1}")
    directives += [
        f"--output={log_path}",
        # A requeued job writes on at the end of the same log.
        "--open-mode=append",
        # To the batch script ("B:"), which runs from the job's start and
        # forwards it: sent to the job step, a warning that came before srun
        # had started the step (Slurm sends it up to a minute early, so at
        # the start of a short job) was lost.
        f"--signal=B:{signal_name}@{config.signal_seconds}",
        "--requeue",
        *config.sbatch_options,
    ]

    lines = [
        "#!/bin/bash",
        "# Written by vae-submit (launch/submit.py) for:",
        f"#   {shlex.join(config.command)}",
    ]
    if is_array:
        lines.append(
            f"# A job array over {len(points)} grid points of "
            + " x ".join(f"{sweep.name} ({len(sweep.values)})" for sweep in config.sweeps)
            + "."
        )
    lines += [f"#SBATCH {shlex.quote(directive)}" for directive in directives]
    lines.append("")
    lines += [
        "# SIGUSR1 (the time-limit warning, sent here by --signal=B:...; or",
        "# scancel --signal=USR1 --batch or --full) and SIGTERM (scancel,",
        "# preemption) are forwarded to srun, which passes them to the training",
        "# processes. srun drops a signal that comes before it has started",
        "# them, so each is sent again 2 and 10 s after it came, or after srun",
        "# started if it came before; the programs take a repeat as the same",
        "# request.",
        "got_usr1=0",
        "got_term=0",
        "srun_pid=",
        "last_signal=",
        "signalled_at=0",
        "resends=0",
        "forward() {",
        '  if [ "$1" = USR1 ]; then got_usr1=1; else got_term=1; fi',
        '  last_signal="$1"',
        "  signalled_at=$SECONDS",
        "  resends=0",
        '  if [ -n "$srun_pid" ]; then kill -s "$1" "$srun_pid" 2>/dev/null; fi',
        "}",
        "trap 'forward USR1' USR1",
        "trap 'forward TERM' TERM",
        "",
    ]
    lines.append(f"cd {shlex.quote(config.working_directory)} || exit 1")
    lines += list(config.setup)

    srun = ["srun"]
    if not config.cpus_per_task:
        lines += [
            "",
            "# Whole nodes: the node's cores, shared by its workers.",
            f"cpus=$(( ${{SLURM_CPUS_ON_NODE:-1}} / {config.tasks_per_node} ))",
        ]
        srun.append('--cpus-per-task="$(( cpus > 0 ? cpus : 1 ))"')
    if workers > 1:
        lines += [
            "",
            "# The workers' ports: a block free on this node now (launch/cluster.py).",
            f"VAE_WORKER_PORT=$(python3 -c {shlex.quote(_FREE_PORTS)} "
            f"{config.tasks_per_node} 2>/dev/null) && "
            "export VAE_WORKER_PORT",
        ]
    command = list(config.command) + strategy_flags(config)
    srun_line = " ".join(srun) + " " + shlex.join(command)
    if is_array:
        lines += [
            "",
            "# This task's grid point: its flags and its workdir.",
            'case "${SLURM_ARRAY_TASK_ID:?not a job array task}" in',
        ]
        for index, point in enumerate(points):
            arguments = [f"--{name}={value}" for name, value in point.items()]
            arguments.append(f"--workdir={os.path.join(workdir, point_name(point))}")
            lines.append(f"  {index}) point=({shlex.join(arguments)}) ;;")
        lines += [
            '  *) echo "vae-submit: no grid point ${SLURM_ARRAY_TASK_ID}" >&2; exit 2 ;;',
            "esac",
        ]
        srun_line += ' "${point[@]}"'
    lines += [
        "",
        "# Stopped before training started: nothing to checkpoint or resume.",
        f'if [ "$got_term" -eq 1 ]; then exit {exit_codes.stopped_by(signal.SIGTERM)}; fi',
        f"{srun_line} &",
        "srun_pid=$!",
        "signalled_at=$SECONDS",
        "# Trapped signals are handled between the one-second sleeps.",
        'while kill -0 "$srun_pid" 2>/dev/null; do',
        "  sleep 1",
        '  if [ -n "$last_signal" ] && [ "$resends" -lt 2 ] && '
        "[ $((SECONDS - signalled_at)) -ge $((2 + 8 * resends)) ]; then",
        '    kill -s "$last_signal" "$srun_pid" 2>/dev/null',
        "    resends=$((resends + 1))",
        "  fi",
        "done",
        "# srun has ended: wait gives its exit status.",
        'wait "$srun_pid"',
        "status=$?",
        "",
        "# An array task requeues itself only, not the whole array.",
        'if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then',
        '  this_job="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        "else",
        '  this_job="${SLURM_JOB_ID}"',
        "fi",
        "requeue=",
        f"# {exit_codes.REQUEUE}: stopped by SIGUSR1 (the warning before the "
        "time limit, or",
        "# scancel --signal=USR1) with a checkpoint; or killed after the "
        "script got SIGUSR1.",
        f'if [ "$status" -eq {exit_codes.REQUEUE} ] || '
        '{ [ "$got_usr1" -eq 1 ] && [ "$got_term" -eq 0 ] && '
        '[ "$status" -gt 128 ]; }; then',
        '  requeue="stopped by SIGUSR1 with a checkpoint"',
        "fi",
    ]
    if workers > 1:
        lines += [
            f"# {exit_codes.LOST_WORKER} from a worker that lost another, or "
            "a worker killed by a",
            "# signal (kill -9, out of memory): resume from the last checkpoint, at most",
            f"# {_MAX_LOST_WORKER_REQUEUES} times in all.",
            f'if [ -z "$requeue" ] && [ "$got_term" -eq 0 ] && '
            f'{{ [ "$status" -eq '
            f"{exit_codes.LOST_WORKER} ] || "
            '{ [ "$status" -gt 128 ] && '
            f'[ "$status" -ne {exit_codes.stopped_by(signal.SIGTERM)} ]; '
            "}; }"
            f' && [ "${{SLURM_RESTART_COUNT:-0}}" -lt '
            f"{_MAX_LOST_WORKER_REQUEUES} ]; then",
            '  requeue="a worker was lost (exit status $status)"',
            "fi",
        ]
    lines += [
        'if [ -n "$requeue" ]; then',
        '  echo "vae-submit: $requeue; requeueing job ${this_job}, which '
        'resumes the run."',
        '  scontrol requeue "${this_job}"',
        "  exit 0",
        "fi",
        'exit "$status"',
        "",
    ]
    return "\n".join(lines)


def submit(script: str, workdir: str) -> str:
    """Writes `script` to WORKDIR/submit-TIME.sbatch and submits it.

    Returns:
      The job id sbatch printed.

    Raises:
      user_errors.ConfigError: sbatch is missing or refused the job.
    """
    os.makedirs(workdir, exist_ok=True)  # Slurm does not create log folders.
    path = os.path.join(workdir, time.strftime("submit-%Y%m%d-%H%M%S.sbatch"))
    with open(path, "w") as stream:
        stream.write(script)
    try:
        result = subprocess.run(
            ["sbatch", "--parsable", path], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise user_errors.ConfigError(
            "sbatch was not found on PATH: submit from a Slurm login node, "
            "or use --dry_run to see the script (written to "
            f"{path})."
        ) from None
    if result.returncode != 0:
        raise user_errors.ConfigError(
            f"sbatch refused the job (exit status {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}. The script "
            f"is {path}."
        )
    return result.stdout.strip().split(";")[0]


def config_from_flags(command: Sequence[str]) -> SubmitConfig:
    """Packs the parsed flags and the command into a config; the only place
    that reads them.

    Raises:
      ValueError: a --sweep that cannot be read.
    """
    return SubmitConfig(
        command=tuple(command),
        working_directory=os.getcwd(),
        nodes=_NODES.value,
        tasks_per_node=_TASKS_PER_NODE.value,
        gpus_per_node=_GPUS_PER_NODE.value,
        cpus_per_task=_CPUS_PER_TASK.value,
        time=_TIME.value,
        partition=_PARTITION.value,
        account=_ACCOUNT.value,
        job_name=_JOB_NAME.value,
        signal_seconds=_SIGNAL_SECONDS.value,
        setup=tuple(_SETUP.value),
        sbatch_options=tuple(_SBATCH_OPTION.value),
        sweeps=tuple(parse_sweep(text) for text in _SWEEP.value),
    )


def main(argv: Sequence[str]) -> None:
    try:
        config = config_from_flags(argv[1:])
        script = batch_script(config)
        if _DRY_RUN.value:
            print(script, end="")
            return
        workdir = workdir_of(config.command)
        job_id = submit(script, workdir)
    except ValueError as error:
        user_errors.report_user_error(error)
        sys.exit(exit_codes.USER_ERROR)
    runs = len(grid_points(config.sweeps))
    print(
        f"Submitted job {job_id}"
        + (
            f" (array of {runs} runs, one per grid point, under {workdir})"
            if config.sweeps
            else f" (workdir {workdir})"
        )
        + "."
    )


def run_main():
    """Console-script entry point (`vae-submit`)."""
    app.run(main, flags_parser=user_errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
