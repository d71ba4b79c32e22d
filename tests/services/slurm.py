"""A real Slurm 22.05 for tests: Debian's packages, every daemon started by hand on loopback.

No systemd here and a Debian package never starts its own daemon, so this module runs
munged, MariaDB, slurmdbd, slurmctld and slurmd itself, each with its state, sockets,
logs and pid files under one directory. Two clusters can run side by side, so the
backend can be tested both ways at once (several pytest workers may want either):

- with accounting (default directory ``/tmp/mesobatch-slurm``, cluster ``mesobatch``):
  MariaDB bound to 127.0.0.1 and slurmdbd, so ``sacct`` works; associations, limits and
  QOS are enforced (invalid accounts and QOS are refused at submit, the QOS ``onejob``
  allows one running job per user) and partition limits are checked at submit
  (``EnforcePartLimits=ALL``);
- without accounting (``--no-accounting``, ``/tmp/mesobatch-slurm-noacct``, cluster
  ``mesonoacct``): no slurmdbd, ``sacct`` fails, and partition limits keep Slurm's
  default (a job over a partition's MaxTime waits with reason PartitionTimeLimit).

Both have one node (the line ``slurmd -C`` prints, with ``NodeAddr=127.0.0.1``), no GPUs,
and two partitions: ``main`` (default, no time limit) and ``short`` (MaxTime 10 minutes).
``MinJobAge`` is short (10 s) so that jobs leave the queue soon and the accounting (or
job-wrapper) path is what reports final states, as on a busy cluster.

Each cluster has its own munged (own key and socket: ``AuthInfo=socket=...``, and
``AccountingStoragePass=`` the same socket, which is what clients use to reach slurmdbd),
loopback ports (slurmctld/slurmd/slurmdbd/MariaDB 17817-17820 with accounting, 17827-17828
without) and, with accounting, a MariaDB data directory of its own. A fresh start with
accounting takes about 14-22 s here (most of it creating the database and its accounts), a
restart that keeps the directory 2.5-6 s, one without accounting under 1 s.

Clients need ``SLURM_CONF`` (``SlurmCluster.env``). Starting is idempotent and safe from
several processes: a file lock beside the directory serialises start and stop, and a
running cluster whose configuration is unchanged is reused. A cluster started by the
pytest fixtures (``tests/services/slurm_fixtures.py``) is stopped when its last user (a
pytest process) releases it; one started from the command line stays up until ``stop``::

    python -m tests.services.slurm start|stop|status [--no-accounting] [--dir D] [--wipe]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Debian packages the cluster needs, and a program each one installs.
PACKAGES = {
    "slurmctld": "slurmctld", "slurmd": "slurmd", "slurm-client": "sbatch",
    "munge": "munged", "slurmdbd": "slurmdbd", "mariadb-server": "mariadbd",
}
DEFAULT_DIR = Path(os.environ.get("MESOBATCH_SLURM_DIR", "/tmp/mesobatch-slurm"))
NOACCT_DIR = Path(os.environ.get("MESOBATCH_SLURM_NOACCT_DIR", "/tmp/mesobatch-slurm-noacct"))

PARTITIONS = {"main": None, "short": 10}  #: name -> MaxTime in minutes (None: INFINITE)
MIN_JOB_AGE = 10
ACCOUNT = "mesobatch"
#: QOS beside "normal" that every test user may use: one running job (pending reason
#: QOSMaxJobsPerUserLimit), one submitted job (sbatch's submit-limit error), one minute
#: (pending reason QOSMaxWallDurationPerJobLimit, or refused at submit with DenyOnLimit)
LIMITED_QOS = {"onejob": ["MaxJobsPerUser=1"], "onesubmit": ["MaxSubmitJobsPerUser=1"],
               "shortwall": ["MaxWall=1"], "shortwalldeny": ["MaxWall=1", "Flags=DenyOnLimit"]}
ACCOUNTS = repr((ACCOUNT, LIMITED_QOS))  #: what the accounting database was set up with
_DB_USER, _DB_PASSWORD = "slurm", "mesobatch-test"  # loopback-only throw-away database


def missing_packages() -> list[str]:
    """The Debian packages whose programs are not on this machine."""
    return [pkg for pkg, prog in PACKAGES.items()
            if shutil.which(prog) is None and not Path("/usr/sbin", prog).exists()]


def unavailable_reason() -> str | None:
    """Why a real Slurm cannot start here, or None."""
    missing = missing_packages()
    if missing:
        return ("Slurm is not installed: apt-get install " + " ".join(missing)
                + " (tests/run.sh does this as root)")
    if os.geteuid() != 0:
        return "a real Slurm needs root here (munged and MariaDB run as their own users)"
    return None


@dataclass(frozen=True)
class Ports:
    ctld: int
    slurmd: int
    dbd: int
    mysql: int


ACCT_PORTS = Ports(ctld=17817, slurmd=17818, dbd=17819, mysql=17820)
NOACCT_PORTS = Ports(ctld=17827, slurmd=17828, dbd=17829, mysql=17830)


class SlurmStartError(RuntimeError):
    """A daemon did not come up; the message names its log."""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _wait(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise SlurmStartError(f"{what} not ready after {timeout:.0f} s; {log}:\n{tail}")


@dataclass
class SlurmCluster:
    """One single-node cluster under ``root``; see the module docstring."""

    root: Path = DEFAULT_DIR
    accounting: bool = True
    #: seconds each step of the last start took (munged, mariadb, slurmdbd, ...)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def default(cls, accounting: bool = True) -> SlurmCluster:
        return cls(DEFAULT_DIR if accounting else NOACCT_DIR, accounting)

    # -- names and places ------------------------------------------------------------

    @property
    def name(self) -> str:
        return "mesobatch" if self.accounting else "mesonoacct"

    @property
    def ports(self) -> Ports:
        return ACCT_PORTS if self.accounting else NOACCT_PORTS

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a Slurm client needs in its environment."""
        return {"SLURM_CONF": str(self.conf)}

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    @property
    def partitions(self) -> dict[str, int | None]:
        return dict(PARTITIONS)

    @property
    def _lock_path(self) -> Path:
        return self.root.with_name(self.root.name + ".lock")

    def _pid_file(self, daemon: str) -> Path:
        return self.root / "run" / f"{daemon}.pid"

    #: daemons in start order: name -> the names /proc/PID/comm may show
    def _daemons(self) -> dict[str, tuple[str, ...]]:
        both: dict[str, tuple[str, ...]] = {"munged": ("munged",)}
        if self.accounting:
            both |= {"mariadbd": ("mariadbd", "mysqld"), "slurmdbd": ("slurmdbd",)}
        return both | {"slurmctld": ("slurmctld",), "slurmd": ("slurmd",)}

    # -- configuration ---------------------------------------------------------------

    def node_line(self) -> str:
        """``slurmd -C``'s node description, reachable on loopback, with local disk."""
        first = subprocess.run(["slurmd", "-C"], capture_output=True, text=True,
                               check=True).stdout.splitlines()[0]
        total_mb = shutil.disk_usage(self.root.parent).total // 2**20
        # half the disk: slurmd drains a node whose real TmpDisk is below the configured one
        return f"{first} NodeAddr=127.0.0.1 TmpDisk={total_mb // 2} State=UNKNOWN"

    def slurm_conf(self) -> str:
        r, p = self.root, self.ports
        host = socket.gethostname().split(".")[0]
        lines = [
            f"ClusterName={self.name}",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={p.ctld}",
            f"SlurmdPort={p.slurmd}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge' / 'munge.socket'}",
            # listen on loopback only
            "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={self._pid_file('slurmctld')}",
            f"SlurmdPidFile={self._pid_file('slurmd')}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            f"TmpFS={r / 'tmp'}",
            "MpiDefault=none",
            # no cgroups here: track processes by parent id, bind nothing
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=256",  # else a job without --mem takes the whole node's memory
            "ReturnToService=2",
            # schedule at once when a job ends or is submitted (Slurm's default waits up to
            # 3 s to batch scheduling: one-CPU jobs then start at 2 per 3 s on 2 CPUs)
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
            f"MinJobAge={MIN_JOB_AGE}",
            "KillWait=5",
            "InactiveLimit=0",
            "JobAcctGatherType=jobacct_gather/linux",
        ]
        if self.accounting:
            lines += [
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={p.dbd}",
                # clients reach slurmdbd with this munge socket, not AuthInfo's
                f"AccountingStoragePass={r / 'munge' / 'munge.socket'}",
                "AccountingStorageEnforce=associations,limits,qos",
                "EnforcePartLimits=ALL",
            ]
        else:
            lines += ["AccountingStorageType=accounting_storage/none"]
        lines.append(self.node_line())
        for part, minutes in PARTITIONS.items():
            limit = "INFINITE" if minutes is None else str(minutes)
            default = "YES" if part == "main" else "NO"
            lines.append(f"PartitionName={part} Nodes=ALL Default={default} "
                         f"MaxTime={limit} State=UP")
        return "\n".join(lines) + "\n"

    def slurmdbd_conf(self) -> str:
        r, p = self.root, self.ports
        host = socket.gethostname().split(".")[0]
        return "\n".join([
            "AuthType=auth/munge",
            f"AuthInfo=socket={r / 'munge' / 'munge.socket'}",
            f"DbdHost={host}",  # an IP address here makes slurmdbd exit at start
            "DbdAddr=127.0.0.1",
            f"DbdPort={p.dbd}",
            "SlurmUser=root",
            "StorageType=accounting_storage/mysql",
            "StorageHost=127.0.0.1",
            f"StoragePort={p.mysql}",
            f"StorageUser={_DB_USER}",
            f"StoragePass={_DB_PASSWORD}",
            "StorageLoc=slurm_acct_db",
            f"LogFile={r / 'log' / 'slurmdbd.log'}",
            f"PidFile={self._pid_file('slurmdbd')}",
        ]) + "\n"

    def _configs(self) -> dict[Path, str]:
        configs = {self.conf: self.slurm_conf()}
        if self.accounting:
            configs[self.conf.parent / "slurmdbd.conf"] = self.slurmdbd_conf()
        return configs

    def _config_current(self) -> bool:
        return all(path.exists() and path.read_text() == text
                   for path, text in self._configs().items())

    # -- commands --------------------------------------------------------------------

    def run(self, argv: list[str], check: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A Slurm (or other) command with this cluster's environment."""
        return subprocess.run(argv, capture_output=True, text=True, env=self.environ(),
                              check=check, timeout=timeout)

    def _ok(self, argv: list[str]) -> bool:
        try:
            return self.run(argv, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def node_state(self) -> str:
        """The node's state as sinfo says it ("" when slurmctld does not answer)."""
        try:
            out = self.run(["sinfo", "-h", "-N", "-o", "%T"], timeout=10)
        except subprocess.TimeoutExpired:
            return ""
        # one line per partition the node is in
        states = set(out.stdout.split()) if out.returncode == 0 else set()
        return states.pop() if len(states) == 1 else ",".join(sorted(states))

    def usable(self) -> bool:
        """The node takes jobs (registered: "idle*" would be a node that does not answer)."""
        return self.node_state() in {"idle", "mixed", "allocated", "completing"}

    def _pid(self, daemon: str) -> int | None:
        try:
            pid = int(self._pid_file(daemon).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) and _comm(pid) in self._daemons()[daemon] else None

    def running(self) -> dict[str, int | None]:
        """Each daemon's pid, None where it does not run."""
        return {d: self._pid(d) for d in self._daemons()}

    def healthy(self) -> bool:
        """All daemons up, the node usable, and the configuration what this module writes."""
        accounts = self.root / "accounts"
        return (all(self.running().values()) and self._config_current()
                and (not self.accounting
                     or (accounts.exists() and accounts.read_text() == ACCOUNTS))
                and self.usable())

    # -- start and stop --------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def start(self, owner: str = "cli") -> float:
        """Start the cluster, or reuse it if it runs; seconds it took (0.0: reused)."""
        reason = unavailable_reason()
        if reason:
            raise SlurmStartError(reason)
        with self._locked():
            return self._start_locked(owner)

    def _start_locked(self, owner: str) -> float:
        if self.healthy():
            if owner == "cli":  # started by hand now: pytest must leave it running
                (self.root / "owner").write_text(owner)
            return 0.0
        began = time.monotonic()
        self._stop_locked()
        fresh = not (self._config_current() and (self.root / "initialized").exists())
        if fresh:
            shutil.rmtree(self.root, ignore_errors=True)
        for sub in ("etc", "state", "spool", "log", "run", "tmp", "users"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for path, text in self._configs().items():
            path.write_text(text)
            if path.name == "slurmdbd.conf":
                path.chmod(0o600)  # slurmdbd refuses a readable file (it holds a password)
        self.timings = {}
        steps: list[tuple[str, Callable[[], None]]] = [("munged", self._start_munged)]
        if self.accounting:
            accounts = self.root / "accounts"
            steps += [("mariadb", lambda: self._start_mariadb(fresh)),
                      ("slurmdbd", self._start_slurmdbd)]
            if not accounts.exists() or accounts.read_text() != ACCOUNTS:
                steps.append(("accounts", self._setup_accounts))
        steps += [("slurmctld", self._start_slurmctld), ("slurmd", self._start_slurmd)]
        for name, step in steps:
            began_step = time.monotonic()
            step()
            self.timings[name] = time.monotonic() - began_step
        (self.root / "initialized").touch()
        (self.root / "owner").write_text(owner)
        return time.monotonic() - began

    def _start_munged(self) -> None:
        d = self.root / "munge"
        d.mkdir(mode=0o755, exist_ok=True)
        key = d / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        shutil.chown(d, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o600)
        pid_file = self._pid_file("munged")
        subprocess.run(
            ["munged", f"--socket={d / 'munge.socket'}", f"--key-file={key}",
             f"--pid-file={d / 'munged.pid'}", f"--log-file={d / 'munged.log'}",
             f"--seed-file={d / 'munged.seed'}"],
            user="munge", group="munge", extra_groups=[], check=True,
            capture_output=True, timeout=30)
        _wait((d / "munged.pid").exists, 10, "munged", d / "munged.log")
        pid_file.write_text((d / "munged.pid").read_text())
        _wait(lambda: self._ok(["munge", "-S", str(d / "munge.socket"), "-n"]), 10,
              "munged", d / "munged.log")

    def _start_mariadb(self, fresh: bool) -> None:
        d = self.root / "mysql"
        data = d / "data"
        log = self.root / "log" / "mariadb.log"
        sock = d / "mysqld.sock"
        if fresh or not (data / "mysql").exists():
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            shutil.chown(d, "mysql", "mysql")
            with open(log, "ab") as out:
                subprocess.run(
                    ["mariadb-install-db", "--no-defaults", "--user=mysql",
                     f"--datadir={data}", "--auth-root-authentication-method=socket",
                     "--skip-test-db"],
                    stdout=out, stderr=subprocess.STDOUT, check=True, timeout=120)
        with open(log, "ab") as out:
            # setsid -f: mariadbd is not our child, so no zombie when another process stops it
            subprocess.run(
                ["setsid", "-f", "mariadbd", "--no-defaults", "--user=mysql",
                 f"--datadir={data}", f"--socket={sock}", f"--pid-file={d / 'mysqld.pid'}",
                 "--bind-address=127.0.0.1", f"--port={self.ports.mysql}",
                 "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
                 "--innodb-flush-log-at-trx-commit=0", f"--log-error={log}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True)
        admin = ["mariadb-admin", "--no-defaults", f"--socket={sock}", "ping"]
        _wait(lambda: (d / "mysqld.pid").exists() and self._ok(admin), 60, "MariaDB", log)
        self._pid_file("mariadbd").write_text((d / "mysqld.pid").read_text())
        if fresh:
            sql = (f"CREATE USER IF NOT EXISTS '{_DB_USER}'@'127.0.0.1' "
                   f"IDENTIFIED BY '{_DB_PASSWORD}'; "
                   f"GRANT ALL ON slurm_acct_db.* TO '{_DB_USER}'@'127.0.0.1';")
            self.run(["mariadb", "--no-defaults", f"--socket={sock}", "-u", "root", "-e", sql],
                     check=True)

    def _start_slurmdbd(self) -> None:
        self.run(["slurmdbd"], check=True)
        _wait(lambda: self._ok(["sacctmgr", "-n", "show", "cluster"]), 120, "slurmdbd",
              self.root / "log" / "slurmdbd.log")

    def _setup_accounts(self) -> None:
        """Account, user associations and QOS; idempotent, run when ``ACCOUNTS`` changes."""
        users = ",".join(sorted({"root", _user()}))
        qos_names = ",".join(["normal", *LIMITED_QOS])
        for argv in (
            ["add", "cluster", self.name],
            ["add", "account", ACCOUNT, "Description=mesobatch tests", "Organization=tests"],
            *(["add", "qos", name, *limits] for name, limits in LIMITED_QOS.items()),
            ["add", "user", users, f"Account={ACCOUNT}"],
            # users of the cluster's root account (made with the cluster) get the QOS too
            ["modify", "user", users, "set", f"QOS={qos_names}", "DefaultQOS=normal"],
        ):
            out = self.run(["sacctmgr", "-i", *argv])
            said = out.stdout + out.stderr
            if out.returncode and "Nothing new added" not in said and "already exists" not in said:
                raise SlurmStartError(f"sacctmgr {' '.join(argv)}: {out.stdout}{out.stderr}")
        (self.root / "accounts").write_text(ACCOUNTS)

    def _start_slurmctld(self) -> None:
        self.run(["slurmctld"], check=True)
        _wait(lambda: "UP" in self.run(["scontrol", "ping"], timeout=10).stdout, 60,
              "slurmctld", self.root / "log" / "slurmctld.log")

    def _start_slurmd(self) -> None:
        self.run(["slurmd"], check=True)
        _wait(self.usable, 60,
              "slurmd (node usable)", self.root / "log" / "slurmd.log")

    def stop(self, wipe: bool = False) -> None:
        """Stop every daemon of this cluster (``wipe``: and remove its directory)."""
        with self._locked():
            self._stop_locked()
            if wipe:
                shutil.rmtree(self.root, ignore_errors=True)

    def _stop_locked(self) -> None:
        for daemon in reversed(list(self._daemons())):
            pid = self._pid(daemon)
            if pid is None:
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                while _alive(pid):
                    time.sleep(0.05)

    # -- shared use by pytest processes ------------------------------------------------

    def acquire(self) -> float:
        """Start or reuse the cluster for this process; ``release`` when done."""
        reason = unavailable_reason()
        if reason:
            raise SlurmStartError(reason)
        with self._locked():
            took = self._start_locked("pytest")
            (self.root / "users" / str(os.getpid())).touch()
        return took

    def release(self) -> None:
        """Forget this process; stop the cluster if pytest started it and nobody uses it."""
        with self._locked():
            users = self.root / "users"
            with contextlib.suppress(FileNotFoundError):
                (users / str(os.getpid())).unlink()
            live = [p for p in users.glob("*") if p.name.isdigit() and _alive(int(p.name))]
            for stale in set(users.glob("*")) - set(live):
                stale.unlink(missing_ok=True)
            owner = self.root / "owner"
            if not live and owner.exists() and owner.read_text() == "pytest":
                self._stop_locked()

    def status(self) -> dict[str, object]:
        return {"dir": str(self.root), "cluster": self.name, "accounting": self.accounting,
                "daemons": self.running(), "node": self.node_state(),
                "config_current": self._config_current(), "env": self.env}


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.services.slurm start|stop|status``."""
    parser = argparse.ArgumentParser(prog="python -m tests.services.slurm",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--no-accounting", action="store_true",
                        help="the cluster without slurmdbd (its own directory and ports)")
    parser.add_argument("--dir", type=Path, help="state directory (default: by mode)")
    parser.add_argument("--wipe", action="store_true", help="stop: remove the directory too")
    args = parser.parse_args(argv)
    accounting = not args.no_accounting
    cluster = SlurmCluster.default(accounting)
    if args.dir is not None:
        cluster = SlurmCluster(args.dir, accounting)
    if args.command == "start":
        try:
            took = cluster.start()
        except (SlurmStartError, subprocess.CalledProcessError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if took == 0.0:
            print("reused the running cluster")
        else:
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in cluster.timings.items())
            print(f"started in {took:.1f} s ({steps})")
        print(f"export SLURM_CONF={cluster.conf}")
    elif args.command == "stop":
        cluster.stop(wipe=args.wipe)
    else:
        print(json.dumps(cluster.status(), indent=2))
        return 0 if cluster.healthy() else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
