"""Which `tf.distribute` strategy a training program runs under.

`--strategy` names it:

* `default`: one device (a GPU if there is one, else the CPU); no
  distribution at all.
* `mirrored`: every GPU of this machine (`MirroredStrategy`; the visible
  ones, so `CUDA_VISIBLE_DEVICES` chooses), each a replica taking an equal
  share of every batch.
* `multi_worker`: several processes, usually one per machine, each with its
  own GPUs (`MultiWorkerMirroredStrategy`). Each process is a worker; which
  is which comes from the environment: `TF_CONFIG` when it is set (the
  TensorFlow convention, e.g. `{"cluster": {"worker": ["host1:12345",
  "host2:12345"]}, "task": {"type": "worker", "index": 0}}`), otherwise the
  variables of a Slurm job step (`srun`, as the scripts of
  `launch/submit.py` start it).

A TPU strategy would be one more name here: the trainers take any
`tf.distribute.Strategy`.
"""

from collections.abc import Mapping
import json
import os
import socket

import tensorflow as tf

from launch import errors
from launch import slurm_hosts

STRATEGIES = ("default", "mirrored", "multi_worker")

# Workers of a Slurm job step listen on VAE_WORKER_PORT plus their index
# on their node. launch/submit.py's scripts set it to a port block that is
# free on the first node when the job starts; without it (srun by hand) the
# block comes from the job id: 16 ports per job over 15000-30999, so jobs
# with neighbouring ids never share a port. Either way a worker checks that
# its port is free before the strategy starts.
PORT_VARIABLE = "VAE_WORKER_PORT"
_FALLBACK_PORT_BASE = 15000
_FALLBACK_PORTS_PER_JOB = 16
_FALLBACK_JOBS = 1000


def _checked_tf_config(text: str) -> None:
    """Raises ConfigError unless TF_CONFIG names a cluster and this task."""
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        if not isinstance(cluster, dict) or not cluster:
            raise ValueError("'cluster' is not a non-empty object of jobs")
        if task["type"] not in cluster:
            raise ValueError(f"task type {task['type']!r} is not a job of the cluster")
        if not 0 <= int(task["index"]) < len(cluster[task["type"]]):
            raise ValueError(
                f"task index {task['index']} is not one of the "
                f"{len(cluster[task['type']])} tasks of job "
                f"{task['type']!r}"
            )
    except (ValueError, KeyError, TypeError) as error:
        raise errors.ConfigError(
            f"--strategy=multi_worker: the TF_CONFIG environment variable "
            f"{text!r} is not a usable cluster description ({error}); "
            'expected JSON such as {"cluster": {"worker": '
            '["host1:12345", "host2:12345"]}, "task": {"type": '
            '"worker", "index": 0}}, with this process\'s own task.'
        ) from None


def _visible_gpus() -> int:
    """GPUs Slurm gave this task, read without starting CUDA (which must wait
    until the strategy exists)."""
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if not devices or devices == "NoDevFiles":
        return 0
    return len(devices.split(","))


_SLURM_STEP_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_PROCID",
    "SLURM_STEP_NUM_TASKS",
    "SLURM_STEP_NODELIST",
    "SLURM_STEP_TASKS_PER_NODE",
)


def slurm_port_base(environment: Mapping[str, str]) -> int:
    """The first worker port of this job on each node (see PORT_VARIABLE).

    Raises:
      ConfigError: PORT_VARIABLE is set but is not a port.
    """
    text = environment.get(PORT_VARIABLE, "").strip()
    if not text:
        job = int(environment["SLURM_JOB_ID"])
        return _FALLBACK_PORT_BASE + job % _FALLBACK_JOBS * _FALLBACK_PORTS_PER_JOB
    if not text.isdigit() or not 1024 <= int(text) <= 65535:
        raise errors.ConfigError(
            f"--strategy=multi_worker: {PORT_VARIABLE}={text!r} is not a "
            "port number; expected an integer in 1024-65535 (the first "
            "worker port on each node)."
        )
    return int(text)


