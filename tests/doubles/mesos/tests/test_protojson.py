"""Pure checks of the JSON -> proto conversion and the resource arithmetic."""

from __future__ import annotations

import pytest

from tests.doubles.mesos.protojson import ProtoError, parse
from tests.doubles.mesos.resources import Resources, parse_attributes
from tests.doubles.mesos.wire import b64decode_strict, format_duration, is_valid_uuid_bytes


def test_defaults_order_and_unknowns() -> None:
    command = parse({"value": "x", "bogus": 1, "uris": [{"value": "u"}]}, "CommandInfo")
    assert list(command) == ["uris", "shell", "value"]
    assert command["shell"] is True and command["uris"] == [{"value": "u", "extract": True}]
    info = parse({"name": "n", "user": "u"}, "FrameworkInfo")
    assert info == {"user": "u", "name": "n", "failover_timeout": 0.0, "checkpoint": False}


def test_enum_dropped_and_numbers() -> None:
    assert parse({"type": "FOO"}, "Call") == {}
    assert parse({"refuse_seconds": 1}, "Filters") == {"refuse_seconds": 1.0}
    with pytest.raises(ProtoError, match="Not expecting a JSON number for field 'type'"):
        parse({"type": 3}, "Call")
    with pytest.raises(
        ProtoError, match="Not expecting a JSON string for field 'max_grace_period'"
    ):
        parse(
            {"drain_agent": {"agent_id": {"value": "a"}, "max_grace_period": "5s"}}, "OperatorCall"
        )


def test_missing_required_paths() -> None:
    task = {
        "accept": {"operations": [{"type": "LAUNCH", "launch": {"task_infos": [{"name": "t"}]}}]}
    }
    with pytest.raises(ProtoError) as error:
        parse(task, "Call")
    assert str(error.value) == (
        "Missing required fields: accept.operations[0].launch.task_infos[0].task_id, "
        "accept.operations[0].launch.task_infos[0].agent_id"
    )


def test_base64_and_uuid_rules() -> None:
    assert b64decode_strict("MTIzNA==") == b"1234"
    assert b64decode_strict("MTIz NA") == b"1234"  # stout skips whitespace, pads leniently
    with pytest.raises(ValueError, match="Invalid character '!'"):
        b64decode_strict("not base64 !!")
    assert not is_valid_uuid_bytes(b"\x00" * 16)
    assert not is_valid_uuid_bytes(b"1234")
    assert is_valid_uuid_bytes(b64decode_strict("nDs3zr/YTaasLyd9j4/65Q=="))


def test_durations() -> None:
    assert [format_duration(s) for s in (5, 60, 900, 0.5, 2, 90)] == [
        "5secs",
        "1mins",
        "15mins",
        "500ms",
        "2secs",
        "1.5mins",
    ]


def test_resources() -> None:
    agent = Resources.parse("cpus:2;mem:100;ports:[31000-32000];disks:{a,b}")
    used = Resources.parse("cpus:0.3;mem:100;ports:[31000-31009];disks:{a}")
    left = agent - used
    assert left.format(allocated=False) == "cpus:1.7; ports:[31010-32000]; disks:{b}"
    assert agent.contains(used) and not left.contains(used)
    assert Resources.parse("cpus:0.1") + Resources.parse("cpus:0.2") == Resources.parse("cpus:0.3")
    assert parse_attributes("a:1.5;b:x") == [
        {"name": "a", "type": "SCALAR", "scalar": {"value": 1.5}},
        {"name": "b", "type": "TEXT", "text": {"value": "x"}},
    ]
