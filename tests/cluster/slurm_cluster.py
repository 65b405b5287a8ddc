"""A real single-node SLURM cluster, started by hand for the cluster tests.

Why by hand: CI machines and containers have no systemd, so the test starts munged, slurmctld and slurmd
itself as background daemons, with every state/spool/log/pid path in a temporary directory, and stops
exactly the processes it started (by the PIDs in their pid files).  The machine is left as found: the
`/etc/slurm/slurm.conf` link and `/run/munge` are removed only when this harness created them.

Two details are forced by snakemake-executor-plugin-slurm:
- the in-job step clears every `SLURM_*` variable, so `SLURM_CONF` alone does not reach the job's own
  `srun`: the config must also be reachable at the default path `/etc/slurm/slurm.conf`;
- without slurmdbd, `sacct` cannot answer, so callers must poll with `squeue`; the plugin only trusts
  `squeue` when `MinJobAge` is at least 3x its initial status wait; `MIN_JOB_AGE_S` below is far above
  that, so finished jobs also stay visible long enough for a test to check their final state.

The node advertises one GPU GRES backed by `/dev/null`, so that the profile's
real `--gpus=1` requests are scheduled exactly as on a GPU cluster; the jobs themselves run on the CPU.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("catvae.tests.slurm_cluster")

SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_RUN_DIR = Path("/run/munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
PARTITION = "catvae-test"
MIN_JOB_AGE_S = 3600
PACKAGES = ("slurm-wlm", "munge")
REQUIRED_TOOLS = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "munged", "munge")


class ClusterUnavailable(RuntimeError):
    """This machine cannot host the test cluster (not root, no apt, a foreign SLURM setup ...)."""


def _run(cmd: list[str], timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a short command with a hard time limit, capturing text output."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, **kw)


def ensure_installed(timeout_s: float = 600) -> float:
    """Install slurm-wlm and munge with apt when missing; return the seconds spent installing.

    Raises ClusterUnavailable when the tools are missing and cannot be installed here (not root,
    no apt-get, or the install fails), so the caller can skip with that reason.
    """
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if not missing:
        return 0.0
    if os.geteuid() != 0:
        raise ClusterUnavailable(f"SLURM tools missing ({', '.join(missing)}) and not root: cannot apt-get install")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable(f"SLURM tools missing ({', '.join(missing)}) and no apt-get on this machine")
    start = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]):
        try:
            _run(cmd, timeout=timeout_s, env=env)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = (getattr(exc, "stderr", "") or "")[-2000:]
            raise ClusterUnavailable(f"{' '.join(cmd)} failed: {exc}\n{tail}") from exc
    still = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if still:
        raise ClusterUnavailable(f"after installing {PACKAGES}, still missing: {', '.join(still)}")
    return time.monotonic() - start


def _node_line(node: str) -> str:
    """The node's hardware line as slurmd measures it (`slurmd -C`), renamed to `node`."""
    out = _run(["slurmd", "-C"]).stdout.splitlines()[0].split()
    fields = [f for f in out if f.split("=")[0] not in ("NodeName", "UpTime")]
    return " ".join([f"NodeName={node}", *fields])


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _stop_pid(pid: int, name: str, grace_s: float = 15) -> None:
    """SIGTERM one process we started, then SIGKILL it if it is still there after `grace_s`."""
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    log.warning("%s (pid %d) ignored SIGTERM; killing it", name, pid)
    os.kill(pid, signal.SIGKILL)


def munge_works() -> bool:
    """True when a munged answers on the default socket (credential round trip)."""
    if shutil.which("munge") is None or shutil.which("unmunge") is None:
        return False
    try:
        cred = _run(["munge", "-n"], timeout=10).stdout
        _run(["unmunge"], input=cred, timeout=10)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False
    return True


