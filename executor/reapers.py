"""Reaper threads: each waits in an epoll set of its own for the children it watches
(through pidfds) to end, and hands what their ends yield to ``report``.

A thousand running tasks cost one thread per reaper, and a reaper never takes other
code's children. More reapers let one task's end be handled while another reaper waits
for the child it started to exec: a child goes to the reaper watching fewest (the
calling reaper's own on a tie), so the reaper that handled a task's end watches the
next task it starts. The first reaper also watches further descriptors (fork servers'
exit pipes), reports what was posted to it, and wakes for the owner's next deadline.
Without pidfds (not Linux) one thread per child waits for it instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")

HAVE_PIDFD = hasattr(os, "pidfd_open") and sys.platform.startswith("linux")


class _Poller(Protocol):
    def register(self, fd: int, eventmask: int = ...) -> None: ...
    def unregister(self, fd: int) -> None: ...
    def poll(self, timeout: float = ...) -> list[tuple[int, int]]: ...
    def close(self) -> None: ...


class _Poll:
    """select.poll with epoll's interface (timeouts in seconds), where epoll is missing."""

    def __init__(self) -> None:
        self._poll = select.poll()

    def register(self, fd: int, eventmask: int = select.POLLIN) -> None:
        self._poll.register(fd, eventmask)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: float = -1) -> list[tuple[int, int]]:
        return self._poll.poll(None if timeout < 0 else timeout * 1000)

    def close(self) -> None:
        pass


def _poller() -> _Poller:
    return select.epoll() if hasattr(select, "epoll") else _Poll()


class _Reaper(Generic[T]):
    """One reaper thread, its poll set and its wake-up pipe."""

    def __init__(self) -> None:
        self.poller = _poller()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.poller.register(self.wake_r, select.POLLIN)
        self.children: dict[int, Callable[[], list[T]]] = {}  # pidfd -> its end's handler
        self.others: dict[int, Callable[[], list[T]]] = {}  # further descriptors (first only)
        self.thread: threading.Thread | None = None


def _forever() -> float:
    return -1.0


def _nothing(first: bool) -> None:
    pass


class Reapers(Generic[T]):
    """``count`` reaper threads (one without pidfds).

    ``report`` gets what the handlers of the descriptors found ready at once returned,
    in one call (the first reaper adds what was posted); then ``after_turn(first)`` runs
    in the same thread. The first reaper waits at most ``timeout()`` seconds (-1: no
    limit) each turn."""

    def __init__(self, count: int, report: Callable[[list[T]], None], *,
                 timeout: Callable[[], float] = _forever,
                 after_turn: Callable[[bool], None] = _nothing) -> None:
        self._report = report
        self._timeout = timeout
        self._after_turn = after_turn
        self._lock = threading.Lock()  # placement and the handler tables
        self._posted: list[T] = []
        self._stopped = False
        self._local = threading.local()  # .reaper in reaper threads
        self._reapers: list[_Reaper[T]] = [_Reaper() for _ in range(max(1, count)
                                                                      if HAVE_PIDFD else 1)]
        for i, reaper in enumerate(self._reapers):
            reaper.thread = threading.Thread(
                target=self._loop, args=(reaper, i == 0), daemon=True,
                name="mesobatch-reaper" + (f"-{i}" if i else ""))
            reaper.thread.start()

    def watch_child(self, pid: int, handler: Callable[[], list[T]]) -> None:
        """Call ``handler`` in a reaper thread once child ``pid`` has ended (it is left
        for the handler to reap)."""
        if not HAVE_PIDFD:
            threading.Thread(target=self._wait_one, args=(pid, handler), daemon=True).start()
            return
        pidfd = os.pidfd_open(pid)
        with self._lock:
            if self._stopped:  # nobody would reap it: the runner killed it on the way
                os.close(pidfd)
                return
            own = getattr(self._local, "reaper", None)
            reaper = min(self._reapers, key=lambda r: (len(r.children), r is not own))
            reaper.children[pidfd] = handler
            reaper.poller.register(pidfd, select.POLLIN)

    def watch(self, fd: int, handler: Callable[[], list[T]]) -> None:
        """Call ``handler`` in the first reaper whenever ``fd`` is readable."""
        first = self._reapers[0]
        with self._lock:
            if self._stopped:
                return
            first.others[fd] = handler
            first.poller.register(fd, select.POLLIN)

    def unwatch(self, fd: int) -> None:
        """Stop watching ``fd`` (before it is closed: see _end_of_child)."""
        first = self._reapers[0]
        with self._lock:
            if first.others.pop(fd, None) is not None and not self._stopped:
                first.poller.unregister(fd)

    def post(self, items: list[T]) -> None:
        """Have the first reaper report ``items`` (with whatever it finds next)."""
        with self._lock:
            self._posted.extend(items)
        self.wake()

    def wake(self) -> None:
        """Have the first reaper take a turn now (a deadline may have changed)."""
        with self._lock, contextlib.suppress(BlockingIOError):
            if not self._stopped:  # else its pipe may be closed, its number reused
                os.write(self._reapers[0].wake_w, b"w")

    def in_reaper(self) -> bool:
        """Is the calling thread a reaper (in ``report`` or ``after_turn``)?"""
        return hasattr(self._local, "reaper")

    def watching(self) -> list[int]:
        """How many children each reaper watches."""
        with self._lock:
            return [len(r.children) for r in self._reapers]

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the reapers once they have reported what they hold (again: no-op)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            for reaper in self._reapers:
                os.write(reaper.wake_w, b"q")
        for reaper in self._reapers:
            assert reaper.thread is not None
            reaper.thread.join(timeout=timeout)
            if not reaper.thread.is_alive():
                with self._lock:
                    for fd in (*reaper.children, reaper.wake_r, reaper.wake_w):
                        with contextlib.suppress(OSError):
                            os.close(fd)
                    reaper.children.clear()
                    reaper.poller.close()

    # ------------------------------------------------------------------ threads
    def _loop(self, reaper: _Reaper[T], first: bool) -> None:
        self._local.reaper = reaper
        stopping = False
        while not stopping:
            found: list[T] = []
            for fd, _ in reaper.poller.poll(self._timeout() if first else -1):
                if fd == reaper.wake_r:
                    stopping = b"q" in os.read(fd, 4096) or stopping
                    continue
                handler = self._end_of_child(reaper, fd)
                if handler is None:
                    handler = reaper.others.get(fd)
                if handler is not None:
                    found.extend(handler())
            if first and self._posted:
                with self._lock:
                    found.extend(self._posted)
                    self._posted.clear()
            if found:  # reported even when a stop came with them
                self._report(found)
            self._after_turn(first)

    def _end_of_child(self, reaper: _Reaper[T], fd: int) -> Callable[[], list[T]] | None:
        """The handler of a child whose pidfd ``fd`` became readable, the pidfd gone."""
        with self._lock:
            handler = reaper.children.pop(fd, None)
            if handler is None:
                return None
            # Out of the poll set explicitly: a child being spawned by another thread
            # holds a copy of every descriptor until it execs, so closing would leave
            # the registration behind, and a stale readiness for this number would be
            # taken for the task that gets it next.
            reaper.poller.unregister(fd)
        os.close(fd)
        return handler

    def _wait_one(self, pid: int, handler: Callable[[], list[T]]) -> None:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        self._report(handler())
