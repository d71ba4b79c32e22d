"""Mesos JSON shapes in and out (scheduler/mesos/messages.py): pure, no driver, no double."""

from __future__ import annotations

from typing import Any

import pytest

from mesobatch.executor.protocol import TaskPayload, TaskResult
from mesobatch.scheduler.contract import BatchJobExitReason, JobDescription
from mesobatch.scheduler.core.events import TaskLaunch
from mesobatch.scheduler.core.jobs import build_spec
from mesobatch.scheduler.core.resources import Resources
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.mesos.interface import Message
from mesobatch.scheduler.mesos.messages import (
    attribute,
    executor_info,
    executor_runs,
    framework_info,
    is_preemptible,
    offer_entries,
    parse_offer,
    parse_status,
    scalar,
    take,
    task_info,
    total,
    usable,
)


def entry(name: str, value: float, **extra: Any) -> Message:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, **extra}


def raw_offer(resources: list[Message] | None = None, **extra: Any) -> Message:
    return {
        "id": {"value": "o1"}, "agent_id": {"value": "a1"}, "hostname": "node1",
        "url": {"address": {"ip": "10.0.0.7", "port": 5051}},
        "resources": resources if resources is not None else [
            entry("cpus", 2.5), entry("mem", 1024.0), entry("disk", 4096.0)],
        **extra,
    }


# ----------------------------------------------------------------------------- framework


def test_framework_info_is_multi_role_only_with_a_role() -> None:
    plain = framework_info(user="u", name="n", role=None, failover_timeout=60,
                           checkpoint=True)
    assert "roles" not in plain and "role" not in plain
    kinds = [c["type"] for c in plain["capabilities"]]
    assert "MULTI_ROLE" not in kinds and "PARTITION_AWARE" in kinds
    assert plain["failover_timeout"] == 60.0 and plain["checkpoint"] is True
    assert not {"id", "principal", "hostname", "webui_url"} & plain.keys()

    roled = framework_info(user="u", name="n", role="batch", failover_timeout=0,
                           checkpoint=False, hostname="h", principal="p",
                           framework_id="fw-1", webui_url="http://ui")
    assert roled["roles"] == ["batch"]
    assert roled["capabilities"][0] == {"type": "MULTI_ROLE"}
    assert (roled["hostname"], roled["principal"], roled["id"], roled["webui_url"]) == (
        "h", "p", {"value": "fw-1"}, "http://ui")


# ----------------------------------------------------------------------------- offers


@pytest.mark.parametrize(("resource", "ours"), [
    (entry("cpus", 1), True),
    (entry("mem", 1, role="*"), True),
    (entry("mem", 1, role="batch"), True),
    (entry("mem", 1, role="other"), False),
    (entry("cpus", 1, reservations=[{"role": "other"}, {"role": "batch"}]), True),
    (entry("cpus", 1, reservations=[{"role": "batch"}, {"role": "other"}]), False),
    (entry("disk", 1, disk={"persistence": {"id": "v1"}}), False),
    (entry("disk", 1, disk={"source": {"type": "MOUNT"}}), False),
    (entry("disk", 1, disk={"source": {"type": "PATH"}}), True),
    (entry("cpus", 1, revocable={}), False),
    (entry("cpus", 1, shared={}), False),
    (entry("ports", 1), False),
    ({"name": "cpus", "type": "RANGES", "ranges": {}}, False),
])
def test_usable_entries_are_unreserved_or_ours_and_plain(resource: Message,
                                                         ours: bool) -> None:
    assert usable(resource, "batch") is ours


