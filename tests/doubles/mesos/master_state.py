"""The master's records: frameworks, agents as the master sees them, tasks, offers, filters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .httpserver import EventStream
from .link import Link
from .resources import Resources
from .schema import TERMINAL_STATES
from .traffic import FrameworkTraffic
from .wire import JsonDict


@dataclass
class MasterTask:
    task_id: str
    framework_id: str
    agent_id: str
    executor_id: str | None
    name: str
    resources: Resources
    info: JsonDict
    state: str = "TASK_STAGING"
    status_update_state: str | None = None
    status_update_uuid: str | None = None
    last_status: JsonDict | None = None
    released: bool = False
    unreachable_time: int | None = None
    # Mesos reports the container status of the most recent status that had one.
    latest_container_status: JsonDict | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def record_status(self, status: JsonDict) -> None:
        self.last_status = status
        if "container_status" in status:
            self.latest_container_status = status["container_status"]

    def container_status(self) -> JsonDict | None:
        return self.latest_container_status


@dataclass
class FilterEntry:
    resources: Resources
    expires: float


@dataclass
class FrameworkRecord:
    id: str
    info: JsonDict
    stream: EventStream | None = None
    stream_id: str | None = None
    connected: bool = False
    active: bool = False
    suppressed: set[str] = field(default_factory=set)
    filters: dict[str, list[FilterEntry]] = field(default_factory=dict)
    inverse_filters: dict[str, float] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    inverse_offers: set[str] = field(default_factory=set)
    tasks: dict[str, MasterTask] = field(default_factory=dict)
    unreachable_tasks: dict[str, MasterTask] = field(default_factory=dict)
    completed_tasks: list[MasterTask] = field(default_factory=list)
    failover_timer: asyncio.TimerHandle | None = None
    heartbeat_task: asyncio.Task[None] | None = None
    registered_time: float = 0.0
    reregistered_time: float | None = None
    calls: dict[str, int] = field(default_factory=dict)
    # The master's counters of this framework id (shared by its records across restarts).
    traffic: FrameworkTraffic = field(default_factory=FrameworkTraffic)

    @property
    def capabilities(self) -> set[str]:
        return {c.get("type", "") for c in self.info.get("capabilities", [])}

    @property
    def multi_role(self) -> bool:
        return "MULTI_ROLE" in self.capabilities

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def roles(self) -> list[str]:
        if self.multi_role:
            return list(self.info.get("roles", []))
        return [self.info.get("role", "*")]

    def send(self, event: JsonDict) -> None:
        if self.connected and self.stream is not None:
            self.stream.send(event)
            self.traffic.event(event)


@dataclass
class ExecutorRecord:
    framework_id: str
    info: JsonDict
    resources: Resources


@dataclass
class AgentRecord:
    id: str
    hostname: str
    ip: str
    port: int
    total: Resources
    total_json: list[JsonDict]
    attributes: list[JsonDict]
    checkpoint_capable: bool = True
    link: Link | None = None
    connected: bool = False
    unreachable_time: int | None = None
    deactivated: bool = False
    drain: JsonDict | None = None
    drain_start: int | None = None
    used: Resources = field(default_factory=Resources)
    offered: Resources = field(default_factory=Resources)
    executors: dict[str, dict[str, ExecutorRecord]] = field(default_factory=dict)
    tasks: dict[str, set[str]] = field(default_factory=dict)
    removal_timer: asyncio.TimerHandle | None = None
    registered_time: float = 0.0
    reregistered_time: float | None = None

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip}:{self.port}"

    @property
    def has_gpus(self) -> bool:
        return self.total.scalar("gpus") > 0

    def url(self) -> JsonDict:
        return {
            "scheme": "http",
            "address": {"hostname": self.hostname, "ip": self.ip, "port": self.port},
            "path": "/slave(1)",
        }

    def agent_info(self) -> JsonDict:
        return {
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.total_json,
            **({"attributes": self.attributes} if self.attributes else {}),
            "id": {"value": self.id},
        }

    def send(self, message: JsonDict) -> None:
        if self.connected and self.link is not None:
            self.link.send(message)

    def registry_info(self) -> JsonDict:
        """What the registry keeps of this agent (its AgentInfo, drain, deactivation)."""
        entry: JsonDict = {
            "info": {
                "id": self.id,
                "hostname": self.hostname,
                "ip": self.ip,
                "port": self.port,
                "resources": self.total_json,
                "attributes": self.attributes,
            },
            "deactivated": self.deactivated,
        }
        if self.drain is not None:
            entry["drain"] = self.drain
            entry["drain_start"] = self.drain_start
        return entry

    @classmethod
    def from_registry(cls, entry: JsonDict) -> AgentRecord:
        info = entry["info"]
        return cls(
            id=info["id"],
            hostname=info["hostname"],
            ip=info["ip"],
            port=info["port"],
            total=Resources.from_json(info["resources"]),
            total_json=info["resources"],
            attributes=info.get("attributes", []),
            deactivated=bool(entry.get("deactivated", False)),
            drain=entry.get("drain"),
            drain_start=entry.get("drain_start"),
        )


@dataclass
class OfferRecord:
    id: str
    framework_id: str
    agent_id: str
    resources: Resources
    role: str
    json: JsonDict


@dataclass
class InverseOfferRecord:
    id: str
    framework_id: str
    agent_id: str
    json: JsonDict


@dataclass
class Counters:
    """What benchmarks and tests read: calls by type, offers, declines, acks..."""

    calls: dict[str, int] = field(default_factory=dict)
    offers_sent: int = 0
    offer_events: int = 0
    offers_declined: int = 0
    offers_rescinded: int = 0
    offers_accepted: int = 0
    suppress: int = 0
    revive: int = 0
    acks: int = 0
    updates_forwarded: int = 0
    tasks_launched: int = 0
    heartbeats: int = 0
    pings: int = 0
    # Explicit reconciliations not answered: the agent is recovered, not yet re-registered.
    reconciliations_dropped: int = 0
    # LAUNCHes whose ExecutorInfo is under the minimum cpus / mem (validation.cpp warnings).
    executor_cpus_warnings: int = 0
    executor_mem_warnings: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "offers_sent": self.offers_sent,
            "offer_events": self.offer_events,
            "offers_declined": self.offers_declined,
            "offers_rescinded": self.offers_rescinded,
            "offers_accepted": self.offers_accepted,
            "suppress": self.suppress,
            "revive": self.revive,
            "acks": self.acks,
            "updates_forwarded": self.updates_forwarded,
            "tasks_launched": self.tasks_launched,
            "heartbeats": self.heartbeats,
            "pings": self.pings,
            "reconciliations_dropped": self.reconciliations_dropped,
            "executor_cpus_warnings": self.executor_cpus_warnings,
            "executor_mem_warnings": self.executor_mem_warnings,
        }
