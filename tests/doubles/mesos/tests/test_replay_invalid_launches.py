"""Replay of 06_invalid_launches: master-generated TASK_ERROR/DROPPED/LOST updates."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.doubles.mesos import AgentSpec, MesosDouble

from .conftest import recording
from .replay import Ids
from .shapes import skeleton
from .wire_client import Scheduler, executor_info

REC = recording("06_invalid_launches")
RECORDED_AGENT = "89e7c902-a90d-4a9d-95bf-14e33342518d-S0"


def _updates(stream: dict[str, Any]) -> list[dict[str, Any]]:
    events = stream.get("events") or stream["response"]["events"]
    return [e["event"]["update"]["status"] for e in events if e["event"]["type"] == "UPDATE"]


@pytest.mark.parametrize("part", ["A", "B"])
def test_invalid_launches_as_recorded(part: str) -> None:
    # The recorded agent: cpus 2, mem 23081, disk 252899 and the default ports.
    agent = AgentSpec(resources="cpus:2;mem:23081;disk:252899")
    with MesosDouble(agents=[agent], allocation_interval=0.2) as double:
        stream = REC["streams"][0 if part == "A" else 1]
        info = json.loads(stream["request"]["body"])["subscribe"]["framework_info"]
        scheduler = Scheduler(double.master_address, info)
        ids = Ids()
        ids.add(re.search(r"'value': '([^']*-00\d\d)'", str(stream))[1], scheduler.framework_id)  # type: ignore[index]
        ids.add(RECORDED_AGENT, double.agent_ids[0])
        expected = _updates(stream)
        exchanges = [e for e in REC["exchanges"] if e["label"].startswith(f"{part}:")]
        used: list[str] = []
        got: list[dict[str, Any]] = []
        for exchange in exchanges:
            body = json.loads(exchange["request"]["body"])
            recorded_offer = body["accept"]["offer_ids"][0]["value"]
            if exchange["label"].endswith("reusing the already-used offer id"):
                ids.add(recorded_offer, used[0])
            elif "never-issued" not in recorded_offer:
                offer = scheduler.offers(timeout=10)[0]
                ids.add(recorded_offer, offer["id"]["value"])
                used.append(offer["id"]["value"])
            body = json.loads(ids.to_ours(json.dumps(body)))
            for task in body["accept"]["operations"][0]["launch"]["task_infos"]:
                if "executor" in task:
                    task["executor"] = executor_info(task["executor"]["executor_id"]["value"])
            response = scheduler.call("ACCEPT", body["accept"])
            assert response.status == 202
            count = sum(
                1 for e in expected if e["source"] == "SOURCE_MASTER" and _label_has(exchange, e)
            )
            for _ in range(count):
                status = scheduler.update(timeout=10)
                while status["source"] != "SOURCE_MASTER":
                    status = scheduler.update(timeout=10)
                got.append(status)
            # Skip the default 5 s filter of the implicitly declined rest (fast test).
            assert scheduler.call("REVIVE").status == 202
        master_expected = [e for e in expected if e["source"] == "SOURCE_MASTER"]
        assert [skeleton(s) for s in got] == [skeleton(s) for s in master_expected]
        # Exact messages (resource texts depend on the agent flags, which match the recording).
        assert [ids.to_recorded(s["message"]) for s in got] == [
            s["message"] for s in master_expected
        ]
        # The first copy of the duplicate id still runs.
        scheduler.update(f"{part}-dup", "TASK_RUNNING", timeout=20)
        scheduler.close()


def _label_has(exchange: dict[str, Any], status: dict[str, Any]) -> bool:
    body = json.loads(exchange["request"]["body"])
    task_ids = {
        t["task_id"]["value"] for t in body["accept"]["operations"][0]["launch"]["task_infos"]
    }
    return status["task_id"]["value"] in task_ids and status["state"] != "TASK_RUNNING"
