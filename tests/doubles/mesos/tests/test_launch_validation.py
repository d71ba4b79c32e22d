"""Launch validation the real run met (issue 10 items 1 and 3).

Executor minimums: src/master/validation.cpp, ``task::internal::validateExecutor`` logs a
warning for every LAUNCH whose ExecutorInfo has under 0.01 cpus or 32 MB (``MIN_CPUS``,
``MIN_MEM`` in src/master/constants.hpp) and launches it; ``task::group::internal::
validateExecutor`` refuses such a task group (and one whose executor has no disk).

Duplicate ids: ``validateUniqueTaskID`` refuses a task id the framework still has in
``framework->tasks``, where a task stays until its terminal update is acknowledged
(``Master::acknowledge`` then ``removeTask``), whichever subscription launched it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.doubles.mesos import MesosDouble

from .wire_client import Scheduler, default_framework_info, executor_info, task_info

Make = Callable[..., Scheduler]
SCALAR = "SCALAR"


def _executor(executor_id: str, cpus: float | None, mem: float | None, **command: Any) -> Any:
    executor = executor_info(executor_id, **command)
    resources = []
    if cpus is not None:
        resources.append({"name": "cpus", "type": SCALAR, "scalar": {"value": cpus}})
    if mem is not None:
        resources.append({"name": "mem", "type": SCALAR, "scalar": {"value": mem}})
    executor["resources"] = resources
    return executor


def _warning(executor_id: str, task_id: str, what: str, value: str, minimum: str) -> str:
    return (
        f"Executor '{executor_id}' for task '{task_id}' uses less {what} ({value}) than the "
        f"minimum required ({minimum}). Please update your executor, as this will be mandatory "
        "in future releases."
    )


def test_executor_without_cpus_is_warned_on_every_launch(
    double: MesosDouble, scheduler_factory: Make, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = scheduler_factory(double.master_address)
    executor = _executor("e-nocpu", None, 64)
    caplog.set_level(logging.WARNING, logger="tests.doubles.mesos.master")
    for task_id in ("t-nocpu-1", "t-nocpu-2"):
        offer = scheduler.offers(timeout=10)[0]
        task = task_info(task_id, offer, executor)
        assert scheduler.launch(offer, [task], filters={"refuse_seconds": 0}).status == 202
        # Launched all the same (1.11 only warns), on one executor.
        scheduler.ack(scheduler.update(task_id, "TASK_RUNNING", timeout=20))
        scheduler.ack(scheduler.update(task_id, "TASK_FINISHED", timeout=20))
    expected = [
        _warning("e-nocpu", "t-nocpu-1", "CPUs", "None", "0.01"),
        _warning("e-nocpu", "t-nocpu-2", "CPUs", "None", "0.01"),
    ]
    warnings = double.warnings()
    assert (warnings["executor_cpus"], warnings["executor_mem"]) == (2, 0)
    assert warnings["recent"] == expected
    assert [r.getMessage() for r in caplog.records if "Executor" in r.getMessage()] == expected
    assert double.counters()["executor_cpus_warnings"] == 2


def test_small_executor_values_are_printed_as_mesos_does(
    double: MesosDouble, scheduler_factory: Make
) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers(timeout=10)[0]
    task = task_info("t-small", offer, _executor("e-small", 0.005, 16))
    scheduler.launch(offer, [task])
    scheduler.update("t-small", "TASK_RUNNING", timeout=20)
    assert double.warnings()["recent"] == [
        _warning("e-small", "t-small", "CPUs", "0.005", "0.01"),
        _warning("e-small", "t-small", "memory", "16MB", "32MB"),
    ]


def test_refuse_small_executors_option(scheduler_factory: Make) -> None:
    with MesosDouble(agents=1, refuse_small_executors=True) as double:
        scheduler = scheduler_factory(double.master_address)
        offer = scheduler.offers(timeout=10)[0]
        task = task_info("t-refused", offer, _executor("e-refused", None, 64))
        scheduler.launch(offer, [task])
        error = scheduler.update("t-refused", "TASK_ERROR", timeout=5)
        assert (error["reason"], error["source"], error["message"]) == (
            "REASON_TASK_INVALID",
            "SOURCE_MASTER",
            "Executor 'e-refused' uses less CPUs (None) than the minimum required (0.01)",
        )
        assert "uuid" not in error
        assert double.tasks() == {} and double.warnings()["executor_cpus"] == 0


def test_task_group_executor_minimums_are_errors(
    double: MesosDouble, scheduler_factory: Make
) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers(timeout=10)[0]
    executor = _executor("e-group-nocpu", None, 64)
    task = task_info("g-nocpu", offer, executor)
    del task["executor"]
    operation = {
        "type": "LAUNCH_GROUP",
        "launch_group": {"executor": executor, "task_group": {"tasks": [task]}},
    }
    scheduler.call("ACCEPT", {"offer_ids": [offer["id"]], "operations": [operation]})
    error = scheduler.update("g-nocpu", "TASK_ERROR", timeout=5)
    assert (error["reason"], error["message"]) == (
        "REASON_TASK_GROUP_INVALID",
        "Executor 'e-group-nocpu' uses less CPUs (None) than the minimum required (0.01)",
    )


def test_duplicate_id_of_a_task_still_live_from_an_earlier_subscription(
    double: MesosDouble,
) -> None:
    """Issue 10 item 1: a scheduler restarted with its framework id launches "1.0" while the
    earlier run's "1.0" is still being killed (grace period): TASK_ERROR, never run."""
    info = default_framework_info(failover_timeout=60)
    first = Scheduler(double.master_address, info)
    offer = first.offers(timeout=10)[0]
    slow_kill = {"environment": {"variables": [{"name": "SAMPLE_KILL_DELAY", "value": "2"}]}}
    executor = executor_info("e-dup", **slow_kill)
    first.launch(offer, [task_info("1.0", offer, executor, mode="run")])
    first.ack(first.update("1.0", "TASK_RUNNING", timeout=20))
    first.close()  # the scheduler process is gone; its framework fails over

    again = Scheduler(double.master_address, info, framework_id=first.framework_id)
    kill = {"task_id": {"value": "1.0"}, "kill_policy": {"grace_period": {"nanoseconds": 10**10}}}
    assert again.call("KILL", kill).status == 202
    again.ack(again.update("1.0", "TASK_KILLING", timeout=10))

    def launch_again() -> dict[str, Any]:
        offer = again.offers(timeout=10)[0]
        again.launch(offer, [task_info("1.0", offer, executor, mode="run")], {"refuse_seconds": 0})
        status: dict[str, Any] = again.update("1.0", "TASK_ERROR", timeout=5)
        return status

    error = launch_again()
    assert (error["reason"], error["source"], error["message"]) == (
        "REASON_TASK_INVALID",
        "SOURCE_MASTER",
        "Task has duplicate ID: 1.0",
    )
    assert "uuid" not in error and error["agent_id"] == offer["agent_id"]
    assert double.tasks()["1.0"] == "TASK_KILLING"
    executors = double.state()["agent_processes"][0]["executors"]
    assert [e["tasks"] for e in executors] == [{"1.0": "TASK_KILLING"}]  # nothing reached it

    # Terminal but not yet acknowledged: still the framework's task, still a duplicate.
    killed = again.update("1.0", "TASK_KILLED", timeout=10)
    assert launch_again()["message"] == "Task has duplicate ID: 1.0"
    again.ack(killed)
    double.wait_for(lambda s: "1.0" not in s["frameworks"][again.framework_id]["tasks"])
    offer = again.offers(timeout=10)[0]
    again.launch(offer, [task_info("1.0", offer, executor, mode="run")])
    assert again.update("1.0", "TASK_RUNNING", timeout=20)["source"] == "SOURCE_EXECUTOR"
    again.close()
