"""Mesos JSON shapes in and out: pure builders and parsers, no I/O.

Offers become the core's Offers (integer milli-cores and MiB), status updates become
TaskStatus events, and launches are cut from the offer's own resource entries so that
reservations and allocation roles carry over exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ...executor.protocol import TaskPayload, TaskResult, b64decode
from ..contract import BatchJobExitReason
from ..core.events import Offer, TaskLaunch, TaskStatus
from ..core.resources import Resources, offered_cpus_to_milli, offered_mb_to_mib
from ..core.states import TaskState
from .interface import Message
from .states import from_mesos

SCALARS = ("cpus", "mem", "disk", "gpus")
TRUE_WORDS = frozenset({"true", "yes", "1", "on"})


# ----------------------------------------------------------------------------- framework


def framework_info(*, user: str, name: str, role: str | None, failover_timeout: float,
                   checkpoint: bool, hostname: str | None = None,
                   principal: str | None = None, framework_id: str | None = None,
                   webui_url: str | None = None) -> Message:
    """FrameworkInfo. MULTI_ROLE (with ``roles``) only when a role is given: Mesos
    refuses ``roles`` without MULTI_ROLE and ``role`` with it."""
    caps = ["PARTITION_AWARE", "TASK_KILLING_STATE", "GPU_RESOURCES"]
    info: Message = {"user": user, "name": name, "failover_timeout": float(failover_timeout),
                     "checkpoint": checkpoint}
    if role:
        caps.insert(0, "MULTI_ROLE")
        info["roles"] = [role]
    info["capabilities"] = [{"type": c} for c in caps]
    if hostname:
        info["hostname"] = hostname
    if principal:
        info["principal"] = principal
    if framework_id:
        info["id"] = {"value": framework_id}
    if webui_url:
        info["webui_url"] = webui_url
    return info


# ----------------------------------------------------------------------------- offers


def usable(entry: Mapping[str, Any], role: str | None) -> bool:
    """A scalar resource entry this framework may use: unreserved or reserved for its
    role, not a persistent volume or a whole MOUNT disk."""
    if entry.get("name") not in SCALARS or entry.get("type", "SCALAR") != "SCALAR":
        return False
    disk = entry.get("disk") or {}
    if disk.get("persistence") or (disk.get("source") or {}).get("type") in ("MOUNT", "BLOCK",
                                                                           "RAW"):
        return False
    if entry.get("revocable") is not None or entry.get("shared") is not None:
        return False
    reservations = entry.get("reservations")
    if reservations:  # RESERVATION_REFINEMENT shape
        return bool(reservations[-1].get("role") == role)
    return entry.get("role", "*") in ("*", role)


def attribute(offer: Mapping[str, Any], name: str) -> str | None:
    for attr in offer.get("attributes", []):
        if str(attr.get("name", "")).lower() == name:
            kind = attr.get("type")
            if kind == "TEXT":
                return str(attr.get("text", {}).get("value", ""))
            if kind == "SCALAR":
                return str(attr.get("scalar", {}).get("value", ""))
            if kind == "SET":
                return ",".join(attr.get("set", {}).get("item", []))
    return None


def is_preemptible(offer: Mapping[str, Any]) -> bool:
    """The agent's ``preemptible`` attribute, any case (Toil accepted only True/False)."""
    value = attribute(offer, "preemptible")
    return value is not None and value.strip().lower() in TRUE_WORDS


def total(entries: Iterable[Mapping[str, Any]]) -> Resources:
    amounts = dict.fromkeys(SCALARS, 0.0)
    for e in entries:
        amounts[e["name"]] += float(e.get("scalar", {}).get("value", 0.0))
    return Resources(
        cpus=offered_cpus_to_milli(amounts["cpus"]), mem=offered_mb_to_mib(amounts["mem"]),
        disk=offered_mb_to_mib(amounts["disk"]), gpus=math.floor(amounts["gpus"] + 1e-9),
    )


def parse_offer(raw: Mapping[str, Any], role: str | None, executor_id: str | None,
                executor_overhead: Resources) -> Offer:
    """The core's Offer; its ``native`` record holds the resource entries we may launch
    from (see offer_entries). ``executor_id`` is our executor's on that agent, if any."""
    entries = [e for e in raw.get("resources", []) if usable(e, role)]
    address = (raw.get("url") or {}).get("address") or {}
    running = {e.get("value") for e in raw.get("executor_ids", [])}
    unavailable_at = None
    start = (raw.get("unavailability") or {}).get("start", {}).get("nanoseconds")
    if start is not None:
        unavailable_at = int(start) / 1e9
    offer = Offer(
        offer_id=raw["id"]["value"], agent_id=raw["agent_id"]["value"],
        hostname=raw.get("hostname", ""), ip=address.get("ip", ""),
        resources=total(entries), preemptible=is_preemptible(raw),
        role=(raw.get("allocation_info") or {}).get("role", "*"),
        unavailable_at=unavailable_at,
        executor_overhead=Resources() if executor_id in running else executor_overhead,
        native=tuple(dict(e) for e in entries),
    )
    return offer


