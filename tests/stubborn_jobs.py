"""Jobs that resist being stopped (they ignore SIGTERM and fork children that do too),
and how to tell whether any of their processes still runs. Each job appends the pids of
its shell and of its two children to ``<dir>/<tag>.pids`` before it waits."""

from __future__ import annotations

import shlex
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
