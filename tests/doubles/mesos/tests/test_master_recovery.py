"""A master restart with the registry (issue 10 item 6, surprise 32).

Mesos 1.11 (src/master/master.cpp): a restarted master recovers the admitted agents from its
registry (``_recover``); they stay "recovered" until they re-register, which a running agent
does only when its ping timer fires (``Slave::pingTimeout``: agent_ping_timeout x
max_agent_ping_timeouts without a ping, 75 s by default; the standalone detector never names a
"new" master). Meanwhile explicit reconciliation of their tasks is dropped (``reconcile`` case
2), nothing is offered from them, and their re-registration announces nothing
(``__reregisterSlave`` sends REASON_AGENT_REREGISTERED updates only for agents that were not
recovered). The ping timeouts here are 0.5 s x 4 instead of 15 s x 5.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.doubles.mesos import MesosDouble

from .wire_client import (
    Http,
    Scheduler,
    Subscription,
    default_framework_info,
    executor_info,
    task_info,
)

Make = Callable[..., Scheduler]
PING = 0.5
PINGS = 4


def _running_task(scheduler: Scheduler, task_id: str) -> dict[str, Any]:
    offer = scheduler.offers(timeout=10)[0]
    task = task_info(task_id, offer, executor_info("e-" + task_id), mode="run")
    assert scheduler.launch(offer, [task], filters={"refuse_seconds": 0}).status == 202
    running = scheduler.update(task_id, "TASK_RUNNING", timeout=20)
    scheduler.ack(running)
    return running


def _reconcile(scheduler: Scheduler, *entries: tuple[str, str | None]) -> None:
    tasks = []
    for task_id, agent_id in entries:
        entry: dict[str, Any] = {"task_id": {"value": task_id}}
        if agent_id is not None:
            entry["agent_id"] = {"value": agent_id}
        tasks.append(entry)
    assert scheduler.call("RECONCILE", {"tasks": tasks}).status == 202


def _updates_before_marker(
    subscription: Subscription, marker: str, after: str | None = None
) -> list[dict[str, Any]]:
    """The UPDATEs that arrived before the answer about ``marker`` (and after the one about
    ``after``): events are ordered, so what is not there by then was not sent."""
    subscription.next(
        lambda e: e["type"] == "UPDATE" and e["update"]["status"]["task_id"]["value"] == marker
    )
    updates: list[dict[str, Any]] = []
    for event in subscription.events:
        if event.event["type"] != "UPDATE":
            continue
        status = event.event["update"]["status"]
        if status["task_id"]["value"] == marker:
            break
        if status["task_id"]["value"] == after:
            updates.clear()
            continue
        updates.append(status)
    return updates


def test_default_ping_timeout_is_mesos() -> None:
    with MesosDouble(agents=1) as double:
        agent = double.state()["agent_processes"][0]
        assert agent["master_ping_timeout"] == 75.0  # 15 s x 5, told by the master


def test_restarted_master_recovers_agents_and_drops_their_reconciliation() -> None:
    with MesosDouble(
        agents=1, allocation_interval=0.2, agent_ping_timeout=PING, max_agent_ping_timeouts=PINGS
    ) as double:
        info = default_framework_info(failover_timeout=60)
        first = Scheduler(double.master_address, info)
        running = _running_task(first, "t-rec")
        agent_id = running["agent_id"]["value"]
        restarted = time.monotonic()
        double.restart_master()
        assert first.subscription.wait_closed().startswith("eof")
        first.close()

        # The scheduler is back at once; the agent is only known from the registry.
        scheduler = Scheduler(double.master_address, info, framework_id=first.framework_id)
        assert scheduler.subscribed["type"] == "SUBSCRIBED"
        state = double.state()
        assert state["master"]["recovered_agents"] == [agent_id]
        assert state["agents"] == {}
        agents = Http(double.master_address).request("/api/v1", {"type": "GET_AGENTS"})
        listed = json.loads(agents.body)["get_agents"]
        assert listed["agents"] == []
        assert [a["id"]["value"] for a in listed["recovered_agents"]] == [agent_id]

        # Explicit reconciliation of its task is dropped, with or without the agent id; a task
        # on an agent the master never knew is answered (TASK_UNKNOWN) and marks the order.
        dropped = double.counters()["reconciliations_dropped"]
        _reconcile(scheduler, ("t-rec", agent_id), ("t-rec", None), ("marker-1", "no-such-agent"))
        before = _updates_before_marker(scheduler.subscription, "marker-1")
        assert not [u for u in before if u["task_id"]["value"] == "t-rec"]
        assert not scheduler.subscription.of_type("OFFERS")  # nothing to offer yet
        assert double.counters()["reconciliations_dropped"] == dropped + 2
        # Implicit reconciliation knows no task of the recovered agent either.
        assert scheduler.call("RECONCILE", {"tasks": []}).status == 202

        # The agent comes back only after its ping timeout (PING x PINGS after the last ping).
        state = double.wait_for(lambda s: agent_id in s["agents"], timeout=PING * PINGS + 10)
        back = time.monotonic() - restarted
        assert back > PING * (PINGS - 1), back
        assert state["master"]["recovered_agents"] == []
        assert state["agent_processes"][0]["ping_timeouts"] == 1
        offer = scheduler.offers(timeout=5)[0]
        assert offer["agent_id"]["value"] == agent_id

        # Its re-registration announced nothing; reconciliation now answers from its report.
        _reconcile(scheduler, ("t-rec", agent_id), ("marker-2", "no-such-agent"))
        answered = _updates_before_marker(scheduler.subscription, "marker-2", "marker-1")
        assert [(u["task_id"]["value"], u.get("reason")) for u in answered] == [
            ("t-rec", "REASON_RECONCILIATION")
        ]
        assert answered[0]["state"] == "TASK_RUNNING"
        assert answered[0]["container_status"] == running["container_status"]
        scheduler.close()


def test_fast_mode_reregisters_at_once() -> None:
    with MesosDouble(agents=1, fast_agent_reregistration=True) as double:
        agent_id = double.agent_ids[0]
        restarted = time.monotonic()
        double.restart_master()
        double.wait_for(lambda s: agent_id in s["agents"], timeout=5)
        assert time.monotonic() - restarted < 5  # not the 75 s ping timeout
        assert double.state()["agent_processes"][0]["ping_timeouts"] == 0


def test_recovered_agent_not_back_in_time_is_unreachable() -> None:
    """Master::recoveredSlavesTimeout: FAILURE{agent_id}, no task updates (the master knows
    none); the agent that comes back later is an unreachable one re-registering."""
    with MesosDouble(
        agents=1,
        allocation_interval=0.2,
        agent_ping_timeout=1.0,
        max_agent_ping_timeouts=3,
        agent_reregister_timeout=1.0,
    ) as double:
        info = default_framework_info(failover_timeout=60)
        first = Scheduler(double.master_address, info)
        _running_task(first, "t-late")
        agent_id = double.agent_ids[0]
        double.restart_master()
        first.close()
        scheduler = Scheduler(double.master_address, info, framework_id=first.framework_id)
        failure = scheduler.subscription.next("FAILURE", timeout=5)
        assert failure == {"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}}
        assert double.state()["agents"][agent_id]["unreachable"]
        _reconcile(scheduler, ("t-late", agent_id))
        answer = scheduler.update("t-late", "TASK_UNREACHABLE", timeout=5)
        assert answer["message"] == "Reconciliation: Task is unreachable"
        back = scheduler.update("t-late", timeout=10)
        assert (back["state"], back["reason"], back["message"]) == (
            "TASK_RUNNING",
            "REASON_AGENT_REREGISTERED",
            "Unreachable agent re-reregistered",
        )
        scheduler.close()


def test_registry_keeps_unreachable_agents() -> None:
    with MesosDouble(agents=1, allocation_interval=0.2, agent_removal_timeout=1.0) as double:
        agent_id = double.agent_ids[0]
        double.lose_agent(0)
        double.wait_for(lambda s: s["agents"][agent_id]["unreachable"], timeout=5)
        double.restart_master()
        state = double.state()
        assert state["agents"][agent_id]["unreachable"]
        assert state["master"]["recovered_agents"] == []
        scheduler = Scheduler(double.master_address)
        _reconcile(scheduler, ("t-gone", agent_id))
        answer = scheduler.update("t-gone", "TASK_UNREACHABLE", timeout=5)
        assert answer["message"] == "Reconciliation: Task is unreachable"
        scheduler.close()


def test_in_memory_registry_forgets() -> None:
    with MesosDouble(agents=1, registry="in_memory", fast_agent_reregistration=True) as double:
        double.restart_master()
        state = double.state()
        assert state["master"]["registry"] == "in_memory"
        assert state["master"]["recovered_agents"] == []
