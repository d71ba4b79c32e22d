"""Checks of the scheduler events a master sends, before the driver uses them.

An event with the right framing can still have the wrong shape (a body missing, a
string where an object belongs). Each check names what is wrong, so the driver can
log and skip the event instead of failing in the middle of it; the callbacks check the
contents of offers and statuses themselves.
"""

from __future__ import annotations

import binascii
import math
from typing import Any

#: heartbeat interval used when SUBSCRIBED does not give a usable one (Mesos's default)
DEFAULT_HEARTBEAT = 15.0

#: the body key each event type carries, and whether it is required
_BODIES = {
    "SUBSCRIBED": "subscribed", "OFFERS": "offers", "INVERSE_OFFERS": "inverse_offers",
    "RESCIND": "rescind", "RESCIND_INVERSE_OFFER": "rescind_inverse_offer",
    "UPDATE": "update", "MESSAGE": "message", "FAILURE": "failure",
}


def is_id(value: Any) -> bool:
    """A Mesos id message: {"value": "<non-empty string>"}."""
    return isinstance(value, dict) and isinstance(value.get("value"), str) and bool(
        value["value"])


def _list_of_objects(value: Any) -> bool:
    return value is None or isinstance(value, list)


def event_problem(event: Any) -> str | None:
    """What makes ``event`` unusable, or None if the driver can use it."""
    if not isinstance(event, dict):
        return f"not a JSON object but {type(event).__name__}"
    kind = event.get("type")
    if not isinstance(kind, str):
        return f"event type {kind!r} is not a string"
    key = _BODIES.get(kind)
    if key is None:
        return None  # HEARTBEAT, ERROR, and types we ignore
    body = event.get(key)
    if not isinstance(body, dict):
        return f"{kind} without an object {key!r}"
    if kind == "SUBSCRIBED":
        if not is_id(body.get("framework_id")):
            return "SUBSCRIBED without a framework_id"
        if not isinstance(body.get("master_info", {}), dict):
            return "SUBSCRIBED with a master_info that is not an object"
    elif kind == "OFFERS" and not _list_of_objects(body.get("offers")):
        return "OFFERS whose offers are not a list"
    elif kind == "INVERSE_OFFERS":
        offers = body.get("inverse_offers")
        if not _list_of_objects(offers) or not all(
                isinstance(o, dict) and is_id(o.get("id")) for o in offers or ()):
            return "INVERSE_OFFERS whose inverse_offers are not offers with ids"
    elif kind == "RESCIND" and not is_id(body.get("offer_id")):
        return "RESCIND without an offer_id"
    elif kind == "UPDATE":
        status = body.get("status")
        if not isinstance(status, dict):
            return "UPDATE whose status is not an object"
        if not is_id(status.get("task_id")):
            return "UPDATE whose status has no task_id"
    elif kind == "MESSAGE":
        return _message_problem(body)
    elif kind == "FAILURE":
        for name in ("executor_id", "agent_id"):
            if name in body and not is_id(body[name]):
                return f"FAILURE whose {name} is not an id"
    return None


def _message_problem(body: dict[str, Any]) -> str | None:
    for name in ("executor_id", "agent_id"):
        if not is_id(body.get(name)):
            return f"MESSAGE without an {name}"
    data = body.get("data", "")
    if not isinstance(data, str):
        return "MESSAGE whose data is not a string"
    try:
        binascii.a2b_base64(data.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error):
        return "MESSAGE whose data is not base64"
    return None


#: TaskStatus fields that are strings, and those that are ids
_STATUS_TEXT = ("state", "reason", "source", "message", "data", "uuid")
_STATUS_IDS = ("agent_id", "executor_id")


def clean_status(status: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A TaskStatus without the fields whose type is wrong, so that what is left can be
    read (its task_id was checked by event_problem), and what was dropped."""
    bad = [k for k in _STATUS_TEXT if k in status and not isinstance(status[k], str)]
    bad += [k for k in _STATUS_IDS if k in status and not is_id(status[k])]
    if not bad:
        return status, None
    return ({k: v for k, v in status.items() if k not in bad},
            "UPDATE with unreadable " + ", ".join(bad))


def failure_status(body: dict[str, Any]) -> tuple[int, str | None]:
    """An executor's wait status from FAILURE (0, unknown, if it is not a number), and
    what was wrong with it."""
    status = body.get("status", 0)
    if isinstance(status, bool) or not isinstance(status, int):
        return 0, "FAILURE whose status is not a number"
    return status, None


def heartbeat_interval(body: dict[str, Any]) -> tuple[float, str | None]:
    """SUBSCRIBED's heartbeat_interval_seconds if usable (a number > 0, at most a day),
    else Mesos's default; and what was wrong with it."""
    value = body.get("heartbeat_interval_seconds", DEFAULT_HEARTBEAT)
    if (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 < value <= 86400):
        return float(value), None
    return DEFAULT_HEARTBEAT, (f"SUBSCRIBED with an unusable heartbeat_interval_seconds; "
                               f"expecting heartbeats every {DEFAULT_HEARTBEAT:g} s")
