"""The runner's side of a fork server: warm processes for Python function tasks.

Starting Python and importing cloudpickle costs tens of milliseconds of CPU, more than
a small call itself. A fork server is one such process, started once (a child of the
runner, in a session of its own); for each task it forks a copy of itself, which
becomes the task's own process in a process group of its own, with the task's
environment, working directory and log file (function_task.serve_forks). It answers
each request with the new pid, reaps its children and reports their wait statuses on a
pipe of their own, so the runner learns exits in the same batches as its own tasks'.

Wire: requests are JSON lines on the server's stdin; replies JSON lines on its stdout
(``{"ready": true}`` once, then ``{"pid": N}`` or ``{"error": "..."}`` per request);
exits JSON lines ``{"pid": N, "status": S, "cpu": SECONDS, "maxrss": BYTES}`` on its fd 3
(what the task used, from the server's wait4).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

EXITS_FD = 3


def _above_targets(fd: int) -> int:
    """``fd`` moved above the descriptors the server is given (0-3)."""
    if fd > EXITS_FD:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, EXITS_FD + 1)
    os.close(fd)
    return moved


class ForkedExit(NamedTuple):
    """A forked task's end as its server reported it."""

    pid: int
    status: int  #: wait status
    cpu_time: float | None = None  #: user + system seconds (None: not reported)
    peak_memory: int | None = None  #: bytes, the kernel's peak resident size


class ForkServerError(OSError):
    """The fork server is gone or does not answer."""


class ForkServer:
    def __init__(self, key: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.key = key
        req_r, self._requests = os.pipe()
        self._replies, rep_w = os.pipe()
        self.exits_fd, ex_w = os.pipe()
        # dup2(fd, fd) keeps close-on-exec: no source may already sit on its target
        req_r, rep_w, ex_w = (_above_targets(fd) for fd in (req_r, rep_w, ex_w))
        try:
            self.pid = os.posix_spawn(argv[0], list(argv), env, file_actions=[
                (os.POSIX_SPAWN_DUP2, req_r, 0), (os.POSIX_SPAWN_DUP2, rep_w, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, ex_w, EXITS_FD)], setsid=True)
        except OSError:
            for fd in (self._requests, self._replies, self.exits_fd):
                os.close(fd)
            raise
        finally:
            for fd in (req_r, rep_w, ex_w):
                os.close(fd)
        os.set_blocking(self.exits_fd, False)
        self.started = time.monotonic()
        self.ready = False
        self._reply_buf = b""
        self._exit_buf = b""
        self._lock = threading.Lock()  # one request at a time

    def _reply(self, timeout: float) -> dict[str, Any] | None:
        """The next reply line, or None if none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._reply_buf:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self._replies], [], [], left)[0]:
                return None
            chunk = os.read(self._replies, 4096)
            if not chunk:
                raise ForkServerError(f"the {self.key} fork server exited")
            self._reply_buf += chunk
        line, self._reply_buf = self._reply_buf.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def is_ready(self) -> bool:
        """Has it finished loading (without waiting for it)?"""
        if not self.ready:
            with self._lock:
                reply = self._reply(0.0)
                self.ready = bool(reply and reply.get("ready"))
        return self.ready

    def fork(self, task: Mapping[str, Any], timeout: float = 10.0) -> int:
        """Start a task; its pid (its process group has the same id already)."""
        message = json.dumps(task).encode() + b"\n"
        with self._lock:
            try:
                view = memoryview(message)
                while view:
                    view = view[os.write(self._requests, view):]
            except OSError as e:
                raise ForkServerError(f"the {self.key} fork server is gone: {e}") from e
            reply = self._reply(timeout)
        if reply is None:
            raise ForkServerError(f"the {self.key} fork server did not answer in {timeout} s")
        if "pid" not in reply:
            raise ForkServerError(f"the {self.key} fork server could not fork: "
                                  f"{reply.get('error')}")
        return int(reply["pid"])

    def read_exits(self) -> tuple[list[ForkedExit], bool]:
        """Exits reported so far; True once the server is gone."""
        gone = False
        while True:
            try:
                chunk = os.read(self.exits_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                gone = True
                break
            self._exit_buf += chunk
        lines = self._exit_buf.split(b"\n")
        self._exit_buf = lines.pop()
        exits = []
        for line in lines:
            if line:
                record = json.loads(line)
                cpu, maxrss = record.get("cpu"), record.get("maxrss")
                exits.append(ForkedExit(
                    int(record["pid"]), int(record["status"]),
                    round(float(cpu), 3) if cpu is not None else None,
                    int(maxrss) if maxrss else None))
        return exits, gone

    def close(self, timeout: float = 2.0) -> None:
        """Stop it: end of its stdin, then SIGKILL if it lingers; reaped here."""
        with contextlib.suppress(OSError):
            os.close(self._requests)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        else:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        for fd in (self._replies, self.exits_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