def slurm_cluster_spec(
    environment: Mapping[str, str],
) -> tuple[dict[str, list[str]], int]:
    """The cluster of a Slurm job step and this task's index in it.

    Worker r is the task Slurm ranks r (SLURM_PROCID), on the host that
    Slurm's block distribution puts it on (launch/slurm_hosts.py), so the
    chief (worker 0) is Slurm's rank 0 whatever the host names. (TensorFlow's
    `SlurmClusterResolver` sorts the host names as strings, which makes
    node10 the chief of node[9-10] while Slurm ranks node9's task 0.)

    Args:
      environment: the job step's variables (os.environ).

    Returns:
      ({"worker": ["host:port", ...]} in rank order, this task's rank).

    Raises:
      ConfigError: the variables are missing, unreadable or inconsistent.
    """
    missing = [name for name in _SLURM_STEP_VARIABLES if name not in environment]
    if missing:
        raise errors.ConfigError(
            "--strategy=multi_worker needs to know its cluster: TF_CONFIG is "
            "not set, and this is not a Slurm job step (no "
            f"{', '.join(missing)}). Set TF_CONFIG, or start the program "
            "with srun inside a Slurm job (launch/submit.py writes such "
            "scripts)."
        )
    try:
        tasks = slurm_hosts.step_tasks(
            environment["SLURM_STEP_NODELIST"], environment["SLURM_STEP_TASKS_PER_NODE"]
        )
        rank = int(environment["SLURM_PROCID"])
        num_tasks = int(environment["SLURM_STEP_NUM_TASKS"])
    except ValueError as error:
        raise errors.ConfigError(
            "--strategy=multi_worker: the Slurm job step's environment "
            f"cannot be read as a cluster ({error})."
        ) from None
    if len(tasks) != num_tasks or not 0 <= rank < num_tasks:
        raise errors.ConfigError(
            f"--strategy=multi_worker: the Slurm job step lays out "
            f"{len(tasks)} tasks, but SLURM_STEP_NUM_TASKS={num_tasks} and "
            f"SLURM_PROCID={rank}."
        )
    host, local = tasks[rank]
    node_name = environment.get("SLURMD_NODENAME")
    local_id = environment.get("SLURM_LOCALID")
    if (node_name is not None and node_name != host) or (
        local_id is not None and local_id != str(local)
    ):
        raise errors.ConfigError(
            f"--strategy=multi_worker: Slurm runs task {rank} as task "
            f"{local_id} of {node_name}, not as task {local} of {host} as "
            "the default block distribution would; start the step without "
            "--distribution (or with --distribution=block)."
        )
    port = slurm_port_base(environment)
    workers = [f"{task_host}:{port + task_local}" for task_host, task_local in tasks]
    return {"worker": workers}, rank


def _check_port_free(address: str) -> None:
    """Raises ConfigError when this worker's port is taken already."""
    port = int(address.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as error:
            raise errors.ConfigError(
                f"--strategy=multi_worker: this worker's port {port} "
                f"({address}) is in use on this node ({error.strerror}): "
                "another job or program holds it. Resubmit (vae-submit "
                f"picks a free block when the job starts), or set "
                f"{PORT_VARIABLE} to a free port."
            ) from None


def slurm_cluster_resolver() -> tf.distribute.cluster_resolver.ClusterResolver:
    """The cluster of the current Slurm job step: one worker per task.

    The worker's accelerators are the GPUs Slurm made visible to it
    (CUDA_VISIBLE_DEVICES), read without starting CUDA.

    Raises:
      ConfigError: the environment is not that of a Slurm job step, or this
        worker's port is taken.
    """
    spec, rank = slurm_cluster_spec(os.environ)
    _check_port_free(spec["worker"][rank])
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(spec),
        task_type="worker",
        task_id=rank,
        num_accelerators={"GPU": _visible_gpus()},
        rpc_layer="grpc",
    )


def cluster_resolver() -> tf.distribute.cluster_resolver.ClusterResolver:
    """This process's cluster: from TF_CONFIG when it is set, else from the
    Slurm job step.

    Raises:
      ConfigError: neither describes a cluster this process belongs to.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if text:
        _checked_tf_config(text)
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return slurm_cluster_resolver()


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `--strategy=name` asks for.

    Call it before anything else touches TensorFlow's devices: a multi-worker
    strategy must exist before the first operation runs, and waits there
    until every worker has started.

    Raises:
      ConfigError: an unknown name, or a multi-worker run without a cluster.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=cluster_resolver()
        )
    raise errors.ConfigError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")
