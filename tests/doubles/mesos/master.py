"""The master: frameworks, offers and the allocator, task bookkeeping, the agent link.

HTTP parsing lives in ``scheduler_api`` and ``operator_api``; this module holds the state
machine those handlers drive and the private agent protocol (see ``link``). Everything runs on
one asyncio loop, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import link as link_mod
from .httpserver import DuplexStart, EventStream, HttpServer, Request, Response, Router, text
from .httputil import temporary_redirect
from .maintenance import Maintenance
from .master_state import (
    AgentRecord,
    Counters,
    ExecutorRecord,
    FilterEntry,
    FrameworkRecord,
    InverseOfferRecord,
    MasterTask,
    OfferRecord,
)
from .registry import RegistryStore, empty
from .resources import Resources, with_role
from .schema import TERMINAL_STATES
from .statuses import make_status, update_event
from .traffic import FrameworkTraffic, bump
from .wire import JsonDict, b64decode_strict, format_duration, ip_as_uint32, new_uuid, now

log = logging.getLogger(__name__)

VERSION = "1.11.0"
MIN_ALLOCATABLE_CPUS = 10  # milli-cpus (0.01)
MIN_ALLOCATABLE_MEM = 32_000  # milli-MB (32 MB)
MAX_REFUSE_SECONDS = 365 * 86400.0
DEFAULT_REFUSE_SECONDS = 5.0
# Paths still served over plain HTTP when the API is TLS-only: the double's own plumbing.
PLAIN_PREFIXES = (link_mod.LINK_PATH, "/__double__/")


@dataclass
class MasterConfig:
    host: str = "127.0.0.1"
    port: int = 0
    hostname: str | None = None
    allocation_interval: float = 1.0
    heartbeat_interval: float = 15.0
    # agent_ping_timeout x max_agent_ping_timeouts (15 s x 5 in Mesos).
    agent_removal_timeout: float = 75.0
    # The master pings each agent this often; the agent re-detects after agent_removal_timeout
    # without a ping (Slave::pingTimeout).
    agent_ping_timeout: float = 15.0
    # --agent_reregister_timeout: recovered agents not back by then are marked unreachable.
    agent_reregister_timeout: float = 600.0
    # --registry=replicated_log: where the registry outlives this master; None: in_memory.
    registry: RegistryStore | None = None
    # Refuse (TASK_ERROR) LAUNCHes whose executor is under 0.01 cpus / 32 MB, as LAUNCH_GROUP
    # does and Mesos 1.11 announces for the future; by default only warn, as 1.11 does.
    refuse_small_executors: bool = False
    # ZooKeeper mode: the master leads only once elected (``detected``); standalone it leads.
    contending: bool = False
    # --authenticate_http_frameworks with --credentials: principal -> secret.
    credentials: dict[str, str] | None = None
    # Serve the HTTP API over TLS (the private agent link and control API stay plain).
    tls: ssl.SSLContext | None = None


@dataclass
class _LinkState:
    agent: AgentRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Master:
    """One Mesos master. ``start``/``stop`` bind and release its port."""

    def __init__(self, config: MasterConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.port = config.port
        self.extra_routes: list[Callable[[Router], None]] = []
        self._server: HttpServer | None = None
        self._allocation_task: asyncio.Task[None] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._recovery_task: asyncio.Task[None] | None = None
        self._recovered_timer: asyncio.TimerHandle | None = None
        self._allocation_pending = False
        self._links: set[link_mod.Link] = set()
        # Per framework id, kept across restarts of this master (see ``traffic``).
        self.traffic: dict[str, FrameworkTraffic] = {}
        # The latest warnings this master logged (executor resources), newest last.
        self.warnings: deque[str] = deque(maxlen=100)
        self._reset()

    # -- lifecycle --------------------------------------------------------------------
    def _reset(self) -> None:
        self.id = new_uuid()
        self.frameworks: dict[str, FrameworkRecord] = {}
        self.completed_frameworks: dict[str, FrameworkRecord] = {}
        self.agents: dict[str, AgentRecord] = {}
        # Registry entries of agents recovered from the registry that have not re-registered.
        self.recovered_agents: dict[str, JsonDict] = {}
        self.recovering = False
        self.offers: dict[str, OfferRecord] = {}
        self.inverse_offers: dict[str, InverseOfferRecord] = {}
        self.maintenance = Maintenance()
        self._framework_seq = 0
        self._offer_seq = 0
        self._agent_seq = 0
        self.start_time = now()
        # The leading master's MasterInfo as detected, and whether it is this one.
        self.elected = not self.config.contending
        self.leader_info: JsonDict | None = None if self.config.contending else self.master_info()
        self.elected_time: float | None = None if self.config.contending else self.start_time

    @property
    def hostname(self) -> str:
        return self.config.hostname or self.config.host

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        from . import operator_api, scheduler_api

        router = Router()
        scheduler = scheduler_api.handler(self)
        router.add("/api/v1/scheduler", scheduler)
        router.add("/master/api/v1/scheduler", scheduler)
        operator = operator_api.handler(self)
        router.add("/api/v1", operator)
        router.add("/master/api/v1", operator)
        router.add("/redirect", self._redirect)
        router.add("/master/redirect", self._redirect)
        router.add_duplex(link_mod.LINK_PATH, self._handle_link)
        # Endpoints the double lacks (/master/state...) still redirect on a non-leader.
        router.fallback = lambda request: Response(404) if self.elected else self.redirect(request)
        for add in self.extra_routes:
            add(router)
        if not self.config.contending:
            await self.recover()  # standalone: the registry is read before the port opens
        server = HttpServer(router)
        self.port = await server.start(
            self.config.host, self.port, ssl=self.config.tls, plain_prefixes=PLAIN_PREFIXES
        )
        self._server = server
        if not self.config.contending:
            self.leader_info = self.master_info()  # now with the bound port
        loop = asyncio.get_running_loop()
        self._allocation_task = loop.create_task(self._allocation_loop())
        self._ping_task = loop.create_task(self._ping_loop())

    async def stop(self) -> None:
        """Crash-stop: every stream and agent link drops without a goodbye."""
        for task in (self._allocation_task, self._ping_task, self._recovery_task):
            if task is not None:
                task.cancel()
        self._allocation_task = self._ping_task = self._recovery_task = None
        if self._recovered_timer is not None:
            self._recovered_timer.cancel()
            self._recovered_timer = None
        server, self._server = self._server, None
        for framework in list(self.frameworks.values()):
            self._cancel_framework_timers(framework)
            if framework.stream is not None:
                framework.stream.drop()
        for agent in self.agents.values():
            if agent.removal_timer is not None:
                agent.removal_timer.cancel()
        for link in list(self._links):
            link.close()
        if server is not None:
            await server.stop()

    async def restart(self, downtime: float = 0.0) -> None:
        """A master process restart: all state is lost but what the registry recovers."""
        await self.stop()
        if downtime > 0:
            await asyncio.sleep(downtime)
        self._reset()
        await self.start()

    @property
    def scheme(self) -> str:
        return "https" if self.config.tls is not None else "http"

    def detected(self, leader: JsonDict | None, elected: bool) -> bool:
        """The leading master changed (ZooKeeper mode); False: this master must abort.

        Like Master::detected, a master that led and sees another leader (or loses its
        candidacy) commits suicide; the caller restarts it with an empty in-memory registry.
        """
        was_elected = self.elected
        self.leader_info = leader
        self.elected = elected
        if elected and not was_elected:
            self.elected_time = now()
            log.info("%s elected as the leading master", self.address)
            if self.config.registry is not None and self.running:
                self.recovering = True  # "Master has not finished recovery" until read
                self._recovery_task = asyncio.get_running_loop().create_task(self.recover())
        return not (was_elected and not elected)

    # -- registry -------------------------------------------------------------------------
    async def recover(self) -> None:
        """Master::_recover: admitted agents become recovered agents, unreachable stay so."""
        store = self.config.registry
        if store is None:
            return
        self.recovering = True
        try:
            registry = await store.load() or empty()
        except Exception as exc:  # a registry that cannot be read: recover nothing
            log.error("master %s: cannot read the registry: %s", self.address, exc)
            registry = empty()
        finally:
            self.recovering = False
        for entry in registry.get("agents", []):
            agent_id = entry["info"]["id"]
            if agent_id not in self.agents:
                self.recovered_agents[agent_id] = entry
        for entry in registry.get("unreachable", []):
            record = AgentRecord.from_registry(entry)
            record.unreachable_time = int(entry["timestamp"])
            self.agents.setdefault(record.id, record)
        if self.recovered_agents:
            log.info(
                "master %s recovered %d agents from the registry", self.address,
                len(self.recovered_agents),
            )
            self._recovered_timer = asyncio.get_running_loop().call_later(
                self.config.agent_reregister_timeout, self._recovered_agents_timeout
            )

    def _recovered_agents_timeout(self) -> None:
        """Master::recoveredSlavesTimeout: recovered agents not back are marked unreachable;
        connected frameworks get FAILURE{agent_id} (sendSlaveLost), no task updates."""
        self._recovered_timer = None
        unreachable_ns = int(now() * 1e9)
        for agent_id, entry in list(self.recovered_agents.items()):
            del self.recovered_agents[agent_id]
            record = AgentRecord.from_registry(entry)
            record.unreachable_time = unreachable_ns
            self.agents[agent_id] = record
            log.info(
                "Marking agent %s (%s) unreachable: did not reregister within %s after master "
                "failover", agent_id, record.hostname,
                format_duration(self.config.agent_reregister_timeout),
            )
            for framework in self.frameworks.values():
                framework.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
        self.persist_registry()

    def registry_snapshot(self) -> JsonDict:
        """The registry as this master would write it now."""
        agents = [a.registry_info() for a in self.agents.values() if a.unreachable_time is None]
        agents += list(self.recovered_agents.values())
        unreachable = [
            {**a.registry_info(), "timestamp": a.unreachable_time}
            for a in self.agents.values()
            if a.unreachable_time is not None
        ]
        return {"agents": agents, "unreachable": unreachable}

    def persist_registry(self) -> None:
        """Write the registry after a change (only the leading, recovered master writes)."""
        store = self.config.registry
        if store is not None and self.running and self.elected and not self.recovering:
            store.save(self.registry_snapshot())

    async def _ping_loop(self) -> None:
        """The SlaveObservers' pings: each one restarts the agent's ping timer."""
        while True:
            await asyncio.sleep(self.config.agent_ping_timeout)
            for agent in self.agents.values():
                if agent.connected and agent.link is not None:
                    agent.link.send({"type": "PING"})
                    self.counters.pings += 1

    def traffic_of(self, framework_id: str) -> FrameworkTraffic:
        """This master's counters of one framework id (see ``traffic``)."""
        traffic = self.traffic.get(framework_id)
        if traffic is None:
            traffic = self.traffic[framework_id] = FrameworkTraffic()
        return traffic

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)

    @property
    def leader_address(self) -> str | None:
        """``host:port`` of the master this one believes leads."""
        info = self.leader_info
        if info is None:
            return None
        address = info.get("address", {})
        return f"{address.get('ip', info.get('hostname'))}:{info.get('port')}"

    def redirect(self, request: Request) -> Response:
        """Master::Http::redirect: 307 to the leader, or 503 when none is known."""
        info = self.leader_info
        if info is None:
            return text(503, "No leader elected")
        base = f"//{info.get('hostname') or info['address']['ip']}:{info['port']}"
        path = request.path
        if path in ("/redirect", "/master/redirect"):
            return temporary_redirect(base)
        if path.startswith(("/redirect/", "/master/redirect/")):
            return Response(404)
        if not path.startswith("/master/"):
            path = "/master" + path  # libprocess hands unknown top-level paths to "master"
        query = f"?{request.query}" if request.query else ""
        return temporary_redirect(base + path + query)

    def _redirect(self, request: Request) -> Response:
        return self.redirect(request)

    # -- ids ------------------------------------------------------------------------------
    def master_info(self) -> JsonDict:
        return {
            "id": self.id,
            "ip": ip_as_uint32(self.config.host),
            "port": self.port,
            "pid": f"master@{self.config.host}:{self.port}",
            "hostname": self.hostname,
            "version": VERSION,
            "address": {"hostname": self.hostname, "ip": self.config.host, "port": self.port},
            # QUOTA_V2 is missing from the v1 enum, so it renders as {} (surprise 6).
            "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {}],
        }

    def _next_offer_id(self) -> str:
        offer_id = f"{self.id}-O{self._offer_seq}"
        self._offer_seq += 1
        return offer_id

    # -- frameworks -----------------------------------------------------------------------
    def subscribe(
        self,
        stream: EventStream,
        stream_id: str,
        info: JsonDict,
        suppressed_roles: list[str] | None = None,
    ) -> None:
        error = _validate_framework_info(info)
        framework_id = info.get("id", {}).get("value")
        if error is None and framework_id and framework_id in self.completed_frameworks:
            error = "Framework has been removed"
        if error is not None:
            stream.send({"type": "ERROR", "error": {"message": error}})
            stream.end()
            return
        if not framework_id:
            framework_id = f"{self.id}-{self._framework_seq:04d}"
            self._framework_seq += 1
            info = _with_id(info, framework_id)
            framework = FrameworkRecord(
                id=framework_id,
                info=info,
                registered_time=now(),
                traffic=self.traffic_of(framework_id),
            )
            self.frameworks[framework_id] = framework
        else:
            framework = self.frameworks.get(framework_id) or self._recover_framework(info)
            old = framework.info
            # user and checkpoint cannot change on re-subscription.
            info = dict(info)
            info["user"] = old.get("user", info["user"])
            info["checkpoint"] = old.get("checkpoint", False)
            framework.info = info
            framework.reregistered_time = now()
            if framework.stream is not None and framework.stream is not stream:
                framework.stream.send(
                    {"type": "ERROR", "error": {"message": "Framework failed over"}}
                )
                framework.stream.end()
            for offer_id in list(framework.offers):
                self._remove_offer(self.offers[offer_id], rescind=False)
            for inverse_id in list(framework.inverse_offers):
                self._remove_inverse_offer(inverse_id, rescind=False)
        self._connect(framework, stream, stream_id)
        bump(framework.traffic.calls, "SUBSCRIBE")
        framework.suppressed = set(suppressed_roles or [])
        framework.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": framework.id},
                    "heartbeat_interval_seconds": float(self.config.heartbeat_interval),
                    "master_info": self.master_info(),
                },
            }
        )
        loop = asyncio.get_running_loop()
        framework.heartbeat_task = loop.create_task(self._heartbeat(framework, stream))
        for agent in self.agents.values():
            agent.send({"type": "UPDATE_FRAMEWORK", "framework_info": framework.info})
        if not framework.active:
            framework.active = True
            self.request_allocation()

    def _recover_framework(self, info: JsonDict) -> FrameworkRecord:
        """A framework re-subscribing after a master restart is re-admitted with its id."""
        framework_id = info["id"]["value"]
        framework = FrameworkRecord(
            id=framework_id, info=info, registered_time=now(), traffic=self.traffic_of(framework_id)
        )
        self.frameworks[framework_id] = framework
        return framework

    def _connect(self, framework: FrameworkRecord, stream: EventStream, stream_id: str) -> None:
        self._cancel_framework_timers(framework)
        framework.stream = stream
        framework.stream_id = stream_id
        framework.connected = True

    def _cancel_framework_timers(self, framework: FrameworkRecord) -> None:
        if framework.failover_timer is not None:
            framework.failover_timer.cancel()
            framework.failover_timer = None
        if framework.heartbeat_task is not None:
            framework.heartbeat_task.cancel()
            framework.heartbeat_task = None

    async def _heartbeat(self, framework: FrameworkRecord, stream: EventStream) -> None:
        while stream.is_open and framework.stream is stream:
            stream.send({"type": "HEARTBEAT"})
            bump(framework.traffic.events, "HEARTBEAT")
            self.counters.heartbeats += 1
            await asyncio.sleep(self.config.heartbeat_interval)

    def stream_closed(self, framework_id: str, stream: EventStream) -> None:
        """The subscription connection ended: disconnect and start the failover timeout."""
        framework = self.frameworks.get(framework_id)
        if framework is None or framework.stream is not stream or not self.running:
            return
        self.disconnect_framework(framework)

    def disconnect_framework(self, framework: FrameworkRecord) -> None:
        self._cancel_framework_timers(framework)
        framework.connected = False
        framework.active = False
        framework.stream = None
        # The allocator forgets a deactivated framework's filters.
        framework.filters.clear()
        framework.inverse_filters.clear()
        for offer_id in list(framework.offers):
            self._remove_offer(self.offers[offer_id], rescind=False)
        for inverse_id in list(framework.inverse_offers):
            self._remove_inverse_offer(inverse_id, rescind=False)
        timeout = max(0.0, float(framework.info.get("failover_timeout", 0.0)))
        loop = asyncio.get_running_loop()
        framework.failover_timer = loop.call_later(timeout, self._failover_expired, framework)

    def _failover_expired(self, framework: FrameworkRecord) -> None:
        if self.frameworks.get(framework.id) is framework and not framework.connected:
            self.remove_framework(framework.id)

    def remove_framework(self, framework_id: str, teardown: bool = False) -> None:
        framework = self.frameworks.pop(framework_id, None)
        if framework is None:
            return
        self._cancel_framework_timers(framework)
        for offer_id in list(framework.offers):
            self._remove_offer(self.offers[offer_id], rescind=False)
        for inverse_id in list(framework.inverse_offers):
            self._remove_inverse_offer(inverse_id, rescind=False)
        for task in list(framework.tasks.values()):
            task.state = "TASK_KILLED"
            self._release_task(task)
            self._forget_task(framework, task)
        for agent in self.agents.values():
            for record in agent.executors.pop(framework_id, {}).values():
                agent.used = agent.used - record.resources
            agent.tasks.pop(framework_id, None)
            agent.send({"type": "SHUTDOWN_FRAMEWORK", "framework_id": framework_id})
        framework.connected = False
        self.completed_frameworks[framework_id] = framework
        if teardown and framework.stream is not None:
            framework.stream.end()
        framework.stream = None
        self._update_drains()

    def update_framework(
        self, framework: FrameworkRecord, info: JsonDict, suppressed_roles: list[str]
    ) -> str | None:
        """UPDATE_FRAMEWORK: new info and suppressed roles (offer constraints are ignored)."""
        error = _validate_framework_info(info)
        if error is not None:
            return error
        if info.get("principal") != framework.info.get("principal"):
            return "Changing framework's principal is not allowed"
        info = dict(info)
        info["user"] = framework.info["user"]
        info["checkpoint"] = framework.info.get("checkpoint", False)
        framework.info = info
        unsuppressed = framework.suppressed - set(suppressed_roles)
        framework.suppressed = set(suppressed_roles)
        for agent in self.agents.values():
            agent.send({"type": "UPDATE_FRAMEWORK", "framework_info": info})
        if unsuppressed:
            framework.filters.clear()
            self.request_allocation()
        return None

    def framework_for_call(self, framework_id: str) -> FrameworkRecord | None:
        return self.frameworks.get(framework_id)

    # -- allocation ---------------------------------------------------------------------
    def request_allocation(self) -> None:
        """Allocate at the next loop iteration (new framework, REVIVE, new agent)."""
        if not self._allocation_pending:
            self._allocation_pending = True
            asyncio.get_running_loop().call_soon(self._allocate_now)

    def _allocate_now(self) -> None:
        self._allocation_pending = False
        self.allocate()

    async def _allocation_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.allocation_interval
        deadline = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                self.allocate()
            except Exception:  # pragma: no cover - keep the allocator alive
                log.exception("allocation failed")
            deadline += interval
            if deadline < loop.time():
                deadline = loop.time() + interval

    def allocate(self) -> None:
        clock = asyncio.get_running_loop().time()
        frameworks = [
            f
            for f in self.frameworks.values()
            if f.connected and f.active and any(r not in f.suppressed for r in f.roles)
        ]
        if frameworks:
            frameworks.sort(key=lambda f: len(f.tasks))
            batches: dict[str, list[JsonDict]] = {}
            for agent in self.agents.values():
                if not self._offerable(agent):
                    continue
                available = agent.total - agent.used - agent.offered
                if not _allocatable(available):
                    continue
                for framework in frameworks:
                    if agent.has_gpus and "GPU_RESOURCES" not in framework.capabilities:
                        continue
                    if self._filtered(framework, agent.id, available, clock):
                        continue
                    role = next(r for r in framework.roles if r not in framework.suppressed)
                    offer = self._create_offer(framework, agent, available, role)
                    batches.setdefault(framework.id, []).append(offer.json)
                    break
            for framework_id, offers in batches.items():
                framework = self.frameworks[framework_id]
                framework.send({"type": "OFFERS", "offers": {"offers": offers}})
                self.counters.offers_sent += len(offers)
                self.counters.offer_events += 1
        self._send_inverse_offers(clock)

    def _offerable(self, agent: AgentRecord) -> bool:
        return (
            agent.connected
            and agent.unreachable_time is None
            and not agent.deactivated
            and agent.drain is None
        )

    def _filtered(
        self, framework: FrameworkRecord, agent_id: str, available: Resources, clock: float
    ) -> bool:
        entries = framework.filters.get(agent_id)
        if not entries:
            return False
        live = [e for e in entries if e.expires > clock]
        if len(live) != len(entries):
            framework.filters[agent_id] = live
        return any(e.resources.contains(available) for e in live)

    def _create_offer(
        self, framework: FrameworkRecord, agent: AgentRecord, resources: Resources, role: str
    ) -> OfferRecord:
        offer_id = self._next_offer_id()
        multi_role = framework.multi_role
        body: JsonDict = {
            "id": {"value": offer_id},
            "framework_id": {"value": framework.id},
            "agent_id": {"value": agent.id},
            "hostname": agent.hostname,
            "url": agent.url(),
            "resources": with_role(resources.to_json(offer_order=True), multi_role=multi_role),
        }
        if multi_role and role != "*":
            for resource in body["resources"]:
                resource["allocation_info"] = {"role": role}
        if agent.attributes:
            body["attributes"] = agent.attributes
        executors = agent.executors.get(framework.id)
        if executors:
            body["executor_ids"] = [{"value": e} for e in executors]
        unavailability = self.maintenance.unavailability_for(agent.hostname, agent.ip)
        if unavailability is not None:
            body["unavailability"] = unavailability
        if multi_role:
            body["allocation_info"] = {"role": role}
        offer = OfferRecord(offer_id, framework.id, agent.id, resources.copy(), role, body)
        self.offers[offer_id] = offer
        framework.offers.add(offer_id)
        agent.offered = agent.offered + resources
        return offer

    def _remove_offer(self, offer: OfferRecord, *, rescind: bool) -> None:
        self.offers.pop(offer.id, None)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offered = agent.offered - offer.resources
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.discard(offer.id)
            if rescind:
                framework.send({"type": "RESCIND", "rescind": {"offer_id": {"value": offer.id}}})
                self.counters.offers_rescinded += 1

    def rescind_agent_offers(self, agent: AgentRecord) -> None:
        for offer in [o for o in self.offers.values() if o.agent_id == agent.id]:
            self._remove_offer(offer, rescind=True)

    def add_filter(
        self,
        framework: FrameworkRecord,
        agent_id: str,
        resources: Resources,
        filters: JsonDict | None,
    ) -> None:
        refuse = (filters or {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS)
        if refuse < 0:
            refuse = DEFAULT_REFUSE_SECONDS
        refuse = min(refuse, MAX_REFUSE_SECONDS)
        if refuse == 0 or resources.empty():
            return
        # Mesos keeps a filter at least one allocation interval (MESOS-4302).
        timeout = max(self.config.allocation_interval, refuse)
        expires = asyncio.get_running_loop().time() + timeout
        framework.filters.setdefault(agent_id, []).append(FilterEntry(resources.copy(), expires))

    def decline(
        self, framework: FrameworkRecord, offer_ids: list[str], filters: JsonDict | None
    ) -> None:
        for offer_id in offer_ids:
            offer = self.offers.get(offer_id)
            if offer is None or offer.framework_id != framework.id:
                continue
            self._remove_offer(offer, rescind=False)
            self.add_filter(framework, offer.agent_id, offer.resources, filters)
            self.counters.offers_declined += 1

    def revive(self, framework: FrameworkRecord, roles: list[str]) -> None:
        self.counters.revive += 1
        targets = roles or framework.roles
        framework.suppressed.difference_update(targets)
        framework.filters.clear()
        framework.inverse_filters.clear()
        self.request_allocation()

    def suppress(self, framework: FrameworkRecord, roles: list[str]) -> None:
        self.counters.suppress += 1
        framework.suppressed.update(roles or framework.roles)

    # -- launching ----------------------------------------------------------------------
    def accept(self, framework: FrameworkRecord, accept: JsonDict) -> None:
        from .launch import LaunchContext

        LaunchContext(self, framework, accept).run()

    def add_task(
        self,
        framework: FrameworkRecord,
        agent: AgentRecord,
        task: JsonDict,
        resources: Resources,
    ) -> MasterTask:
        executor = task.get("executor")
        record = MasterTask(
            task_id=task["task_id"]["value"],
            framework_id=framework.id,
            agent_id=agent.id,
            executor_id=executor["executor_id"]["value"] if executor else None,
            name=task.get("name", ""),
            resources=resources,
            info=task,
        )
        framework.tasks[record.task_id] = record
        agent.tasks.setdefault(framework.id, set()).add(record.task_id)
        agent.used = agent.used + resources
        self.counters.tasks_launched += 1
        return record

    def add_executor(self, framework: FrameworkRecord, agent: AgentRecord, info: JsonDict) -> None:
        resources = Resources.from_json(info.get("resources", []))
        agent.executors.setdefault(framework.id, {})[info["executor_id"]["value"]] = ExecutorRecord(
            framework.id, info, resources
        )
        agent.used = agent.used + resources

    def _release_task(self, task: MasterTask) -> None:
        if task.released:
            return
        task.released = True
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.used = agent.used - task.resources

    def _forget_task(self, framework: FrameworkRecord, task: MasterTask) -> None:
        framework.tasks.pop(task.task_id, None)
        framework.completed_tasks.append(task)
        del framework.completed_tasks[:-1000]
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            ids = agent.tasks.get(framework.id)
            if ids is not None:
                ids.discard(task.task_id)

    def send_master_update(self, framework: FrameworkRecord, status: JsonDict) -> None:
        """A master-generated update (no uuid, nothing to acknowledge)."""
        framework.send(update_event(status))

    # -- status updates and acknowledgements ------------------------------------------------
    def on_status_update(
        self, framework_id: str, status: JsonDict, latest_state: str | None
    ) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        task = framework.tasks.get(status["task_id"]["value"])
        if task is not None:
            task.state = latest_state or status["state"]
            task.status_update_state = status["state"]
            task.status_update_uuid = status.get("uuid")
            task.record_status(status)
            if task.state in TERMINAL_STATES:
                self._release_task(task)
        if framework.connected:
            framework.send(update_event(status))
            self.counters.updates_forwarded += 1

    def acknowledge(self, framework: FrameworkRecord, ack: JsonDict) -> None:
        self.counters.acks += 1
        agent_id = ack["agent_id"]["value"]
        task_id = ack["task_id"]["value"]
        uuid = ack["uuid"]
        agent = self.agents.get(agent_id)
        task = framework.tasks.get(task_id)
        if (
            task is not None
            and task.agent_id == agent_id
            and task.status_update_uuid is not None
            and (
                task.status_update_uuid == uuid
                or b64decode_strict(task.status_update_uuid) == b64decode_strict(uuid)
            )
            and task.status_update_state in TERMINAL_STATES
        ):
            self._release_task(task)
            self._forget_task(framework, task)
            self._update_drains()
        if agent is not None:
            agent.send(
                {"type": "ACK", "framework_id": framework.id, "task_id": task_id, "uuid": uuid}
            )

    def kill(self, framework: FrameworkRecord, kill: JsonDict) -> None:
        task_id = kill["task_id"]["value"]
        agent_id = kill.get("agent_id", {}).get("value")
        task = framework.tasks.get(task_id)
        if task is None:
            self.reconcile(framework, [{"task_id": {"value": task_id}, **_agent(agent_id)}])
            return
        if agent_id is not None and agent_id != task.agent_id:
            return
        agent = self.agents.get(task.agent_id)
        if agent is None:
            return
        message: JsonDict = {"type": "KILL_TASK", "framework_id": framework.id, "task_id": task_id}
        if "kill_policy" in kill:
            message["kill_policy"] = kill["kill_policy"]
        agent.send(message)

    def shutdown_executor(
        self, framework: FrameworkRecord, executor_id: str, agent_id: str
    ) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.send(
                {
                    "type": "SHUTDOWN_EXECUTOR",
                    "framework_id": framework.id,
                    "executor_id": executor_id,
                }
            )

    def framework_message(
        self, framework: FrameworkRecord, agent_id: str, executor_id: str, data: str
    ) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.send(
                {
                    "type": "FRAMEWORK_MESSAGE",
                    "framework_id": framework.id,
                    "executor_id": executor_id,
                    "data": data,
                }
            )

    def reconcile(self, framework: FrameworkRecord, tasks: list[JsonDict]) -> None:
        if not tasks:
            for task in list(framework.tasks.values()):
                framework.send(update_event(_latest_state_status(task)))
            return
        for entry in tasks:
            task_id = entry["task_id"]["value"]
            agent_id = entry.get("agent_id", {}).get("value")
            known = framework.tasks.get(task_id)
            pa = framework.partition_aware
            agent = self.agents.get(agent_id) if agent_id is not None else None
            if known is not None:
                status = _latest_state_status(known)
            elif (agent_id is not None and agent_id in self.recovered_agents) or (
                agent_id is None and self.recovered_agents
            ):
                # Master::reconcile case (2): the task may be on an agent that has not
                # re-registered since the failover; no answer, the framework retries.
                log.info(
                    "Dropping reconciliation of task %s for framework %s because %s not yet "
                    "reregistered with the master",
                    task_id,
                    framework.id,
                    f"agent {agent_id} has" if agent_id is not None else "some agents have",
                )
                self.counters.reconciliations_dropped += 1
                continue
            elif agent is not None and agent.unreachable_time is None:
                status = make_status(
                    task_id,
                    "TASK_GONE" if pa else "TASK_LOST",
                    "SOURCE_MASTER",
                    message="Reconciliation: Task is unknown to the agent",
                    reason="REASON_RECONCILIATION",
                    agent_id=agent_id,
                )
            elif agent is not None:
                status = make_status(
                    task_id,
                    "TASK_UNREACHABLE" if pa else "TASK_LOST",
                    "SOURCE_MASTER",
                    message="Reconciliation: Task is unreachable",
                    reason="REASON_RECONCILIATION",
                    agent_id=agent_id,
                    unreachable_time=agent.unreachable_time,
                )
            else:
                status = make_status(
                    task_id,
                    "TASK_UNKNOWN" if pa else "TASK_LOST",
                    "SOURCE_MASTER",
                    message="Reconciliation: Task is unknown",
                    reason="REASON_RECONCILIATION",
                    agent_id=agent_id,
                )
            framework.send(update_event(status))

    # -- inverse offers (maintenance) -------------------------------------------------------
    def _send_inverse_offers(self, clock: float) -> None:
        if not self.maintenance.windows:
            return
        batches: dict[str, list[JsonDict]] = {}
        for agent in self.agents.values():
            if not agent.connected or agent.unreachable_time is not None:
                continue
            unavailability = self.maintenance.unavailability_for(agent.hostname, agent.ip)
            if unavailability is None:
                continue
            for framework_id, task_ids in agent.tasks.items():
                framework = self.frameworks.get(framework_id)
                if framework is None or not framework.connected or not task_ids:
                    continue
                if any(
                    self.inverse_offers[i].agent_id == agent.id for i in framework.inverse_offers
                ):
                    continue
                if framework.inverse_filters.get(agent.id, 0.0) > clock:
                    continue
                inverse_id = self._next_offer_id()
                body = {
                    "id": {"value": inverse_id},
                    "url": agent.url(),
                    "framework_id": {"value": framework.id},
                    "agent_id": {"value": agent.id},
                    "unavailability": unavailability,
                }
                self.inverse_offers[inverse_id] = InverseOfferRecord(
                    inverse_id, framework.id, agent.id, body
                )
                framework.inverse_offers.add(inverse_id)
                batches.setdefault(framework.id, []).append(body)
        for framework_id, items in batches.items():
            self.frameworks[framework_id].send(
                {"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": items}}
            )

    def answer_inverse_offers(
        self, framework: FrameworkRecord, ids: list[str], filters: JsonDict | None, answer: str
    ) -> None:
        for inverse_id in ids:
            record = self.inverse_offers.get(inverse_id)
            if record is None or record.framework_id != framework.id:
                continue
            agent = self.agents.get(record.agent_id)
            if agent is not None:
                self.maintenance.record_answer(agent.hostname, agent.ip, framework.id, answer)
            refuse = (filters or {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS)
            refuse = DEFAULT_REFUSE_SECONDS if refuse < 0 else min(refuse, MAX_REFUSE_SECONDS)
            clock = asyncio.get_running_loop().time()
            framework.inverse_filters[record.agent_id] = clock + max(
                refuse, self.config.allocation_interval
            )
            self._remove_inverse_offer(inverse_id, rescind=False)

    def _remove_inverse_offer(self, inverse_id: str, *, rescind: bool) -> None:
        record = self.inverse_offers.pop(inverse_id, None)
        if record is None:
            return
        framework = self.frameworks.get(record.framework_id)
        if framework is not None:
            framework.inverse_offers.discard(inverse_id)
            if rescind:
                framework.send(
                    {
                        "type": "RESCIND_INVERSE_OFFER",
                        "rescind_inverse_offer": {"inverse_offer_id": {"value": inverse_id}},
                    }
                )

    def update_schedule(self, schedule: JsonDict) -> None:
        """Replace the maintenance schedule; rescind and re-offer affected agents at once."""
        before = {a.id for a in self.agents.values() if self._scheduled(a)}
        self.maintenance.set_schedule(schedule)
        after = {a.id for a in self.agents.values() if self._scheduled(a)}
        for agent_id in before | after:
            agent = self.agents[agent_id]
            self.rescind_agent_offers(agent)
        for inverse_id in list(self.inverse_offers):
            if self.inverse_offers[inverse_id].agent_id not in after:
                self._remove_inverse_offer(inverse_id, rescind=True)
        if before | after:
            self.allocate()

    def _scheduled(self, agent: AgentRecord) -> bool:
        return self.maintenance.unavailability_for(agent.hostname, agent.ip) is not None

    # -- draining ---------------------------------------------------------------------------
    def drain_agent(self, agent: AgentRecord, max_grace_ns: int | None, config: JsonDict) -> None:
        if agent.drain is None:
            agent.drain = {"state": "DRAINING", "config": config}
            agent.drain_start = int(now()) * 1_000_000_000
        agent.deactivated = True
        self.rescind_agent_offers(agent)
        agent.send({"type": "DRAIN", "max_grace_period_ns": max_grace_ns})
        self.persist_registry()
        self._update_drains()

    def _update_drains(self) -> None:
        changed = False
        for agent in self.agents.values():
            if agent.drain is None or agent.drain["state"] != "DRAINING":
                continue
            if not any(agent.tasks.values()):
                agent.drain = {**agent.drain, "state": "DRAINED"}
                changed = True
        if changed:
            self.persist_registry()

    # -- agents -------------------------------------------------------------------------------
    def _handle_link(self, request: Request) -> DuplexStart | Response:
        if not self.elected:
            # A real master ignores (re-)registrations until it is elected.
            return text(503, "Not the leading master")
        if self.recovering:
            return text(503, "Master has not finished recovery")  # messages dropped meanwhile
        return DuplexStart(self._link_opened)

    def _link_opened(self, link: link_mod.Link) -> None:
        self._links.add(link)
        state = _LinkState()
        link.on_message = lambda message: self._on_agent_message(link, state, message)

        def closed() -> None:
            self._links.discard(link)
            agent = state.agent
            if (
                agent is not None
                and self.running
                and agent.link is link
                and self.agents.get(agent.id) is agent
            ):
                self._agent_disconnected(agent)

        link.on_close = closed

    def _on_agent_message(self, link: link_mod.Link, state: _LinkState, message: JsonDict) -> None:
        kind = message["type"]
        if kind == "REGISTER":
            state.agent = self._register_agent(link, message)
            return
        agent = state.agent
        if agent is None or agent.link is not link:
            return
        if kind == "STATUS_UPDATE":
            self.on_status_update(
                message["framework_id"], message["status"], message.get("latest_state")
            )
        elif kind == "EXITED_EXECUTOR":
            self._executor_exited(agent, message)
        elif kind == "EXECUTOR_MESSAGE":
            framework = self.frameworks.get(message["framework_id"])
            if framework is not None:
                framework.send(
                    {
                        "type": "MESSAGE",
                        "message": {
                            "agent_id": {"value": agent.id},
                            "executor_id": {"value": message["executor_id"]},
                            "data": message["data"],
                        },
                    }
                )

    def _register_agent(self, link: link_mod.Link, message: JsonDict) -> AgentRecord:
        agent_id = message.get("agent_id")
        if agent_id and agent_id in self.recovered_agents:
            return self._readmit_recovered(link, message)
        agent = self.agents.get(agent_id) if agent_id else None
        if agent is not None and agent.unreachable_time is None:
            return self._reregister_known(agent, link, message)
        was_unreachable = agent is not None
        if not agent_id:
            agent_id = f"{self.id}-S{self._agent_seq}"
            self._agent_seq += 1
        agent = self._agent_record(agent_id, message)
        if message.get("agent_id"):
            agent.reregistered_time = agent.registered_time
        agent.link = link
        agent.connected = True
        self.agents[agent_id] = agent
        link.send(self._registered(agent_id))
        self._adopt_agent_state(agent, message, was_unreachable)
        self.persist_registry()
        self.request_allocation()
        return agent

    def _registered(self, agent_id: str, **extra: Any) -> JsonDict:
        return {
            "type": "REGISTERED",
            "agent_id": agent_id,
            "master_id": self.id,
            "total_ping_timeout": self.config.agent_removal_timeout,
            **extra,
        }

    def _readmit_recovered(self, link: link_mod.Link, message: JsonDict) -> AgentRecord:
        """Master::__reregisterSlave for an agent in ``slaves.recovered``: its tasks are added
        back, but, unlike an unknown agent's, announced to no framework."""
        entry = self.recovered_agents.pop(message["agent_id"])
        agent = self._agent_record(message["agent_id"], message)
        agent.reregistered_time = agent.registered_time
        agent.deactivated = bool(entry.get("deactivated", False))
        agent.drain = entry.get("drain")
        agent.drain_start = entry.get("drain_start")
        agent.link = link
        agent.connected = True
        self.agents[agent.id] = agent
        link.send(self._registered(agent.id))
        self._adopt_agent_state(agent, message, False, announce=False)
        if not self.recovered_agents and self._recovered_timer is not None:
            self._recovered_timer.cancel()
            self._recovered_timer = None
        self.persist_registry()
        self.request_allocation()
        return agent

    def _agent_record(self, agent_id: str, message: JsonDict) -> AgentRecord:
        return AgentRecord(
            id=agent_id,
            hostname=message["hostname"],
            ip=message["ip"],
            port=message["port"],
            total=Resources.from_json(message["resources"]),
            total_json=message["resources"],
            attributes=message.get("attributes", []),
            registered_time=now(),
        )

    def _adopt_agent_state(
        self, agent: AgentRecord, message: JsonDict, was_unreachable: bool, announce: bool = True
    ) -> None:
        """Rebuild the master's view from what a (re-)registering agent reports."""
        infos = {f["id"]["value"]: f for f in message.get("frameworks", [])}
        for entry in message.get("executors", []):
            framework_id = entry["framework_id"]
            if framework_id in self.completed_frameworks:
                continue
            framework = self.frameworks.get(framework_id)
            if framework is None and framework_id in infos:
                framework = self._recover_framework(infos[framework_id])
            if framework is not None:
                self.add_executor(framework, agent, entry["info"])
        reason_message = (
            "Unreachable agent re-reregistered" if was_unreachable else "Unknown agent reregistered"
        )
        for entry in message.get("tasks", []):
            framework_id = entry["framework_id"]
            if framework_id in self.completed_frameworks:
                agent.send({"type": "SHUTDOWN_FRAMEWORK", "framework_id": framework_id})
                continue
            framework = self.frameworks.get(framework_id)
            if framework is None and framework_id in infos:
                framework = self._recover_framework(infos[framework_id])
            if framework is None:
                continue
            framework.unreachable_tasks.pop(entry["task_id"], None)
            resources = Resources.from_json(entry.get("resources", []))
            task = self.add_task(framework, agent, entry["info"], resources)
            task.state = entry["state"]
            task.last_status = entry.get("last_status")
            task.latest_container_status = entry.get("container_status")
            if task.state in TERMINAL_STATES:
                self._release_task(task)
            if announce and framework.connected:
                status = make_status(
                    task.task_id,
                    task.state,
                    "SOURCE_MASTER",
                    message=reason_message,
                    reason="REASON_AGENT_REREGISTERED",
                    agent_id=agent.id,
                    executor_id=task.executor_id,
                    container_status=task.container_status(),
                )
                framework.send(update_event(status))

    def _reregister_known(
        self, agent: AgentRecord, link: link_mod.Link, message: JsonDict
    ) -> AgentRecord:
        if agent.removal_timer is not None:
            agent.removal_timer.cancel()
            agent.removal_timer = None
        agent.link = link
        agent.connected = True
        agent.reregistered_time = now()
        reported = {(t["framework_id"], t["task_id"]) for t in message.get("tasks", [])}
        unknown: list[JsonDict] = []
        for framework_id, task_ids in agent.tasks.items():
            framework = self.frameworks.get(framework_id)
            if framework is None:
                continue
            for task_id in task_ids:
                if (framework_id, task_id) not in reported:
                    unknown.append(
                        {
                            "framework_id": framework_id,
                            "task_id": task_id,
                            "partition_aware": framework.partition_aware,
                        }
                    )
        link.send(self._registered(agent.id, reconcile=unknown))
        return agent

    def _agent_disconnected(self, agent: AgentRecord) -> None:
        agent.connected = False
        agent.link = None
        self.rescind_agent_offers(agent)
        loop = asyncio.get_running_loop()
        agent.removal_timer = loop.call_later(
            self.config.agent_removal_timeout, self._removal_timeout, agent
        )

    def _removal_timeout(self, agent: AgentRecord) -> None:
        if self.agents.get(agent.id) is agent and not agent.connected:
            self.mark_unreachable(agent.id)

    def mark_unreachable(self, agent_id: str) -> None:
        """Agent health check timed out: tasks become UNREACHABLE (or LOST), FAILURE{agent}."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.unreachable_time is not None:
            return
        agent.removal_timer = None
        unreachable_ns = int(now() * 1e9)
        agent.unreachable_time = unreachable_ns
        self.rescind_agent_offers(agent)
        for framework_id, task_ids in list(agent.tasks.items()):
            framework = self.frameworks.get(framework_id)
            if framework is None:
                continue
            for task_id in list(task_ids):
                task = framework.tasks.pop(task_id, None)
                if task is None:
                    continue
                self._release_task(task)
                task.unreachable_time = unreachable_ns
                pa = framework.partition_aware
                task.state = "TASK_UNREACHABLE" if pa else "TASK_LOST"
                framework.unreachable_tasks[task_id] = task
                status = make_status(
                    task_id,
                    task.state,
                    "SOURCE_MASTER",
                    message="health check timed out",
                    reason="REASON_AGENT_REMOVED",
                    agent_id=agent.id,
                    executor_id=task.executor_id,
                    unreachable_time=unreachable_ns,
                )
                framework.send(update_event(status))
        agent.tasks.clear()
        for records in agent.executors.values():
            for record in records.values():
                agent.used = agent.used - record.resources
        agent.executors.clear()
        for framework in self.frameworks.values():
            framework.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent.id}}})
        self._update_drains()
        self.persist_registry()

    def _executor_exited(self, agent: AgentRecord, message: JsonDict) -> None:
        framework_id = message["framework_id"]
        executor_id = message["executor_id"]
        record = agent.executors.get(framework_id, {}).pop(executor_id, None)
        if record is not None:
            agent.used = agent.used - record.resources
        framework = self.frameworks.get(framework_id)
        if framework is not None:
            failure: JsonDict = {
                "agent_id": {"value": agent.id},
                "executor_id": {"value": executor_id},
            }
            if message.get("status") is not None:
                failure["status"] = message["status"]
            framework.send({"type": "FAILURE", "failure": failure})


def _validate_framework_info(info: JsonDict) -> str | None:
    capabilities = {c.get("type") for c in info.get("capabilities", [])}
    multi_role = "MULTI_ROLE" in capabilities
    if multi_role and "role" in info:
        return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
    if not multi_role and info.get("roles"):
        return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
    roles = info.get("roles", []) if multi_role else [info.get("role", "*")]
    if multi_role and len(set(roles)) != len(roles):
        dup = sorted({r for r in roles if roles.count(r) > 1})
        return "'FrameworkInfo.roles' contains duplicate items: { " + ", ".join(dup) + " }"
    for role in roles:
        error = _role_error(role)
        if error is not None:
            prefix = (
                "'FrameworkInfo.roles' contains invalid role: "
                if multi_role
                else "'FrameworkInfo.role' is not a valid role: "
            )
            return prefix + error
    return None


def _role_error(role: str) -> str | None:
    if role == "*":
        return None
    if not role:
        return "Empty role name is invalid"
    if role.startswith("/") or role.endswith("/"):
        return f"Role '{role}' cannot start or end with a slash"
    if any(c.isspace() for c in role):
        return f"Role '{role}' cannot contain whitespace"
    for part in role.split("/"):
        if part in ("", ".", "..", "*") or part.startswith("-"):
            return f"Role '{role}' has an invalid path component '{part}'"
    return None


def _with_id(info: JsonDict, framework_id: str) -> JsonDict:
    out: JsonDict = {}
    for key, value in info.items():
        out[key] = value
        if key == "name":
            out["id"] = {"value": framework_id}
    return out


def _agent(agent_id: str | None) -> JsonDict:
    return {"agent_id": {"value": agent_id}} if agent_id is not None else {}


def _latest_state_status(task: MasterTask) -> JsonDict:
    return make_status(
        task.task_id,
        task.status_update_state or task.state,
        "SOURCE_MASTER",
        message="Reconciliation: Latest task state",
        reason="REASON_RECONCILIATION",
        agent_id=task.agent_id,
        executor_id=task.executor_id,
        container_status=task.container_status(),
    )


def _allocatable(resources: Resources) -> bool:
    cpus = resources.items.get("cpus", 0)
    mem = resources.items.get("mem", 0)
    return (isinstance(cpus, int) and cpus >= MIN_ALLOCATABLE_CPUS) or (
        isinstance(mem, int) and mem >= MIN_ALLOCATABLE_MEM
    )


__all__ = ["Master", "MasterConfig"]
