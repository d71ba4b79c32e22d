"""TaskStatus construction in proto field order (task_id, state, message, source, reason...)."""

from __future__ import annotations

from .wire import JsonDict, now


def make_status(
    task_id: str,
    state: str,
    source: str,
    *,
    message: str | None = None,
    reason: str | None = None,
    agent_id: str | None = None,
    executor_id: str | None = None,
    uuid: str | None = None,
    container_status: JsonDict | None = None,
    unreachable_time: int | None = None,
    timestamp: float | None = None,
) -> JsonDict:
    status: JsonDict = {"task_id": {"value": task_id}, "state": state}
    if message is not None:
        status["message"] = message
    status["source"] = source
    if reason is not None:
        status["reason"] = reason
    if agent_id is not None:
        status["agent_id"] = {"value": agent_id}
    if executor_id is not None:
        status["executor_id"] = {"value": executor_id}
    status["timestamp"] = now() if timestamp is None else timestamp
    if uuid is not None:
        status["uuid"] = uuid
    if container_status is not None:
        status["container_status"] = container_status
    if unreachable_time is not None:
        status["unreachable_time"] = {"nanoseconds": unreachable_time}
    return status


_STATUS_ORDER = [
    "task_id",
    "state",
    "message",
    "source",
    "reason",
    "data",
    "agent_id",
    "executor_id",
    "timestamp",
    "uuid",
    "healthy",
    "check_status",
    "labels",
    "container_status",
    "unreachable_time",
    "limitation",
]


def reorder(status: JsonDict) -> JsonDict:
    """Put a status dict back into proto declaration order after fields were added."""
    return {key: status[key] for key in _STATUS_ORDER if key in status}


def update_event(status: JsonDict) -> JsonDict:
    return {"type": "UPDATE", "update": {"status": status}}
