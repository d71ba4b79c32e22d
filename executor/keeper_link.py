"""The runner's end of its keeper (keeper.py): start it, tell it the groups of the
jobs as they start and end, and close the pipe at the end.

The pipe's write end is close-on-exec (jobs never get it) and closed in any child this
process forks (os.register_at_fork), so only this process holds it: its end, for
whatever reason, is the keeper's signal. A keeper that dies is started again with the
groups of the jobs that run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import weakref

from . import keeper

log = logging.getLogger(__name__)

_links: weakref.WeakSet[KeeperLink] = weakref.WeakSet()

#: forget() lines held back at most (bytes), so the keeper's set stays small
_FORGOTTEN_MAX = 4096


def _close_in_child() -> None:
    for link in list(_links):
        link.forget_pipe()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def keeper_argv() -> list[str]:
    """How to start the keeper: its file by path, or its source where the package runs
    from a zip (the executor bundle)."""
    path = os.path.abspath(keeper.__file__)
    if os.path.isfile(path):
        return [sys.executable, "-I", "-S", path]
    get_source = getattr(keeper.__loader__, "get_source", None)
    source = get_source(keeper.__name__) if get_source is not None else None
    if source is None:
        raise OSError(f"cannot read the keeper's source from {path}")
    return [sys.executable, "-I", "-S", "-c", source]


class KeeperLink:
    """A running keeper and the pipe to it. Thread-safe; no call blocks on the keeper
    (a write of a few bytes to a pipe it drains)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._fd: int | None = None
        self._pid: int | None = None
        self._closed = False
        self._forgotten = b""  # forget() lines not written yet
        self._start()
        _links.add(self)

    @property
    def pid(self) -> int | None:
        """The keeper's pid (None: none runs, jobs are not kept)."""
        return self._pid

    def watch(self, pgid: int) -> None:
        """Kill group ``pgid`` if this process dies before forget(pgid)."""
        with self._lock:
            self._groups.add(pgid)
            self._send(self._forgotten + b"+%d\n" % pgid)
            self._forgotten = b""

    def forget(self, pgid: int) -> None:
        """Leave group ``pgid`` alone (call it once the group was killed or its leader
        reaped). The keeper is told with the next watch(), flush() or close(): one
        write, one wake-up of the keeper per job. Should this process die before, the
        keeper signals a group that is gone or ended anyway: a group's id is not
        reused while the group exists, and once it is gone only after the pid space
        has wrapped round."""
        with self._lock:
            self._groups.discard(pgid)
            self._forgotten += b"-%d\n" % pgid
            if len(self._forgotten) > _FORGOTTEN_MAX:
                self._send(self._forgotten)
                self._forgotten = b""

    def flush(self) -> None:
        """Tell the keeper what forget() left untold."""
        with self._lock:
            if self._forgotten:
                self._send(self._forgotten)
                self._forgotten = b""

    def close(self, timeout: float = 1.0) -> None:
        """End the pipe (the keeper kills what is still watched) and reap the keeper."""
        with self._lock:
            if self._forgotten:
                self._send(self._forgotten)
                self._forgotten = b""
            self._closed = True
            pid, self._pid = self._pid, None
            self.forget_pipe()
        if pid is not None:
            _reap(pid, timeout)

    def forget_pipe(self) -> None:
        """Close our end (in a forked child: the parent's keeper is not ours)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    # ------------------------------------------------------------------ internals
    def _start(self) -> None:
        read, write = os.pipe()
        try:
            self._pid = os.posix_spawn(
                sys.executable, keeper_argv(), {"PATH": os.defpath},
                file_actions=[(os.POSIX_SPAWN_DUP2, read, 0),
                              (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_DUP2, 1, 2)],
                setsid=True, setsigmask=keeper.POLITE)
        except OSError as e:
            os.close(write)
            log.warning("cannot start the job keeper (%s): jobs may outlive this process "
                        "if it is killed", e)
            return
        finally:
            os.close(read)
        self._fd = write

    def _send(self, line: bytes) -> None:
        """Write ``line`` (lock held); a keeper found dead is started again with the
        groups watched now."""
        if self._fd is None or self._closed:
            return
        try:
            os.write(self._fd, line)
            return
        except OSError as e:  # EPIPE: the keeper died
            log.warning("the job keeper died (%s); starting another", e)
        self.forget_pipe()
        if self._pid is not None:
            _reap(self._pid, 0.0)
        self._start()
        if self._fd is not None and self._groups:
            with contextlib.suppress(OSError):
                os.write(self._fd, b"".join(b"+%d\n" % g for g in self._groups))


def _reap(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done or time.monotonic() >= deadline:
            return
        time.sleep(0.005)
