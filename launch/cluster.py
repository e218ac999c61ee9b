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

import json
import os
import tensorflow as tf

from launch import errors

STRATEGIES = ("default", "mirrored", "multi_worker")

# Workers of a Slurm job listen on this port plus the job id modulo
# _SLURM_PORT_SPAN, so that two jobs sharing a node rarely pick the same
# port; the range stays below Linux's ephemeral ports (32768 and up).
_SLURM_PORT_BASE = 12000
_SLURM_PORT_SPAN = 20000


def _checked_tf_config(text: str) -> None:
    """Raises ConfigError unless TF_CONFIG names a cluster and this task."""
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        if not isinstance(cluster, dict) or not cluster:
            raise ValueError("'cluster' is not a non-empty object of jobs")
        if task["type"] not in cluster:
            raise ValueError(f"task type {task['type']!r} is not a job of "
                             "the cluster")
        if not 0 <= int(task["index"]) < len(cluster[task["type"]]):
            raise ValueError(f"task index {task['index']} is not one of the "
                             f"{len(cluster[task['type']])} tasks of job "
                             f"{task['type']!r}")
    except (ValueError, KeyError, TypeError) as error:
        raise errors.ConfigError(
            f"--strategy=multi_worker: the TF_CONFIG environment variable "
            f"{text!r} is not a usable cluster description ({error}); "
            "expected JSON such as {\"cluster\": {\"worker\": "
            "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": "
            "\"worker\", \"index\": 0}}, with this process's own task."
        ) from None


def _visible_gpus() -> int:
    """GPUs Slurm gave this task, read without starting CUDA (which must wait
    until the strategy exists)."""
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if not devices or devices == "NoDevFiles":
        return 0
    return len(devices.split(","))


_SLURM_STEP_VARIABLES = ("SLURM_JOB_ID", "SLURM_PROCID",
                         "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST",
                         "SLURM_STEP_TASKS_PER_NODE")


def slurm_cluster_resolver() -> tf.distribute.cluster_resolver.ClusterResolver:
    """The cluster of the current Slurm job step: one worker per task.

    TensorFlow's `SlurmClusterResolver` lists the step's tasks (host names
    from SLURM_STEP_NODELIST, ports from a base port) but also hands GPUs to
    tasks, asking nvidia-smi how many a node has, and lists only as many
    tasks per node as it has GPUs for: on CPU nodes it fails or drops
    tasks. Slurm has already made each task's GPUs visible, so the resolver
    here only lists the tasks (given a GPU count that never runs out), and
    the worker's accelerators are the GPUs Slurm made visible to it.

    Raises:
      ConfigError: the environment is not that of a Slurm job step.
    """
    missing = [name for name in _SLURM_STEP_VARIABLES
               if name not in os.environ]
    if missing:
        raise errors.ConfigError(
            "--strategy=multi_worker needs to know its cluster: TF_CONFIG is "
            "not set, and this is not a Slurm job step (no "
            f"{', '.join(missing)}). Set TF_CONFIG, or start the program "
            "with srun inside a Slurm job (launch/submit.py writes such "
            "scripts).")
    try:
        port = (_SLURM_PORT_BASE
                + int(os.environ["SLURM_JOB_ID"]) % _SLURM_PORT_SPAN)
        slurm = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port, gpus_per_node=1 << 16, gpus_per_task=1,
            auto_set_gpu=False)
        cluster_spec = slurm.cluster_spec()
    except (RuntimeError, ValueError) as error:
        raise errors.ConfigError(
            "--strategy=multi_worker: the Slurm job step's environment "
            f"cannot be read as a cluster ({error}).") from None
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        cluster_spec, task_type=slurm.task_type, task_id=slurm.task_id,
        num_accelerators={"GPU": _visible_gpus()}, rpc_layer="grpc")


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
            cluster_resolver=cluster_resolver())
    raise errors.ConfigError(f"Unknown strategy {name!r}; expected one of "
                             f"{STRATEGIES}.")