def test_attributes_of_each_type_and_preemptible_in_any_case() -> None:
    offer = {"attributes": [
        {"name": "Rack", "type": "TEXT", "text": {"value": "r7"}},
        {"name": "weight", "type": "SCALAR", "scalar": {"value": 2.5}},
        {"name": "zones", "type": "SET", "set": {"item": ["a", "b"]}},
    ]}
    assert attribute(offer, "rack") == "r7"
    assert attribute(offer, "weight") == "2.5"
    assert attribute(offer, "zones") == "a,b"
    assert attribute(offer, "missing") is None
    for value, preemptible in (("True", True), ("YES", True), ("1", True), (" on ", True),
                               ("false", False), ("no", False), ("", False)):
        marked = {"attributes": [{"name": "PREEMPTIBLE", "type": "TEXT",
                                  "text": {"value": value}}]}
        assert is_preemptible(marked) is preemptible, value
    assert not is_preemptible({})


def test_totals_round_offered_amounts_down() -> None:
    entries = [entry("cpus", 0.1), entry("cpus", 1.2345), entry("mem", 100.9),
               entry("disk", 7.0), entry("gpus", 0.999)]
    assert total(entries) == Resources(cpus=1334, mem=100, disk=7, gpus=0)
    assert total([]) == Resources()


def test_parse_offer_keeps_only_our_entries_as_its_native_record() -> None:
    foreign = entry("disk", 500.0, role="other")
    raw = raw_offer([entry("cpus", 2.5), entry("mem", 1024.0), foreign],
                    allocation_info={"role": "batch"},
                    unavailability={"start": {"nanoseconds": 1_700_000_000_500_000_000}},
                    attributes=[{"name": "preemptible", "type": "TEXT",
                                 "text": {"value": "true"}}])
    offer = parse_offer(raw, "batch", None, Resources(mem=32))
    assert (offer.offer_id, offer.agent_id, offer.hostname, offer.ip) == (
        "o1", "a1", "node1", "10.0.0.7")
    assert offer.resources == Resources(cpus=2500, mem=1024, disk=0)
    assert offer.role == "batch" and offer.preemptible
    assert offer.unavailable_at == pytest.approx(1_700_000_000.5)
    assert offer.executor_overhead == Resources(mem=32)  # our executor does not run there
    assert [e["name"] for e in offer.native] == ["cpus", "mem"]
    assert offer.native[0] is not raw["resources"][0]  # a copy: the raw message may change


def test_parse_offer_without_optional_fields() -> None:
    offer = parse_offer({"id": {"value": "o2"}, "agent_id": {"value": "a2"}}, None, None,
                        Resources(mem=32))
    assert (offer.hostname, offer.ip, offer.role, offer.unavailable_at) == ("", "", "*", None)
    assert offer.resources == Resources() and offer.native == ()
    with pytest.raises(KeyError):
        parse_offer({"agent_id": {"value": "a2"}}, None, None, Resources())


def test_no_executor_overhead_where_our_executor_runs() -> None:
    raw = raw_offer(executor_ids=[{"value": "other-framework"}, {"value": "mesobatch-wf-1"}])
    running = parse_offer(raw, None, "mesobatch-wf-1", Resources(mem=32))
    assert running.executor_overhead == Resources() and executor_runs(running)
    elsewhere = parse_offer(raw, None, "mesobatch-wf-2", Resources(mem=32))
    assert elsewhere.executor_overhead == Resources(mem=32) and not executor_runs(elsewhere)
    never = parse_offer(raw, None, None, Resources(mem=32))
    assert not executor_runs(never)


def test_the_native_record_is_never_compared() -> None:
    a = parse_offer(raw_offer([entry("cpus", 1.0)]), None, None, Resources())
    b = parse_offer(raw_offer([entry("cpus", 1.0, role="*")]), None, None, Resources())
    assert a.native != b.native
    assert a == b and hash(a) == hash(b)
    assert "native" not in repr(a)