def offer_entries(offers: Iterable[Offer]) -> list[Message]:
    """Fresh copies of the resource entries of offers parse_offer made, to cut launches
    from with take() (which changes them in place)."""
    return [dict(e) for o in offers for e in (o.native or ())]


def executor_runs(offer: Offer) -> bool:
    """Our executor already runs on the offer's agent (it was offered no overhead)."""
    return not (offer.executor_overhead.cpus or offer.executor_overhead.mem)


def take(entries: list[Message], need: Resources) -> list[Message]:
    """Cut ``need`` out of offer entries (in place); the pieces keep each entry's role,
    reservations and allocation_info. Raises ValueError if the entries lack it."""
    wanted = {"cpus": need.cpus / 1000, "mem": float(need.mem), "disk": float(need.disk),
              "gpus": float(need.gpus)}
    out: list[Message] = []
    for name, amount in wanted.items():
        left = round(amount, 3)
        for e in entries:
            if left <= 0:
                break
            if e["name"] != name:
                continue
            have = round(float(e["scalar"]["value"]), 3)
            part = min(have, left)
            if part <= 0:
                continue
            piece = {k: v for k, v in e.items() if k != "scalar"}
            piece["scalar"] = {"value": part}
            out.append(piece)
            e["scalar"] = {"value": round(have - part, 3)}
            left = round(left - part, 3)
        if left > 1e-9:
            raise ValueError(f"offer lacks {left} {name}")
    return out


def task_info(launch: TaskLaunch, agent_id: str, resources: list[Message],
              executor: Message, workflow_id: str, kill_grace: float, *,
              resource_url: str = "", resource_token: str = "", log_cap: int = 0,
              enforce_memory: bool = False) -> Message:
    job = launch.job
    env = dict(job.environment)
    if job.job_environment:
        env.update(job.job_environment)
    payload = TaskPayload(job_id=job.job_id, name=job.name, command=job.command,
                          cores=job.cores, env=env, walltime=job.walltime,
                          workflow_id=workflow_id, resource_url=resource_url,
                          resource_token=resource_token, log_cap=log_cap,
                          memory_limit=job.memory if enforce_memory else 0)
    return {
        "name": job.name[:200] or f"job{job.job_id}",
        "task_id": {"value": launch.task_id},
        "agent_id": {"value": agent_id},
        "resources": resources,
        "executor": executor,
        "data": payload.encode(),
        "kill_policy": {"grace_period": {"nanoseconds": int(kill_grace * 1e9)}},
    }


def scalar(name: str, value: float) -> Message:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def executor_info(executor_id: str, framework_id: str | None, command: str,
                  environment: Mapping[str, str], resources: list[Message],
                  uris: list[Message] | None = None, grace: float = 10.0) -> Message:
    info: Message = {
        "type": "CUSTOM",
        "executor_id": {"value": executor_id},
        "name": "mesobatch executor",
        "command": {
            "value": command, "shell": True,
            "environment": {"variables": [{"name": k, "value": v}
                                          for k, v in sorted(environment.items())]},
        },
        "resources": resources,
        "shutdown_grace_period": {"nanoseconds": int(grace * 1e9)},
    }
    if uris:
        info["command"]["uris"] = uris
    if framework_id:
        info["framework_id"] = {"value": framework_id}
    return info


# ----------------------------------------------------------------------------- updates

_REASON_OVERRIDES = {
    "REASON_CONTAINER_LIMITATION_MEMORY": BatchJobExitReason.MEMLIMIT,
    "REASON_MAX_COMPLETION_TIME_REACHED": BatchJobExitReason.MAXJOBDURATION,
}

#: TASK_ERROR reasons of a launch the master (or agent) refused after validating or
#: authorizing it: it never reached an executor (recording 06, surprise 20)
_INVALID_REASONS = frozenset({"REASON_TASK_INVALID", "REASON_TASK_UNAUTHORIZED",
                              "REASON_TASK_GROUP_INVALID", "REASON_TASK_GROUP_UNAUTHORIZED"})
#: ...of which these messages are about the task id alone: a task of an earlier run with
#: that id still lives (or is unreachable), so a launch under a new id will do
_ID_TAKEN = ("Task has duplicate ID", "reuses the ID of an unreachable task")
#: TASK_FAILED reasons with which an agent gives up on starting our executor, before it
#: could be handed any task
_EXECUTOR_NEVER_RAN = frozenset({"REASON_CONTAINER_LAUNCH_FAILED",
                                 "REASON_EXECUTOR_REGISTRATION_TIMEOUT"})


class LaunchOutcome(NamedTuple):
    """What a Mesos status says of a launch (the fields of the core's TaskStatus)."""

    #: the task never ran (its job goes back to the queue if it reported nothing else)
    never_started: bool = False
    #: ... and a launch made the same way would be refused again (tried a bounded number
    #: of times)
    launch_refused: bool = False
    #: ... because an earlier run's task holds its id (whatever reported under that id
    #: was that task)
    id_taken: bool = False


