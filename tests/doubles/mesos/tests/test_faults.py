"""Fault hooks: framework failover (08), agent restart (09), agent loss (10/10b), master restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.doubles.mesos import MesosDouble

from .conftest import FAST, recording
from .shapes import skeleton
from .wire_client import (
    Http,
    Scheduler,
    Subscription,
    default_framework_info,
    executor_info,
    task_info,
)

Make = Callable[..., Scheduler]


def _start_task(
    scheduler: Scheduler, task_id: str, executor_id: str, ack: bool = True, **command: Any
) -> dict[str, Any]:
    offer = scheduler.offers(timeout=10)[0]
    executor = executor_info(executor_id, **command)
    task = task_info(task_id, offer, executor, mode="run")
    assert scheduler.launch(offer, [task], filters={"refuse_seconds": 0}).status == 202
    running = scheduler.update(task_id, "TASK_RUNNING", timeout=20)
    if ack:
        scheduler.ack(running)
    return running


def _resubscribe(master: str, info: dict[str, Any], framework_id: str) -> Subscription:
    info = dict(info, id={"value": framework_id})
    body = {
        "type": "SUBSCRIBE",
        "framework_id": {"value": framework_id},
        "subscribe": {"framework_info": info},
    }
    return Subscription(master, "/api/v1/scheduler", body)


def test_framework_failover_timeout(fast_double: MesosDouble) -> None:
    double = fast_double
    info = default_framework_info(failover_timeout=1.0)
    scheduler = Scheduler(double.master_address, info)
    framework_id = scheduler.framework_id
    _start_task(scheduler, "t8-run", "exec8")
    scheduler.subscription.close()
    double.wait_for(lambda s: not s["frameworks"][framework_id]["connected"])

    again = _resubscribe(double.master_address, info, framework_id)
    assert [again.next()["type"], again.next()["type"]] == ["SUBSCRIBED", "HEARTBEAT"]
    offers = again.next_event("OFFERS", timeout=2)
    assert offers.t < 0.5  # recorded: within 2 ms of the re-subscription
    assert not [e for e in again.events if e.event["type"] == "UPDATE"]  # nothing re-sent
    http = Http(double.master_address)
    reconcile = {
        "framework_id": {"value": framework_id},
        "type": "RECONCILE",
        "reconcile": {"tasks": []},
    }
    http.request("/api/v1/scheduler", reconcile, headers={"Mesos-Stream-Id": again.stream_id or ""})
    status = again.next("UPDATE")["update"]["status"]
    assert (status["state"], status["reason"]) == ("TASK_RUNNING", "REASON_RECONCILIATION")

    again.close()
    state = double.wait_for(lambda s: framework_id in s["completed_frameworks"], timeout=5)
    assert framework_id not in state["frameworks"]
    # The executor got SHUTDOWN and exited; nothing of the framework is left on the agent.
    double.wait_for(
        lambda s: all(e["state"] == "terminated" for e in s["agent_processes"][0]["executors"]),
        timeout=5,
    )
    removed = _resubscribe(double.master_address, info, framework_id)
    assert removed.wait_closed() == "terminating chunk"
    assert (
        removed.events[0].record
        == b'{"type":"ERROR","error":{"message":"Framework has been removed"}}'
    )
    response = http.request(
        "/api/v1/scheduler",
        {"framework_id": {"value": framework_id}, "type": "REVIVE"},
        headers={"Mesos-Stream-Id": again.stream_id or ""},
    )
    assert (response.status, response.text) == (400, "Framework cannot be found")


def test_drop_subscription_hook(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    assert double.drop_subscription() == [scheduler.framework_id]
    assert scheduler.subscription.wait_closed().startswith("eof")
    assert scheduler.call("REVIVE").status == 403


def test_agent_restart_with_checkpointing(scheduler_factory: Make) -> None:
    with MesosDouble(agents=1, executor_reregistration_timeout=1.0) as double:
        _agent_restart(double, scheduler_factory)


def _agent_restart(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    _start_task(
        scheduler,
        "t9-run",
        "exec9",
        environment={"variables": [{"name": "SAMPLE_DOWN_UPDATE", "value": "1"}]},
    )
    pid = double.executor_pids()[f"{scheduler.framework_id}/exec9"]
    restarted = time.monotonic()
    double.restart_agent(0, downtime=0.5)
    # The pending update (sent while the agent was down) arrives twice with one uuid.
    first = scheduler.update("t9-run", timeout=10)
    second = scheduler.update("t9-run", timeout=10)
    assert first["message"] == "sent while agent was down"
    assert first["uuid"] == second["uuid"] and first == second
    assert time.monotonic() - restarted > 1.0  # after the re-registration timeout
    assert scheduler.ack(first).status == 202 and scheduler.ack(second).status == 202
    assert double.executor_pids()[f"{scheduler.framework_id}/exec9"] == pid
    before = [e.event["type"] for e in scheduler.subscription.events]
    assert "RESCIND" not in before and "FAILURE" not in before
    # The re-subscribed executor still gets KILL.
    scheduler.call("KILL", {"task_id": {"value": "t9-run"}})
    scheduler.ack(scheduler.update("t9-run", "TASK_KILLING", timeout=10))
    scheduler.ack(scheduler.update("t9-run", "TASK_KILLED", timeout=10))


def test_agent_restart_connection_refused_while_down(fast_double: MesosDouble) -> None:
    double = fast_double
    address = double.agent_addresses[0]
    import threading

    thread = threading.Thread(target=double.restart_agent, args=(0, 0.5))
    thread.start()
    time.sleep(0.2)
    try:
        Http(address).request("/api/v1/executor", {"type": "HEARTBEAT"})
        refused = False
    except ConnectionRefusedError:
        refused = True
    thread.join()
    assert refused


def test_agent_lost_partition_aware(fast_double: MesosDouble, scheduler_factory: Make) -> None:
    double = fast_double
    scheduler = scheduler_factory(double.master_address)
    _start_task(scheduler, "t10-run", "exec10")
    outstanding = scheduler.offers(timeout=5)[0]
    agent_id = outstanding["agent_id"]["value"]
    lost_at = time.monotonic()
    double.lose_agent(0)
    rescind = scheduler.subscription.next("RESCIND", timeout=2)
    assert rescind["rescind"]["offer_id"] == outstanding["id"]
    assert time.monotonic() - lost_at < 1.0
    unreachable = scheduler.update("t10-run", "TASK_UNREACHABLE", timeout=5)
    recorded = recording("10_agent_lost_partition_aware")["streams"][0]
    events = recorded.get("events") or recorded["response"]["events"]
    expected = next(
        e["event"]["update"]["status"]
        for e in events
        if e["event"]["type"] == "UPDATE"
        and e["event"]["update"]["status"]["state"] == "TASK_UNREACHABLE"
    )
    assert skeleton(unreachable) == skeleton(expected)
    failure = scheduler.subscription.next("FAILURE", timeout=2)
    assert failure == {"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}}
    state = double.state()
    assert agent_id not in {a for a, v in state["agents"].items() if not v["unreachable"]}
    scheduler.call(
        "RECONCILE", {"tasks": [{"task_id": {"value": "t10-run"}, "agent_id": {"value": agent_id}}]}
    )
    answer = scheduler.update("t10-run", "TASK_UNREACHABLE")
    assert answer["message"] == "Reconciliation: Task is unreachable"
    assert answer["unreachable_time"] == unreachable["unreachable_time"]
    assert "executor_id" not in answer


def test_agent_lost_and_back(fast_double: MesosDouble, scheduler_factory: Make) -> None:
    double = fast_double
    scheduler = scheduler_factory(double.master_address)
    _start_task(scheduler, "t10-run", "exec10", ack=False)  # 10b: RUNNING never acked
    double.lose_agent(0, restart_after=1.5)
    scheduler.update("t10-run", "TASK_UNREACHABLE", timeout=5)
    master_failed = scheduler.update("t10-run", "TASK_FAILED", timeout=10)
    assert (master_failed["source"], master_failed["reason"], master_failed["message"]) == (
        "SOURCE_MASTER",
        "REASON_AGENT_REREGISTERED",
        "Unreachable agent re-reregistered",
    )
    assert "uuid" not in master_failed and "container_status" in master_failed
    stale = [scheduler.update("t10-run", "TASK_RUNNING", timeout=5) for _ in range(2)]
    assert stale[0]["uuid"] == stale[1]["uuid"]
    scheduler.ack(stale[0])
    agent_failed = scheduler.update("t10-run", "TASK_FAILED", timeout=5)
    assert (agent_failed["source"], agent_failed["reason"]) == (
        "SOURCE_AGENT",
        "REASON_EXECUTOR_TERMINATED",
    )
    scheduler.ack(agent_failed)
    double.wait_for(lambda s: not any(f["tasks"] for f in s["frameworks"].values()))
    agent = double.agent_ids[0]
    scheduler.call(
        "RECONCILE", {"tasks": [{"task_id": {"value": "t10-run"}, "agent_id": {"value": agent}}]}
    )
    assert (
        scheduler.update("t10-run", "TASK_GONE")["message"]
        == "Reconciliation: Task is unknown to the agent"
    )


def test_agent_lost_not_partition_aware(fast_double: MesosDouble, scheduler_factory: Make) -> None:
    double = fast_double
    scheduler = scheduler_factory(
        double.master_address, capabilities=[{"type": "MULTI_ROLE"}], roles=["*"]
    )
    _start_task(scheduler, "t-lost", "e-lost")
    double.lose_agent(0)
    lost = scheduler.update("t-lost", "TASK_LOST", timeout=5)
    assert (lost["reason"], lost["message"]) == ("REASON_AGENT_REMOVED", "health check timed out")


def test_master_restart_in_memory_registry(scheduler_factory: Make) -> None:
    """As recordings 07 and 10b ran (--registry=in_memory): the restarted master knows no
    agent, and announces the tasks of each agent that re-registers (surprise 25)."""
    with MesosDouble(agents=1, registry="in_memory", **FAST) as double:
        _master_restart_in_memory(double, scheduler_factory)


def _master_restart_in_memory(double: MesosDouble, scheduler_factory: Make) -> None:
    info = default_framework_info(failover_timeout=0.5)
    scheduler = scheduler_factory(double.master_address, failover_timeout=0.5)
    framework_id = scheduler.framework_id
    running = _start_task(scheduler, "t7-run", "exec7")
    old_master = double.state()["master"]["id"]
    double.restart_master(downtime=0.3)
    assert scheduler.subscription.wait_closed().startswith("eof")
    again = _resubscribe(double.master_address, info, framework_id)
    subscribed = again.next("SUBSCRIBED")["subscribed"]
    assert subscribed["framework_id"]["value"] == framework_id
    assert subscribed["master_info"]["id"] != old_master
    update = again.next("UPDATE", timeout=10)["update"]["status"]
    assert (update["state"], update["reason"], update["message"], update["source"]) == (
        "TASK_RUNNING",
        "REASON_AGENT_REREGISTERED",
        "Unknown agent reregistered",
        "SOURCE_MASTER",
    )
    assert update["container_status"] == running["container_status"]
    offer = again.next("OFFERS", timeout=5)["offers"]["offers"][0]
    assert offer["id"]["value"].startswith(subscribed["master_info"]["id"] + "-O")
    assert offer["agent_id"]["value"] == running["agent_id"]["value"]
    time.sleep(0.8)  # longer than failover_timeout: the old master's timers must be gone
    state = double.state()
    assert state["frameworks"][framework_id]["connected"]
    assert state["frameworks"][framework_id]["tasks"] == {"t7-run": "TASK_RUNNING"}
    http = Http(double.master_address)
    kill = {
        "framework_id": {"value": framework_id},
        "type": "KILL",
        "kill": {"task_id": {"value": "t7-run"}},
    }
    assert (
        http.request(
            "/api/v1/scheduler", kill, headers={"Mesos-Stream-Id": again.stream_id or ""}
        ).status
        == 202
    )
    for wanted in ("TASK_KILLING", "TASK_KILLED"):

        def is_wanted(event: dict[str, Any], state: str = wanted) -> bool:
            return bool(event["type"] == "UPDATE" and event["update"]["status"]["state"] == state)

        status = again.next(is_wanted, timeout=10)["update"]["status"]
        assert status["task_id"]["value"] == "t7-run"
        ack = {
            "framework_id": {"value": framework_id},
            "type": "ACKNOWLEDGE",
            "acknowledge": {k: status[k] for k in ("agent_id", "task_id", "uuid")},
        }
        headers = {"Mesos-Stream-Id": again.stream_id or ""}
        assert http.request("/api/v1/scheduler", ack, headers=headers).status == 202
    again.close()
