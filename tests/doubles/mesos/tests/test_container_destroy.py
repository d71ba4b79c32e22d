"""What the agent kills when an executor goes (issue 10 item 2), as Mesos 1.11's posix launcher.

``SubprocessLauncher::destroy`` (src/slave/containerizer/mesos/launcher.cpp) runs stout's
``os::killtree(pid, SIGKILL, groups=true, sessions=true)`` on the container's root: the tree as
it is at that moment, with every group and session met. After a kill -9 of the executor the
root is gone, so only what is left in the group or session it led dies; a job the executor
started in a session of its own has been re-parented and lives on. A dead agent destroys
nothing until it restarts. A container destroyed while its root still runs loses everything,
jobs in their own sessions included.

The executor here is the sample executor under ``/bin/sh -c`` with two extra processes: a
``sleep`` in the container's session and a ``setsid sleep`` (a "job" in its own session).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.doubles.mesos import MesosDouble
from tests.doubles.mesos.containerizer import executor_process, process_tree
from tests.processes import running

from .conftest import FAST
from .wire_client import Scheduler, executor_info, task_info

Make = Callable[..., Scheduler]
SLEEP = "sleep 300"


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Pids the test leaves behind on purpose (the surviving jobs): killed at the end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _start(scheduler: Scheduler, tail: str = "", **environment: str) -> dict[str, Any]:
    executor = executor_info("e-tree")
    sample = executor["command"]["value"]
    executor["command"]["value"] = f"setsid {SLEEP} & {SLEEP} & {sample}{tail}"
    if environment:
        variables = [{"name": k, "value": v} for k, v in environment.items()]
        executor["command"]["environment"] = {"variables": variables}
    offer = scheduler.offers(timeout=10)[0]
    scheduler.launch(offer, [task_info("t-tree", offer, executor, mode="run")])
    running = scheduler.update("t-tree", "TASK_RUNNING", timeout=20)
    scheduler.ack(running)
    return running


def _job_and_sleep(tree: list[dict[str, Any]], root: int, executor: int) -> tuple[int, int]:
    """The job in a session of its own, and the sleep in the container's session."""
    job = [e["pid"] for e in tree if e["session"] == e["pid"] != root]
    sleep = [e["pid"] for e in tree if e["session"] == root and e["pid"] not in (root, executor)]
    assert len(job) == 1 and len(sleep) == 1, tree
    return job[0], sleep[0]


def test_kill_9_of_the_executor_leaves_its_own_session_jobs(
    fast_double: MesosDouble, scheduler_factory: Make, leftovers: list[int]
) -> None:
    double = fast_double
    scheduler = scheduler_factory(double.master_address)
    _start(scheduler)
    killed = double.kill_random_executor()
    assert killed is not None and killed["executor_id"] == "e-tree"
    root, executor = killed["pid"], killed["signalled"]
    assert executor != root  # the executor under the shell, not the shell
    job, sleep = _job_and_sleep(killed["tree"], root, executor)
    leftovers.append(job)
    failed = scheduler.update("t-tree", "TASK_FAILED", timeout=10)
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    # The agent destroyed the container before sending that update.
    assert _wait_dead(sleep) and _wait_dead(executor) and _wait_dead(root)
    assert running(job)  # re-parented, in a session of its own: not found


def test_a_lost_agent_destroys_nothing_until_it_restarts(
    scheduler_factory: Make, leftovers: list[int]
) -> None:
    with MesosDouble(agents=1, **FAST) as double:
        scheduler = scheduler_factory(double.master_address)
        _start(scheduler)
        (killed,) = double.lose_agent(0)
        root, executor = killed["pid"], killed["signalled"]
        job, sleep = _job_and_sleep(killed["tree"], root, executor)
        leftovers.extend([job, sleep])
        scheduler.update("t-tree", "TASK_UNREACHABLE", timeout=10)
        assert _wait_dead(executor)
        assert running(sleep) and running(job)  # nobody destroyed anything
        double.restart_agent(0)  # recovery destroys what is left of the container
        assert _wait_dead(sleep)
        assert running(job)


def test_destroying_a_live_container_kills_its_jobs_too(
    scheduler_factory: Make, leftovers: list[int]
) -> None:
    """The executor (not checkpointing itself) exits when the agent goes; the shell lives on
    and never re-subscribes, so recovery destroys a container whose root still runs."""
    with MesosDouble(agents=1, **{**FAST, "agent_removal_timeout": 30.0}) as double:
        scheduler = scheduler_factory(double.master_address)
        _start(scheduler, f"; {SLEEP}", MESOS_CHECKPOINT="0")
        root = next(iter(double.executor_pids().values()))
        tree = process_tree(root)
        job, _ = _job_and_sleep(tree, root, executor_process(root, shell=True))
        leftovers.extend(e["pid"] for e in tree)
        double.restart_agent(0)
        failed = scheduler.update("t-tree", "TASK_FAILED", timeout=10)
        assert failed["reason"] == "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
        assert _wait_dead(root) and _wait_dead(job)
        assert not [e["pid"] for e in tree if running(e["pid"])]