def test_offer_entries_are_fresh_copies_to_cut_from() -> None:
    one = parse_offer(raw_offer([entry("cpus", 2.0), entry("mem", 512.0)]), None, None,
                      Resources())
    two = parse_offer(raw_offer([entry("cpus", 1.0)]), None, None, Resources())
    entries = offer_entries([one, two])
    assert [(e["name"], e["scalar"]["value"]) for e in entries] == [
        ("cpus", 2.0), ("mem", 512.0), ("cpus", 1.0)]
    take(entries, Resources(cpus=2500, mem=100))
    assert one.native[0]["scalar"]["value"] == 2.0  # the held offer is untouched
    assert two.native[0]["scalar"]["value"] == 1.0


# ----------------------------------------------------------------------------- launches


def test_take_cuts_across_entries_and_keeps_their_reservations() -> None:
    reserved = entry("cpus", 1.5, reservations=[{"role": "batch", "type": "STATIC"}],
                     allocation_info={"role": "batch"})
    entries = [reserved, entry("cpus", 2.0, allocation_info={"role": "batch"}),
               entry("mem", 1000.0), entry("disk", 50.0)]
    pieces = take(entries, Resources(cpus=2001, mem=600, disk=0))
    assert [(p["name"], p["scalar"]["value"]) for p in pieces] == [
        ("cpus", 1.5), ("cpus", 0.501), ("mem", 600.0)]
    assert pieces[0]["reservations"] == [{"role": "batch", "type": "STATIC"}]
    assert pieces[1]["allocation_info"] == {"role": "batch"}
    # what is left stays in the entries, for the next task of the same launch
    assert [e["scalar"]["value"] for e in entries] == [0.0, 1.499, 400.0, 50.0]
    assert take(entries, Resources(cpus=1499)) == [entry("cpus", 1.499,
                                                         allocation_info={"role": "batch"})]


def test_take_names_what_the_offer_lacks() -> None:
    entries = [entry("cpus", 1.0), entry("mem", 100.0)]
    with pytest.raises(ValueError, match=r"offer lacks 28\.0 mem"):
        take(entries, Resources(cpus=500, mem=128))
    with pytest.raises(ValueError, match=r"offer lacks 1\.0 gpus"):
        take([entry("cpus", 1.0)], Resources(cpus=1, gpus=1))


def launch(**desc: Any) -> TaskLaunch:
    desc.setdefault("memory", 2**30)
    desc.setdefault("disk", 2**20)
    job_env = desc.pop("job_environment", None)
    spec = build_spec(7, desc.pop("command", "echo hi"), JobDescription(**desc),
                      {"A": "1", "B": "2"}, job_env)
    return TaskLaunch("7.0", spec)


def test_task_info_carries_the_payload_the_executor_reads() -> None:
    executor = executor_info("mesobatch-wf-1", None, "exec python3 x.pyz", {}, [])
    info = task_info(launch(cores=1.5, name="step", walltime=60,
                            job_environment={"B": "job"}),
                     "a1", [entry("cpus", 1.5)], executor, "wf", 3.0,
                     resource_url="http://h:1", resource_token="tok")
    assert info["task_id"] == {"value": "7.0"} and info["agent_id"] == {"value": "a1"}
    assert info["name"] == "step" and info["executor"] is executor
    assert info["resources"] == [entry("cpus", 1.5)]
    assert info["kill_policy"] == {"grace_period": {"nanoseconds": 3_000_000_000}}
    payload = TaskPayload.decode(info["data"])
    assert (payload.job_id, payload.name, payload.command, payload.cores) == (
        7, "step", "echo hi", 1.5)
    assert payload.env == {"A": "1", "B": "job"}  # the job's own variables win
    assert (payload.walltime, payload.workflow_id) == (60, "wf")
    assert (payload.resource_url, payload.resource_token) == ("http://h:1", "tok")


def test_task_names_are_cut_to_what_mesos_shows() -> None:
    info = task_info(launch(name="x" * 500), "a1", [], {}, "wf", 1.0)
    assert info["name"] == "x" * 200


