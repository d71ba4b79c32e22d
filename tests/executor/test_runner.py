"""The task runner shared by the local backend and the Mesos executor."""

from __future__ import annotations

import os
import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mesobatch.executor.cold_start import ColdStart
from mesobatch.executor.runner import (
    LaunchError,
    ProcessSpec,
    TaskExit,
    TaskRunner,
    build_environment,
    omp_threads,
)
from tests.waiting import wait_for


class QueuedRunner(TaskRunner):
    """A runner whose exits go to a queue, one by one."""

    def __init__(self, **options: Any) -> None:
        self.exits: queue.Queue[TaskExit] = queue.Queue()
        super().__init__(self._put, **options)

    def _put(self, batch: list[TaskExit]) -> None:
        for ex in batch:
            self.exits.put(ex)


@pytest.fixture
def runner() -> Iterator[QueuedRunner]:
    r = QueuedRunner(kill_grace=1.0)
    yield r
    r.close(grace=0.1)


def spec(task_id: str, command: str, tmp: Path, **kw: Any) -> ProcessSpec:
    kw.setdefault("stdout", str(tmp / f"{task_id}.out"))
    kw.setdefault("stderr", str(tmp / f"{task_id}.err"))
    return ProcessSpec(task_id, command, env={"PATH": os.environ["PATH"]}, **kw)


def marker_processes(marker: str) -> list[psutil.Process]:
    """Live `sleep MARKER` processes."""
    return [p for p in psutil.process_iter(["cmdline", "status"])
            if (p.info["cmdline"] or [])[:2] == ["sleep", marker]
            and p.info["status"] != psutil.STATUS_ZOMBIE]


def test_exit_code_wall_time_and_logs(runner: QueuedRunner, tmp_path: Path) -> None:
    runner.launch(spec("t1", "echo out; echo err >&2; sleep 0.3; exit 4", tmp_path))
    ex = runner.exits.get(timeout=10)
    assert ex.task_id == "t1" and ex.exit_code == 4 and not ex.killed
    assert 0.3 <= ex.wall_time < 5
    assert (tmp_path / "t1.out").read_text() == "out\n"
    assert (tmp_path / "t1.err").read_text() == "err\n"


def test_environment_layers() -> None:
    env = build_environment({"A": "base", "B": "base"}, {"B": "setenv", "C": "setenv"},
                            {"C": "job"}, 0.1)
    assert env == {"A": "base", "B": "setenv", "C": "job", "OMP_NUM_THREADS": "1"}
    assert build_environment({}, None, {"OMP_NUM_THREADS": "7"}, 2)["OMP_NUM_THREADS"] == "7"
    assert [omp_threads(c) for c in (0.1, 1, 1.5, 2)] == ["1", "1", "2", "2"]


def test_kill_uses_sigterm_then_sigkill_after_grace(runner: QueuedRunner, tmp_path: Path) -> None:
    out = tmp_path / "stubborn.out"
    runner.launch(spec("stubborn", "trap '' TERM; echo trapped; sleep 30", tmp_path))
    wait_for(lambda: out.exists() and out.read_text() == "trapped\n")
    started = time.monotonic()
    assert runner.kill("stubborn", grace=0.5)
    ex = runner.exits.get(timeout=10)
    assert ex.killed and ex.exit_code == 128 + 9 and ex.signal == 9
    assert 0.4 <= time.monotonic() - started < 5
    assert not runner.kill("unknown-task")


def test_polite_task_dies_on_sigterm(runner: QueuedRunner, tmp_path: Path) -> None:
    runner.launch(spec("polite", "exec sleep 30", tmp_path))
    runner.kill("polite", grace=10)
    ex = runner.exits.get(timeout=5)
    assert ex.killed and ex.signal == 15


def test_leftover_children_of_a_job_are_killed_when_it_exits(runner: QueuedRunner,
                                                             tmp_path: Path) -> None:
    marker = f"1000.{uuid.uuid4().int % 10**6}"
    runner.launch(spec("parent", f"sleep {marker} & echo started", tmp_path))
    runner.exits.get(timeout=5)
    wait_for(lambda: marker_processes(marker) == [])


def test_walltime_is_enforced(runner: QueuedRunner, tmp_path: Path) -> None:
    runner.launch(spec("slow", "sleep 30", tmp_path, walltime=0.3))
    ex = runner.exits.get(timeout=10)
    assert ex.walltime_exceeded and not ex.killed and 0.3 <= ex.wall_time < 5


def test_close_leaves_nothing_running(tmp_path: Path) -> None:
    r = QueuedRunner(kill_grace=0.3)
    exits = r.exits
    marker = f"2000.{uuid.uuid4().int % 10**6}"
    for i in range(3):
        r.launch(spec(f"t{i}", f"trap '' TERM; sleep {marker} & sleep {marker}", tmp_path))
    wait_for(lambda: len(marker_processes(marker)) == 6)
    r.close()
    assert marker_processes(marker) == []
    assert sorted(exits.get(timeout=1).task_id for _ in range(3)) == ["t0", "t1", "t2"]


def test_launch_failure_is_an_error_not_a_crash(runner: QueuedRunner, tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="cannot start task bad"):
        runner.launch(spec("bad", "true", tmp_path, stdout=str(tmp_path / "no" / "such")))


