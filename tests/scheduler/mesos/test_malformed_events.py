"""Events of the right framing but the wrong shape, sent by the master (the double's
send_event hook): each is skipped and said so in the status message, or (a SUBSCRIBED
we cannot read) the stream is dropped and subscribed again. No thread dies, no job is
left waiting (issue 17)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import mesobatch
from tests.waiting import wait_for

from .conftest import Cluster, job

#: each was seen to kill the stream thread for good before
MALFORMED: list[Any] = [
    {"type": "OFFERS"},
    [1, 2],
    "OFFERS",
    {"type": "OFFERS", "offers": {"offers": "abc"}},
    {"type": "OFFERS", "offers": {"offers": [5, "x", {"id": 3}]}},
    {"type": "UPDATE"},
    {"type": "UPDATE", "update": {"status": "TASK_FINISHED"}},
    {"type": "UPDATE", "update": {"status": {"task_id": {"value": "9.0"}, "state": 5,
                                             "agent_id": "a", "uuid": 7, "data": ["x"]}}},
    {"type": "RESCIND"},
    {"type": "RESCIND", "rescind": {"offer_id": "o1"}},
    {"type": "FAILURE", "failure": {"executor_id": {"value": "nobody"}, "status": "x"}},
    {"type": "FAILURE", "failure": {"agent_id": 5}},
    {"type": "MESSAGE", "message": {"agent_id": {"value": "a"},
                                    "executor_id": {"value": "e"}, "data": "abc"}},
    {"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": [{"id": 1}]}},
    {"type": 5},
    {"type": "ERROR", "error": "not an object", "message": 5},
]


@pytest.fixture
def thread_errors() -> Iterator[list[str]]:
    """Exceptions that escaped any thread while the test ran."""
    errors: list[str] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        errors.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: "
                      f"{args.exc_value}")
        previous(args)

    threading.excepthook = hook
    yield errors
    threading.excepthook = previous


def runs_a_job(bs: mesobatch.BatchSystem, timeout: float = 20) -> None:
    done = bs.issueBatchJob("true", job())
    info = bs.getUpdatedBatchJob(timeout)
    assert info is not None and (info.jobID, info.exitStatus) == (done, 0), (
        bs.getSchedulingStatusMessage())


def test_malformed_events_are_skipped_and_said_so(cluster: Cluster,
                                                  thread_errors: list[str]) -> None:
    double = cluster.start()
    bs = cluster.batch_system()
    runs_a_job(bs)
    subscribes = double.counters()["calls"].get("SUBSCRIBE", 0)
    for n, event in enumerate(MALFORMED, 1):
        if isinstance(event, dict) and event.get("type") == "ERROR":
            continue  # ERROR ends the framework: a test of its own below
        assert double.send_event(event), "not subscribed"
        runs_a_job(bs)  # the stream thread is alive: offers and updates still come
        message = bs.getSchedulingStatusMessage() or ""
        assert f"Skipped {n} malformed event" in message, (event, message)
    assert "from the Mesos master (last: event type 5 is not a string)." in message
    assert double.counters()["calls"].get("SUBSCRIBE", 0) == subscribes  # none dropped
    assert bs.fatal_error() is None
    assert thread_errors == []


@pytest.mark.parametrize("subscribed", [
    {"type": "SUBSCRIBED"},
    {"type": "SUBSCRIBED", "subscribed": {"framework_id": "fw"}},
    {"type": "SUBSCRIBED", "subscribed": [1]},
])
def test_an_unreadable_subscribed_drops_the_stream_and_subscribes_again(
        cluster: Cluster, thread_errors: list[str], subscribed: dict[str, Any]) -> None:
    double = cluster.start()
    bs = cluster.batch_system()
    runs_a_job(bs)
    calls = double.counters()["calls"]
    before = calls.get("SUBSCRIBE", 0)
    assert double.send_event(subscribed)
    assert wait_for(lambda: double.counters()["calls"].get("SUBSCRIBE", 0) > before, 15)
    runs_a_job(bs)
    assert thread_errors == []


@pytest.mark.parametrize("interval", ["abc", -1, 0, None, 1e308, True])
def test_an_unusable_heartbeat_interval_falls_back_to_the_default(
        cluster: Cluster, thread_errors: list[str], interval: Any) -> None:
    double = cluster.start()
    bs = cluster.batch_system()
    runs_a_job(bs)
    framework_id = bs._backend.driver.framework_id  # type: ignore[attr-defined]
    assert double.send_event({"type": "SUBSCRIBED", "subscribed": {
        "framework_id": {"value": framework_id}, "heartbeat_interval_seconds": interval}})
    before = double.counters()["calls"].get("SUBSCRIBE", 0)
    double.drop_subscription()  # the next SUBSCRIBE used the interval (-1 crashed it)
    assert wait_for(lambda: double.counters()["calls"].get("SUBSCRIBE", 0) > before, 15)
    runs_a_job(bs)
    assert thread_errors == []


def test_error_event_of_any_shape_ends_the_framework_with_a_reason(
        cluster: Cluster, thread_errors: list[str]) -> None:
    double = cluster.start()
    bs = cluster.batch_system()
    runs_a_job(bs)
    assert double.send_event({"type": "ERROR", "error": "not an object", "message": 5})
    assert wait_for(bs.fatal_error, 15)
    assert "Mesos ended this framework" in (bs.getSchedulingStatusMessage() or "")
    assert thread_errors == []
