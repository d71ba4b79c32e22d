"""DECLINE filters, SUPPRESS/REVIVE and re-offer timing (04), filter containment."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.doubles.mesos import MesosDouble

from .wire_client import Scheduler, executor_info, task_info

Make = Callable[..., Scheduler]


def _decline(scheduler: Scheduler, offer: dict[str, Any], filters: dict[str, Any] | None) -> float:
    body: dict[str, Any] = {"offer_ids": [offer["id"]]}
    if filters is not None:
        body["filters"] = filters
    assert scheduler.call("DECLINE", body).status == 202
    return time.monotonic() - scheduler.subscription.t0


def test_decline_refuse_one_second_and_zero(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    declined_at = _decline(scheduler, offer, {"refuse_seconds": 1})
    again = scheduler.subscription.next_event("OFFERS", timeout=5)
    assert 1.0 <= again.t - declined_at <= 2.4  # recorded: 1.675 s
    declined_at = _decline(scheduler, again.event["offers"]["offers"][0], {"refuse_seconds": 0})
    third = scheduler.subscription.next_event("OFFERS", timeout=5)
    assert third.t - declined_at <= 1.4  # recorded: 1.001 s (next allocation)


@pytest.mark.slow
def test_decline_without_filters_waits_five_seconds(
    double: MesosDouble, scheduler_factory: Make
) -> None:
    scheduler = scheduler_factory(double.master_address)
    declined_at = _decline(scheduler, scheduler.offers()[0], None)
    again = scheduler.subscription.next_event("OFFERS", timeout=10)
    assert 5.0 <= again.t - declined_at <= 6.4  # recorded: 5.005 s


def test_suppress_then_revive(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    assert scheduler.call("SUPPRESS", {"roles": ["*"]}).status == 202
    _decline(scheduler, offer, {"refuse_seconds": 0})
    time.sleep(2.2)
    assert scheduler.subscription.of_type("OFFERS") == [
        {"type": "OFFERS", "offers": {"offers": [offer]}}
    ]
    revived_at = time.monotonic() - scheduler.subscription.t0
    assert scheduler.call("REVIVE", {"roles": ["*"]}).status == 202
    offers = scheduler.subscription.next_event("OFFERS", timeout=2)
    assert offers.t - revived_at < 0.3  # recorded: 2 ms (next tick would be up to 1 s)
    # SUPPRESS without a body is accepted and does not rescind the outstanding offer.
    assert scheduler.call("SUPPRESS").status == 202
    time.sleep(1.2)
    assert not scheduler.subscription.of_type("RESCIND")
    assert scheduler.call("REVIVE").status == 202
    state = double.state()
    assert state["counters"]["suppress"] == 2 and state["counters"]["revive"] == 2


def test_revive_clears_decline_filters(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    _decline(scheduler, scheduler.offers()[0], {"refuse_seconds": 3600})
    revived_at = time.monotonic() - scheduler.subscription.t0
    scheduler.call("REVIVE")
    assert scheduler.subscription.next_event("OFFERS", timeout=2).t - revived_at < 0.3


def test_filter_hides_only_contained_resources(
    double: MesosDouble, scheduler_factory: Make
) -> None:
    """A long ACCEPT filter on the rest of the agent; freed resources still come back."""
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    task = task_info("short", offer, executor_info("e-filter"), mode="finish")
    scheduler.launch(offer, [task], filters={"refuse_seconds": 3600})
    for state in ("TASK_RUNNING", "TASK_FINISHED"):
        scheduler.ack(scheduler.update("short", state, timeout=20))
    again = scheduler.offers(timeout=5)[0]
    cpus = next(r for r in again["resources"] if r["name"] == "cpus")["scalar"]["value"]
    assert cpus == pytest.approx(1.9)  # 2 - executor 0.1: the finished task's 0.1 came back
    assert again["executor_ids"] == [{"value": "e-filter"}]


def test_two_frameworks_share_agents(double: MesosDouble, scheduler_factory: Make) -> None:
    first = scheduler_factory(double.master_address)
    first.offers()
    second = scheduler_factory(double.master_address)
    # The whole agent is with the first framework; the second gets it after a decline.
    _decline(
        first,
        first.subscription.of_type("OFFERS")[0]["offers"]["offers"][0],
        {"refuse_seconds": 60},
    )
    offers = second.offers(timeout=3)
    assert offers[0]["framework_id"]["value"] == second.framework_id
