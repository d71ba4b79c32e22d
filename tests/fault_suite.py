"""The fault suite (issue 10): runs of short jobs on the Mesos double, with faults
injected at random moments, counting for every job how often it was reported, whether
what was reported ever ran, and whether a job reported LOST still runs 2 s later.

The cluster: a real ZooKeeper; three double processes with masters only, then one with
the agents (so it leads last: killing a leader never kills agents). The scheduler runs
in a child process of its own (``python -m tests.fault_suite --child``), so it can be
killed with SIGKILL and started again with its framework id; the harness hands it jobs
and reads its results. A job reported LOST (or PARTITION) is issued again under a new
token, as Toil would; so are the jobs a killed scheduler never reported.

Each job is one of: ``true``, ``sleep 0.1..1``, ``exit 3``, or a job that ignores
SIGTERM and forks two children that do too (tests/stubborn_jobs.py), and notes each of
its starts in ``<dir>/<token>.starts``; its processes' pids in ``<token>.pids``.

Used by bench/faults.py (1,000 jobs per kind) and tests/scheduler/mesos/test_fault_suite.py
(100 jobs per kind).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import random
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.doubles.mesos.process import ControlClient, DoubleProcess, wait_for_leader
from tests.processes import still_running
from tests.stubborn_jobs import pids_of, stubborn

KINDS = ("executor kill -9", "agent restart", "agent lost for good", "leading master killed",
         "scheduler stream dropped", "scheduler killed and restarted", "all mixed")
#: faults injected per run of each kind (agents lost for good: 2 of the 4 agents)
FAULTS = {"agent lost for good": 2, "leading master killed": 2, "all mixed": 6}
DEFAULT_FAULTS = 3
LOST_REASONS = ("LOST", "PARTITION")
AGENTS = 4
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- jobs
def job_command(directory: Path, token: str, rng: random.Random) -> str:
    """One job of the mix, noting its start; its processes carry FAULT_TOKEN=<token>."""
    start = f"echo s >> {shlex.quote(str(directory / f'{token}.starts'))}; "
    pids = shlex.quote(str(directory / f"{token}.pids"))
    kind = rng.randrange(4)
    if kind == 0:
        body = f"{start}echo $$ >> {pids}; true"
    elif kind == 1:
        body = f"{start}echo $$ >> {pids}; sleep {rng.uniform(0.1, 1):.2f}"
    elif kind == 2:
        body = f"{start}echo $$ >> {pids}; exit 3"
    else:
        body = start + stubborn(directory, token, round(rng.uniform(0.5, 1.5), 2))
    # in the environment every process of the job starts with (its shell's included)
    return f"exec env FAULT_TOKEN={token} /bin/sh -c {shlex.quote(body)}"


def job_processes(directory: Path, token: str) -> list[int]:
    """The recorded processes of ``token`` that still run, checked by their FAULT_TOKEN
    (a recorded pid may have been given to another process since)."""
    mine = f"FAULT_TOKEN={token}".encode()
    out = []
    for pid in still_running(pids_of(directory, token)):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if mine in environ.split(b"\0"):
            out.append(pid)
    return out


def starts(directory: Path, token: str) -> int:
    try:
        return len((directory / f"{token}.starts").read_text().split())
    except OSError:
        return 0


# --------------------------------------------------------------------------- the scheduler
def child_main(argv: list[str]) -> int:
    """The scheduler process: jobs in on stdin ({"token", "command"} lines), results
    out on stdout ({"token", "exit", "reason", "at"} lines); first {"framework_id"}."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--framework-id", default=None)
    args = parser.parse_args(argv)
    import mesobatch

    options: dict[str, Any] = {"mesosMaster": args.master, "killGracePeriod": 1}
    if args.framework_id:
        options["mesosFrameworkId"] = args.framework_id
    bs = mesobatch.batch_system("mesos", **options)
    desc = mesobatch.JobDescription(cores=0.25, memory=2**25, disk=2**25)
    tokens: dict[int, str] = {}
    lock = threading.Lock()
    out_lock = threading.Lock()

    def emit(record: dict[str, Any]) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()

    def read_jobs() -> None:
        for line in sys.stdin:
            job = json.loads(line)
            with lock:
                tokens[bs.issueBatchJob(job["command"], desc)] = job["token"]

    threading.Thread(target=read_jobs, daemon=True).start()
    driver = bs._backend.driver  # type: ignore[attr-defined]
    while driver.framework_id is None:
        time.sleep(0.01)
    emit({"framework_id": driver.framework_id})
    while True:
        info = bs.getUpdatedBatchJob(1)
        if info is None:
            continue
        with lock:
            token = tokens.get(info.jobID)
        reason = info.exitReason.name if info.exitReason is not None else "?"
        emit({"token": token, "exit": info.exitStatus, "reason": reason, "at": time.time()})


