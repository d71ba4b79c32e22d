"""The task runner shared by the local backend and the Mesos executor."""

from __future__ import annotations

import os
import queue
import time
import uuid
from pathlib import Path

import psutil
import pytest

from mesobatch.executor.runner import (
    LaunchError,
    ProcessSpec,
    TaskExit,
    TaskRunner,
    build_environment,
    omp_threads,
)


@pytest.fixture
def runner():  # type: ignore[no-untyped-def]
    exits: queue.Queue[TaskExit] = queue.Queue()
    r = TaskRunner(lambda batch: [exits.put(e) for e in batch], kill_grace=1.0)
    r.exits = exits  # type: ignore[attr-defined]
    yield r
    r.close(grace=0.1)


def spec(task_id: str, command: str, tmp: Path, **kw: object) -> ProcessSpec:
    kw.setdefault("stdout", str(tmp / f"{task_id}.out"))
    kw.setdefault("stderr", str(tmp / f"{task_id}.err"))
    return ProcessSpec(task_id, command, env={"PATH": os.environ["PATH"]},
                       **kw)  # type: ignore[arg-type]


def marker_processes(marker: str) -> list[psutil.Process]:
    """Live `sleep MARKER` processes."""
    return [p for p in psutil.process_iter(["cmdline", "status"])
            if (p.info["cmdline"] or [])[:2] == ["sleep", marker]
            and p.info["status"] != psutil.STATUS_ZOMBIE]


def test_exit_code_wall_time_and_logs(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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


def test_kill_uses_sigterm_then_sigkill_after_grace(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner.launch(spec("stubborn", "trap '' TERM; sleep 30", tmp_path))
    time.sleep(0.2)
    started = time.monotonic()
    assert runner.kill("stubborn", grace=0.5)
    ex = runner.exits.get(timeout=10)
    assert ex.killed and ex.exit_code == 128 + 9 and ex.signal == 9
    assert 0.4 <= time.monotonic() - started < 5
    assert not runner.kill("unknown-task")


def test_polite_task_dies_on_sigterm(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner.launch(spec("polite", "exec sleep 30", tmp_path))
    time.sleep(0.1)
    runner.kill("polite", grace=10)
    ex = runner.exits.get(timeout=5)
    assert ex.killed and ex.signal == 15


def test_leftover_children_of_a_job_are_killed_when_it_exits(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = f"1000.{uuid.uuid4().int % 10**6}"
    runner.launch(spec("parent", f"sleep {marker} & echo started", tmp_path))
    runner.exits.get(timeout=5)
    deadline = time.monotonic() + 5
    while marker_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker_processes(marker) == []


def test_walltime_is_enforced(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner.launch(spec("slow", "sleep 30", tmp_path, walltime=0.3))
    ex = runner.exits.get(timeout=10)
    assert ex.walltime_exceeded and not ex.killed and 0.3 <= ex.wall_time < 5


def test_close_leaves_nothing_running(tmp_path: Path) -> None:
    exits: queue.Queue[TaskExit] = queue.Queue()
    r = TaskRunner(lambda batch: [exits.put(e) for e in batch], kill_grace=0.3)
    marker = f"2000.{uuid.uuid4().int % 10**6}"
    for i in range(3):
        r.launch(spec(f"t{i}", f"trap '' TERM; sleep {marker} & sleep {marker}", tmp_path))
    time.sleep(0.3)
    assert len(marker_processes(marker)) == 6
    r.close()
    assert marker_processes(marker) == []
    assert sorted(exits.get(timeout=1).task_id for _ in range(3)) == ["t0", "t1", "t2"]


def test_launch_failure_is_an_error_not_a_crash(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LaunchError, match="cannot start task bad"):
        runner.launch(spec("bad", "true", tmp_path, stdout=str(tmp_path / "no" / "such")))


def test_working_directory(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sub dir").mkdir()
    runner.launch(spec("cwd", "pwd", tmp_path, cwd=str(tmp_path / "sub dir")))
    assert runner.exits.get(timeout=5).exit_code == 0
    assert (tmp_path / "cwd.out").read_text() == f"{tmp_path / 'sub dir'}\n"
    runner.launch(spec("nocwd", "pwd", tmp_path, cwd=str(tmp_path / "missing")))
    assert runner.exits.get(timeout=5).exit_code == 127
