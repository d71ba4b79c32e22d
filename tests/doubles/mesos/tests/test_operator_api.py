"""Operator API (11/11b): agents, deactivation, maintenance with inverse offers, drain."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.doubles.mesos import AgentSpec, MesosDouble

from .conftest import recording
from .replay import Ids, replay
from .shapes import skeleton
from .wire_client import Http, Scheduler, Subscription, executor_info, task_info

Make = Callable[..., Scheduler]
REC11 = recording("11_operator_api_maintenance_drain")
REC11B = recording("11b_drain_agent")
RECORDED_AGENT = "89e7c902-a90d-4a9d-95bf-14e33342518d-S0"


def _exchange(rec: dict[str, Any], label: str) -> dict[str, Any]:
    return next(e for e in rec["exchanges"] if e["label"] == label)


def _operator(http: Http, call: dict[str, Any]) -> Any:
    response = http.request("/api/v1", call)
    assert response.status == 200, response.text
    return json.loads(response.body) if response.body else None


def _recorded_double() -> MesosDouble:
    return MesosDouble(
        agents=[AgentSpec(resources="cpus:2;mem:23081;disk:252899")], allocation_interval=0.5
    )


def test_get_agents_and_deactivation_as_recorded(scheduler_factory: Make) -> None:
    with _recorded_double() as double:
        scheduler = scheduler_factory(double.master_address)
        offer = scheduler.offers()[0]
        http = Http(double.master_address)
        ids = Ids()
        ids.add(RECORDED_AGENT, double.agent_ids[0])
        agents = _operator(http, {"type": "GET_AGENTS"})
        recorded = json.loads(_exchange(REC11, "GET_AGENTS")["response"]["body"])
        # The recorded agent had re-registered once; a fresh one has no reregistered_time.
        del recorded["get_agents"]["agents"][0]["reregistered_time"]
        assert skeleton(agents) == skeleton(recorded)
        label = "DEACTIVATE_AGENT (offer 26f0be36-ff58-4228-ad05-1d5957bcb29c-O5 outstanding)"
        replay(http, _exchange(REC11, label), ids)
        assert (
            scheduler.subscription.next("RESCIND", timeout=2)["rescind"]["offer_id"] == offer["id"]
        )
        deactivated = _operator(http, {"type": "GET_AGENTS"})
        expected = json.loads(_exchange(REC11, "GET_AGENTS while deactivated")["response"]["body"])
        del expected["get_agents"]["agents"][0]["reregistered_time"]
        assert skeleton(deactivated) == skeleton(expected)
        time.sleep(1.2)
        assert not scheduler.subscription.of_type("OFFERS")[1:]
        replay(http, _exchange(REC11, "REACTIVATE_AGENT"), ids)
        assert scheduler.offers(timeout=2)
        replay(http, _exchange(REC11, "REACTIVATE_AGENT again (agent already active)"), ids)
        replay(http, _exchange(REC11, "DEACTIVATE_AGENT unknown agent id"), ids)
        unknown = _exchange(
            REC11B, 'DRAIN_AGENT unknown agent, max_grace_period "5s" (proto3 JSON string form)'
        )
        replay(http, unknown, ids)


def test_maintenance_schedule_and_inverse_offers(scheduler_factory: Make) -> None:
    with _recorded_double() as double:
        scheduler = scheduler_factory(double.master_address)
        offer = scheduler.offers()[0]
        task = task_info("t11-a", offer, executor_info("exec11"), mode="run")
        scheduler.launch(offer, [task], filters={"refuse_seconds": 0})
        scheduler.ack(scheduler.update("t11-a", "TASK_RUNNING", timeout=20))
        outstanding = scheduler.offers(timeout=3)[0]
        http = Http(double.master_address)
        start = int(time.time() * 1e9)
        window = {
            "machine_ids": [{"hostname": "127.0.0.1", "ip": "127.0.0.1"}],
            "unavailability": {
                "start": {"nanoseconds": start},
                "duration": {"nanoseconds": 3600 * 10**9},
            },
        }
        schedule = {"windows": [window]}
        call = {
            "type": "UPDATE_MAINTENANCE_SCHEDULE",
            "update_maintenance_schedule": {"schedule": schedule},
        }
        response = http.request("/api/v1", call)
        assert (response.status, [k for k, _ in response.headers]) == (
            200,
            ["Date", "Content-Length"],
        )
        assert (
            scheduler.subscription.next("RESCIND", timeout=2)["rescind"]["offer_id"]
            == outstanding["id"]
        )
        reoffer = scheduler.offers(timeout=2)[0]
        assert reoffer["unavailability"] == window["unavailability"]
        inverse = scheduler.subscription.next("INVERSE_OFFERS", timeout=2)
        events = REC11["streams"][0]["response"]["events"]
        recorded_inverse = next(
            e["event"] for e in events if e["event"]["type"] == "INVERSE_OFFERS"
        )
        assert skeleton(inverse) == skeleton(recorded_inverse)
        assert _operator(http, {"type": "GET_MAINTENANCE_SCHEDULE"}) == {
            "type": "GET_MAINTENANCE_SCHEDULE",
            "get_maintenance_schedule": {"schedule": schedule},
        }
        status = _operator(http, {"type": "GET_MAINTENANCE_STATUS"})
        assert status["get_maintenance_status"]["status"]["draining_machines"] == [
            {"id": {"hostname": "127.0.0.1", "ip": "127.0.0.1"}}
        ]
        inverse_id = inverse["inverse_offers"]["inverse_offers"][0]["id"]
        body = {"inverse_offer_ids": [inverse_id], "filters": {"refuse_seconds": 1}}
        assert scheduler.call("ACCEPT_INVERSE_OFFERS", body).status == 202
        unknown = {"inverse_offer_ids": [{"value": "no-such-inverse-offer"}]}
        assert scheduler.call("ACCEPT_INVERSE_OFFERS", unknown).status == 202
        status = _operator(http, {"type": "GET_MAINTENANCE_STATUS"})
        statuses = status["get_maintenance_status"]["status"]["draining_machines"][0]["statuses"]
        assert statuses[0]["status"] == "ACCEPT"
        # Inverse offers keep coming back after the refuse filter.
        scheduler.subscription.next("INVERSE_OFFERS", timeout=3)
        # DRAIN_AGENT is refused for a scheduled machine.
        drain = {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": double.agent_ids[0]}}}
        response = http.request("/api/v1", drain)
        assert (response.status, response.text) == (
            400,
            f"Agent {double.agent_ids[0]} is part of a maintenance schedule under Machine "
            "127.0.0.1 (127.0.0.1)",
        )
        # Clearing the schedule: RESCIND, RESCIND_INVERSE_OFFER, fresh offers (no unavailability).
        clear = {
            "type": "UPDATE_MAINTENANCE_SCHEDULE",
            "update_maintenance_schedule": {"schedule": {}},
        }
        assert http.request("/api/v1", clear).status == 200
        scheduler.subscription.next("RESCIND", timeout=2)
        scheduler.subscription.next("RESCIND_INVERSE_OFFER", timeout=2)
        fresh = scheduler.offers(timeout=2)[0]
        assert "unavailability" not in fresh
        assert _operator(http, {"type": "GET_MAINTENANCE_STATUS"})["get_maintenance_status"] == {
            "status": {}
        }


def _wait_executors(double: MesosDouble, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        executors = {
            e["executor_id"]: e for p in double.state()["agent_processes"] for e in p["executors"]
        }
        if len([e for e in executors.values() if e["pid"]]) >= count:
            return executors
        time.sleep(0.02)
    raise TimeoutError("executors did not start")


def test_drain_agent_as_recorded(scheduler_factory: Make) -> None:
    """The test plays both recorded executors (11b), so it sees the exact KILL events."""
    with _recorded_double() as double:
        stream = REC11B["streams"][0]
        info = json.loads(stream["request"]["body"])["subscribe"]["framework_info"]
        scheduler = scheduler_factory(double.master_address, **info)
        ids = Ids()
        ids.add("26f0be36-ff58-4228-ad05-1d5957bcb29c-0003", scheduler.framework_id)
        ids.add(RECORDED_AGENT, double.agent_ids[0])
        offer = scheduler.offers()[0]
        launch = _exchange(
            REC11B, "ACCEPT LAUNCH t11b-run (no kill_policy) + t11b-kp (kill_policy 2 s)"
        )
        body = json.loads(ids.to_ours(launch["request"]["body"]))
        body["accept"]["offer_ids"] = [offer["id"]]
        body["accept"]["filters"] = {"refuse_seconds": 0}
        for task in body["accept"]["operations"][0]["launch"]["task_infos"]:
            task["executor"]["command"]["value"] = "exec sleep 60"
        assert scheduler.call("ACCEPT", body["accept"]).status == 202
        _wait_executors(double, 2)
        executors = {}
        agent = Http(double.agent_addresses[0])
        for name in ("exec11b_transcript", "exec11b2_transcript"):
            transcript = REC11B["extra"][name]
            sub_body = json.loads(ids.to_ours(transcript["subscribe"]["request"]["body"]))
            sub = Subscription(double.agent_addresses[0], "/api/v1/executor", sub_body)
            sub.next("SUBSCRIBED")
            sub.next("LAUNCH")
            executors[name] = (sub, transcript)
            running = next(c for c in transcript["calls"] if "TASK_RUNNING" in c["label"])
            replay(agent, running, ids)
            scheduler.ack(scheduler.update(timeout=5))
        outstanding = scheduler.offers(timeout=3)[0]
        http = Http(double.master_address)
        drain_call = _exchange(
            REC11B,
            "DRAIN_AGENT max_grace_period {seconds: 5} (as written in the brief; "
            "DurationInfo has only nanoseconds)",
        )
        replay(http, drain_call, ids)
        assert (
            scheduler.subscription.next("RESCIND", timeout=2)["rescind"]["offer_id"]
            == outstanding["id"]
        )
        for sub, transcript in executors.values():
            recorded_events = [e["event"] for e in transcript["subscribe"]["response"]["events"]]
            recorded_kill = next(e for e in recorded_events if e["type"] == "KILL")
            assert sub.next("KILL", timeout=3) == recorded_kill
        agents = _operator(http, {"type": "GET_AGENTS"})["get_agents"]["agents"][0]
        assert (agents["active"], agents["deactivated"], agents["drain_info"]["state"]) == (
            False,
            True,
            "DRAINING",
        )
        assert agents["drain_info"]["config"] == {
            "max_grace_period": {"nanoseconds": 5000000000},
            "mark_gone": False,
        }
        for sub, transcript in executors.values():
            for call in transcript["calls"]:
                if "KILL" in call["label"]:
                    replay(agent, call, ids)
                    status = scheduler.update(timeout=5)
                    assert status["reason"] == "REASON_AGENT_DRAINING"
                    assert sub.next("ACKNOWLEDGED", timeout=3)
                    scheduler.ack(status)
        double.wait_for(
            lambda s: next(iter(s["agents"].values()))["drain"]["state"] == "DRAINED", timeout=5
        )
        time.sleep(0.7)
        assert not scheduler.subscription.of_type("OFFERS")[2:]  # no offers while drained
        # Executors are not shut down by draining.
        assert all(sub.closed is None for sub, _ in executors.values())
        replay(http, _exchange(REC11B, "REACTIVATE_AGENT after drain"), ids)
        assert scheduler.offers(timeout=2)
        agents = _operator(http, {"type": "GET_AGENTS"})["get_agents"]["agents"][0]
        assert "drain_info" not in agents and agents["active"]


def test_drain_duration_parsing(double: MesosDouble) -> None:
    http = Http(double.master_address)
    agent_id = double.agent_ids[0]
    for period, expected in (({"nanoseconds": 5000000000}, {"nanoseconds": 0}), (None, None)):
        call: dict[str, Any] = {
            "type": "DRAIN_AGENT",
            "drain_agent": {"agent_id": {"value": agent_id}},
        }
        if period is not None:
            call["drain_agent"]["max_grace_period"] = period
        assert http.request("/api/v1", call).status == 200
        agent = _operator(http, {"type": "GET_AGENTS"})["get_agents"]["agents"][0]
        assert agent["drain_info"]["state"] == "DRAINED"  # no tasks: drained at once
        assert agent["drain_info"]["config"].get("max_grace_period") == expected
        assert (
            http.request(
                "/api/v1",
                {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": agent_id}}},
            ).status
            == 200
        )


def test_get_tasks_and_frameworks(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    scheduler.launch(offer, [task_info("t-op", offer, executor_info("e-op"), mode="run")])
    scheduler.ack(scheduler.update("t-op", "TASK_RUNNING", timeout=20))
    http = Http(double.master_address)
    tasks = _operator(http, {"type": "GET_TASKS"})["get_tasks"]["tasks"]
    assert [(t["task_id"]["value"], t["state"]) for t in tasks] == [("t-op", "TASK_RUNNING")]
    frameworks = _operator(http, {"type": "GET_FRAMEWORKS"})["get_frameworks"]["frameworks"]
    assert frameworks[0]["framework_info"]["id"]["value"] == scheduler.framework_id
    response = http.request("/api/v1", {"type": "NOPE"})
    assert (response.status, response.text) == (
        400,
        "Failed to validate master::Call: Expecting 'type' to be present",
    )
    response = http.request("/master/redirect", method="GET", content_type=None)
    assert (response.status, response.header("Location")) == (307, f"//{double.master_address}")