@dataclass
class SlurmCluster:
    """One node, one partition, daemons owned by this object; see the module docstring for why."""

    root: Path
    partition: str = PARTITION
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    gpus: int = 1
    _started: list[tuple[str, Path]] = field(default_factory=list)
    _created: list[Path] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    def _write_conf(self) -> None:
        for sub in ("etc", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        r = self.root
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        self.conf.write_text(
            "\n".join(
                [
                    "# written by tests/cluster/slurm_cluster.py for one test session",
                    "ClusterName=catvaetest",
                    f"SlurmctldHost={self.node}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    "MpiDefault=none",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/affinity",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "ReturnToService=2",
                    f"MinJobAge={MIN_JOB_AGE_S}",
                    "SlurmdTimeout=60",
                    "InactiveLimit=0",
                    "KillWait=5",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
                    "GresTypes=gpu" if self.gpus else "",
                    _node_line(self.node) + gres + " State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        # A GPU GRES backed by /dev/null: scheduled like a real GPU (slurmd drops file-less GPUs and
        # rejects regular files), with nothing to bind since no cgroup plugin is configured.
        (self.root / "etc" / "gres.conf").write_text(
            "AutoDetect=off\n"
            + "".join(f"NodeName={self.node} Name=gpu File=/dev/null\n" for _ in range(self.gpus))
        )

    def _link_system_conf(self) -> None:
        if SYSTEM_CONF.is_symlink() and not SYSTEM_CONF.exists():
            raise ClusterUnavailable(f"{SYSTEM_CONF} is a dangling link left by someone else; not touching it")
        if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
            raise ClusterUnavailable(f"{SYSTEM_CONF} already exists (a real SLURM setup?); not replacing it")
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self._created.append(SYSTEM_CONF)

    def _start_munge(self) -> None:
        if munge_works():
            log.info("reusing the munged already running")
            return
        if not MUNGE_KEY.exists():
            raise ClusterUnavailable(f"no munge key at {MUNGE_KEY}")
        munge_user = pwd.getpwnam("munge")
        if not MUNGE_RUN_DIR.exists():
            MUNGE_RUN_DIR.mkdir(mode=0o755)
            os.chown(MUNGE_RUN_DIR, munge_user.pw_uid, munge_user.pw_gid)
            self._created.append(MUNGE_RUN_DIR)
        pid_file = MUNGE_RUN_DIR / "munged.pid"
        _run(["runuser", "-u", "munge", "--", "munged", "--num-threads=10", f"--pid-file={pid_file}"], timeout=30)
        self._started.append(("munged", pid_file))
        self._wait(munge_works, 20, "munged to answer")

    def _start_daemon(self, name: str) -> None:
        pid_file = self.root / "run" / f"{name}.pid"
        try:
            _run([name, "-f", str(self.conf)], timeout=60)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"{name} failed to start: {exc.stderr}\n{self._log_tail(name)}") from exc
        self._wait(lambda: _pid_from(pid_file) is not None, 20, f"{name} to write {pid_file}")
        self._started.append((name, pid_file))

    def _log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return f"(no {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def _wait(predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")

    def node_state(self) -> str:
        """The node's state as `sinfo` reports it ("idle", "mixed", "down*" ...), "" when unreachable."""
        try:
            out = _run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], timeout=10, check=False)
        except subprocess.TimeoutExpired:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    def start(self, idle_timeout_s: float = 60) -> float:
        """Start munged (unless one answers), slurmctld and slurmd; wait for an idle node; return seconds."""
        begin = time.monotonic()
        try:
            self._write_conf()
            self._link_system_conf()
            self._start_munge()
            self._start_daemon("slurmctld")
            self._start_daemon("slurmd")
            try:
                self._wait(lambda: self.node_state() == "idle", idle_timeout_s, f"node {self.node} to be idle")
            except TimeoutError as exc:
                raise TimeoutError(
                    f"{exc} (last state {self.node_state()!r})\n--- slurmctld\n{self._log_tail('slurmctld')}"
                    f"\n--- slurmd\n{self._log_tail('slurmd')}"
                ) from exc
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - begin

    def job_states(self) -> dict[str, str]:
        """SLURM job id -> state ("COMPLETED", "RUNNING" ...) for every job slurmctld still remembers.

        Finished jobs stay for MinJobAge seconds, long enough here for a whole test study.
        """
        out = _run(["squeue", "-h", "-t", "all", "-p", self.partition, "-o", "%i %T"], timeout=10)
        return dict(line.split() for line in out.stdout.splitlines() if line.strip())

    def job_record(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (e.g. "JobState", "TresPerJob", "Comment"), while slurmctld remembers it."""
        out = _run(["scontrol", "show", "job", "-o", job_id], timeout=10).stdout
        return dict(item.split("=", 1) for item in out.split() if "=" in item)

    def stop(self) -> None:
        """Cancel our partition's jobs, stop the daemons we started (newest first), undo what we created."""
        if any(name == "slurmctld" for name, _ in self._started):
            _run(["scancel", "-p", self.partition], timeout=20, check=False)
        for name, pid_file in reversed(self._started):
            pid = _pid_from(pid_file)
            if pid is not None:
                _stop_pid(pid, name)
        self._started.clear()
        for path in reversed(self._created):
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        self._created.clear()
