"""The exit statuses of the training programs, which batch scripts act on.

Kept free of TensorFlow so that `launch/submit.py` can read them quickly.
"""

import signal

# A mistake in what the user asked for (a bad flag, a missing file), or a
# workdir that cannot be used (not a directory, not writable, already in use
# by another launch, checkpoints that cannot be read, a full disk while
# writing a checkpoint or another output): one paragraph on stderr, as absl
# does for unknown flags.
USER_ERROR = 2

# Training diverged: a step made the loss, another logged value or a weight
# NaN or infinite (with --on_nonfinite=stop, the default). Nothing was saved
# after that step: the latest checkpoint holds the last good weights, and no
# export was written. Rerunning resumes from that checkpoint (and diverges
# again unless something changes), so batch scripts should not requeue.
DIVERGED = 3


def stopped_by(signal_number: int) -> int:
    """The status of a run that a signal stopped after writing a checkpoint:
    128 + the signal number, the shell's convention (143 for SIGTERM)."""
    return 128 + int(signal_number)


# SIGUSR1 is the warning that the Slurm scripts of launch/submit.py ask for
# shortly before the job's time limit (`#SBATCH --signal=USR1@...`): a run
# stopped by it exits with this status, and the script requeues the job on
# it, so that the next allocation resumes the run from its checkpoint.
REQUEUE_SIGNAL = signal.SIGUSR1
REQUEUE = stopped_by(REQUEUE_SIGNAL)

# A multi-worker run whose other worker went away (killed, its node lost):
# the survivors exit with this status (EX_TEMPFAIL of sysexits.h, "try
# again"), and the scripts of launch/submit.py requeue the job, which resumes
# from the last checkpoint.
LOST_WORKER = 75