class Scheduler:
    """The scheduler child process, from the harness's side."""

    def __init__(self, master: str, framework_id: str | None,
                 on_result: Callable[[dict[str, Any]], None]) -> None:
        argv = [sys.executable, "-m", "tests.fault_suite", "--child", "--master", master]
        if framework_id:
            argv += ["--framework-id", framework_id]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        first = json.loads(self.proc.stdout.readline() or "{}")
        if "framework_id" not in first:
            self.kill()
            raise RuntimeError("the scheduler did not subscribe")
        self.framework_id: str = first["framework_id"]
        self._reader = threading.Thread(target=self._read, args=(on_result,), daemon=True)
        self._reader.start()

    def _read(self, on_result: Callable[[dict[str, Any]], None]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            on_result(json.loads(line))

    def issue(self, token: str, command: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.proc.stdin.write(json.dumps({"token": token, "command": command}) + "\n")
            self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5)


# --------------------------------------------------------------------------- the cluster
class Cluster:
    """ZooKeeper, three master-only doubles, then one with the agents."""

    def __init__(self, zk_url: str) -> None:
        # Mesos gives up on a silent agent after 8 s (75 s by default): longer than an
        # agent restart takes here, as 75 s is on a real cluster
        common = ("--zk", zk_url, "--zk-session-timeout", "2", "--agent-removal-timeout", "8",
                  "--status-update-retry-base", "2", "--executor-shutdown-grace-period", "2")
        self.url = zk_url
        self.masters: list[DoubleProcess] = []
        for _ in range(3):
            self.masters.append(DoubleProcess(*common, agents=0).start())
            wait_for_leader(self.masters)
        self.agents = DoubleProcess(*common, "--agent-resources", "cpus:2;mem:4096;disk:10000",
                                    agents=AGENTS).start()
        self.all = [*self.masters, self.agents]
        # faults can take a while on a loaded machine: more than the default 30 s
        self.control = ControlClient(self.agents.master_address, timeout=180)
        self.lost: set[int] = set()  # agents lost for good

    def leader(self) -> DoubleProcess:
        return wait_for_leader(self.all, timeout=60)

    def stop(self) -> None:
        for p in self.all:
            p.stop()


# --------------------------------------------------------------------------- one run
@dataclass
class Token:
    job: int  #: the logical job
    issued_at: float
    reports: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResult:
    kind: str
    jobs: int
    faults: int = 0
    reported_once: int = 0
    never_reported: int = 0
    reported_twice: int = 0
    reported_never_started: int = 0
    #: LOST reports of jobs killed before their first shell line ran (their process had
    #: started: the executor reported RUNNING; ones that had not are queued again)
    lost_before_start: int = 0
    started_twice: int = 0
    lost_reports: int = 0
    lost_still_running: int = 0
    orphans_of_killed_scheduler: int = 0
    last_fault_to_last_report: float = 0.0
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)


