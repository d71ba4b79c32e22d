"""Warm starts: the runner's fork servers (forkserver.py), one per WarmStart key, and
the tasks they forked.

A server is started on a key's first use and forks that key's tasks once it has
loaded; until then, and for good once it failed or ended, they start cold. A forked
task is the server's child: the server reaps it and reports its wait status, with what
it used, on a pipe the first reaper watches, maybe before the runner has learnt the
task's pid (so such an end waits here until the task is claimed). A server that ends takes its tasks
with it: nobody could reap or report them any more.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .forkserver import ForkedExit, ForkServer, ForkServerError
from .process_groups import signal_group
from .process_spec import ProcessSpec, TaskExit, WarmStart

log = logging.getLogger(__name__)

#: (task id, how it ended) of a forked task that ended
Ended = tuple[str, ForkedExit]


class Watcher(Protocol):
    """Where a server's exit pipe is watched (Reapers)."""

    def watch(self, fd: int, handler: Callable[[], list[TaskExit]]) -> None: ...
    def unwatch(self, fd: int) -> None: ...


@dataclass(slots=True)
class _Served:
    server: ForkServer
    tasks: dict[int, str] = field(default_factory=dict)  # pid -> task id
    unclaimed: dict[int, ForkedExit] = field(default_factory=dict)  # ends seen first


class WarmStarts:
    """Fork servers by key; ``ended`` turns the ends a server reports into task exits
    (it runs in the reaper thread that read them)."""

    def __init__(self, watcher: Watcher,
                 ended: Callable[[list[Ended]], list[TaskExit]]) -> None:
        self._watcher = watcher
        self._ended = ended
        self._lock = threading.Lock()
        self._servers: dict[str, _Served] = {}
        self._off: set[str] = set()  # keys whose server failed: their tasks start cold
        self._closed = False

    def fork(self, spec: ProcessSpec) -> int | None:
        """Fork ``spec`` from its server: the pid (a group leader), or None to start it
        cold (the server is still loading, or failed). Claim the pid next."""
        warm = spec.warm
        assert warm is not None
        with self._lock:
            if self._closed or warm.key in self._off:
                return None
            served = self._servers.get(warm.key)
        if served is None:
            self._start_server(warm)
            return None
        server = served.server
        if not server.is_ready():
            return None
        task = {"env": dict(spec.env), "cwd": spec.cwd, "stdout": spec.stdout,
                "stderr": spec.stderr}
        try:
            return server.fork(task)
        except (ForkServerError, OSError) as e:
            log.warning("%s; such tasks start cold from now on", e)
            with self._lock:
                self._off.add(warm.key)
            return None

    def claim(self, key: str, pid: int, task_id: str) -> ForkedExit | None:
        """``pid``, forked by ``key``'s server, is ``task_id``: its end if it has ended
        already, else None (its end comes through ``ended``)."""
        with self._lock:
            served = self._servers.get(key)
            if served is None:  # its server is gone: nobody can reap or report it
                signal_group(pid, signal.SIGKILL)
                return ForkedExit(pid, int(signal.SIGKILL))
            ended = served.unclaimed.pop(pid, None)
            if ended is None:
                served.tasks[pid] = task_id
            return ended

    def server(self, key: str) -> ForkServer | None:
        """``key``'s running server, if any."""
        with self._lock:
            served = self._servers.get(key)
        return served.server if served is not None else None

    def close(self) -> None:
        """Stop every server (their tasks should be over: a server kills what is left)."""
        with self._lock:
            self._closed = True
            servers = [s.server for s in self._servers.values()]
            self._servers.clear()
        for server in servers:
            server.close()

    def _start_server(self, warm: WarmStart) -> None:
        try:
            server = ForkServer(warm.key, warm.argv, warm.env)
        except OSError as e:
            log.warning("cannot start a fork server for %s (%s); its tasks start cold",
                        warm.key, e)
            with self._lock:
                self._off.add(warm.key)
            return
        with self._lock:
            if not self._closed and warm.key not in self._servers:
                served = self._servers[warm.key] = _Served(server)
                self._watcher.watch(server.exits_fd,
                                    lambda: self._ended(self._collect(served)))
                return
        server.close()

    def _collect(self, served: _Served) -> list[Ended]:
        """The ends a server reported; if it is gone, its tasks go with it."""
        server = served.server
        exits, gone = server.read_exits()
        out: list[Ended] = []
        with self._lock:
            for ex in exits:
                task_id = served.tasks.pop(ex.pid, None)
                if task_id is None:
                    served.unclaimed[ex.pid] = ex
                else:
                    out.append((task_id, ex))
            if gone:
                log.warning("the %s fork server ended; such tasks start cold from now on",
                            server.key)
                self._off.add(server.key)
                if self._servers.get(server.key) is served:
                    del self._servers[server.key]
                self._watcher.unwatch(server.exits_fd)
                for pid, task_id in served.tasks.items():
                    signal_group(pid, signal.SIGKILL)
                    out.append((task_id, ForkedExit(pid, int(signal.SIGKILL))))
                served.tasks.clear()
        if gone:
            server.close(timeout=0.5)
        return out
