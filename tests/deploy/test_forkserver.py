"""Function tasks forked from a warm fork server behave as any task of the runner."""

from __future__ import annotations

import os
import pickle
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mesobatch.executor import function_task as ft
from mesobatch.executor.runner import ProcessSpec, TaskExit, TaskRunner, WarmStart
from mesobatch.executor.shipping import runner_argv
from tests.waiting import wait_for


@pytest.fixture
def runner() -> Iterator[tuple[TaskRunner, queue.Queue[TaskExit]]]:
    exits: queue.Queue[TaskExit] = queue.Queue()

    def on_exit(batch: list[TaskExit]) -> None:
        for ex in batch:
            exits.put(ex)

    r = TaskRunner(on_exit, kill_grace=0.5)
    yield r, exits
    r.close(grace=0.1)


def call_spec(task_id: str, tmp: Path, fn: Any, *args: Any, walltime: float | None = None
              ) -> ProcessSpec:
    blob = tmp / f"{task_id}.call"
    blob.write_bytes(ft.blob_header() + pickle.dumps((fn, args, {})))
    env = {**os.environ, ft.PYTHON_ENV: runner_argv()[0], ft.RUNNER_ENV: runner_argv()[1],
           ft.FUNCTION_FILE_ENV: str(blob), ft.RESULT_FILE_ENV: str(tmp / f"{task_id}.out")}
    warm = WarmStart("function", (*runner_argv(), "--forkserver"), dict(os.environ))
    return ProcessSpec(task_id, ft.COMMAND, env, stdout=str(tmp / f"{task_id}.log"),
                       stderr=str(tmp / f"{task_id}.log"), walltime=walltime, warm=warm)


def forked(r: TaskRunner) -> bool:
    """Is the fork server up (so the next call is forked, not started cold)?"""
    server = r._warm.server("function")
    return server is not None and server.is_ready()


def outcome(tmp: Path, task_id: str) -> Any:
    return pickle.loads((tmp / f"{task_id}.out").read_bytes())


def test_calls_are_forked_warm_with_their_own_log_and_exit_status(
        runner: tuple[TaskRunner, queue.Queue[TaskExit]], tmp_path: Path) -> None:
    r, exits = runner
    r.launch(call_spec("cold", tmp_path, print, "first"))  # starts the server meanwhile
    assert exits.get(timeout=30).exit_code == 0
    deadline = time.monotonic() + 30
    while not forked(r) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert forked(r)
    server = r._warm.server("function")
    assert server is not None
    server_pid = server.pid
    r.launch(call_spec("warm", tmp_path, print, "hello from a fork"))
    ex = exits.get(timeout=30)
    assert (ex.task_id, ex.exit_code) == ("warm", 0)
    # what it used, reported by the server that reaped it
    assert ex.cpu_time is not None and ex.cpu_time >= 0
    assert ex.peak_memory is not None and ex.peak_memory > 2**20
    assert (tmp_path / "warm.log").read_text() == "hello from a fork\n"
    assert outcome(tmp_path, "warm") == ("ok", None)
    r.launch(call_spec("fails", tmp_path, int, "x"))
    ex = exits.get(timeout=30)
    assert ex.exit_code == ft.EXIT_ERROR and outcome(tmp_path, "fails")[0] == "error"
    assert "ValueError" in (tmp_path / "fails.log").read_text()
    assert psutil.Process(server_pid).is_running()


def test_forked_calls_are_killed_with_their_children_and_timed_out(
        runner: tuple[TaskRunner, queue.Queue[TaskExit]], tmp_path: Path) -> None:
    r, exits = runner
    r.launch(call_spec("cold", tmp_path, print, "warm up"))
    exits.get(timeout=30)
    deadline = time.monotonic() + 30
    while not forked(r) and time.monotonic() < deadline:
        time.sleep(0.05)
    server = r._warm.server("function")
    assert server is not None
    server_pid = server.pid
    r.launch(call_spec("sleeper", tmp_path, os.system, "sleep 77.5 & sleep 60"))
    wait_for(stray_sleepers)  # the call has started its children
    assert r.kill("sleeper", grace=0.2)
    ex = exits.get(timeout=30)
    assert ex.task_id == "sleeper" and ex.killed and ex.exit_code == 128 + 15
    r.launch(call_spec("slow", tmp_path, time.sleep, 60, walltime=0.5))
    ex = exits.get(timeout=30)
    assert ex.task_id == "slow" and ex.walltime_exceeded
    r.close(grace=0.1)
    wait_for(lambda: not stray_sleepers())  # killed with its group: gone in a moment
    assert not psutil.pid_exists(server_pid) or (
        psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE)


def stray_sleepers() -> list[psutil.Process]:
    """Live processes of the `sleep 77.5` a call above starts in the background."""
    return [p for p in psutil.process_iter(["cmdline", "status"])
            if "77.5" in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]
