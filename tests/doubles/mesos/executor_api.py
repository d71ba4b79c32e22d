"""``POST /api/v1/executor`` on each agent: the executor calls, checked in the agent's order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import httputil
from .calls import read_call
from .httpserver import EventStream, Request, Response, StreamStart, text
from .httputil import bad_request
from .traffic import bump
from .wire import JsonDict, b64decode_strict, is_valid_uuid_bytes

if TYPE_CHECKING:
    from .agent import Agent
    from .httpserver import Handler


def validate_call(call: JsonDict) -> str | None:
    """common::validation::validateExecutorCall."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE" and "subscribe" not in call:
        return "Expecting 'subscribe' to be present"
    if kind == "UPDATE":
        if "update" not in call:
            return "Expecting 'update' to be present"
        status = call["update"]["status"]
        if "uuid" not in status:
            return "Expecting 'uuid' to be present"
        if not is_valid_uuid_bytes(b64decode_strict(status["uuid"])):
            return "Not a valid UUID"
        executor_id = call["executor_id"]["value"]
        framework_id = call["framework_id"]["value"]
        status_executor = status.get("executor_id", {}).get("value")
        if status_executor is not None and status_executor != executor_id:
            return (
                f"ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: "
                f"{status_executor}"
            )
        if status.get("source") != "SOURCE_EXECUTOR":
            return (
                f"Received Call from executor {executor_id} of framework {framework_id} with "
                "invalid source, expecting 'SOURCE_EXECUTOR'"
            )
        if status["state"] == "TASK_STAGING":
            return (
                f"Received TASK_STAGING from executor {executor_id} of framework "
                f"{framework_id} which is not allowed"
            )
    if kind == "MESSAGE" and "message" not in call:
        return "Expecting 'message' to be present"
    return None


def handler(agent: Agent) -> Handler:
    def executor(request: Request) -> Response | StreamStart:
        call = read_call(request, "ExecutorCall")
        if isinstance(call, Response):
            return call
        problem = validate_call(call)
        if problem is not None:
            return bad_request(f"Failed to validate Executor::Call: {problem}")
        kind = call["type"]
        if kind == "SUBSCRIBE":
            error = httputil.accept_error(request)
            if error is not None:
                return error
        elif kind == "HEARTBEAT":
            return httputil.accepted()
        elif agent.state != "running":
            return text(503, "Agent has not finished recovery")
        framework = agent.frameworks.get(call["framework_id"]["value"])
        if framework is None:
            return bad_request("Framework cannot be found")
        run = framework.executors.get(call["executor_id"]["value"])
        if run is None:
            return bad_request("Executor cannot be found")
        if not run.subscribed_once and kind != "SUBSCRIBE":
            return text(403, "Executor is not subscribed")
        traffic = agent.traffic_of(framework.id)
        bump(traffic.executor_calls, kind)
        if kind == "UPDATE":
            bump(traffic.executor_updates, call["update"]["status"]["state"])
        if kind == "SUBSCRIBE":
            if run.state in ("terminated", "launching"):
                return bad_request("Executor cannot be found")
            headers = [("Content-Type", "application/json")]

            def opened(stream: EventStream) -> None:
                agent.subscribe(run, stream, call)

            def closed(stream: EventStream, reason: str) -> None:
                agent.stream_closed(run, stream)

            return StreamStart(headers, opened, closed)
        if kind == "UPDATE":
            agent.status_update(framework.id, run, call["update"]["status"])
        elif kind == "MESSAGE":
            agent.executor_message(run, call["message"]["data"])
        return httputil.accepted()

    return executor
