"""The fake cluster's state: one JSON file, read and written under an fcntl lock.

Every command of a fake opens the store, does its work inside ``with store.locked() as
state`` and leaves. Job records are plain dicts so that each system can keep its own
attributes under ``job["extra"]``; the generic keys are listed in ``new_job``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Job = dict[str, Any]
State = dict[str, Any]

PENDING = "pending"
HELD = "held"
RUNNING = "running"
FINISHED = "finished"


def env_float(name: str, default: float) -> float:
    """A number from the environment, or the default; a bad value is an error naming it."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r}: expected a number") from None


def hostname() -> str:
    return socket.gethostname().split(".")[0]


class Store:
    """The state directory of one fake cluster."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "state.json"
        self.lock_path = self.dir / "state.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[State]:
        """The state, exclusively; written back (atomically) when the block changed it."""
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                text = self._text()
                state = self._parse(text)
                yield state
                after = json.dumps(state)
                if after != text:
                    tmp = self.path.with_suffix(f".tmp{os.getpid()}")
                    tmp.write_text(after)
                    os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> State:
        """A consistent snapshot without the lock (writers replace the file atomically)."""
        return self._parse(self._text())

    def _text(self) -> str:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return ""

    @staticmethod
    def _parse(text: str) -> State:
        if not text:
            return {"next_id": 1, "jobs": {}, "history": {}}
        state: State = json.loads(text)
        return state

    def write_env(self, name: str, env: dict[str, str]) -> str:
        """Keep a submission's environment once, beside the state (not in every record)."""
        spool = self.dir / "spool"
        spool.mkdir(exist_ok=True)
        path = spool / f"{name}.env.json"
        path.write_text(json.dumps(env))
        return str(path)


def new_job(
    job_id: str,
    *,
    name: str,
    command: list[str],
    cwd: str,
    env: dict[str, str],
    env_file: str | None = None,
    stdout: str | None = None,
    stderr: str | None = None,
    cores: int = 1,
    gpus: int = 0,
    mem_request: int = 0,
    mem_limit: int | None = None,
    run_limit: float | None = None,
    held: bool = False,
    kill_signals: list[str] | None = None,
    kill_interval: float = 1.0,
    extra: dict[str, Any] | None = None,
) -> Job:
    """A job record with every generic key the runner and the commands use."""
    return {
        "id": job_id,
        "name": name,
        "user": os.environ.get("USER") or os.environ.get("LOGNAME") or "root",
        "command": command,  #: argv run by the runner
        "cwd": cwd,
        "env": env,  #: on top of the submission's environment in env_file
        "env_file": env_file,
        "stdout": stdout,
        "stderr": stderr,  #: None: joined with stdout
        "cores": cores,
        "gpus": gpus,
        "mem_request": mem_request,  #: bytes the scheduler sets aside (rusage, select mem)
        "mem_limit": mem_limit,  #: bytes, enforced by the runner's watchdog
        "run_limit": run_limit,  #: seconds of run time, enforced by the runner
        "state": HELD if held else PENDING,
        "submit_time": time.time(),
        "start_time": None,
        "end_time": None,
        "host": None,
        "runner_pid": None,
        "pid": None,
        "returncode": None,  #: exit status, or -signal
        "kill_reason": None,  #: owner, memlimit, runlimit, admin, hold, ...
        "kill_requested": None,
        "kill_signals": kill_signals or ["SIGTERM", "SIGKILL"],
        "kill_interval": kill_interval,
        "max_rss": 0,
        "starts": 0,
        "extra": extra or {},
    }


class Node:
    """The one execution host of a fake cluster: what running jobs may use at once."""

    def __init__(self, prefix: str) -> None:
        self.name = os.environ.get(f"{prefix}_HOST") or hostname()
        self.cores = int(env_float(f"{prefix}_NCPUS", float(max(os.cpu_count() or 1, 64))))
        self.gpus = int(env_float(f"{prefix}_NGPUS", 0))
        self.memory = int(env_float(f"{prefix}_MEMORY", float(_total_memory())))

    def fits(self, state: State, job: Job) -> bool:
        """Whether ``job`` can start next to the jobs running now."""
        running = [j for j in state["jobs"].values() if j["state"] == RUNNING]
        return (
            sum(int(j["cores"]) for j in running) + int(job["cores"]) <= self.cores
            and sum(int(j.get("gpus", 0)) for j in running) + int(job.get("gpus", 0)) <= self.gpus
            and sum(int(j.get("mem_request", 0)) for j in running) + int(job.get("mem_request", 0))
            <= self.memory
        )

    def can_ever_fit(self, job: Job) -> bool:
        return (
            int(job["cores"]) <= self.cores
            and int(job.get("gpus", 0)) <= self.gpus
            and int(job.get("mem_request", 0)) <= self.memory
        )


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 16 << 30


def purge(state: State, keep: float, *, now: float | None = None) -> None:
    """Forget finished jobs that ended more than ``keep`` seconds ago."""
    now = time.time() if now is None else now
    for job_id in [
        k
        for k, j in state["jobs"].items()
        if j["state"] == FINISHED and j["end_time"] is not None and now - j["end_time"] > keep
    ]:
        del state["jobs"][job_id]
