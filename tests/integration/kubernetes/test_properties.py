"""Property tests of what the kubernetes backend reads from outside: pods and nodes from the
API (any shape: never an exception, and a pod that ended always says how), quantities, and
option values (a ValueError naming what is allowed, or a value)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mesobatch.integration.kubernetes.capacity import pod_request, read_node
from mesobatch.integration.kubernetes.options import (
    parse_labels,
    parse_quota,
    parse_security_context,
    parse_tolerations,
    parse_volumes,
)
from mesobatch.integration.kubernetes.pod_status import Phase, read_pod
from mesobatch.integration.kubernetes.quantity import parse_quantity
from tests.properties import FAST, json_values

# the places a pod's status puts things, each filled with well-formed or any values
phases = st.one_of(st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
                   json_values)
reasons = st.one_of(st.sampled_from(["OOMKilled", "Error", "Completed", "StartError",
                                     "ContainerStatusUnknown", "DeadlineExceeded",
                                     "Evicted", "ImagePullBackOff", "Unschedulable",
                                     "CreateContainerConfigError"]), json_values)
times = st.one_of(st.just("2026-01-01T00:00:00Z"), json_values)
states = st.fixed_dictionaries({}, optional={
    "terminated": st.one_of(st.fixed_dictionaries({}, optional={
        "exitCode": st.one_of(st.integers(-300, 300), json_values), "reason": reasons,
        "message": json_values, "startedAt": times, "finishedAt": times}), json_values),
    "running": st.one_of(st.fixed_dictionaries({}, optional={"startedAt": times}),
                         json_values),
    "waiting": st.one_of(st.fixed_dictionaries({}, optional={"reason": reasons,
                                                             "message": json_values}),
                         json_values)})
conditions = st.lists(st.one_of(st.fixed_dictionaries({
    "type": st.sampled_from(["DisruptionTarget", "PodScheduled", "Ready"]),
    "status": st.sampled_from(["True", "False"]), "reason": reasons,
    "message": json_values}), json_values), max_size=3)
statuses = st.fixed_dictionaries({}, optional={
    "phase": phases, "reason": reasons, "message": json_values,
    "conditions": st.one_of(conditions, json_values),
    "containerStatuses": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({}, optional={
        "state": st.one_of(states, json_values), "lastState": st.one_of(states, json_values)}),
        json_values), max_size=2), json_values)})
pods = st.fixed_dictionaries({}, optional={
    "status": st.one_of(statuses, json_values),
    "spec": st.one_of(st.fixed_dictionaries({}, optional={"nodeName": json_values}),
                      json_values),
    "metadata": json_values})


@FAST
@given(pod=pods, deleted=st.booleans())
def test_any_pod_is_read_and_an_end_always_says_how(pod: dict[str, Any],
                                                    deleted: bool) -> None:
    view = read_pod(pod, deleted=deleted)
    if view.phase is Phase.ENDED:
        assert view.state is not None and view.state.terminal
    assert view.node is None or isinstance(view.node, str)
    if deleted:  # its last state: it has ended, one way or another
        assert view.phase is Phase.ENDED


@FAST
@given(node=st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "status": st.fixed_dictionaries({}, optional={
        "allocatable": st.dictionaries(st.sampled_from(["cpu", "memory", "pods",
                                                        "nvidia.com/gpu"]), json_values),
        "conditions": json_values, "addresses": json_values}),
    "metadata": json_values, "spec": json_values})))
def test_any_node_or_pod_request_is_read(node: Any) -> None:
    if isinstance(node, dict):
        view = read_node(node, (("lifecycle", "spot"),))
        assert view.allocatable.cpus >= 0 and view.pods >= 0
        assert pod_request(node).cpus >= 0


@FAST
@given(value=json_values)
def test_quantities_are_numbers_or_a_value_error(value: Any) -> None:
    try:
        assert parse_quantity(value) >= 0
    except ValueError as e:
        assert "quantity" in str(e)


@FAST
@given(value=json_values, parser=st.sampled_from([parse_labels, parse_quota, parse_tolerations,
                                                  parse_volumes, parse_security_context]))
def test_option_values_parse_or_say_what_is_allowed(value: Any, parser: Any) -> None:
    try:
        parser(value)
    except ValueError as e:
        assert str(e)
