"""Console-script entry points of the training programs.

Each installs the stop-signal handlers (trainers/stop_signals.py) before it
imports its program, which loads TensorFlow (several seconds): a SIGTERM or
SIGUSR1 that arrives meanwhile (a Slurm job cancelled or warned right after
it started) then still ends in a checkpoint and the documented exit status,
rather than killing the process. Nothing here imports TensorFlow.
"""

from trainers import stop_signals


def train():
    """`vae-train`."""
    stop_signals.install_for_process()
    from launch import train as program  # pylint: disable=g-import-not-at-top

    program.run_main()


def train_vaegan():
    """`vae-train-vaegan`."""
    stop_signals.install_for_process()
    # pylint: disable-next=g-import-not-at-top
    from launch import train_vaegan as program

    program.run_main()
