"""``POST /api/v1/scheduler``: request checks in libprocess' order, then dispatch to the master."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import httputil
from .auth import authenticate, unauthorized
from .calls import read_call
from .httpserver import EventStream, Request, Response, StreamStart, text
from .httputil import bad_request
from .protojson import parse
from .traffic import bump
from .wire import JsonDict, b64decode_strict, is_valid_uuid_bytes, new_uuid

if TYPE_CHECKING:
    from .httpserver import Handler
    from .master import Master

_BODY_FIELD = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
}


def validate_call(call: JsonDict, principal: str | None = None) -> str | None:
    """validation::scheduler::call::validate (the text after 'Failed to validate ...: ')."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE":
        if "subscribe" not in call:
            return "Expecting 'subscribe' to be present"
        info = call["subscribe"]["framework_info"]
        if info.get("id") != call.get("framework_id"):
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        if principal is not None and "principal" in info and info["principal"] != principal:
            return _principal_mismatch(principal, info["principal"])
        return None
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    field = _BODY_FIELD.get(kind)
    if field is not None and field not in call:
        return f"Expecting '{field}' to be present"
    if kind == "ACKNOWLEDGE" and not is_valid_uuid_bytes(
        b64decode_strict(call["acknowledge"]["uuid"])
    ):
        return "Not a valid UUID"
    if kind == "ACKNOWLEDGE_OPERATION_STATUS":
        body = call["acknowledge_operation_status"]
        if not is_valid_uuid_bytes(b64decode_strict(body["uuid"])):
            return "Not a valid UUID"
        if "agent_id" not in body:
            return "Expecting 'agent_id' to be present"
    if kind == "UPDATE_FRAMEWORK":
        info_id = call["update_framework"]["framework_info"].get("id")
        if info_id != call.get("framework_id"):
            return "'framework_id' differs from 'update_framework.framework_info.id'"
    return None


def _principal_mismatch(authenticated: str, declared: str) -> str:
    return (
        f"Authenticated principal '{authenticated}' does not match principal '{declared}' "
        "set in `FrameworkInfo`"
    )


def handler(master: Master) -> Handler:
    def scheduler(request: Request) -> Response | StreamStart:
        # libprocess authenticates before the handler runs; then Master::Http::scheduler
        # redirects when this master is not the leader.
        principal = None
        if master.config.credentials is not None:
            principal = authenticate(request, master.config.credentials)
            if principal is None:
                return unauthorized()
        if not master.elected:
            return master.redirect(request)
        if master.recovering:
            return text(503, "Master has not finished recovery")
        call = read_call(request, "Call")
        if isinstance(call, Response):
            return call
        problem = validate_call(call, principal)
        if problem is not None:
            return bad_request(f"Failed to validate scheduler::Call: {problem}")
        kind = call["type"]
        master.counters.calls[kind] = master.counters.calls.get(kind, 0) + 1
        if kind == "SUBSCRIBE":
            return _subscribe(master, request, call, principal)
        framework_id = call["framework_id"]["value"]
        framework = master.framework_for_call(framework_id)
        if framework is None:
            return bad_request("Framework cannot be found")
        framework.calls[kind] = framework.calls.get(kind, 0) + 1
        bump(framework.traffic.calls, kind)
        declared = framework.info.get("principal", "")
        if principal is not None and principal != declared:
            return bad_request(_principal_mismatch(principal, declared))
        if not framework.connected:
            return text(403, "Framework is not subscribed")
        stream_id = request.headers.get("mesos-stream-id")
        if stream_id is None:
            return bad_request(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        if stream_id != framework.stream_id:
            return bad_request(
                f"The stream ID '{stream_id}' included in this request didn't match the stream "
                f"ID currently associated with framework ID {framework_id}"
            )
        if kind == "UPDATE_FRAMEWORK":
            body = call["update_framework"]
            refused = master.update_framework(
                framework, body["framework_info"], body.get("suppressed_roles", [])
            )
            return bad_request(refused) if refused is not None else httputil.ok_empty()
        _dispatch(master, framework, kind, call)
        return httputil.accepted()

    return scheduler


def _subscribe(
    master: Master, request: Request, call: JsonDict, principal: str | None
) -> Response | StreamStart:
    error = httputil.accept_error(request)
    if error is not None:
        return error
    if "mesos-stream-id" in request.headers:
        return bad_request("Subscribe calls should not include the 'Mesos-Stream-Id' header")
    stream_id = new_uuid()
    subscribe = call["subscribe"]
    if principal is not None and "principal" not in subscribe["framework_info"]:
        # The master fills in the authenticated principal (and logs a warning).
        info = parse({**subscribe["framework_info"], "principal": principal}, "FrameworkInfo")
        subscribe = {**subscribe, "framework_info": info}

    def opened(stream: EventStream) -> None:
        master.subscribe(
            stream, stream_id, subscribe["framework_info"], subscribe.get("suppressed_roles")
        )

    def closed(stream: EventStream, reason: str) -> None:
        for framework in list(master.frameworks.values()):
            if framework.stream is stream:
                master.stream_closed(framework.id, stream)

    headers = [("Mesos-Stream-Id", stream_id), ("Content-Type", "application/json")]
    return StreamStart(headers, opened, closed)


def _dispatch(master: Master, framework: object, kind: str, call: JsonDict) -> None:
    from .master_state import FrameworkRecord

    assert isinstance(framework, FrameworkRecord)
    if kind == "TEARDOWN":
        master.remove_framework(framework.id, teardown=True)
    elif kind == "ACCEPT":
        master.accept(framework, call["accept"])
    elif kind == "DECLINE":
        body = call["decline"]
        master.decline(
            framework, [o["value"] for o in body.get("offer_ids", [])], body.get("filters")
        )
    elif kind in ("ACCEPT_INVERSE_OFFERS", "DECLINE_INVERSE_OFFERS"):
        body = call[_BODY_FIELD[kind]]
        ids = [o["value"] for o in body.get("inverse_offer_ids", [])]
        answer = "ACCEPT" if kind == "ACCEPT_INVERSE_OFFERS" else "DECLINE"
        master.answer_inverse_offers(framework, ids, body.get("filters"), answer)
    elif kind == "REVIVE":
        master.revive(framework, call.get("revive", {}).get("roles", []))
    elif kind == "SUPPRESS":
        master.suppress(framework, call.get("suppress", {}).get("roles", []))
    elif kind == "KILL":
        master.kill(framework, call["kill"])
    elif kind == "SHUTDOWN":
        body = call["shutdown"]
        master.shutdown_executor(framework, body["executor_id"]["value"], body["agent_id"]["value"])
    elif kind == "ACKNOWLEDGE":
        master.acknowledge(framework, call["acknowledge"])
    elif kind == "RECONCILE":
        master.reconcile(framework, call["reconcile"].get("tasks", []))
    elif kind == "MESSAGE":
        body = call["message"]
        master.framework_message(
            framework, body["agent_id"]["value"], body["executor_id"]["value"], body["data"]
        )
    # REQUEST is ignored by the default allocator; operation calls have nothing to act on.