def launch_outcome(state: str, reason: str, source: str, message: str) -> LaunchOutcome:
    """Whether a Mesos status says a launch never ran, and why.

    - TASK_DROPPED: by definition a launch that failed for a transient reason before the
      executor ran (stale offer, agent gone or disconnected at launch time).
    - TASK_LOST with REASON_INVALID_OFFERS (frameworks that are not partition aware) or
      REASON_RECONCILIATION, and TASK_GONE with REASON_RECONCILIATION (its partition-aware
      form): a registered agent does not know the task. An agent forgets a task only once
      its terminal update is acknowledged, which we would have heard; so for a task we
      heard nothing of (the core checks), the launch never reached the agent, e.g. a
      master that took the ACCEPT died before passing it on.
    - TASK_ERROR from the master or agent for an invalid or unauthorized task: refused
      for its own content, unless only its id was taken (an earlier run's live task).
      A TASK_ERROR our executor sends is its verdict on the job itself: reported.
    - TASK_FAILED because the agent could not start our executor.
    """
    if state == "TASK_DROPPED":
        return LaunchOutcome(never_started=True)
    if state == "TASK_LOST":
        return LaunchOutcome(reason in ("REASON_INVALID_OFFERS", "REASON_RECONCILIATION"))
    if state == "TASK_GONE":
        return LaunchOutcome(reason == "REASON_RECONCILIATION")
    if state == "TASK_ERROR" and reason in _INVALID_REASONS and source != "SOURCE_EXECUTOR":
        if any(m in message for m in _ID_TAKEN):
            return LaunchOutcome(never_started=True, id_taken=True)
        return LaunchOutcome(never_started=True, launch_refused=True)
    if state == "TASK_FAILED" and reason in _EXECUTOR_NEVER_RAN:
        return LaunchOutcome(never_started=True, launch_refused=True)
    return LaunchOutcome()


_LOG_FILE = re.compile(r"[0-9]{1,19}-[A-Za-z0-9_.-]{1,60}\.log")


def _terminal_result(raw: Mapping[str, Any], state: TaskState) -> TaskResult | None:
    """The TaskResult a terminal status carries; None for others and unreadable data."""
    if not raw.get("data") or not state.terminal:
        return None
    try:
        return TaskResult.decode(raw["data"])
    except (ValueError, TypeError, KeyError):
        return None


def _returned_log(result: TaskResult | None) -> tuple[str, bytes] | None:
    """(file name, content) of a log that came inside a terminal status, if one did
    (a larger one was uploaded before it); None for anything else, a bad name included."""
    if result is None or result.log is None or not _LOG_FILE.fullmatch(result.log_file):
        return None
    try:
        return result.log_file, b64decode(result.log)
    except (ValueError, TypeError):
        return None


def parse_status(raw: Mapping[str, Any], now: float) -> TaskStatus:
    """A Mesos TaskStatus as the core's TaskStatus."""
    return parse_update(raw, now)[0]


def parse_update(raw: Mapping[str, Any], now: float
                 ) -> tuple[TaskStatus, tuple[str, bytes] | None]:
    """A Mesos TaskStatus as the core's TaskStatus, and the log that came inside it
    (see _returned_log); its data decoded once for both."""
    mesos_state = str(raw.get("state", ""))
    state = from_mesos(mesos_state)
    reason = str(raw.get("reason", ""))
    message = str(raw.get("message", ""))
    exit_code = wall = None
    result = _terminal_result(raw, state)
    if result is not None:
        exit_code, wall = result.exit_code, result.wall_time
    exit_reason = _REASON_OVERRIDES.get(reason)
    if result is not None and result.walltime_exceeded:
        exit_reason = BatchJobExitReason.MAXJOBDURATION
    elif result is not None and result.memory_exceeded:
        exit_reason = BatchJobExitReason.MEMLIMIT
    executor_died = (state in (TaskState.FAILED, TaskState.LOST)
                     and reason == "REASON_EXECUTOR_TERMINATED")
    if executor_died:
        # the executor died under the task: the node's fault, not the job's
        state = TaskState.LOST
    # for a task that never reported anything else (the core checks)
    outcome = launch_outcome(mesos_state, reason, str(raw.get("source", "")), message)
    return TaskStatus(
        task_id=raw["task_id"]["value"], state=state, now=now, exit_code=exit_code,
        wall_time=wall, message=message,
        agent_id=(raw.get("agent_id") or {}).get("value"), exit_reason=exit_reason,
        never_started=outcome.never_started, launch_refused=outcome.launch_refused,
        id_taken=outcome.id_taken, unless_running=executor_died,
        peak_memory=result.peak_memory if result is not None else None,
        cpu_time=result.cpu_time if result is not None else None,
        memory_at_most=result.memory_at_most if result is not None else None,
    ), _returned_log(result)