def test_executor_info_with_sorted_environment_and_uris() -> None:
    uri = {"value": "http://h/b.pyz", "cache": False}
    info = executor_info("ex-1", "fw-1", "exec run", {"Z": "1", "A": "2"},
                         [scalar("mem", 32.0)], uris=[uri], grace=7.5)
    assert info["executor_id"] == {"value": "ex-1"} and info["type"] == "CUSTOM"
    assert info["framework_id"] == {"value": "fw-1"}
    assert info["command"]["value"] == "exec run" and info["command"]["shell"] is True
    assert info["command"]["environment"]["variables"] == [
        {"name": "A", "value": "2"}, {"name": "Z", "value": "1"}]
    assert info["command"]["uris"] == [uri]
    assert info["resources"] == [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}]
    assert info["shutdown_grace_period"] == {"nanoseconds": 7_500_000_000}
    bare = executor_info("ex-1", None, "exec run", {}, [])
    assert "framework_id" not in bare and "uris" not in bare["command"]


# ----------------------------------------------------------------------------- updates


def status(state: str, **extra: Any) -> Message:
    return {"task_id": {"value": "7.0"}, "state": state, "agent_id": {"value": "a1"},
            **extra}


def test_a_finished_task_brings_its_exit_code_and_wall_time() -> None:
    data = TaskResult(exit_code=3, wall_time=1.25).encode()
    event = parse_status(status("TASK_FAILED", data=data, message="exit 3"), 100.0)
    assert (event.task_id, event.state, event.now) == ("7.0", TaskState.FAILED, 100.0)
    assert (event.exit_code, event.wall_time, event.message) == (3, 1.25, "exit 3")
    assert event.agent_id == "a1" and event.exit_reason is None
    assert not event.never_started


def test_data_of_a_live_task_or_unreadable_data_is_ignored() -> None:
    running = parse_status(status("TASK_RUNNING", data=TaskResult(1, 1.0).encode()), 1.0)
    assert running.state is TaskState.RUNNING and running.exit_code is None
    garbled = parse_status(status("TASK_FINISHED", data="bm90IGpzb24="), 1.0)
    assert garbled.state is TaskState.FINISHED and garbled.exit_code is None


@pytest.mark.parametrize(("state", "reason", "expected", "never_started"), [
    ("TASK_DROPPED", "REASON_INVALID_OFFERS", TaskState.LOST, True),
    ("TASK_LOST", "REASON_RECONCILIATION", TaskState.LOST, True),
    ("TASK_GONE", "REASON_RECONCILIATION", TaskState.LOST, True),
    ("TASK_GONE", "REASON_AGENT_REMOVED", TaskState.LOST, False),
    ("TASK_FAILED", "REASON_EXECUTOR_TERMINATED", TaskState.LOST, False),
    ("TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", TaskState.FAILED, False),
    ("TASK_UNREACHABLE", "REASON_AGENT_REMOVED", TaskState.UNREACHABLE, False),
    ("TASK_SOMETHING_NEW", "", TaskState.UNKNOWN, False),
])
def test_states_and_reasons(state: str, reason: str, expected: TaskState,
                            never_started: bool) -> None:
    event = parse_status(status(state, reason=reason), 1.0)
    assert event.state is expected and event.never_started is never_started


def test_limits_hit_override_the_exit_reason() -> None:
    memory = parse_status(status("TASK_FAILED",
                                 reason="REASON_CONTAINER_LIMITATION_MEMORY"), 1.0)
    assert memory.exit_reason is BatchJobExitReason.MEMLIMIT
    deadline = parse_status(status("TASK_KILLED",
                                   reason="REASON_MAX_COMPLETION_TIME_REACHED"), 1.0)
    assert deadline.exit_reason is BatchJobExitReason.MAXJOBDURATION
    walltime = parse_status(status("TASK_KILLED", data=TaskResult(
        exit_code=137, wall_time=60.0, signal=9, walltime_exceeded=True).encode()), 1.0)
    assert walltime.exit_reason is BatchJobExitReason.MAXJOBDURATION
    assert walltime.exit_code == 137


