"""The keeper (executor/keeper.py): a runner's jobs never outlive the runner's process,
even killed with SIGKILL, jobs that ignore SIGTERM and their children included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mesobatch.executor.keeper_link import KeeperLink
from tests.processes import running, still_running, wait_gone
from tests.stubborn_jobs import pids_of, started, stubborn

RUNNER_PROCESS = textwrap.dedent("""
    import os, sys, time
    from mesobatch.executor.runner import ProcessSpec, TaskRunner
    directory, jobs, kill_keeper = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    runner = TaskRunner(lambda exits: None)
    if kill_keeper:  # a keeper that dies is replaced at the next job
        os.kill(runner.keeper_pid, 9)
        time.sleep(0.2)
    for i in range(jobs):
        runner.launch(ProcessSpec(f"t{i}", sys.argv[4 + i], dict(os.environ)))
    print(runner.keeper_pid, flush=True)
    time.sleep(600)
""")


def run_and_kill(tmp_path: Path, jobs: int, *, kill_keeper: bool = False) -> list[int]:
    """Start a process with a runner and ``jobs`` stubborn jobs, kill -9 it once they
    run; the job processes (all of them recorded their pids)."""
    commands = [stubborn(tmp_path, f"j{i}") for i in range(jobs)]
    proc = subprocess.Popen([sys.executable, "-c", RUNNER_PROCESS, str(tmp_path), str(jobs),
                             "1" if kill_keeper else "0", *commands],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        deadline = time.monotonic() + 30
        while not all(started(tmp_path, f"j{i}") for i in range(jobs)):
            assert time.monotonic() < deadline, "the jobs did not start"
            time.sleep(0.01)
        pids = pids_of(tmp_path)
        assert len(pids) == 3 * jobs and still_running(pids) == pids
    finally:
        proc.kill()
        proc.wait()
    return pids


def test_jobs_die_with_a_runner_killed_with_sigkill(tmp_path: Path) -> None:
    pids = run_and_kill(tmp_path, 3)
    assert wait_gone(pids, timeout=10) == []


def test_a_keeper_that_died_is_replaced(tmp_path: Path) -> None:
    pids = run_and_kill(tmp_path, 1, kill_keeper=True)
    assert wait_gone(pids, timeout=10) == []


def _own_session_sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_the_keeper_kills_watched_groups_only() -> None:
    link = KeeperLink()
    watched, forgotten, unknown = (_own_session_sleeper() for _ in range(3))
    try:
        link.watch(watched.pid)
        link.watch(forgotten.pid)
        link.forget(forgotten.pid)
        link.close()  # the end of the pipe, as when this process dies
        assert watched.wait(timeout=10) == -signal.SIGKILL
        assert forgotten.poll() is None and unknown.poll() is None
    finally:
        for p in (watched, forgotten, unknown):
            p.kill()
            p.wait()


def test_the_keeper_ignores_polite_signals_and_lives_in_a_session_of_its_own() -> None:
    link = KeeperLink()
    try:
        assert link.pid is not None
        assert os.getsid(link.pid) == link.pid
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            os.kill(link.pid, sig)
        time.sleep(0.2)
        assert running(link.pid)
    finally:
        link.close()
    assert not running(link.pid)


# A workflow engine may fork from a threaded process, as here (pytest's and xdist's
# threads): Python 3.12+ warns about it; the child only reads a pipe and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_hold_the_keeper_alive() -> None:
    link = KeeperLink()
    sleeper = _own_session_sleeper()
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # holds nothing of the parent's keeper pipe: waits for the parent
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    try:
        link.watch(sleeper.pid)
        link.close()
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        os.close(w)
        os.waitpid(child, 0)
        sleeper.kill()
        sleeper.wait()