def test_working_directory(runner: QueuedRunner, tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    runner.launch(spec("cwd", "pwd", tmp_path, cwd=str(tmp_path / "sub dir")))
    assert runner.exits.get(timeout=5).exit_code == 0
    assert (tmp_path / "cwd.out").read_text() == f"{tmp_path / 'sub dir'}\n"
    runner.launch(spec("nocwd", "pwd", tmp_path, cwd=str(tmp_path / "missing")))
    assert runner.exits.get(timeout=5).exit_code == 127


def collect(exits: queue.Queue[TaskExit], n: int, timeout: float = 20) -> dict[str, TaskExit]:
    got: dict[str, TaskExit] = {}
    deadline = time.monotonic() + timeout
    while len(got) < n:
        ex = exits.get(timeout=max(0.01, deadline - time.monotonic()))
        assert ex.task_id not in got, f"{ex.task_id} reported twice"
        got[ex.task_id] = ex
    return got


def test_submitted_tasks_start_later_and_report_like_launched_ones(tmp_path: Path) -> None:
    r = QueuedRunner(kill_grace=0.5, reapers=2)
    exits = r.exits
    try:
        r.submit(spec("ok", "exit 3", tmp_path))
        r.submit(spec("bad", "true", tmp_path, stdout=str(tmp_path / "no" / "such")))
        got = collect(exits, 2)
        assert got["ok"].exit_code == 3 and got["ok"].launch_error is None
        assert got["bad"].launch_error and "cannot start task bad" in got["bad"].launch_error
    finally:
        r.close(grace=0.1)


class RecordingStarter(ColdStart):
    """Cold starts, remembering which tasks it was asked to start."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, spec: ProcessSpec, argv: list[str] | None) -> int:
        self.started.append(spec.task_id)
        return super().start(spec, argv)


def test_a_task_killed_before_it_starts_never_runs(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    starter = RecordingStarter()
    r = QueuedRunner(kill_grace=0.5, starter=starter)
    exits = r.exits
    monkeypatch.setattr(r._spawner, "_loop", lambda: None)  # no spawner: stays queued
    try:
        r.submit(spec("late", "true", tmp_path))
        assert "late" in r.running()
        assert r.kill("late")
        r.start_submitted()
        ex = exits.get(timeout=10)
        assert ex.task_id == "late" and ex.killed
        assert starter.started == [] and r.running() == []
        r.launch(spec("now", "true", tmp_path))  # the starter is the one the runner uses
        assert exits.get(timeout=10).task_id == "now" and starter.started == ["now"]
    finally:
        r.close(grace=0.1)


def test_close_reports_submitted_tasks_that_never_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = QueuedRunner(kill_grace=0.5)
    exits = r.exits
    monkeypatch.setattr(r._spawner, "_loop", lambda: None)  # no spawner: stays queued
    r.submit(spec("never", "true", tmp_path))
    r.close(grace=0.1, timeout=1.0)
    ex = exits.get(timeout=5)
    assert ex.task_id == "never" and ex.killed


def test_many_short_tasks_through_two_reapers_each_once_none_killed(tmp_path: Path) -> None:
    # Tasks started from the reapers' callbacks and, at the same time, from another
    # thread: a pidfd closed while some child was being spawned must not leave a stale
    # registration that is later taken for the task that reuses its number.
    exits: queue.Queue[TaskExit] = queue.Queue()
    follow_ups = iter(range(300))
    runner: TaskRunner

    def on_exit(batch: list[TaskExit]) -> None:
        for ex in batch:
            exits.put(ex)
            n = next(follow_ups, None)
            if n is not None:
                runner.submit(spec(f"f{n}", "true", tmp_path, stdout=None, stderr=None))

    runner = TaskRunner(on_exit, kill_grace=0.5, reapers=2)
    try:
        for i in range(300):
            runner.submit(spec(f"s{i}", "true", tmp_path, stdout=None, stderr=None))
            if i % 4 == 0:
                runner.start_submitted()
        got = collect(exits, 600, timeout=60)
        assert {ex.exit_code for ex in got.values()} == {0}
        assert not any(ex.killed for ex in got.values())
    finally:
        runner.close(grace=0.1)


def test_plain_commands_run_directly_and_fall_back_to_the_shell(runner: QueuedRunner,
                                                                tmp_path: Path) -> None:
    # `sleep` is exec'd directly: the task's own pid is sleep's; echo -e stays in sh.
    runner.launch(spec("direct", "sleep 0.2", tmp_path))
    pid = runner._procs["direct"].pid
    assert psutil.Process(pid).name() == "sleep"
    runner.launch(spec("shell", "echo -e 'a\\tb'", tmp_path))
    got = collect(runner.exits, 2)
    assert got["direct"].exit_code == 0 and got["shell"].exit_code == 0
    assert (tmp_path / "shell.out").read_text() in ("-e a\tb\n", "a\tb\n")
    runner.launch(spec("missing", "no-such-program-x", tmp_path))
    assert runner.exits.get(timeout=5).exit_code == 127
    assert "not found" in (tmp_path / "missing.err").read_text()
