"""Replay of 05_errors.json: every error status, header list and text body as recorded."""

from __future__ import annotations

import json
from typing import Any

from tests.doubles.mesos import MesosDouble

from .conftest import recording
from .replay import Ids, replay
from .wire_client import Http, Scheduler, Subscription, executor_info

REC = recording("05_errors")


def exchange(label: str, nth: int = 0) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in REC["exchanges"] if e["label"] == label]
    return found[nth]


def stream(label: str) -> dict[str, Any]:
    return next(s for s in REC["streams"] if s["label"] == label)


def subscribe_recorded(master: str, label: str) -> Subscription:
    request = stream(label)["request"]
    headers = dict(request["headers"])
    headers.pop("Host")
    headers.pop("Content-Length")
    headers.pop("Content-Type", None)
    headers.pop("Accept", None)
    return Subscription(master, request["path"], json.loads(request["body"]), headers=headers)


def test_subscribe_errors_as_recorded(double: MesosDouble) -> None:
    http = Http(double.master_address)
    ids = Ids()
    for label in (
        "SUBSCRIBE with Content-Type 'application/json; charset=utf-8'",
        "SUBSCRIBE with framework_info.user missing",
    ):
        recorded = stream(label)
        replay(http, {**recorded, "label": label}, ids)
        http.close()

    roles = subscribe_recorded(
        double.master_address, "SUBSCRIBE with roles but no MULTI_ROLE capability"
    )
    assert roles.status == 200
    assert [k for k, _ in roles.response_headers] == [
        "Date",
        "Transfer-Encoding",
        "Mesos-Stream-Id",
        "Content-Type",
    ]
    assert roles.wait_closed() == "terminating chunk"
    recorded_events = stream("SUBSCRIBE with roles but no MULTI_ROLE capability")["response"][
        "events"
    ]
    assert [e.record for e in roles.events] == [e["record"].encode() for e in recorded_events]

    no_accept = Subscription(
        double.master_address,
        "/api/v1/scheduler",
        json.loads(stream("SUBSCRIBE without Accept header")["request"]["body"]),
    )
    assert no_accept.status == 200
    assert no_accept.next()["type"] == "SUBSCRIBED"
    no_accept.close()


