"""A real single-node Slurm for the end-to-end tests of vae-submit.

`SlurmCluster.start()` runs munged, slurmctld and `slurmd -N localhost`
under a temporary directory, from a slurm.conf written there: one node
(`localhost`, this machine's CPU count), one partition, no accounting, no
cgroups (`proctrack/linuxproc`, `task/none`), so it works in a container as
root. The pytest fixture `slurm_cluster` (session scope, registered by
tests/conftest.py) starts it once for every test marked `slurm`, installing
Debian's packages (slurmctld slurmd slurm-client munge) with apt first when
they are missing and we are root; where Slurm cannot be had the tests skip
and say why. Start the same cluster by hand (to try vae-submit on a laptop)
with `python -m tests.slurm_cluster` (see launch/SLURM.md).

What a real Slurm needs here, found setting it up:

* every client (sbatch, squeue, and srun/scontrol inside jobs) reads
  `SLURM_CONF`; jobs inherit it from the environment of sbatch, so
  `environment()` is what the tests submit with;
* a requeued job may start again only `cred_expire` + 1 s after it ended
  (121 s by default): `AuthInfo=...,cred_expire=10` cuts that to 11 s;
* the partition lets four jobs share each CPU (`OverSubscribe=FORCE:4`), so
  that the tests' small jobs run side by side on a 2-core machine;
* ports 6817 and 6818 must be free (one cluster per machine);
* slurmd leaves running job steps behind when it stops: `stop()` cancels
  every job first.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
_PROGRAMS = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "scontrol",
    "scancel",
    "sinfo",
    "srun",
)
_CONTROLLER_PORT = 6817
_NODE_PORT = 6818


class SlurmUnavailable(Exception):
    """Slurm cannot be run here; the message says why."""


def _find(program: str) -> str | None:
    # The daemons live in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _missing_programs() -> list[str]:
    return [program for program in _PROGRAMS if _find(program) is None]


def install_packages() -> None:
    """Installs Slurm and munge with apt when they are missing.

    Raises:
      SlurmUnavailable: they are missing and cannot be installed here.
    """
    missing = _missing_programs()
    if not missing:
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(
            f"Slurm is not installed ({', '.join(missing)} missing) and "
            "installing it needs root: run `apt-get install "
            f"{' '.join(PACKAGES)}` as root, then the tests again."
        )
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(
            f"Slurm is not installed ({', '.join(missing)} missing) and there "
            "is no apt-get to install it with."
        )
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(
        command, env=environment, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        # A clean machine may never have fetched the package lists.
        subprocess.run(
            ["apt-get", "update", "-q"], env=environment, capture_output=True, check=False
        )
        result = subprocess.run(
            command, env=environment, capture_output=True, text=True, check=False
        )
    if result.returncode != 0 or _missing_programs():
        raise SlurmUnavailable(
            f"`{' '.join(command)}` failed (exit status {result.returncode}; "
            "no network to the package registry?): "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )


def _port_in_use(port: int) -> bool:
    import socket  # pylint: disable=import-outside-toplevel

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def slurm_conf(root: str, cpus: int) -> str:
    """The text of slurm.conf for a one-node cluster kept under `root`."""
    return "\n".join(
        [
            "ClusterName=vaetest",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={_CONTROLLER_PORT}",
            f"SlurmdPort={_NODE_PORT}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            # A requeued job may restart cred_expire + 1 s after it ended.
            f"AuthInfo=socket={root}/munge/munge.socket,cred_expire=10",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd.pid",
            f"SlurmctldLogFile={root}/slurmctld.log",
            f"SlurmdLogFile={root}/slurmd.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/builtin",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "MinJobAge=600",
            # Time for a stopped run to write its checkpoint before SIGKILL.
            "KillWait=30",
            "Waittime=0",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE "
            "State=UP OverSubscribe=FORCE:4",
            "",
        ]
    )


class SlurmCluster:
    """munged + slurmctld + slurmd on this machine, state under `root`."""

    def __init__(self, root: str | None = None):
        self.root = root or tempfile.mkdtemp(prefix="vae-slurm-")
        self.conf_path = os.path.join(self.root, "slurm.conf")
        self.cpus = os.cpu_count() or 1
        self._daemons: list[subprocess.Popen] = []

    def environment(self) -> dict[str, str]:
        """os.environ plus what every Slurm client needs (SLURM_CONF, the
        daemons' directory on PATH)."""
        return dict(
            os.environ,
            SLURM_CONF=self.conf_path,
            PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin",
        )

    def run(
        self, *command: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """Runs a Slurm client command against this cluster."""
        result = subprocess.run(
            list(command),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def start(self, timeout: float = 60) -> None:
        """Installs what is missing, starts the daemons, waits for the node.

        Raises:
          SlurmUnavailable: Slurm cannot run here; the message says why.
        """
        if sys.platform != "linux":
            raise SlurmUnavailable("the test cluster runs on Linux only.")
        install_packages()
        if os.geteuid() != 0:
            raise SlurmUnavailable(
                "the test cluster's daemons (slurmd starts jobs as their user) need root."
            )
        busy = [port for port in (_CONTROLLER_PORT, _NODE_PORT) if _port_in_use(port)]
        if busy:
            raise SlurmUnavailable(
                f"port(s) {busy} are in use: another Slurm (or another test "
                "cluster) runs on this machine."
            )
        for name in ("munge", "state", "spool"):
            os.makedirs(os.path.join(self.root, name), exist_ok=True)
        os.chmod(os.path.join(self.root, "munge"), 0o700)
        with open(self.conf_path, "w") as stream:
            stream.write(slurm_conf(self.root, self.cpus))
        key_path = os.path.join(self.root, "munge", "munge.key")
        with open(key_path, "wb") as stream:
            stream.write(os.urandom(1024))
        os.chmod(key_path, 0o400)

        munge_dir = os.path.join(self.root, "munge")
        self._spawn(
            [
                _find("munged"),
                "--foreground",
                "--force",
                f"--key-file={key_path}",
                f"--socket={munge_dir}/munge.socket",
                f"--pid-file={munge_dir}/munged.pid",
                f"--log-file={munge_dir}/munged.log",
                f"--seed-file={munge_dir}/munged.seed",
            ]
        )
        self._wait_for(
            lambda: os.path.exists(f"{munge_dir}/munge.socket"),
            timeout,
            "munged's socket",
        )
        # -i: forget any state (a fresh cluster each time).
        self._spawn([_find("slurmctld"), "-D", "-i", "-f", self.conf_path])
        self._spawn([_find("slurmd"), "-D", "-N", "localhost", "-f", self.conf_path])
        self._wait_for(self._node_idle, timeout, "the node to be idle")

    def _spawn(self, command: list[str]) -> None:
        log = open(os.path.join(self.root, os.path.basename(command[0]) + ".out"), "w")
        # Jobs inherit slurmd's nice value: start the daemons at nice 0.
        self._daemons.append(
            subprocess.Popen(
                command,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0),
            )
        )
        log.close()

    def _node_idle(self) -> bool:
        for daemon in self._daemons:
            if daemon.poll() is not None:
                raise SlurmUnavailable(
                    f"{daemon.args[0]} exited with status {daemon.returncode}"
                    f"; see the logs in {self.root}."
                )
        result = self.run("sinfo", "-h", "-N", "-o", "%t", check=False, timeout=10)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    @staticmethod
    def _wait_for(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"timed out waiting for {what}.")
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancels every job, then stops the daemons (last started first)."""
        if self._daemons:
            self.run("scancel", "--full", "--user=root", check=False)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                queue = self.run("squeue", "-h", check=False)
                if queue.returncode != 0 or not queue.stdout.strip():
                    break
                time.sleep(0.5)
        for daemon in reversed(self._daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        self._daemons.clear()

    # --------------------------------------------------------------- jobs
    def job_field(self, job_id: str, field: str) -> str | None:
        """A field of `scontrol show job` (e.g. JobState, Restarts)."""
        result = self.run("scontrol", "-o", "show", "job", job_id, check=False)
        for item in result.stdout.split():
            name, _, value = item.partition("=")
            if name == field:
                return value
        return None

    def wait_for_state(self, job_id: str, states, timeout: float = 180) -> str:
        """Waits until the job's state is one of `states`; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job_field(job_id, "JobState")
            if state in states:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} is {state} after {timeout} s, not one of {states}"
                )
            time.sleep(0.5)


def main() -> None:
    """`python -m tests.slurm_cluster`: starts the cluster, prints how to use
    it, and stops it on Ctrl-C."""
    cluster = SlurmCluster()
    try:
        cluster.start()
    except SlurmUnavailable as error:
        print(f"Cannot start Slurm: {error}", file=sys.stderr)
        sys.exit(1)
    print(
        f"Slurm is running (state and logs in {cluster.root}).\n"
        f"In another shell:  export SLURM_CONF={cluster.conf_path}\n"
        "then sinfo, vae-submit ..., squeue. Ctrl-C here stops it.",
        flush=True,
    )
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