class Run:
    def __init__(self, kind: str, jobs: int, cluster: Cluster, directory: Path,
                 seed: int) -> None:
        self.kind, self.jobs, self.cluster, self.directory = kind, jobs, cluster, directory
        self.rng = random.Random(seed)
        self.lock = threading.Condition()
        self.tokens: dict[str, Token] = {}
        self.done: dict[int, int] = {}  # logical job -> final (non-LOST) reports
        self.checks: list[tuple[float, str, str]] = []  # (due, token, what) orphan checks
        self.result = RunResult(kind, jobs)
        self.last_fault = 0.0
        self.last_report = 0.0
        self.scheduler: Scheduler | None = None
        self.framework_id: str | None = None

    # ------------------------------------------------------------------ jobs
    def issue(self, job: int) -> None:
        token = f"j{job}-{len(self.tokens)}"
        with self.lock:
            self.tokens[token] = Token(job, time.time())
        assert self.scheduler is not None
        self.scheduler.issue(token, job_command(self.directory, token, self.rng))

    def on_result(self, record: dict[str, Any]) -> None:
        with self.lock:
            token = self.tokens.get(record["token"])
            if token is None:  # not ours: a bug in the harness or the scheduler
                self.result.notes.append(f"unknown token reported: {record}")
                return
            token.reports.append(record)
            self.last_report = max(self.last_report, record["at"])
            if record["reason"] in LOST_REASONS:
                self.checks.append((record["at"] + 2.0, record["token"], "lost"))
                reissue = len(token.reports) == 1
            else:
                self.done[token.job] = self.done.get(token.job, 0) + 1
                reissue = False
            self.lock.notify_all()
        if reissue:
            self.issue(token.job)

    def final_count(self) -> int:
        with self.lock:
            return len(self.done)

    # ------------------------------------------------------------------ faults
    def inject(self, fault: str) -> None:
        c = self.cluster
        agents = c.control
        live = [i for i in range(AGENTS) if i not in c.lost]
        if fault == "executor kill -9":
            agents.kill_random_executor(agent=self.rng.choice(live))
        elif fault == "agent restart":
            agents.restart_agent(self.rng.choice(live), downtime=1.0, wait=True)
        elif fault == "agent lost for good":
            if len(live) > 2:  # keep two agents to run the rest
                which = self.rng.choice(live)
                c.lost.add(which)
                agents.lose_agent(which, wait=True)
        elif fault == "leading master killed":
            leader = c.leader()
            if leader is not c.agents:  # the agents' own master leads last: spared
                assert leader.control is not None
                leader.control.kill_process()
                leader.stop()
        elif fault == "scheduler stream dropped":
            control = c.leader().control
            assert control is not None
            control.drop_subscription(self.framework_id)
        elif fault == "scheduler killed and restarted":
            self.restart_scheduler()
        else:
            raise ValueError(f"unknown fault {fault!r}")

    def restart_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.kill()
        killed_at = time.time()
        with self.lock:  # what the dead scheduler never reported is issued again
            pending = {t.job for t in self.tokens.values()
                       if not t.reports and t.job not in self.done}
            abandoned = [name for name, t in self.tokens.items() if not t.reports]
            for name in abandoned:  # killed by the new run's reconciliation, grace 1 s
                self.checks.append((killed_at + 10.0, name, "abandoned"))
                self.tokens[name].reports.append({"reason": "ABANDONED", "at": killed_at})
        self.scheduler = Scheduler(self.cluster.url, self.framework_id, self.on_result)
        for job in sorted(pending):
            self.issue(job)

    def fault_kinds(self) -> list[str]:
        count = FAULTS.get(self.kind, DEFAULT_FAULTS)
        if self.kind != "all mixed":
            return [self.kind] * count
        mixed = list(KINDS[:-1])
        self.rng.shuffle(mixed)
        return mixed[:count]

    # ------------------------------------------------------------------ the run
    def run(self, timeout: float) -> RunResult:
        try:
            return self._run(timeout)
        finally:
            if self.scheduler is not None:
                self.scheduler.kill()

    def _done_at_least(self, count: int) -> bool:
        return len(self.done) >= count

    def _run(self, timeout: float) -> RunResult:
        started = time.monotonic()
        self.scheduler = Scheduler(self.cluster.url, None, self.on_result)
        self.framework_id = self.scheduler.framework_id
        for job in range(self.jobs):
            self.issue(job)
        faults = self.fault_kinds()
        # at random moments: when so many jobs are done
        moments = sorted(int(self.jobs * self.rng.uniform(0.1, 0.7)) for _ in faults)
        for fault, at in zip(faults, moments, strict=True):
            with self.lock:
                self.lock.wait_for(functools.partial(self._done_at_least, at),
                                   timeout=max(1.0, timeout - (time.monotonic() - started)))
            self.last_fault = time.time()
            self.inject(fault)
            self.result.faults += 1
        with self.lock:
            self.lock.wait_for(lambda: len(self.done) >= self.jobs,
                               timeout=max(1.0, timeout - (time.monotonic() - started)))
        time.sleep(2.0)  # any late (double) report
        self.result.elapsed = time.monotonic() - started
        self._check_orphans()
        self._count()
        return self.result

    def _check_orphans(self) -> None:
        with self.lock:
            checks = sorted(self.checks)
        for due, name, what in checks:
            time.sleep(max(0.0, due - time.time()))
            if job_processes(self.directory, name):
                if what == "lost":
                    self.result.lost_still_running += 1
                else:
                    self.result.orphans_of_killed_scheduler += 1

    def _count(self) -> None:
        r = self.result
        with self.lock:
            for job in range(self.jobs):
                n = self.done.get(job, 0)
                r.reported_once += n == 1
                r.never_reported += n == 0
                r.reported_twice += n > 1
            for name, t in self.tokens.items():
                ran = starts(self.directory, name)
                r.started_twice += ran > 1
                for report in t.reports:
                    if report["reason"] in LOST_REASONS:
                        r.lost_reports += 1
                        r.lost_before_start += ran == 0
                    elif report["reason"] != "ABANDONED" and ran == 0:
                        r.reported_never_started += 1
                r.reported_twice += sum(1 for x in t.reports
                                        if x["reason"] != "ABANDONED") > 1
        if self.last_fault:
            r.last_fault_to_last_report = max(0.0, self.last_report - self.last_fault)