def test_call_errors_as_recorded(double: MesosDouble) -> None:
    main = stream("scheduler SUBSCRIBE")
    scheduler = Scheduler(
        double.master_address, json.loads(main["request"]["body"])["subscribe"]["framework_info"]
    )
    ids = Ids()
    recorded_framework = "89e7c902-a90d-4a9d-95bf-14e33342518d-0010"
    ids.add(recorded_framework, scheduler.framework_id)
    ids.add(main["response"]["headers"][2][1], scheduler.stream_id)
    ids.add("89e7c902-a90d-4a9d-95bf-14e33342518d-S0", double.agent_ids[0])
    http = Http(double.master_address)
    for label in (
        "REVIVE without Mesos-Stream-Id",
        "REVIVE with wrong Mesos-Stream-Id",
        "REVIVE with malformed Mesos-Stream-Id",
        "REVIVE with wrong framework_id (correct stream id)",
        "REVIVE without framework_id",
        "malformed JSON body",
        "unknown call type",
        "call without Content-Type",
        "call with Content-Type text/plain",
        "GET /api/v1/scheduler",
        "REVIVE with charset content type (subscribed framework)",
        "REVIVE with Accept: application/json and correct headers (baseline)",
    ):
        replay(http, exchange(label), ids)
        if label.startswith("GET"):
            http.close()

    # A running task so that acknowledgements have something to refer to.
    offer = scheduler.offers()[0]
    ids.add("89e7c902-a90d-4a9d-95bf-14e33342518d-O19", offer["id"]["value"])
    executor = executor_info("exec5")
    launch = exchange("ACCEPT LAUNCH")
    body = json.loads(ids.to_ours(launch["request"]["body"]))
    body["accept"]["operations"][0]["launch"]["task_infos"][0]["executor"] = executor
    response = http.request(
        "/api/v1/scheduler", body, headers={"Mesos-Stream-Id": scheduler.stream_id}
    )
    assert response.status == 202
    running = scheduler.update("t5-run", "TASK_RUNNING", timeout=20)
    ids.add("h5G3W2qIST2cbFsO9lJmpQ==", running["uuid"])
    for label in (
        "ACKNOWLEDGE uuid not base64",
        "ACKNOWLEDGE uuid 4 bytes",
        "ACKNOWLEDGE uuid raw string form (canonical text UUID)",
        "ACKNOWLEDGE random unknown 16-byte uuid",
        "ACKNOWLEDGE unknown task id",
        "ACKNOWLEDGE unknown agent id",
        "ACKNOWLEDGE correct (after the bad ones)",
    ):
        replay(http, exchange(label), ids)

    # 16 bytes that are not an RFC-4122 UUID (addendum): 400 Not a valid UUID.
    zero = {
        "framework_id": {"value": scheduler.framework_id},
        "type": "ACKNOWLEDGE",
        "acknowledge": {
            "agent_id": {"value": double.agent_ids[0]},
            "task_id": {"value": "t5-run"},
            "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
        },
    }
    response = http.request(
        "/api/v1/scheduler", zero, headers={"Mesos-Stream-Id": scheduler.stream_id}
    )
    assert (response.status, response.text) == (
        400,
        "Failed to validate scheduler::Call: Not a valid UUID",
    )

    # Executor-side errors (extra.exec5.calls), sent to the agent as the executor would.
    agent = Http(double.agent_addresses[0])
    for call in REC["extra"]["exec5"]["calls"]:
        if not call["label"].startswith("UPDATE with") and call["label"] != "UPDATE without uuid":
            continue
        replay(agent, call, ids)
    unknown_task = next(
        c for c in REC["extra"]["exec5"]["calls"] if c["label"] == "UPDATE for unknown task id"
    )
    replay(agent, unknown_task, ids)
    forwarded = scheduler.update("no-such-task")
    assert forwarded["state"] == "TASK_RUNNING"
    assert "container_status" not in forwarded and "executor_id" not in forwarded

    for label in (
        "executor SUBSCRIBE unknown executor_id",
        "executor SUBSCRIBE unknown framework_id",
        "executor UPDATE for unknown executor",
    ):
        replay(agent, exchange(label), ids)

    # Failover with the same framework id: the old stream gets ERROR, the pending update
    # (never acknowledged) is delivered again on the new stream.
    second_body = json.loads(
        ids.to_ours(
            stream("second SUBSCRIBE with same framework_id (failover) while first stream open")[
                "request"
            ]["body"]
        )
    )
    failover = Subscription(double.master_address, "/api/v1/scheduler", second_body)
    assert failover.status == 200
    assert scheduler.subscription.wait_closed() == "terminating chunk"
    assert (
        scheduler.subscription.events[-1].record
        == b'{"type":"ERROR","error":{"message":"Framework failed over"}}'
    )
    assert failover.next()["type"] == "SUBSCRIBED"
    assert failover.next()["type"] == "HEARTBEAT"
    again = failover.next("UPDATE")["update"]["status"]
    assert again["task_id"]["value"] == "no-such-task"
    assert again["uuid"] == forwarded["uuid"]
    replay(http, exchange("REVIVE with the OLD stream id after failover"), ids)

    ids.add(
        stream("second SUBSCRIBE with same framework_id (failover) while first stream open")[
            "response"
        ]["headers"][2][1],
        failover.stream_id,
    )
    replay(http, exchange("TEARDOWN (framework from second subscription)"), ids)
    assert failover.wait_closed() == "terminating chunk"
    removed = Subscription(double.master_address, "/api/v1/scheduler", second_body)
    assert removed.status == 200
    assert removed.wait_closed() == "terminating chunk"
    assert [e.record for e in removed.events] == [
        b'{"type":"ERROR","error":{"message":"Framework has been removed"}}'
    ]
    replay(http, exchange("REVIVE with torn-down framework id and its last stream id"), ids)


def test_stream_id_on_subscribe_and_protobuf_accept(double: MesosDouble) -> None:
    http = Http(double.master_address)
    body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}
    response = http.request("/api/v1/scheduler", body, headers={"Mesos-Stream-Id": "x"})
    assert (response.status, response.text) == (
        400,
        "Subscribe calls should not include the 'Mesos-Stream-Id' header",
    )
    # Deviation: the double has no protobuf encoder, so it refuses protobuf-only clients.
    response = http.request("/api/v1/scheduler", body, headers={"Accept": "application/x-protobuf"})
    assert response.status == 406
    response = http.request("/api/v1/scheduler", body, headers={"Accept": "text/html"})
    assert response.status == 406
    assert (
        response.text
        == "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"
    )


def test_framework_id_mismatch_and_not_subscribed(double: MesosDouble) -> None:
    http = Http(double.master_address)
    body = {
        "type": "SUBSCRIBE",
        "framework_id": {"value": "a"},
        "subscribe": {"framework_info": {"user": "u", "name": "n", "id": {"value": "b"}}},
    }
    response = http.request("/api/v1/scheduler", body)
    assert (response.status, response.text) == (
        400,
        "Failed to validate scheduler::Call: "
        "'framework_id' differs from 'subscribe.framework_info.id'",
    )
    scheduler = Scheduler(double.master_address)
    scheduler.subscription.close()
    double.wait_for(lambda s: not s["frameworks"][scheduler.framework_id]["connected"])
    response = scheduler.call("REVIVE")
    assert (response.status, response.text) == (403, "Framework is not subscribed")
