"""Property tests of what the scheduler reads from a master: any event, however shaped,
is handled or skipped by the driver, and the framework's callbacks take any offer or
status without raising; acknowledgements only go out well-formed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesobatch.scheduler.core.resources import Resources
from mesobatch.scheduler.mesos.driver import DriverError, MalformedEvent, MesosSchedulerDriver
from mesobatch.scheduler.mesos.executors import Executors
from mesobatch.scheduler.mesos.framework import MesosFramework
from mesobatch.scheduler.mesos.master import StaticMaster
from mesobatch.scheduler.mesos.messages import parse_offer, parse_status
from tests.properties import FAST, json_values, mesos_id

TYPES = ["SUBSCRIBED", "OFFERS", "INVERSE_OFFERS", "RESCIND", "RESCIND_INVERSE_OFFER",
         "UPDATE", "MESSAGE", "FAILURE", "ERROR", "HEARTBEAT", "UPDATE_OPERATION_STATUS"]

statuses = st.fixed_dictionaries(
    {"task_id": mesos_id()},
    optional={"state": st.one_of(st.sampled_from(["TASK_FINISHED", "TASK_FAILED",
                                                  "TASK_LOST", "TASK_RUNNING"]), json_values),
              "agent_id": mesos_id(), "uuid": json_values, "reason": json_values,
              "message": json_values, "data": json_values, "source": json_values})
resources = st.lists(st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["cpus", "mem", "disk", "gpus"]), json_values)},
    optional={"type": st.one_of(st.just("SCALAR"), json_values),
              "scalar": st.one_of(st.builds(lambda v: {"value": v}, json_values), json_values),
              "role": json_values, "reservations": json_values, "disk": json_values}),
    max_size=4)
offers = st.fixed_dictionaries(
    {"id": mesos_id(), "agent_id": mesos_id()},
    optional={"hostname": json_values, "resources": st.one_of(resources, json_values),
              "attributes": json_values, "url": json_values, "executor_ids": json_values,
              "unavailability": json_values, "allocation_info": json_values})
bodies = {"SUBSCRIBED": st.fixed_dictionaries({"framework_id": mesos_id()}, optional={
              "heartbeat_interval_seconds": json_values, "master_info": json_values}),
          "OFFERS": st.fixed_dictionaries({"offers": st.one_of(st.lists(offers, max_size=3),
                                                               json_values)}),
          "UPDATE": st.fixed_dictionaries({"status": st.one_of(statuses, json_values)}),
          "RESCIND": st.fixed_dictionaries({"offer_id": mesos_id()}),
          "MESSAGE": st.fixed_dictionaries({"agent_id": mesos_id(), "executor_id": mesos_id(),
                                            "data": json_values}),
          "FAILURE": st.fixed_dictionaries({}, optional={"agent_id": mesos_id(),
                                                         "executor_id": mesos_id(),
                                                         "status": json_values})}


@st.composite
def events(draw: st.DrawFn) -> Any:
    kind = draw(st.one_of(st.sampled_from(TYPES), json_values))
    if not isinstance(kind, str) or draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # anything at all
    event: dict[str, Any] = {"type": kind}
    if kind in bodies and draw(st.integers(0, 5)):
        event[kind.lower()] = draw(st.one_of(bodies[kind], json_values))
    elif draw(st.booleans()):
        event[kind.lower()] = draw(json_values)
    return event


class Strict(MesosSchedulerDriver):
    """A driver whose callbacks may not fail (they must catch what they cannot read)."""

    def _safely(self, callback: Any, *args: Any) -> None:
        callback(self, *args)


@pytest.fixture(scope="module")
def driver() -> Strict:
    posted: list[Any] = []
    framework = MesosFramework(lambda *e: posted.extend(e), Executors("wf"), None,
                               Resources(mem=32))
    return Strict(framework, {"user": "u", "name": "n"}, StaticMaster("127.0.0.1:9"))


@FAST
@given(st.lists(events(), max_size=4))
def test_any_event_is_handled_or_skipped(driver: Strict, sequence: list[Any]) -> None:
    for event in sequence:
        try:
            assert driver._dispatch(event) in (True, False)
        except DriverError as e:
            assert isinstance(event, dict) and event["type"] == "ERROR", e
        except MalformedEvent as e:
            assert isinstance(event, dict) and event["type"] == "SUBSCRIBED", e
    for ack in driver._acks.take_waiting():  # only well-formed acknowledgements
        body = ack["acknowledge"]
        assert isinstance(body["uuid"], str)
        assert isinstance(body["agent_id"]["value"], str)
        assert isinstance(body["task_id"]["value"], str)
    assert driver._heartbeat > 0


@FAST
@given(offers)
def test_an_offer_is_parsed_or_refused_with_a_clear_error(raw: dict[str, Any]) -> None:
    try:
        offer = parse_offer(raw, None, None, Resources(mem=32))
    except (KeyError, TypeError, ValueError, AttributeError):
        return  # the framework logs and ignores such an offer
    assert offer.resources.cpus >= 0 and offer.resources.mem >= 0


@FAST
@given(statuses)
def test_a_checked_status_is_parsed(raw: dict[str, Any]) -> None:
    from mesobatch.scheduler.mesos.event_checks import clean_status, event_problem

    if event_problem({"type": "UPDATE", "update": {"status": raw}}) is not None:
        return
    status, _ = clean_status(raw)
    event = parse_status(status, 0.0)
    assert event.task_id == raw["task_id"]["value"]
    assert event.exit_code is None or isinstance(event.exit_code, int)
    assert event.wall_time is None or isinstance(event.wall_time, float | int)
