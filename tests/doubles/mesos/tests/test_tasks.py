"""Task life cycle with the sample executor: messages, kill, executor exit, reconciliation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.doubles.mesos import MesosDouble

from .conftest import recording
from .shapes import skeleton
from .wire_client import Scheduler, b64, executor_info, task_info

Make = Callable[..., Scheduler]
REC3 = recording("03_message_kill_executor_exit")
REC4 = recording("04_decline_suppress_revive_reconcile")


def _recorded(rec: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    stream = rec["streams"][0]
    events = stream.get("events") or stream["response"]["events"]
    return next(e["event"] for e in events if predicate(e["event"]))


def _update(rec: dict[str, Any], task_id: str, state: str) -> dict[str, Any]:
    def match(e: dict[str, Any]) -> bool:
        if e["type"] != "UPDATE":
            return False
        status = e["update"]["status"]
        return bool(status["task_id"]["value"] == task_id and status["state"] == state)

    return _recorded(rec, match)


def _running(
    scheduler: Scheduler, task_ids: list[str], executor_id: str = "exec3"
) -> dict[str, Any]:
    offer = scheduler.offers()[0]
    executor = executor_info(executor_id)
    tasks = [task_info(t, offer, executor, mode="run") for t in task_ids]
    assert scheduler.launch(offer, tasks).status == 202
    for task_id in task_ids:
        scheduler.ack(scheduler.update(task_id, "TASK_RUNNING", timeout=20))
    return offer


def test_message_kill_and_executor_exit(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = _running(scheduler, ["t3-keep", "t3-kill"])
    agent_id = offer["agent_id"]
    # Scheduler MESSAGE -> executor -> echo back as a scheduler MESSAGE event.
    message = {"agent_id": agent_id, "executor_id": {"value": "exec3"}, "data": b64("ping")}
    assert scheduler.call("MESSAGE", message).status == 202
    echo = scheduler.subscription.next("MESSAGE")
    assert skeleton(echo) == skeleton(_recorded(REC3, lambda e: e["type"] == "MESSAGE"))
    assert echo["message"]["data"] == b64("echo:ping")

    # KILL: TASK_KILLING then TASK_KILLED from the executor.
    assert (
        scheduler.call("KILL", {"task_id": {"value": "t3-kill"}, "agent_id": agent_id}).status
        == 202
    )
    killing = scheduler.update("t3-kill", "TASK_KILLING")
    assert skeleton(killing) == skeleton(
        _update(REC3, "t3-kill", "TASK_KILLING")["update"]["status"]
    )
    scheduler.ack(killing)
    scheduler.ack(scheduler.update("t3-kill", "TASK_KILLED"))

    # KILL of unknown tasks: reconciliation-style answers (surprise 15).
    scheduler.call("KILL", {"task_id": {"value": "no-such-task"}, "agent_id": agent_id})
    scheduler.call("KILL", {"task_id": {"value": "no-such-task-2"}})
    gone = scheduler.update("no-such-task")
    unknown = scheduler.update("no-such-task-2")
    assert skeleton(gone) == skeleton(
        _update(REC3, "no-such-task", "TASK_GONE")["update"]["status"]
    )
    assert skeleton(unknown) == skeleton(
        _update(REC3, "no-such-task-2", "TASK_UNKNOWN")["update"]["status"]
    )

    # MESSAGE 'exit': the executor exits with 7 -> FAILURE(status 1792), then TASK_FAILED.
    message["data"] = b64("exit")
    scheduler.call("MESSAGE", message)
    failure = scheduler.subscription.next("FAILURE", timeout=10)
    assert failure == {
        "type": "FAILURE",
        "failure": {"agent_id": agent_id, "executor_id": {"value": "exec3"}, "status": 1792},
    }
    failed = scheduler.update("t3-keep", "TASK_FAILED")
    assert skeleton(failed) == skeleton(_update(REC3, "t3-keep", "TASK_FAILED")["update"]["status"])
    assert failed["message"] == "Executor terminated" and "uuid" in failed
    types = [e.event["type"] for e in scheduler.subscription.events]
    assert types.index("FAILURE") < len(types) - 1 - types[::-1].index("UPDATE")
    assert scheduler.ack(failed).status == 202
    assert scheduler.ack(failed).status == 202  # a duplicate ACK is fine too


def test_kill_minus_nine_via_hook(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = _running(scheduler, ["t3-k9"], executor_id="exec3k9")
    pids = double.executor_pids()
    assert any(key.endswith("/exec3k9") for key in pids)
    assert double.kill_executor("exec3k9")
    failure = scheduler.subscription.next("FAILURE", timeout=10)
    assert failure["failure"] == {
        "agent_id": offer["agent_id"],
        "executor_id": {"value": "exec3k9"},
        "status": 35072,
    }
    failed = scheduler.update("t3-k9", "TASK_FAILED")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED" and failed["source"] == "SOURCE_AGENT"
    scheduler.ack(failed)
    # The executor's resources and the task's come back in the next offer.
    again = scheduler.offers(timeout=5)[0]
    cpus = next(r for r in again["resources"] if r["name"] == "cpus")["scalar"]["value"]
    assert cpus == 2.0


def test_reconcile_as_recorded(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = _running(scheduler, ["t4-run"], executor_id="exec4")
    agent = offer["agent_id"]
    tasks = [
        {"task_id": {"value": "t4-run"}, "agent_id": agent},
        {"task_id": {"value": "t4-run"}},
        {"task_id": {"value": "t4-unknown-with-agent"}, "agent_id": agent},
        {"task_id": {"value": "t4-unknown-no-agent"}},
        {"task_id": {"value": "t4-unknown-bad-agent"}, "agent_id": {"value": "no-such-agent-S9"}},
    ]
    assert scheduler.call("RECONCILE", {"tasks": tasks}).status == 202
    got = [scheduler.update() for _ in tasks]
    stream = REC4["streams"][0]
    recorded = [
        e["event"]["update"]["status"]
        for e in stream["response"]["events"]
        if e["event"]["type"] == "UPDATE"
        and e["event"]["update"]["status"]["source"] == "SOURCE_MASTER"
    ]
    assert [skeleton(s) for s in got] == [skeleton(s) for s in recorded[:5]]
    assert [s["message"] for s in got] == [s["message"] for s in recorded[:5]]
    assert got[4]["agent_id"] == {"value": "no-such-agent-S9"}
    # Implicit: tasks [] and no tasks field at all.
    bodies: list[dict[str, Any]] = [{"tasks": []}, {}]
    for body in bodies:
        assert scheduler.call("RECONCILE", body).status == 202
        status = scheduler.update("t4-run")
        assert skeleton(status) == skeleton(recorded[5])


def test_reconcile_not_partition_aware_gives_lost(
    double: MesosDouble, scheduler_factory: Make
) -> None:
    scheduler = scheduler_factory(
        double.master_address, capabilities=[{"type": "MULTI_ROLE"}], roles=["*"]
    )
    scheduler.offers()
    scheduler.call("RECONCILE", {"tasks": [{"task_id": {"value": "x"}}]})
    assert scheduler.update("x")["state"] == "TASK_LOST"


def test_shutdown_executor_call(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = _running(scheduler, ["t-shut"], executor_id="e-shut")
    body = {"executor_id": {"value": "e-shut"}, "agent_id": offer["agent_id"]}
    assert scheduler.call("SHUTDOWN", body).status == 202
    # The sample executor kills its task on SHUTDOWN and exits 0.
    killed = scheduler.update("t-shut", "TASK_KILLED", timeout=10)
    scheduler.ack(killed)
    failure = scheduler.subscription.next("FAILURE", timeout=10)
    assert failure["failure"]["status"] == 0


def test_launch_group(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    executor = executor_info("e-group")
    # A task group's executor needs cpus, mem and disk (group::internal::validateExecutor).
    executor["resources"].append({"name": "disk", "type": "SCALAR", "scalar": {"value": 8}})
    tasks = []
    for name in ("g1", "g2"):
        task = task_info(name, offer, executor)
        del task["executor"]
        tasks.append(task)
    operation = {
        "type": "LAUNCH_GROUP",
        "launch_group": {"executor": executor, "task_group": {"tasks": tasks}},
    }
    response = scheduler.call("ACCEPT", {"offer_ids": [offer["id"]], "operations": [operation]})
    assert response.status == 202
    for name in ("g1", "g2"):
        for state in ("TASK_RUNNING", "TASK_FINISHED"):
            scheduler.ack(scheduler.update(name, state, timeout=20))


def test_command_task_is_refused_cleanly(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    task = task_info("t-cmd", offer, executor_info("unused"))
    del task["executor"]
    task["command"] = {"value": "true"}
    scheduler.launch(offer, [task])
    failed = scheduler.update("t-cmd", "TASK_FAILED", timeout=5)
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    scheduler.ack(failed)
    double.wait_for(lambda s: "t-cmd" in next(iter(s["frameworks"].values()))["completed_tasks"])


def test_update_framework(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    scheduler.offers()
    info = dict(scheduler.info, id={"value": scheduler.framework_id}, name="renamed")
    body = {"framework_info": info, "suppressed_roles": ["*"]}
    response = scheduler.call("UPDATE_FRAMEWORK", body)
    assert (response.status, response.body) == (200, b"")
    state = double.state()["frameworks"][scheduler.framework_id]
    assert (state["name"], state["suppressed"]) == ("renamed", ["*"])
    bad = dict(info, id={"value": "other"})
    response = scheduler.call("UPDATE_FRAMEWORK", {"framework_info": bad})
    assert response.status == 400
    assert "'framework_id' differs from 'update_framework.framework_info.id'" in response.text
