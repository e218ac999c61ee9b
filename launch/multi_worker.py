"""How a multi-worker run ends: together, or with one clear line when a
worker is lost.

The end of a run (`finish_together`). The chief works on after the last
step (evaluation hooks, the SavedModel export) while the other workers have
nothing left to do; a worker that exited then stopped answering the
coordination service's heartbeats, and the chief logged `StartAbort
UNAVAILABLE ... tasks have crashed` although nothing had failed. So every
worker waits at a last collective operation (a barrier) until the chief is
done, and all exit together.

A lost worker (`train`, `exit_reporting`). When a worker dies (kill -9,
an out-of-memory kill, a node failure), the others find out at their next
collective operation: after about ten seconds TensorFlow raises
`UnavailableError` ("Collective ops is aborted by: recvmsg:Connection reset
by peer", or a failed heartbeat). Before, that ended the survivors with a
long traceback and a status that the Slurm script did not act on. Now
`train` turns it into `LostWorkerError`, whose message names the lost
worker, and `exit_reporting` prints it as one paragraph and exits with
`exit_codes.LOST_WORKER`, on which the scripts of launch/submit.py requeue
the job; the requeued job resumes from the last checkpoint (multi-worker
runs checkpoint every few minutes by default, see
--checkpoint_every_seconds).
"""

import os
import re
import sys

import tensorflow as tf

from launch import exit_codes
from trainers import base
from trainers import distribute as distribute_lib

# Errors with which a collective operation reports a peer gone.
_LOST_PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.DeadlineExceededError,
    tf.errors.InternalError,
)
_TASK_NAME = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")
_TELLING = re.compile(
    r"abort|unavailable|connection|heartbeat|crash|socket", re.IGNORECASE
)


class LostWorkerError(Exception):
    """Another worker of a multi-worker run went away; the message says
    which."""


def _mentioned_tasks(message: str, own_index: int) -> list[int]:
    indices = []
    for _, index in _TASK_NAME.findall(message):
        if int(index) != own_index and int(index) not in indices:
            indices.append(int(index))
    return indices


def _telling_line(message: str) -> str:
    """The line of TensorFlow's message that says what happened (its first
    is often just "Graph execution error:")."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if _TELLING.search(line):
            return line
    return lines[0] if lines else ""


def describe(
    error: Exception, workers: list[str], own_index: int, global_step: int | None = None
) -> str:
    """The one-paragraph report of a lost worker.

    Args:
      error: what TensorFlow raised.
      workers: the cluster's workers ("host:port"), by index.
      own_index: this worker's index.
      global_step: the step this worker had reached, if known.
    """
    lost = _mentioned_tasks(str(error), own_index)
    if not lost and len(workers) == 2:
        lost = [1 - own_index]
    if lost:
        names = ", ".join(
            f"worker {index} ({workers[index]})"
            if 0 <= index < len(workers)
            else f"worker {index}"
            for index in lost
        )
        who = f"Lost {names}"
    else:
        who = f"Lost another worker of the {len(workers)}"
    first_line = _telling_line(str(error)) or type(error).__name__
    step = f" at global step {global_step}" if global_step is not None else ""
    return (
        f"{who}{step}: it stopped answering ({type(error).__name__}: "
        f"{first_line[:200]}). Worker {own_index} ({workers[own_index]}) "
        f"exits with status {exit_codes.LOST_WORKER}; vae-submit's "
        "script requeues the job, and the rerun resumes from the last "
        "checkpoint."
    )


def train(trainer: base.Trainer) -> base.TrainResult:
    """`trainer.train()`, with a lost worker raised as LostWorkerError.

    Raises:
      LostWorkerError: a multi-worker run lost a worker.
    """
    try:
        return trainer.train()
    except _LOST_PEER_ERRORS as error:
        if distribute_lib.num_workers(trainer.strategy) < 2:
            raise
        resolver = trainer.strategy.cluster_resolver
        spec = resolver.cluster_spec().as_dict()
        workers = list(spec.get("chief", [])) + list(spec.get("worker", []))
        _, own_index = distribute_lib.task(trainer.strategy)
        try:
            step = int(trainer.global_step.numpy())
        except Exception:  # pylint: disable=broad-except
            step = None
        raise LostWorkerError(describe(error, workers, own_index, step)) from None


def finish_together(strategy: tf.distribute.Strategy) -> None:
    """Waits until every worker got here (nothing to do with one worker)."""
    if distribute_lib.num_workers(strategy) < 2:
        return

    @tf.function
    def barrier():
        return strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None
        )

    barrier()


def exit_reporting(error: LostWorkerError) -> None:
    """Prints the report and exits with exit_codes.LOST_WORKER at once.

    `os._exit`: TensorFlow's shutdown would wait for the lost worker.
    """
    program = os.path.basename(sys.argv[0]) or "vae"
    print(f"{program}: error: {error}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(exit_codes.LOST_WORKER)  # pylint: disable=protected-access
