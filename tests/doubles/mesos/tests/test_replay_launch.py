"""Replay of 02_launch_custom_executor: the test plays the recorded executor, call by call.

The executor process is a ``sleep`` that dumps its environment; the test subscribes in its
place with the recorded executor calls (same uuids), so both sides of the transcript can be
compared: scheduler events, executor events, HTTP answers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.mesos import MesosDouble
from tests.waiting import wait_for

from .conftest import recording
from .replay import Ids, replay, send
from .shapes import skeleton
from .wire_client import Http, Scheduler, Subscription

REC = recording("02_launch_custom_executor")
RECORDED_FRAMEWORK = "89e7c902-a90d-4a9d-95bf-14e33342518d-0005"
RECORDED_AGENT = "89e7c902-a90d-4a9d-95bf-14e33342518d-S0"
RECORDED_OFFER = "89e7c902-a90d-4a9d-95bf-14e33342518d-O5"


def _exchange(label: str, nth: int = 0) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in REC["exchanges"] if e["label"] == label]
    return found[nth]


def _scheduler_events() -> list[dict[str, Any]]:
    stream = REC["streams"][0]
    events: list[dict[str, Any]] = stream.get("events") or stream["response"]["events"]
    return [e["event"] for e in events]


@pytest.fixture
def quick_shutdown() -> Any:
    with MesosDouble(agents=1, executor_shutdown_grace_period=0.5) as double:
        yield double


def _wait_executor(double: MesosDouble, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in double.state()["agent_processes"]:
            for executor in process["executors"]:
                if executor["pid"] and executor["state"] == "registering":
                    found: dict[str, Any] = executor
                    return found
        time.sleep(0.02)
    raise TimeoutError("executor did not start")


def test_launch_transcript_both_sides(quick_shutdown: MesosDouble) -> None:
    double = quick_shutdown
    body = json.loads(REC["streams"][0]["request"]["body"])
    scheduler = Scheduler(double.master_address, body["subscribe"]["framework_info"])
    offer = scheduler.offers()[0]
    ids = Ids()
    ids.add(RECORDED_FRAMEWORK, scheduler.framework_id)
    ids.add(RECORDED_AGENT, double.agent_ids[0])
    ids.add(RECORDED_OFFER, offer["id"]["value"])
    ids.add(REC["streams"][0]["response"]["headers"][2][1], scheduler.stream_id)

    # The recorded ACCEPT, with an executor that only dumps its environment and waits.
    accept = _exchange("ACCEPT LAUNCH")
    call = json.loads(ids.to_ours(accept["request"]["body"]))
    for task in call["accept"]["operations"][0]["launch"]["task_infos"]:
        # env.txt appears whole (a rename): the shell's redirection creates it empty first
        task["executor"]["command"]["value"] = "env > env.tmp && mv env.tmp env.txt; exec sleep 60"
    http = Http(double.master_address)
    response = http.request(
        "/api/v1/scheduler", call, headers={"Mesos-Stream-Id": scheduler.stream_id}
    )
    assert response.status == 202

    executor = _wait_executor(double)
    recorded_side = REC["extra"]["executor_side"]
    agent = Http(double.agent_addresses[0])
    subscribe_body = json.loads(ids.to_ours(recorded_side["subscribe"]["request"]["body"]))
    sub = Subscription(double.agent_addresses[0], "/api/v1/executor", subscribe_body)
    assert sub.status == 200
    recorded_headers = recorded_side["subscribe"]["response"]["headers"]
    assert [k for k, _ in sub.response_headers] == [k for k, _ in recorded_headers]
    recorded_executor_events = [
        e["event"] for e in recorded_side["subscribe"]["response"]["events"]
    ]
    for expected in recorded_executor_events[:3]:  # SUBSCRIBED, LAUNCH, LAUNCH
        assert skeleton(sub.next()) == skeleton(expected)
    launch = sub.events[1].event["launch"]["task"]
    assert launch["executor"]["framework_id"] == {"value": scheduler.framework_id}
    assert launch["resources"][1] == {
        "name": "mem",
        "type": "SCALAR",
        "scalar": {"value": 16.0},
        "allocation_info": {"role": "*"},
    }

    recorded_sched = _scheduler_events()
    expect = {
        "MESSAGE": recorded_sched[3],
        ("t2-a", "TASK_RUNNING"): recorded_sched[4],
        ("t2-a", "TASK_FINISHED"): recorded_sched[5],
        ("t2-b", "TASK_RUNNING"): recorded_sched[6],
        ("t2-b", "TASK_FINISHED"): recorded_sched[8],
    }
    acks = {
        ("t2-a", "TASK_RUNNING"): _exchange("ACKNOWLEDGE t2-a TASK_RUNNING"),
        ("t2-a", "TASK_FINISHED"): _exchange("ACKNOWLEDGE t2-a TASK_FINISHED"),
        ("t2-b", "TASK_RUNNING"): _exchange("ACKNOWLEDGE t2-b TASK_RUNNING"),
        ("t2-b", "TASK_FINISHED"): _exchange("ACKNOWLEDGE t2-b TASK_FINISHED"),
    }
    acknowledged = [e for e in recorded_executor_events if e["type"] == "ACKNOWLEDGED"]
    for call_record in recorded_side["calls"]:
        replay(agent, call_record, ids)
        if call_record["label"] == "MESSAGE":
            assert skeleton(scheduler.subscription.next("MESSAGE")) == skeleton(expect["MESSAGE"])
            continue
        status = json.loads(call_record["request"]["body"])["update"]["status"]
        key = (status["task_id"]["value"], status["state"])
        event = scheduler.subscription.next("UPDATE")
        assert skeleton(event) == skeleton(expect[key]), key
        got = event["update"]["status"]
        assert got["uuid"] == status["uuid"]
        assert got["container_status"]["executor_pid"] == executor["pid"]
        # The agent ACKs the executor as soon as it has taken the update over.
        assert sub.next("ACKNOWLEDGED") == acknowledged.pop(0)
        replay(http, acks[key], ids)
    replay(http, _exchange("duplicate ACKNOWLEDGE of an already acknowledged update"), ids)

    env_file = Path(executor["directory"]) / "env.txt"
    wait_for(env_file.exists)  # the executor process may still be starting under load
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    recorded_env = REC["extra"]["executor_environment"]
    expected_keys = set(recorded_env) - {"LC_CTYPE"}
    assert expected_keys <= set(env), expected_keys - set(env)
    assert not {"HOME", "USER"} & set(env)
    assert env["MESOS_DIRECTORY"] == env["MESOS_SANDBOX"] == executor["directory"]
    assert env["MESOS_DIRECTORY"].endswith(
        f"/slaves/{double.agent_ids[0]}/frameworks/{scheduler.framework_id}/executors/exec2/runs/"
        + executor["container_id"]
    )
    for name in (
        "LIBPROCESS_PORT",
        "MESOS_CHECKPOINT",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        "MESOS_HTTP_COMMAND_EXECUTOR",
        "MESOS_RECOVERY_TIMEOUT",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX",
        "PATH",
    ):
        expected = recorded_env[name] if name != "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD" else "500ms"
        assert env[name] == expected, name
    assert env["MESOS_AGENT_ENDPOINT"] == double.agent_addresses[0]
    assert env["MESOS_SLAVE_PID"] == f"slave(1)@{double.agent_addresses[0]}"

    # TEARDOWN: 202, the executor gets SHUTDOWN, its process group is killed after the grace.
    response = send(http, _exchange("TEARDOWN"), ids)
    assert response.status == 202
    assert sub.next("SHUTDOWN") == {"type": "SHUTDOWN"}
    assert scheduler.subscription.wait_closed() == "terminating chunk"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{executor['pid']}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{executor['pid']}").exists()
