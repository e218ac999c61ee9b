"""Stop signals: SIGTERM, SIGUSR1 and SIGINT turned into a request that the
training loop honours between loops of steps (checkpoint, then exit).

Kept free of TensorFlow so that a program can install the handlers first of
all (`install_for_process`), before it imports TensorFlow, loads data or
waits for the other workers: a signal that arrives then is remembered, and
training stops with a checkpoint as soon as it starts, instead of the
signal's default action killing the process (which is what happened when
the trainer installed its handlers only once training started, 15-40 s
after a Slurm job step began).

Several signals may arrive together (Slurm's `scancel --full` sends SIGUSR1
to the batch shell and the step; srun forwards what it gets, and vae-submit's
script sends each signal again a few seconds later, so a process can receive
the same signal several times, or SIGUSR1 then SIGTERM). The first one starts
the stop; later ones are logged and otherwise ignored while the checkpoint is
written, so a second signal never aborts the stop (a KeyboardInterrupt
traceback and no checkpoint, as before). The run then exits for the most
final signal it received, in the order of `STOP_SIGNALS` (SIGTERM before
SIGUSR1 before SIGINT): 128 + its number, see launch/exit_codes.py. Only a
second SIGINT (Ctrl-C pressed twice at a terminal) still means "now".
"""

import signal
import threading
from typing import Any

from absl import logging

# In the order the loop honours them when several arrived: SIGTERM usually
# means the whole job is going away, SIGUSR1 that it is about to (Slurm's
# warning before the time limit, see launch/submit.py), SIGINT a person at a
# terminal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class StopRequest:
    """Records the stop signals a process received; see the module
    docstring."""

    def __init__(
        self,
        stopping: str = "finishing the current step, then writing a checkpoint "
        "and stopping",
    ):
        """`stopping` says, in the log, what the program does on the first
        signal."""
        self.received: list[int] = []
        self._stopping = stopping
        self._previous: dict[int, Any] = {}

    def _handle(self, signal_number, frame):
        del frame
        name = signal.Signals(signal_number).name
        if not self.received:
            self.received.append(signal_number)
            logging.warning("Received %s: %s.", name, self._stopping)
            return
        if signal_number == signal.SIGINT and self.received == [signal.SIGINT]:
            # Ctrl-C twice: the person wants out now; the last checkpoint
            # stays valid.
            raise KeyboardInterrupt
        if signal_number not in self.received:
            self.received.append(signal_number)
        logging.warning("Received %s while stopping: still %s.", name, self._stopping)

    @property
    def signal_number(self) -> int | None:
        """The signal to stop for: the first of STOP_SIGNALS received."""
        for signal_number in STOP_SIGNALS:
            if signal_number in self.received:
                return signal_number
        return None

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def install(self) -> bool:
        """Handles STOP_SIGNALS from now on; returns False (and does nothing)
        outside the main thread, where Python cannot handle signals (a test
        runner thread, say: training then runs without handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signal_number in STOP_SIGNALS:
            self._previous[signal_number] = signal.signal(signal_number, self._handle)
        return True

    def uninstall(self) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous.clear()


_process_request: StopRequest | None = None


def install_for_process() -> StopRequest | None:
    """Installs the process's stop handlers for good (idempotent); call it
    first thing in a training program.

    Trainers then use this request (`process_request`) instead of
    installing handlers of their own for the length of `train()`, so a
    signal is never missed between launch and training, nor after training
    (export, pictures) where it would otherwise kill the process.

    Returns:
      The request, or None outside the main thread.
    """
    global _process_request
    if _process_request is None:
        request = StopRequest()
        if not request.install():
            return None
        _process_request = request
    return _process_request


def process_request() -> StopRequest | None:
    """The request `install_for_process` installed, if any."""
    return _process_request
