"""Warm starts: the fork servers by key and the tasks they forked, driven by hand
(the exit pipe's handler is called here, where a reaper thread would call it)."""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesobatch.executor import function_task as ft
from mesobatch.executor.process_groups import group_exists
from mesobatch.executor.runner import ProcessSpec, TaskExit, WarmStart
from mesobatch.executor.shipping import runner_argv
from mesobatch.executor.warm_start import Ended, WarmStarts

SERVER = WarmStart("function", (*runner_argv(), "--forkserver"), dict(os.environ))


class Watcher:
    """Records what WarmStarts asks to be watched."""

    def __init__(self) -> None:
        self.handlers: dict[int, Callable[[], list[TaskExit]]] = {}
        self.unwatched: list[int] = []

    def watch(self, fd: int, handler: Callable[[], list[TaskExit]]) -> None:
        self.handlers[fd] = handler

    def unwatch(self, fd: int) -> None:
        self.unwatched.append(fd)
        del self.handlers[fd]

    def turn(self, timeout: float = 30) -> None:
        """What a reaper does: wait for a watched pipe, call its handler."""
        fds = list(self.handlers)
        assert select.select(fds, [], [], timeout)[0], "nothing reported"
        for fd in fds:
            self.handlers[fd]()


class Harness:
    def __init__(self) -> None:
        self.watcher = Watcher()
        self.ended: list[Ended] = []
        self.warm = WarmStarts(self.watcher, self._ended)

    def _ended(self, ends: list[Ended]) -> list[TaskExit]:
        self.ended.extend(ends)
        return []

    def ready(self) -> None:
        """Start the server (the first fork() only does that) and wait until it loaded."""
        assert self.warm.fork(call("first", Path("/nonexistent"))) is None
        server = self.warm.server("function")
        assert server is not None
        deadline = time.monotonic() + 30
        while not server.is_ready():
            assert time.monotonic() < deadline
            time.sleep(0.02)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.warm.close()


def call(task_id: str, tmp: Path, fn: Any = None, *args: Any) -> ProcessSpec:
    """A function call forked warm; without ``fn`` it fails at once (exit 2: no call)."""
    env = dict(os.environ)
    if fn is not None:
        blob = tmp / f"{task_id}.call"
        blob.write_bytes(ft.blob_header() + pickle.dumps((fn, args, {})))
        env.update({ft.FUNCTION_FILE_ENV: str(blob), ft.RESULT_FILE_ENV: str(tmp / "out")})
    return ProcessSpec(task_id, ft.COMMAND, env, warm=SERVER)


def test_first_use_starts_the_server_and_later_tasks_are_forked(harness: Harness) -> None:
    h = harness
    h.ready()
    assert len(h.watcher.handlers) == 1  # its exit pipe
    pid = h.warm.fork(call("t1", Path("/nonexistent")))
    assert pid is not None
    assert h.warm.claim("function", pid, "t1") is None
    while not h.ended:
        h.watcher.turn()
    assert [(task, os.waitstatus_to_exitcode(ex.status)) for task, ex in h.ended] == [
        ("t1", 2)]
    # what it used, from the server's wait4: the runner cannot wait for it itself
    ex = h.ended[0][1]
    assert ex.pid == pid and ex.cpu_time is not None and ex.cpu_time >= 0
    assert ex.peak_memory is not None and ex.peak_memory > 2**20


def test_an_end_reported_before_the_claim_waits_for_it(harness: Harness) -> None:
    h = harness
    h.ready()
    pid = h.warm.fork(call("t2", Path("/nonexistent")))
    assert pid is not None
    h.watcher.turn()  # its end, before anybody knows whose pid it is
    assert h.ended == []
    ended = h.warm.claim("function", pid, "t2")
    assert ended is not None and os.waitstatus_to_exitcode(ended.status) == 2
    assert ended.cpu_time is not None and ended.peak_memory is not None


def test_a_server_that_dies_takes_its_tasks_and_its_key_goes_cold(
        harness: Harness, tmp_path: Path) -> None:
    h = harness
    h.ready()
    server = h.warm.server("function")
    assert server is not None
    pid = h.warm.fork(call("long", tmp_path, time.sleep, 60))
    assert pid is not None and h.warm.claim("function", pid, "long") is None
    os.kill(server.pid, signal.SIGKILL)  # its forked task lives on, orphaned
    while not h.ended:
        h.watcher.turn()
    assert [(task, ex.status) for task, ex in h.ended] == [("long", signal.SIGKILL)]
    assert h.watcher.handlers == {} and h.watcher.unwatched == [server.exits_fd]
    deadline = time.monotonic() + 10
    while group_exists(pid):  # killed by the runner's side: nobody else would
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert h.warm.server("function") is None
    assert h.warm.fork(call("after", tmp_path)) is None  # cold from now on
    stray = h.warm.claim("function", 999_999_999, "stray")
    assert stray is not None and stray.status == signal.SIGKILL


def test_a_server_that_cannot_start_sends_its_tasks_cold(tmp_path: Path) -> None:
    h = Harness()
    spec = call("t", tmp_path)
    broken = WarmStart("broken", (str(tmp_path / "no-such-python"),), {})
    spec = ProcessSpec(spec.task_id, spec.command, spec.env, warm=broken)
    assert h.warm.fork(spec) is None
    assert h.warm.server("broken") is None and h.watcher.handlers == {}
    assert h.warm.fork(spec) is None
    h.warm.close()
