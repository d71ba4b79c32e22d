"""Replay of 01/01b: SUBSCRIBE headers, SUBSCRIBED/HEARTBEAT/OFFERS shapes, TEARDOWN."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.doubles.mesos import AgentSpec, MesosDouble

from .conftest import recording
from .replay import Ids, replay
from .shapes import skeleton
from .wire_client import Http, Subscription


def _stream(name: str) -> dict[str, Any]:
    stream: dict[str, Any] = recording(name)["streams"][0]
    return stream


def _events(stream: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = stream.get("events") or stream["response"]["events"]
    return events


def _subscribe(master: str, stream: dict[str, Any]) -> Subscription:
    return Subscription(master, "/api/v1/scheduler", json.loads(stream["request"]["body"]))


def test_subscribe_multi_role_as_recorded(double: MesosDouble) -> None:
    recorded = _stream("01_subscribe")
    sub = _subscribe(double.master_address, recorded)
    assert sub.status == 200
    assert [k for k, _ in sub.response_headers] == [k for k, _ in recorded["response"]["headers"]]
    events = _events(recorded)
    subscribed = sub.next()
    assert skeleton(subscribed) == skeleton(events[0]["event"])
    assert subscribed["subscribed"]["master_info"]["capabilities"] == [
        {"type": "AGENT_UPDATE"},
        {"type": "AGENT_DRAINING"},
        {},
    ]
    assert subscribed["subscribed"]["master_info"]["ip"] == 16777343
    heartbeat = sub.next_event("HEARTBEAT")
    assert heartbeat.record == b'{"type":"HEARTBEAT"}'
    assert sub.events[1] is heartbeat  # at once after SUBSCRIBED
    offers = sub.next_event("OFFERS")
    assert skeleton(offers.event) == skeleton(events[2]["event"])
    # Offers to a new framework come at once, not at the next allocation tick.
    assert offers.t < 0.5

    ids = Ids()
    ids.add(
        "89e7c902-a90d-4a9d-95bf-14e33342518d-0003",
        subscribed["subscribed"]["framework_id"]["value"],
    )
    ids.add(recorded["response"]["headers"][2][1], sub.stream_id)
    teardown = recording("01_subscribe")["exchanges"][0]
    replay(Http(double.master_address), teardown, ids)
    assert sub.wait_closed() == "terminating chunk"
    assert all(e.event["type"] != "ERROR" for e in sub.events)


def test_subscribe_legacy_offer_shape(double: MesosDouble) -> None:
    recorded = _stream("01b_subscribe_legacy_no_role")
    sub = _subscribe(double.master_address, recorded)
    offers = sub.next("OFFERS")
    expected = next(e["event"] for e in _events(recorded) if e["event"]["type"] == "OFFERS")
    assert skeleton(offers) == skeleton(expected)
    resource = offers["offers"]["offers"][0]["resources"][0]
    assert resource["role"] == "*" and "allocation_info" not in resource
    sub.close()


def test_heartbeats_follow_the_interval() -> None:
    with MesosDouble(agents=1, heartbeat_interval=0.3) as double:
        sub = _subscribe(double.master_address, _stream("01_subscribe"))
        subscribed = sub.next("SUBSCRIBED")
        assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 0.3
        first = sub.next_event("HEARTBEAT")
        second = sub.next_event("HEARTBEAT")
        assert 0.2 < second.t - first.t < 0.6
        sub.close()


def test_offer_attributes_and_gpu_agents() -> None:
    agents = [
        AgentSpec(resources="cpus:1;mem:512", attributes="rack:r1;level:10;keys:[1000-1500]"),
        AgentSpec(resources="cpus:1;mem:512;gpus:1"),
    ]
    with MesosDouble(agents=agents) as double:
        plain = Subscription(
            double.master_address,
            "/api/v1/scheduler",
            {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "plain"}}},
        )
        offers = plain.next("OFFERS")["offers"]["offers"]
        # Without GPU_RESOURCES the GPU agent is never offered.
        assert len(offers) == 1
        assert offers[0]["attributes"] == [
            {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
            {"name": "level", "type": "SCALAR", "scalar": {"value": 10.0}},
            {"name": "keys", "type": "RANGES", "ranges": {"range": [{"begin": 1000, "end": 1500}]}},
        ]
        plain.close()
        gpu = Subscription(
            double.master_address,
            "/api/v1/scheduler",
            {
                "type": "SUBSCRIBE",
                "subscribe": {
                    "framework_info": {
                        "user": "u",
                        "name": "gpu",
                        "capabilities": [{"type": "GPU_RESOURCES"}],
                    }
                },
            },
        )
        deadline = time.monotonic() + 5
        names: set[str] = set()
        while time.monotonic() < deadline and "gpus" not in names:
            for offer in gpu.next("OFFERS")["offers"]["offers"]:
                names |= {r["name"] for r in offer["resources"]}
        assert "gpus" in names
        gpu.close()
