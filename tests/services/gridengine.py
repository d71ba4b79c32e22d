"""A real Grid Engine for tests: Debian's Son of Grid Engine 8.1.9, started by hand.

Debian's ``gridengine-master gridengine-exec gridengine-client`` (installed by
``tests/run.sh`` with a debconf preseed, which makes the package create the cell
``default`` under ``/var/lib/gridengine``) never start their daemons here (no
systemd, and the init script's stop is broken), so this module configures the cell
and starts ``sge_qmaster`` and then ``sge_execd`` itself:

- ``host_aliases`` maps the host name to ``localhost``: 127.0.0.1 resolves back to
  ``localhost``, and without the alias commlib refuses every client ("access denied");
- ``min_uid``/``min_gid`` 0 (the tests run as root; otherwise root's jobs sit in Eqw),
  accounting flushed every second (``qacct`` sees a job 1-2 s after it ends);
- the scheduler runs every second (the default, 15 s, would dominate every test);
- a queue ``all.q`` with one slot per core, no load threshold (the machine is shared
  and loaded; with the default ``np_load_avg=1.75`` the queue goes into alarm state),
  ``unix_behavior`` (the script's ``#!`` line picks the shell), the parallel
  environment ``smp`` (``allocation_rule $pe_slots``: all of a job's cores on one host);
- a queue ``light.q`` of 32 slots on the same host, for tests whose jobs mostly sleep
  (the contract suite runs 20 jobs at once on 2 cores; mesobatch's --maxTotalCores
  keeps the count); only jobs that ask for the FORCED resource ``light`` (``-l light``)
  run there, so all.q keeps its meaning for every other job;
- ``h_vmem`` consumable per slot (default 4G: a consumable's default is also the limit
  of jobs that ask for none, and the default 0 gets every such job killed at once) with
  4G per slot of both queues as the host's capacity (it is virtual memory, which jobs
  reserve far more of than they use; the host's memory would hold 5 default jobs), and
  ``mem_free`` consumable per job (``JOB``) with the host's memory as capacity;
  a project ``mesobatch``.

Measured here (2 cores, shared): install 12-50 s (tests/run.sh); first start with the
configuration 5-8 s, a restart 2.5 s, reuse of a running one 0.4 s.

The cell is the system's own (Debian's paths and ports), so there is one Grid Engine
per machine: it stays running for every test worker and later runs. ``ensure_running``
holds a file lock while it checks, configures and starts, so concurrent pytest
workers share one instance; it only changes what differs from the wanted setup.

Command line: ``python -m tests.services.gridengine start|stop|status``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path("/var/lib/gridengine")  #: Debian's SGE_ROOT
CELL = "default"
SPOOL = Path("/var/spool/gridengine")
QMASTER = Path("/usr/sbin/sge_qmaster")
EXECD = Path("/usr/sbin/sge_execd")
CLIENT_BIN = "/usr/bin"  #: qsub, qstat, qacct, qdel, qconf, qhost
PACKAGES = ("gridengine-master", "gridengine-exec", "gridengine-client")
LOCK = Path(tempfile.gettempdir()) / "mesobatch-gridengine.lock"
#: written once the cell has this module's setup; holds a hash of that setup
MARKER = SPOOL / "mesobatch-configured"

QUEUE = "all.q"
#: many slots on few cores: for tests whose jobs mostly sleep
LIGHT_QUEUE = "light.q"
LIGHT_SLOTS = 32
#: a FORCED boolean resource of light.q: only jobs that ask for it (-l light) run there
LIGHT_RESOURCE = "light"
PE = "smp"
PROJECT = "mesobatch"
HOST_GROUP = "@allhosts"
SCHEDULE_INTERVAL = "0:0:1"
#: h_vmem of a job that asks for none, per slot
H_VMEM_DEFAULT = "4G"


def installed() -> bool:
    """Whether the three Debian packages are installed and have created the cell."""
    return (QMASTER.exists() and EXECD.exists() and Path(CLIENT_BIN, "qsub").exists()
            and (ROOT / CELL / "common" / "bootstrap").exists())


def missing_reason() -> str:
    return ("Grid Engine is not installed (tests/run.sh installs it as root: apt-get install "
            + " ".join(PACKAGES) + " with the debconf preseed in tests/run.sh)")


def client_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every Grid Engine client (qsub, qstat, ...) needs."""
    env = dict(os.environ if base is None else base)
    env["SGE_ROOT"] = str(ROOT)
    env["SGE_CELL"] = CELL
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    if CLIENT_BIN not in path.split(os.pathsep):
        path = f"{path}{os.pathsep}{CLIENT_BIN}"
    env["PATH"] = path
    return env


