"""Jobs that resist being stopped (they ignore SIGTERM and fork children that do too),
and how to tell whether any of their processes still runs. Each job appends the pids of
its shell and of its two children to ``<dir>/<tag>.pids`` before it waits."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

#: children both in the background of the job's shell: a subshell and a new shell
_BODY = ("trap '' TERM; (trap '' TERM; sleep {secs}) & echo $! >> {out}; "
         "sh -c 'trap \"\" TERM; sleep {secs}' & echo $! >> {out}; echo $$ >> {out}; wait")


def stubborn(directory: Path, tag: str, secs: float = 300) -> str:
    """The command of a job that ignores SIGTERM, forks two children and runs ``secs``."""
    return _BODY.format(secs=secs, out=shlex.quote(str(directory / f"{tag}.pids")))


def pids_of(directory: Path, tag: str | None = None) -> list[int]:
    """Pids recorded by the job ``tag`` (every job's without a tag)."""
    files = [directory / f"{tag}.pids"] if tag else sorted(directory.glob("*.pids"))
    return [int(line) for f in files if f.exists() for line in f.read_text().split()]


def started(directory: Path, tag: str) -> bool:
    """Has job ``tag`` recorded its three processes?"""
    return len(pids_of(directory, tag)) >= 3


def running(pid: int) -> bool:
    """Does ``pid`` run (a zombie waiting for its reaper does not)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def still_running(pids: list[int]) -> list[int]:
    return [p for p in pids if running(p)]


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` s for every pid to stop running; those still running."""
    deadline = time.monotonic() + timeout
    while (left := still_running(pids)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return left
