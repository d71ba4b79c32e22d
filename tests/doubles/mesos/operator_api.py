"""``POST /api/v1`` (operator API): agents, tasks, frameworks, deactivation, drain, maintenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .calls import read_call
from .httpserver import Request, Response, text
from .httputil import bad_request, ok_empty, ok_json
from .master_state import AgentRecord, FrameworkRecord, MasterTask
from .resources import with_role
from .wire import JsonDict, dumps

if TYPE_CHECKING:
    from .httpserver import Handler
    from .master import Master

_AGENT_CAPABILITIES = [
    {"type": t}
    for t in [
        "MULTI_ROLE",
        "HIERARCHICAL_ROLE",
        "RESERVATION_REFINEMENT",
        "RESOURCE_PROVIDER",
        "RESIZE_VOLUME",
        "AGENT_OPERATION_FEEDBACK",
        "AGENT_DRAINING",
        "TASK_RESOURCE_LIMITS",
    ]
]

_BODY_FIELD = {
    "DEACTIVATE_AGENT": "deactivate_agent",
    "REACTIVATE_AGENT": "reactivate_agent",
    "DRAIN_AGENT": "drain_agent",
    "UPDATE_MAINTENANCE_SCHEDULE": "update_maintenance_schedule",
    "START_MAINTENANCE": "start_maintenance",
    "STOP_MAINTENANCE": "stop_maintenance",
}


def handler(master: Master) -> Handler:
    def operator(request: Request) -> Response:
        if not master.elected:
            return master.redirect(request)  # every call, before parsing (Master::Http::api)
        if master.recovering:
            return text(503, "Master has not finished recovery")
        call = read_call(request, "OperatorCall")
        if isinstance(call, Response):
            return call
        kind = call.get("type")
        if kind is None:
            return bad_request("Failed to validate master::Call: Expecting 'type' to be present")
        field = _BODY_FIELD.get(kind)
        if field is not None and field not in call:
            return bad_request(
                f"Failed to validate master::Call: Expecting '{field}' to be present"
            )
        master.counters.calls["operator:" + kind] = (
            master.counters.calls.get("operator:" + kind, 0) + 1
        )
        return _dispatch(master, kind, call)

    return operator


def _dispatch(master: Master, kind: str, call: JsonDict) -> Response:
    if kind.startswith("GET_"):
        getter = _GETTERS.get(kind)
        if getter is None:
            return text(501, f"{kind} is not implemented by the Mesos double")
        key = kind.lower()
        return ok_json(dumps({"type": kind, key: getter(master)}))
    if kind in ("DEACTIVATE_AGENT", "REACTIVATE_AGENT", "DRAIN_AGENT"):
        agent = master.agents.get(call[_BODY_FIELD[kind]]["agent_id"]["value"])
        if agent is None or agent.unreachable_time is not None:
            return bad_request("Unknown agent")
        if kind == "DEACTIVATE_AGENT":
            agent.deactivated = True
            master.rescind_agent_offers(agent)
        elif kind == "REACTIVATE_AGENT":
            if not agent.deactivated:
                return bad_request("Agent is not deactivated")
            agent.deactivated = False
            agent.drain = None
            agent.drain_start = None
        else:
            label = master.maintenance.machine_label(agent.hostname, agent.ip)
            if label is not None:
                return bad_request(
                    f"Agent {agent.id} is part of a maintenance schedule under Machine {label}"
                )
            body = call["drain_agent"]
            config: JsonDict = {}
            grace_ns: int | None = None
            if "max_grace_period" in body:
                period = body["max_grace_period"]
                grace_ns = int(period.get("seconds", 0)) * 1_000_000_000 + int(
                    period.get("nanos", 0)
                )
                config["max_grace_period"] = {"nanoseconds": grace_ns}
            config["mark_gone"] = bool(body.get("mark_gone", False))
            master.drain_agent(agent, grace_ns, config)
        master.persist_registry()  # deactivation and drain info are in the registry
        return ok_empty()
    if kind == "UPDATE_MAINTENANCE_SCHEDULE":
        master.update_schedule(call["update_maintenance_schedule"]["schedule"])
        return ok_empty()
    return text(501, f"{kind} is not implemented by the Mesos double")


def agent_json(agent: AgentRecord) -> JsonDict:
    out: JsonDict = {
        "agent_info": {**agent.agent_info(), "checkpoint": agent.checkpoint_capable},
        "active": agent.connected and not agent.deactivated,
        "deactivated": agent.deactivated,
        "version": "1.11.0",
        "pid": agent.pid,
        "registered_time": {"nanoseconds": int(agent.registered_time * 1e9)},
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = {"nanoseconds": int(agent.reregistered_time * 1e9)}
    out["total_resources"] = with_role(agent.total_json, multi_role=False)
    if not agent.used.empty():
        out["allocated_resources"] = with_role(agent.used.to_json(), multi_role=True)
    if not agent.offered.empty():
        out["offered_resources"] = with_role(
            agent.offered.to_json(offer_order=True), multi_role=True
        )
    out["capabilities"] = _AGENT_CAPABILITIES
    if agent.drain is not None:
        out["drain_info"] = agent.drain
        if agent.drain_start is not None:
            out["estimated_drain_start_time"] = {"nanoseconds": agent.drain_start}
    return out


def _get_agents(master: Master) -> JsonDict:
    agents = [agent_json(a) for a in master.agents.values() if a.unreachable_time is None]
    recovered = [
        {**AgentRecord.from_registry(entry).agent_info(), "checkpoint": True}
        for entry in master.recovered_agents.values()
    ]
    return {"agents": agents, "recovered_agents": recovered}  # [] recorded when none


def task_json(task: MasterTask) -> JsonDict:
    info = task.info
    out: JsonDict = {
        "name": task.name,
        "task_id": {"value": task.task_id},
        "framework_id": {"value": task.framework_id},
    }
    if task.executor_id is not None:
        out["executor_id"] = {"value": task.executor_id}
    out["agent_id"] = {"value": task.agent_id}
    out["state"] = task.state
    out["resources"] = info.get("resources", [])
    if task.last_status is not None:
        out["statuses"] = [task.last_status]
    if task.status_update_state is not None:
        out["status_update_state"] = task.status_update_state
        if task.status_update_uuid is not None:
            out["status_update_uuid"] = task.status_update_uuid
    return out


def _get_tasks(master: Master) -> JsonDict:
    frameworks = list(master.frameworks.values())
    completed = list(master.completed_frameworks.values())
    out: dict[str, list[JsonDict]] = {
        "tasks": [task_json(t) for f in frameworks for t in f.tasks.values()],
        "unreachable_tasks": [
            task_json(t) for f in frameworks for t in f.unreachable_tasks.values()
        ],
        "completed_tasks": [
            task_json(t) for f in frameworks + completed for t in f.completed_tasks
        ],
    }
    return {k: v for k, v in out.items() if v}


def framework_json(framework: FrameworkRecord) -> JsonDict:
    out: JsonDict = {
        "framework_info": framework.info,
        "active": framework.active,
        "connected": framework.connected,
        "recovered": False,
        "registered_time": {"nanoseconds": int(framework.registered_time * 1e9)},
    }
    if framework.reregistered_time is not None:
        out["reregistered_time"] = {"nanoseconds": int(framework.reregistered_time * 1e9)}
    return out


def _get_frameworks(master: Master) -> JsonDict:
    out: dict[str, Any] = {
        "frameworks": [framework_json(f) for f in master.frameworks.values()],
        "completed_frameworks": [framework_json(f) for f in master.completed_frameworks.values()],
    }
    return {k: v for k, v in out.items() if v}


def _get_maintenance_schedule(master: Master) -> JsonDict:
    return {"schedule": master.maintenance.schedule}


def _get_maintenance_status(master: Master) -> JsonDict:
    return {"status": master.maintenance.status()}


def _get_master(master: Master) -> JsonDict:
    out: JsonDict = {"master_info": master.master_info(), "start_time": master.start_time}
    if master.elected_time is not None:
        out["elected_time"] = master.elected_time
    return out


def _get_health(master: Master) -> JsonDict:
    return {"healthy": True}


def _get_version(master: Master) -> JsonDict:
    return {"version_info": {"version": "1.11.0"}}


_GETTERS: dict[str, Any] = {
    "GET_AGENTS": _get_agents,
    "GET_TASKS": _get_tasks,
    "GET_FRAMEWORKS": _get_frameworks,
    "GET_MAINTENANCE_SCHEDULE": _get_maintenance_schedule,
    "GET_MAINTENANCE_STATUS": _get_maintenance_status,
    "GET_MASTER": _get_master,
    "GET_HEALTH": _get_health,
    "GET_VERSION": _get_version,
}