def _daemon_env() -> dict[str, str]:
    # a clean environment: the daemons outlive the test worker that starts them
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SGE_ROOT": str(ROOT), "SGE_CELL": CELL,
            "LANG": "C", "HOME": "/root" if os.geteuid() == 0 else os.environ.get("HOME", "/")}


def host_name() -> str:
    return socket.gethostname()


def run(argv: list[str], *, check: bool = True, timeout: float = 30,
        ) -> subprocess.CompletedProcess[str]:
    """A client command with the cell's environment; raises with its output on failure."""
    env = client_env(_daemon_env())
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                            check=False, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


# -- the daemons ---------------------------------------------------------------------------

def _pid_files(name: str) -> list[Path]:
    if name == "sge_qmaster":
        return [SPOOL / "qmaster" / "qmaster.pid"]
    # execd's spool directory is named as it resolves itself (here "localhost", the first
    # name of 127.0.0.1 in /etc/hosts), not as gethostname() says
    return sorted((SPOOL / "execd").glob("*/execd.pid"))


def _alive(name: str) -> int | None:
    """The daemon's pid if a pid file of it names a live process of that program."""
    for path in _pid_files(name):
        try:
            pid = int(path.read_text().split()[0])
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            continue
        if comm == name:
            return pid
    return None


def _start_daemon(program: Path) -> None:
    # both daemonize: the first process exits once the daemon runs
    log = SPOOL / f"{program.name}.out"
    with open(log, "ab") as out:
        result = subprocess.run([str(program)], env=_daemon_env(), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                check=False, timeout=120)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{program} exited {result.returncode}: " + " / ".join(tail))


def _wait(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"Grid Engine: {what} not ready after {timeout:.0f} s "
                       f"(logs: {SPOOL}/qmaster/messages, {SPOOL}/execd/*/messages)")