@contextlib.contextmanager
def zookeeper() -> Iterator[str]:
    from tests.services.zookeeper import ZooKeeper

    with ZooKeeper.standalone(tick_ms=200) as zk:
        yield zk.url("/mesos")


def run_kind(kind: str, jobs: int, directory: Path, seed: int = 0,
             timeout: float = 600) -> RunResult:
    """One run of ``jobs`` jobs with faults of ``kind`` on a fresh cluster."""
    with zookeeper() as url:
        cluster = Cluster(url)
        try:
            return Run(kind, jobs, cluster, directory, seed).run(timeout)
        finally:
            cluster.stop()


TABLE = [("faults", "faults"), ("reported_once", "once"), ("never_reported", "lost"),
         ("reported_twice", "twice"), ("reported_never_started", "never ran"),
         ("started_twice", "ran twice"), ("lost_reports", "LOST"),
         ("lost_before_start", "LOST before line 1"), ("lost_still_running", "LOST alive 2s"),
         ("orphans_of_killed_scheduler", "orphans 10s"),
         ("last_fault_to_last_report", "fault->last s"), ("elapsed", "run s")]


def table(results: list[RunResult]) -> str:
    widths = [len(t) + 2 for _, t in TABLE]
    head = f"{'fault kind':31}{'jobs':>6}" + "".join(
        f"{t:>{w}}" for (_, t), w in zip(TABLE, widths, strict=True))
    lines = [head]
    for r in results:
        cells = []
        for (attr, _), w in zip(TABLE, widths, strict=True):
            v = getattr(r, attr)
            cells.append(f"{v:{w}.1f}" if isinstance(v, float) else f"{v:{w}d}")
        lines.append(f"{r.kind:31}{r.jobs:6d}" + "".join(cells))
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child_main(sys.argv[2:]))
    sys.exit("usage: python -m tests.fault_suite --child --master URL [--framework-id ID]")
