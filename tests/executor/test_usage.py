"""What a task used (peak memory, CPU time) and memory enforcement, in the task runner."""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesobatch.executor.memory_watch import MemoryWatch, group_memory, parse_stat
from mesobatch.executor.runner import ProcessSpec, TaskExit
from mesobatch.executor.task_start import Ending, outcome

from .test_runner import QueuedRunner

MIB = 2**20
PY = sys.executable


def alloc(mib: int, seconds: float = 0.0) -> str:
    """A shell command: a Python that holds ``mib`` MiB (touched) for ``seconds``."""
    return (f"{PY} -c 'import time; b = bytearray({mib} * 2**20); time.sleep({seconds})'")


@pytest.fixture
def runner() -> Iterator[QueuedRunner]:
    r = QueuedRunner(kill_grace=1.0)
    yield r
    r.close(grace=0.1)


def run(runner: QueuedRunner, tmp: Path, command: str, memory_limit: int | None = None
        ) -> TaskExit:
    runner.launch(ProcessSpec("t", command, env={"PATH": os.environ["PATH"]},
                              stdout=str(tmp / "out"), stderr=str(tmp / "out"),
                              memory_limit=memory_limit))
    return runner.exits.get(timeout=60)


def test_stat_lines_with_any_command_name() -> None:
    line = b"4242 (a) b (c)) S 1 4200 4200 0 -1 4194560 90 0 0 0 1 2 0 0 20 0 1 0 7 9 25 x"
    assert parse_stat(line) == (4200, 25)


def test_group_memory_sums_each_groups_processes(tmp_path: Path) -> None:
    for pid, pgrp, pages in [(10, 10, 100), (11, 10, 50), (12, 12, 7), (13, 99, 1000)]:
        (tmp_path / str(pid)).mkdir()
        fields = ["S", "1", str(pgrp)] + ["0"] * 18 + [str(pages), "0"]
        (tmp_path / str(pid) / "stat").write_bytes(f"{pid} (sh) {' '.join(fields)}".encode())
    (tmp_path / "self").mkdir()
    page = os.sysconf("SC_PAGE_SIZE")
    assert group_memory({10, 12, 5}, str(tmp_path)) == {10: 150 * page, 12: 7 * page, 5: 0}


def test_the_watch_reports_a_group_over_its_limit_once() -> None:
    over: list[tuple[str, int]] = []
    watch = MemoryWatch(lambda task, used: over.append((task, used)))
    try:
        watch.watch("me", os.getpgrp(), limit=1)  # this test's own group uses more
        watch.watch("free", os.getpgrp(), limit=None)
        watch.sample()
        watch.sample()
        assert [task for task, _ in over] == ["me"] and over[0][1] > MIB
        peak = watch.forget("free")
        assert peak is not None and peak > MIB
        assert watch.forget("free") is None
    finally:
        watch.close()


def test_a_large_process_is_measured_even_if_short(runner: QueuedRunner,
                                                   tmp_path: Path) -> None:
    ex = run(runner, tmp_path, alloc(400))
    assert ex.exit_code == 0
    assert ex.peak_memory is not None and 400 * MIB <= ex.peak_memory < 600 * MIB
    assert ex.cpu_time is not None and ex.cpu_time > 0


def test_a_short_small_job_has_a_cpu_time_and_a_bound_on_its_memory(
        runner: QueuedRunner, tmp_path: Path) -> None:
    """`true` ends before the first sample and stays under the runner's own size, so
    wait4's peak is the runner's: the job used at most that, and that is what it says."""
    ex = run(runner, tmp_path, "true")
    assert ex.exit_code == 0
    assert ex.cpu_time is not None and ex.cpu_time >= 0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert ex.peak_memory is None
    assert ex.memory_at_most is not None and MIB < ex.memory_at_most <= own


def test_children_running_at_once_are_summed(runner: QueuedRunner, tmp_path: Path) -> None:
    """Three children of 100 MiB each at the same time: the job's peak is their sum,
    where each process's own peak (what wait4 gives) is only one of them."""
    one = alloc(100, 3)
    ex = run(runner, tmp_path, f"{one} & {one} & {one} & wait")
    assert ex.exit_code == 0
    assert ex.peak_memory is not None and ex.peak_memory >= 300 * MIB


def test_cpu_time_counts_the_jobs_children(runner: QueuedRunner, tmp_path: Path) -> None:
    burn = (f"{PY} -c 'import time; t = time.process_time(); "
            "exec(\"while time.process_time() - t < 1: pass\")'")
    ex = run(runner, tmp_path, f"{burn} & {burn} & wait")
    assert ex.exit_code == 0
    assert ex.cpu_time is not None and ex.cpu_time >= 2.0


def test_a_task_over_its_memory_limit_is_killed(runner: QueuedRunner,
                                                tmp_path: Path) -> None:
    ex = run(runner, tmp_path, f"{alloc(50, 0.5)}; {alloc(300, 30)}", memory_limit=200 * MIB)
    assert ex.memory_exceeded and not ex.killed and ex.wall_time < 20
    assert ex.peak_memory is not None and ex.peak_memory > 200 * MIB
    out = outcome(ex)
    assert out.ending is Ending.FAILED and out.memory_exceeded


def test_a_task_under_its_memory_limit_runs_to_its_end(runner: QueuedRunner,
                                                       tmp_path: Path) -> None:
    ex = run(runner, tmp_path, alloc(50, 1), memory_limit=300 * MIB)
    assert ex.exit_code == 0 and not ex.memory_exceeded