def _qmaster_answers() -> bool:
    try:
        return run(["qstat"], check=False, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _queue_up(name: str) -> bool:
    """The host's instance of queue ``name`` reports load and is in no unknown, alarm or
    disabled state."""
    try:
        out = run(["qstat", "-f", "-q", name, "-xml"], check=False, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    if out.returncode != 0:
        return False
    for queue in ET.fromstring(out.stdout).iter("Queue-List"):
        if queue.findtext("name") == f"{name}@{host_name()}":
            state = queue.findtext("state") or ""
            return queue.find("load_avg") is not None and not set(state) & set("uaAdDEs")
    return False


# -- configuration -------------------------------------------------------------------------

def set_attributes(text: str, values: Mapping[str, str]) -> str:
    """A ``qconf -s*`` listing with these attributes replaced (continuation lines too)."""
    lines, out, skip = text.splitlines(), [], False
    for line in lines:
        if skip:
            skip = line.rstrip().endswith("\\")
            continue
        key = line.split(None, 1)[0] if line.strip() else ""
        if key in values:
            out.append(f"{key} {values[key]}")
            skip = line.rstrip().endswith("\\")
        else:
            out.append(line)
    missing = [k for k in values if not re.search(rf"^{re.escape(k)}\s", text, re.M)]
    out += [f"{k} {values[k]}" for k in missing]
    return "\n".join(out) + "\n"


def attributes(text: str) -> dict[str, str]:
    """Attribute -> value of a ``qconf -s*`` listing (continuations joined)."""
    result, key, parts = {}, None, []
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, *parts = line.split(None, 1)
        result[key] = " ".join(" ".join(parts).split())
    return result


def _apply(kind: str, name: str, text: str) -> None:
    """``qconf -M<kind>`` (or ``-A<kind>`` when absent) from a file named after the object."""
    with tempfile.TemporaryDirectory(prefix="mesobatch-ge-") as d:
        # -Mconf takes the configuration's name from the file's name
        path = Path(d) / name.replace("@", "")
        path.write_text(text)
        run(["qconf", f"-{kind}", str(path)])


def _memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


@dataclass(frozen=True)
class Setup:
    """What this module makes of the cell."""

    host: str
    slots: int
    memory: int  #: bytes: the h_vmem and mem_free capacity of the host

    def digest(self) -> str:
        return hashlib.sha256(repr((self, _VERSION)).encode()).hexdigest()[:16]


_VERSION = 3  # bump when the configuration below changes


def _configure_global() -> None:
    conf = run(["qconf", "-sconf"]).stdout
    now = attributes(conf)
    reporting = now.get("reporting_params", "")
    reporting = re.sub(r"flush_time=\S+", "flush_time=00:00:01", reporting)
    want = {"min_uid": "0", "min_gid": "0", "reporting_params": reporting}
    if any(now.get(k) != v for k, v in want.items()):
        _apply("Mconf", "global", set_attributes(conf.split("\n", 1)[1], want))


def _configure_scheduler() -> None:
    conf = run(["qconf", "-ssconf"]).stdout
    if attributes(conf).get("schedule_interval") != SCHEDULE_INTERVAL:
        _apply("Msconf", "sconf", set_attributes(conf, {"schedule_interval": SCHEDULE_INTERVAL}))


def _configure_complexes() -> None:
    text = run(["qconf", "-sc"]).stdout
    # name -> (consumable, default): h_vmem per slot, mem_free per job. A consumable h_vmem
    # is also the limit of jobs that do not ask for it: with the default 0 execd kills
    # every such job at once (failed 37), so it gets a usable default.
    want = {"h_vmem": ("YES", H_VMEM_DEFAULT), "mem_free": ("JOB", "0")}
    out, changed = [], False
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in want and (fields[5], fields[6]) != want[fields[0]]:
            fields[4] = "YES"
            fields[5], fields[6] = want[fields[0]]
            changed = True
            out.append(" ".join(fields))
        else:
            out.append(line)
    if not any(line.split()[:1] == [LIGHT_RESOURCE] for line in out):
        # FORCED: only jobs that ask for it (-l light) run in the queue that has it
        out.insert(-1 if out and out[-1].startswith("#") else len(out),
                   f"{LIGHT_RESOURCE} {LIGHT_RESOURCE} BOOL == FORCED NO FALSE 0")
        changed = True
    if changed:
        _apply("Mc", "complexes", "\n".join(out) + "\n")


def _ensure(kind: str, name: str, show: list[str], text: str, compare: Mapping[str, str]) -> None:
    current = run(show, check=False)
    if current.returncode != 0 or not current.stdout.strip():
        _apply(f"A{kind}", name, text)
    elif any(attributes(current.stdout).get(k) != v for k, v in compare.items()):
        _apply(f"M{kind}", name, text)


def _configure_objects(setup: Setup) -> None:
    host = setup.host
    if host not in run(["qconf", "-ss"], check=False).stdout.split():
        run(["qconf", "-as", host])
    h_vmem = (setup.slots + LIGHT_SLOTS) * 4 * 1024**3
    mem = f"h_vmem={h_vmem},mem_free={setup.memory}"
    exec_host = {"hostname": host, "load_scaling": "NONE", "complex_values": mem,
                 "user_lists": "NONE", "xuser_lists": "NONE", "projects": "NONE",
                 "xprojects": "NONE", "usage_scaling": "NONE", "report_variables": "NONE"}
    _ensure("e", host, ["qconf", "-se", host], _listing(exec_host), {"complex_values": mem})
    pe = {"pe_name": PE, "slots": "9999", "user_lists": "NONE", "xuser_lists": "NONE",
          "start_proc_args": "NONE", "stop_proc_args": "NONE", "allocation_rule": "$pe_slots",
          "control_slaves": "FALSE", "job_is_first_task": "TRUE", "urgency_slots": "min",
          "accounting_summary": "FALSE", "qsort_args": "NONE"}
    _ensure("p", PE, ["qconf", "-sp", PE], _listing(pe), {"allocation_rule": "$pe_slots"})
    project = {"name": PROJECT, "oticket": "0", "fshare": "0", "acl": "NONE", "xacl": "NONE"}
    _ensure("prj", PROJECT, ["qconf", "-sprj", PROJECT], _listing(project), {})
    group = {"group_name": HOST_GROUP, "hostlist": host}
    _ensure("hgrp", HOST_GROUP, ["qconf", "-shgrp", HOST_GROUP], _listing(group),
            {"hostlist": host})
    queue = {"qname": QUEUE, "hostlist": HOST_GROUP, "slots": str(setup.slots),
             "pe_list": PE, "load_thresholds": "NONE", "shell_start_mode": "unix_behavior",
             "tmpdir": "/tmp"}
    template = run(["qconf", "-sq"]).stdout  # the template every queue starts from
    _ensure("q", QUEUE, ["qconf", "-sq", QUEUE], set_attributes(template, queue),
            {k: v for k, v in queue.items() if k != "qname"})
    light = {**queue, "qname": LIGHT_QUEUE, "slots": str(LIGHT_SLOTS),
             "complex_values": f"{LIGHT_RESOURCE}=TRUE"}
    _ensure("q", LIGHT_QUEUE, ["qconf", "-sq", LIGHT_QUEUE], set_attributes(template, light),
            {k: v for k, v in light.items() if k != "qname"})


def _listing(values: Mapping[str, str]) -> str:
    return "".join(f"{k} {v}\n" for k, v in values.items())


# -- the instance --------------------------------------------------------------------------

@dataclass(frozen=True)
class GridEngine:
    """A running Grid Engine: what clients need to reach it, and its setup."""

    setup: Setup
    started: bool  #: this call started a daemon (False: it was running already)
    seconds: float  #: how long ensure_running took
    queue: str = QUEUE
    light_queue: str = LIGHT_QUEUE
    pe: str = PE
    project: str = PROJECT
    root: str = str(ROOT)
    cell: str = CELL
    env: dict[str, str] = field(default_factory=client_env)

    @property
    def host(self) -> str:
        return self.setup.host


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_running(timeout: float = 120) -> GridEngine:
    """Start (or reuse) the machine's Grid Engine with this module's setup."""
    if not installed():
        raise RuntimeError(missing_reason())
    t0 = time.monotonic()
    host = host_name()
    setup = Setup(host=host, slots=os.cpu_count() or 1, memory=_memory())
    started = False
    with _locked():
        # 127.0.0.1 resolves back to "localhost"; without the alias commlib says "access denied"
        aliases = ROOT / CELL / "common" / "host_aliases"
        if host != "localhost" and not _has_alias(aliases, host):
            with open(aliases, "a") as f:
                f.write(f"{host} localhost\n")
        master = (ROOT / CELL / "common" / "act_qmaster").read_text().strip()
        if master != host:
            raise RuntimeError(f"Grid Engine's cell names master {master!r}, this host is "
                               f"{host!r}: reinstall with the preseed in tests/run.sh")
        if _alive("sge_qmaster") is None:
            _start_daemon(QMASTER)
            started = True
        _wait("sge_qmaster", _qmaster_answers, timeout)
        configured = MARKER.exists() and MARKER.read_text().strip() == setup.digest()
        if not configured:
            # execd reads min_uid and the host's settings when it starts
            _configure_global()
            _configure_scheduler()
            _configure_complexes()
            _configure_objects(setup)
        if _alive("sge_execd") is None:
            _start_daemon(EXECD)
            started = True
        for name in (QUEUE, LIGHT_QUEUE):
            _wait(f"queue {name}@{host}", functools.partial(_queue_up, name), timeout)
        if not configured:
            MARKER.write_text(setup.digest() + "\n")
    return GridEngine(setup=setup, started=started, seconds=time.monotonic() - t0)


def _has_alias(path: Path, host: str) -> bool:
    try:
        return any(line.split()[:1] == [host] for line in path.read_text().splitlines())
    except OSError:
        return False


def stop(timeout: float = 60) -> list[str]:
    """Stop execd, then qmaster (SIGTERM, then wait); the names of those stopped."""
    stopped = []
    with _locked():
        for name in ("sge_execd", "sge_qmaster"):
            pid = _alive(name)
            if pid is None:
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(name) == pid and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(name) == pid:
                raise RuntimeError(f"{name} (pid {pid}) did not stop in {timeout:.0f} s")
            stopped.append(name)
    return stopped


def status() -> str:
    """One line per daemon, then the queue instance as qstat -f shows it."""
    lines = []
    for name in ("sge_qmaster", "sge_execd"):
        pid = _alive(name)
        lines.append(f"{name}: " + (f"running (pid {pid})" if pid else "not running"))
    if _alive("sge_qmaster") is not None:
        out = run(["qstat", "-f", "-q", QUEUE], check=False)
        lines.append((out.stdout or out.stderr).rstrip())
    return "\n".join(lines)


# -- pytest --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def gridengine() -> GridEngine:
    """The machine's real Grid Engine, running; skipped (with why) when not installed."""
    if not installed():
        pytest.skip(missing_reason())
    return ensure_running()


@pytest.fixture
def gridengine_env(gridengine: GridEngine, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The client environment, also set in this test's os.environ."""
    for key in ("SGE_ROOT", "SGE_CELL", "PATH"):
        monkeypatch.setenv(key, gridengine.env[key])
    return dict(gridengine.env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.services.gridengine",
                                     description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    if args.command == "start":
        if not installed():
            print(missing_reason(), file=sys.stderr)
            return 1
        ge = ensure_running()
        how = "started" if ge.started else "already running"
        print(f"Grid Engine {how} in {ge.seconds:.2f} s on {ge.host}: queue {ge.queue} "
              f"({ge.setup.slots} slots), pe {ge.pe}, project {ge.project}")
        print(f"export SGE_ROOT={ge.root} SGE_CELL={ge.cell}")
    elif args.command == "stop":
        stopped = stop()
        print("stopped " + ", ".join(stopped) if stopped else "nothing was running")
    else:
        print(status())
    return 0


if __name__ == "__main__":
    sys.exit(main())

