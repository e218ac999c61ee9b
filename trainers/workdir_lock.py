"""One launch per workdir at a time: an OS-level lock held for the run.

Two processes training into one workdir write the same checkpoints and
metrics.json, which is how runs are lost. The chief of a run takes an
exclusive `fcntl.flock` on WORKDIR/lock and keeps the file open until the
run ends; a second launch finds the lock taken and is refused with the
holder's process id and host, which the holder writes into the file.

The lock belongs to the open file, not to the file's existence: the kernel
drops it when the holder closes the file or dies (kill -9 included), so a
stale file never blocks a later launch, and nobody has to delete it. On NFS,
Linux implements flock with the server's byte-range locks (NFSv4, or v3
with lockd), which holds between machines.
"""

import fcntl
import os
import socket
import sys
import time

LOCK_FILE = "lock"


class WorkdirBusyError(ValueError):
    """Another process holds the workdir's lock."""


class WorkdirLock:
    """The exclusive lock on one workdir, taken by `acquire`.

    Args:
      workdir: an existing directory.
    """

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock, or raises `WorkdirBusyError` naming its holder.

        The file is opened without truncating it, and the holder's record is
        only written by `record_holder` once the launch goes ahead, so a
        refused launch changes nothing in the workdir.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise WorkdirBusyError(
                f"The workdir {self.workdir} is in use by another launch "
                f"({holder}), which holds the lock {self.path}. Two runs "
                "writing one workdir would overwrite each other's "
                "checkpoints and metrics, so this launch was refused and "
                "nothing was changed. Wait for that run to finish (or stop "
                "it), or use another --workdir. The lock is released when "
                "its process ends, however it ends."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def record_holder(self) -> None:
        """Writes this process's id, host and command into the lock file,
        for the message of a launch that finds the lock taken."""
        if self._fd is None:
            raise RuntimeError("record_holder() before acquire().")
        record = (
            f"pid {os.getpid()} on host {socket.gethostname()}, "
            f"since {time.strftime('%Y-%m-%d %H:%M:%S')}: "
            f"{' '.join(sys.argv)}\n"
        )
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, record.encode("utf-8"), 0)

    def release(self) -> None:
        """Releases the lock (closing the file does); the file stays."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "WorkdirLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    if not text:
        return "a process that is still starting; its id and host are not recorded yet"
    return text.splitlines()[0]