def test_a_status_without_task_id_is_refused() -> None:
    with pytest.raises(KeyError):
        parse_status({"state": "TASK_RUNNING"}, 1.0)
    bare = parse_status({"task_id": {"value": "1.0"}}, 1.0)
    assert bare.state is TaskState.UNKNOWN and bare.agent_id is None


# ----------------------------------------------------------------------------- launches refused

def _recorded_updates() -> list[Message]:
    """The UPDATEs a real Mesos 1.11 master sent for invalid launches (recording 06)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "fixtures" / "mesos-wire" / \
        "06_invalid_launches.json"
    recording = json.loads(path.read_text())
    out = []
    for stream in recording["streams"]:
        events = stream.get("events") or stream["response"]["events"]
        out += [e["event"]["update"]["status"] for e in events
                if e["event"]["type"] == "UPDATE"]
    return out


def test_recorded_invalid_launches_never_started_and_which_would_come_again() -> None:
    seen = {}
    for raw in _recorded_updates():
        event = parse_status(raw, 1.0)
        if raw["state"] in ("TASK_RUNNING", "TASK_FINISHED"):
            assert not event.never_started  # the first copy of a duplicate ran
            continue
        assert raw["source"] == "SOURCE_MASTER" and event.never_started, raw
        seen[raw["task_id"]["value"]] = event.launch_refused
        assert event.id_taken == raw["task_id"]["value"].endswith("-dup")
    assert seen == {
        # refused for what the task is: would be refused again
        "A-toobig": True, "B-toobig": True, "A-with/slash": True, "B-with/slash": True,
        "A-nocmd": True, "B-nocmd": True,
        # stale or unknown offers (TASK_DROPPED, or TASK_LOST without PARTITION_AWARE), and
        # an id taken by a task that still lives: a new launch will do
        "A-reuse": False, "B-reuse": False, "A-bogus-offer": False, "B-bogus-offer": False,
        "A-dup": False, "B-dup": False,
    }


@pytest.mark.parametrize(("state", "reason", "source", "never_started", "refused"), [
    ("TASK_DROPPED", "REASON_AGENT_REMOVED", "SOURCE_MASTER", True, False),
    ("TASK_DROPPED", "REASON_GC_ERROR", "SOURCE_AGENT", True, False),
    ("TASK_ERROR", "REASON_TASK_UNAUTHORIZED", "SOURCE_MASTER", True, True),
    ("TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", "SOURCE_AGENT", True, True),
    ("TASK_FAILED", "REASON_EXECUTOR_REGISTRATION_TIMEOUT", "SOURCE_AGENT", True, True),
    # our executor's verdict on the job itself, and ends that may follow a real start
    ("TASK_ERROR", "REASON_TASK_INVALID", "SOURCE_EXECUTOR", False, False),
    ("TASK_FAILED", "REASON_EXECUTOR_TERMINATED", "SOURCE_AGENT", False, False),
    ("TASK_LOST", "REASON_AGENT_REMOVED", "SOURCE_MASTER", False, False),
    ("TASK_GONE", "REASON_AGENT_REMOVED", "SOURCE_MASTER", False, False),
    # the agent does not know it: never reached it (requeued only if nothing else was heard)
    ("TASK_GONE", "REASON_RECONCILIATION", "SOURCE_MASTER", True, False),
])
def test_which_launch_failures_mean_never_started(state: str, reason: str, source: str,
                                                  never_started: bool, refused: bool) -> None:
    event = parse_status(status(state, reason=reason, source=source), 1.0)
    assert (event.never_started, event.launch_refused) == (never_started, refused)


def test_unreachable_id_reuse_is_not_the_tasks_fault() -> None:
    event = parse_status(status("TASK_ERROR", reason="REASON_TASK_INVALID",
                                source="SOURCE_MASTER",
                                message="Task reuses the ID of an unreachable task: 7.0"), 1.0)
    assert event.never_started and event.id_taken and not event.launch_refused
