"""What tasks' processes use at once, sampled: every so often the resident memory of
each running task's process group is summed from /proc. The sums give each task's
peak over all its processes together (the kernel's wait4 peak is the largest single
process's, and it is spoilt for the first one; see runner.py), and a task over its
memory limit (--enforceMemory) is reported to the runner, which kills it.

The watchdog limits where the kernel cannot (cgroups.py): cgroups need a delegated,
writable cgroup v2 hierarchy with the memory controller, which cgroup v1 hosts,
containers and agents without systemd delegation do not give; /proc is always there.
The price is the interval: a job may overshoot for up to that long, and a job shorter
than it is not sampled at all.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def parse_stat(data: bytes) -> tuple[int, int]:
    """(process group, resident pages) from a /proc/PID/stat line. The command name
    comes in parentheses and may hold anything, so fields are counted after the last
    ')': the state is field 3, the group field 5, the resident set field 24."""
    rest = data[data.rfind(b")") + 2:].split()
    return int(rest[2]), int(rest[21])


def group_memory(pgids: set[int], proc: str = "/proc") -> dict[int, int]:
    """Resident bytes of all the processes of each group, in one pass over ``proc``."""
    used = dict.fromkeys(pgids, 0)
    try:
        entries = os.listdir(proc)
    except OSError:
        return used
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as f:
                pgrp, pages = parse_stat(f.read())
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not a process
            continue
        if pgrp in used:
            used[pgrp] += pages * PAGE_SIZE
    return used


@dataclass(slots=True)
class _Watched:
    pgid: int
    limit: int | None
    peak: int = 0
    over: bool = False


class MemoryWatch:
    """One thread that samples the watched tasks while there are any: every
    ``interval`` seconds, every ``limit_interval`` while one has a limit; it calls
    ``on_over(task_id, used_bytes)`` once for a task over its limit (from its thread)."""

    def __init__(self, on_over: Callable[[str, int], None], interval: float = 1.0,
                 limit_interval: float = 0.2) -> None:
        self._on_over = on_over
        self.interval = interval
        self.limit_interval = limit_interval
        self._lock = threading.Lock()
        self._tasks: dict[str, _Watched] = {}
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._idle = False  # the thread waits for a task to watch
        self._thread: threading.Thread | None = None

    def watch(self, task_id: str, pgid: int, limit: int | None) -> None:
        with self._lock:
            if self._closed:
                return
            # woken only out of its idle wait, or to sample more often: a wake per
            # task would make it sample at every start
            wake = self._idle or (limit is not None and not any(
                w.limit is not None for w in self._tasks.values()))
            self._tasks[task_id] = _Watched(pgid, limit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mesobatch-memory",
                                                daemon=True)
                self._thread.start()
            if wake:
                self._wake.notify()

    def forget(self, task_id: str) -> int | None:
        """Stop watching; the peak seen (None: never watched, or never sampled)."""
        with self._lock:
            watched = self._tasks.pop(task_id, None)
        return watched.peak or None if watched is not None else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=2.0)

    def sample(self) -> None:
        """One look at every watched task (the thread's turn; tests call it directly)."""
        with self._lock:
            tasks = dict(self._tasks)
        if not tasks:
            return
        used = group_memory({w.pgid for w in tasks.values()})
        over = []
        with self._lock:
            for task_id, w in tasks.items():
                amount = used.get(w.pgid, 0)
                w.peak = max(w.peak, amount)
                if (w.limit is not None and amount > w.limit and not w.over
                        and task_id in self._tasks):
                    w.over = True
                    over.append((task_id, amount))
        for task_id, amount in over:
            try:
                self._on_over(task_id, amount)
            except Exception:  # the watch must go on for the other tasks
                log.exception("memory limit of task %s", task_id)

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._idle = True
                while not self._tasks and not self._closed:
                    self._wake.wait()
                self._idle = False
                # the first look an interval after the task came: shorter jobs are
                # not sampled (a scan per job would cost more than such a job)
                limited = any(w.limit is not None for w in self._tasks.values())
                if not self._closed:
                    self._wake.wait(self.limit_interval if limited else self.interval)
                if self._closed:
                    return
            self.sample()
