"""A master and its agents on one event loop, with the fault hooks and introspection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import signal
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agent import Agent, AgentConfig
from .fetcher import FetchStats
from .leader import LeaderDetector, StaticLeader
from .master import Master, MasterConfig
from .registry import REPLICATED_LOG, MemoryStore, check_kind
from .traffic import merge
from .wire import JsonDict
from .zk import ZooKeeperGroup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSpec:
    """One agent, as its flags would describe it."""

    resources: str = "cpus:2;mem:4096;disk:10000"
    attributes: str = ""
    hostname: str | None = None
    port: int = 0
    executor_environment_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterOptions:
    host: str = "127.0.0.1"
    port: int = 0
    allocation_interval: float = 1.0
    heartbeat_interval: float = 15.0
    # --agent_ping_timeout and --max_agent_ping_timeouts: the master pings each agent every
    # agent_ping_timeout; after agent_ping_timeout x max_agent_ping_timeouts without contact the
    # master marks a disconnected agent unreachable, and an agent whose master went away looks
    # for a master again (the standalone detector names the same one: 60-75 s after a restart).
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    # The product above, given directly (pings then come every total / max_agent_ping_timeouts).
    agent_removal_timeout: float | None = None
    # --agent_reregister_timeout: recovered agents not back by then become unreachable.
    agent_reregister_timeout: float = 600.0
    # --registry: "replicated_log" (Mesos' default; survives master restarts, in ZooKeeper with
    # zk) or "in_memory" (a restarted master knows nothing, as recordings 07 and 10 ran).
    registry: str = REPLICATED_LOG
    # Fast mode: agents re-register as soon as their master's connection drops, instead of
    # after the ping timeout a real agent waits when no new master is detected.
    fast_agent_reregistration: bool = False
    # Refuse LAUNCHes of executors under 0.01 cpus / 32 MB instead of only warning (1.11).
    refuse_small_executors: bool = False
    executor_registration_timeout: float = 60.0
    executor_shutdown_grace_period: float = 5.0
    executor_reregistration_timeout: float = 2.0
    status_update_retry_base: float = 10.0
    status_update_retry_max: float = 600.0
    executor_environment_variables: dict[str, str] = field(default_factory=dict)
    work_dir: Path | None = None
    fetcher_cache_dir: Path | None = None
    # ZooKeeper leader election (``zk://host:port/path``); None: one standalone master.
    zk: str | None = None
    zk_session_timeout: float = 10.0
    zk_connect_timeout: float = 15.0  # a clear error when ZooKeeper cannot be reached
    # registration_backoff_factor of the agents; None: 1 s (Mesos' default) with zk, else 0.
    agent_registration_backoff: float | None = None
    # --authenticate_http_frameworks with these principal -> secret credentials.
    credentials: dict[str, str] | None = None
    # Serve the master's HTTP API over TLS with this certificate chain and key.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def total_ping_timeout(self) -> float:
        """agent_ping_timeout x max_agent_ping_timeouts (or agent_removal_timeout if given)."""
        if self.agent_removal_timeout is not None:
            return self.agent_removal_timeout
        return self.agent_ping_timeout * self.max_agent_ping_timeouts

    @property
    def ping_interval(self) -> float:
        return self.total_ping_timeout / max(1, self.max_agent_ping_timeouts)


def server_tls_context(cert: Path, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key) if key is not None else None)
    return context


class Cluster:
    """Owns the master and agents; every method runs on the cluster's loop."""

    def __init__(self, agents: Sequence[AgentSpec], options: ClusterOptions) -> None:
        self.options = options
        self.specs = list(agents)
        self._own_work_dir = options.work_dir is None
        self.work_dir = options.work_dir or Path(tempfile.mkdtemp(prefix="mesos-double-"))
        tls = None
        if options.tls_cert is not None:
            tls = server_tls_context(options.tls_cert, options.tls_key)
        check_kind(options.registry)
        # With ZooKeeper the store is the cluster's znode, set once the session is up.
        self.registry_store: MemoryStore | None = (
            MemoryStore() if options.registry == REPLICATED_LOG and options.zk is None else None
        )
        self.master = Master(
            MasterConfig(
                host=options.host,
                port=options.port,
                allocation_interval=options.allocation_interval,
                heartbeat_interval=options.heartbeat_interval,
                agent_removal_timeout=options.total_ping_timeout,
                agent_ping_timeout=options.ping_interval,
                agent_reregister_timeout=options.agent_reregister_timeout,
                registry=self.registry_store,
                refuse_small_executors=options.refuse_small_executors,
                contending=options.zk is not None,
                credentials=dict(options.credentials) if options.credentials is not None else None,
                tls=tls,
            )
        )
        self.fetch_stats = FetchStats()
        self.agents: list[Agent] = []
        self.zk: ZooKeeperGroup | None = None
        self.leadership_losses = 0
        self.own_process = False  # set by ``python -m tests.doubles.mesos``: may kill itself
        self._aborting = False
        self._bg: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        from .control import add_control_routes

        self.master.extra_routes.append(lambda router: add_control_routes(router, self))
        await self.master.start()
        detector: LeaderDetector
        if self.options.zk is not None:
            group = ZooKeeperGroup(
                self.options.zk, self.options.zk_session_timeout, self.options.zk_connect_timeout
            )
            group.on_change = self._leader_changed
            group.on_candidacy_lost = self._candidacy_lost
            self.zk = group
            if self.options.registry == REPLICATED_LOG:
                self.master.config.registry = group.registry_store()
            try:
                await group.start()
            except BaseException:
                self.zk = None
                await self.master.stop()
                raise
            await group.contend(self.master.master_info())
            await self._wait_for_leader(group)
            self._leader_changed()  # whatever was detected before contending
            detector = group
        else:
            detector = StaticLeader(self.options.host, self.master.port)
        backoff = self.options.agent_registration_backoff
        if backoff is None:
            backoff = 1.0 if self.options.zk is not None else 0.0
        cache_dir = self.options.fetcher_cache_dir or self.work_dir / "fetch-cache"
        for index, spec in enumerate(self.specs):
            variables = {
                **self.options.executor_environment_variables,
                **spec.executor_environment_variables,
            }
            config = AgentConfig(
                host=self.options.host,
                port=spec.port,
                hostname=spec.hostname,
                resources=spec.resources,
                attributes=spec.attributes,
                work_dir=self.work_dir / f"agent{index}",
                executor_environment_variables=variables,
                executor_registration_timeout=self.options.executor_registration_timeout,
                executor_shutdown_grace_period=self.options.executor_shutdown_grace_period,
                executor_reregistration_timeout=self.options.executor_reregistration_timeout,
                status_update_retry_base=self.options.status_update_retry_base,
                status_update_retry_max=self.options.status_update_retry_max,
                # one cache per agent, as each real agent has its own --fetcher_cache_dir
                fetcher_cache_dir=cache_dir / f"agent{index}",
                registration_backoff_factor=backoff,
                fast_reregistration=self.options.fast_agent_reregistration,
            )
            agent = Agent(config, detector, self.fetch_stats)
            await agent.start()
            self.agents.append(agent)
        await self.wait_registered()

    async def _wait_for_leader(self, group: ZooKeeperGroup) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while group.leader_info is None and loop.time() < deadline:
            await _wait(group.changed(group.version), deadline - loop.time())

    async def wait_registered(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        if self.zk is not None:
            # The leader may be in another process, or a dead one whose session must expire.
            deadline = loop.time() + timeout + 2 * self.zk.session_timeout
            while loop.time() < deadline:
                if all(a.agent_id and a.link is not None for a in self.agents):
                    return
                await asyncio.sleep(0.01)
            raise TimeoutError("agents did not register with the leading master")
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            ids = {a.agent_id for a in self.agents if a.state == "running"}
            if (
                all(a.agent_id for a in self.agents)
                and ids <= set(self.master.agents)
                and all(self.master.agents[i].connected for i in ids if i)
            ):
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("agents did not register with the master")

    async def stop(self) -> None:
        for task in list(self._bg):
            task.cancel()
        for agent in self.agents:
            await agent.stop()
        await self.master.stop()
        if self.zk is not None:
            await self.zk.stop()
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    # -- leader election ------------------------------------------------------------------------
    def _leader_changed(self) -> None:
        group = self.zk
        if group is None or self._aborting:
            return
        if not self.master.detected(group.leader_info, group.leading):
            self._abort("Conceded leadership to another master")

    def _candidacy_lost(self) -> None:
        # A follower contends again by itself once the session is back.
        if self.master.elected and not self._aborting:
            self._abort("Lost candidacy as a leader")

    def _abort(self, why: str) -> None:
        """A leader that lost leadership exits in Mesos; here its supervisor restarts it."""
        log.warning("master %s: %s... committing suicide (restarting)", self.master.address, why)
        self._aborting = True
        self.leadership_losses += 1
        self.background(self._restart_contender())

    async def _restart_contender(self) -> None:
        group = self.zk
        assert group is not None
        try:
            await group.withdraw()
            await self.master.restart()
            self.master.detected(group.leader_info, False)
        finally:
            self._aborting = False
        await group.contend(self.master.master_info())

    # -- hooks ---------------------------------------------------------------------------------
    def agent(self, which: int | str) -> Agent:
        if isinstance(which, int):
            return self.agents[which]
        for agent in self.agents:
            if which in (agent.agent_id, agent.address):
                return agent
        raise KeyError(f"no agent {which!r}")

    def kill_executor(
        self, executor_id: str, framework_id: str | None = None, sig: int = signal.SIGKILL
    ) -> bool:
        for agent in self.agents:
            for framework in agent.frameworks.values():
                if framework_id is not None and framework.id != framework_id:
                    continue
                if executor_id in framework.executors:
                    return agent.kill_executor(framework.id, executor_id, sig)
        return False

    def kill_random_executor(
        self,
        agent: int | str | None = None,
        framework_id: str | None = None,
        sig: int = signal.SIGKILL,
        seed: int | None = None,
    ) -> JsonDict | None:
        """kill -9 of one running executor picked at random (on ``agent`` if given): its ids,
        agent, pid and the processes of its container just before; None if none runs."""
        agents = [self.agent(agent)] if agent is not None else self.agents
        runs = [(a, run) for a in agents for run in a.live_executors(framework_id)]
        if not runs:
            return None
        owner, run = random.Random(seed).choice(runs) if seed is not None else random.choice(runs)
        return owner.kill_executor_process(run, sig)

    async def lose_agent(
        self, which: int | str = 0, restart_after: float | None = None
    ) -> list[JsonDict]:
        return await self.agent(which).crash(restart_after)

    async def restart_agent(self, which: int | str = 0, downtime: float = 0.0) -> None:
        await self.agent(which).restart(downtime)

    def drop_subscription(self, framework_id: str | None = None) -> list[str]:
        dropped = []
        for framework in list(self.master.frameworks.values()):
            if framework_id is not None and framework.id != framework_id:
                continue
            if framework.stream is not None:
                framework.stream.drop()
                dropped.append(framework.id)
        return dropped

    async def restart_master(self, downtime: float = 0.0) -> None:
        if self.zk is None:
            await self.master.restart(downtime)
            return
        # A restarted master is a new contender: new MasterInfo id, new znode.
        self._aborting = True
        try:
            await self.zk.withdraw()
            await self.master.restart(downtime)
            self.master.detected(self.zk.leader_info, False)
        finally:
            self._aborting = False
        await self.zk.contend(self.master.master_info())

    def mark_agent_unreachable(self, which: int | str = 0) -> None:
        """Skip the ping timeout of a lost agent."""
        agent = self.agent(which)
        if agent.agent_id is not None:
            self.master.mark_unreachable(agent.agent_id)

    # -- introspection -----------------------------------------------------------------------------
    def state(self) -> JsonDict:
        master = self.master
        frameworks = {}
        for framework in master.frameworks.values():
            frameworks[framework.id] = {
                "name": framework.info.get("name"),
                "connected": framework.connected,
                "active": framework.active,
                "suppressed": sorted(framework.suppressed),
                "offers": sorted(framework.offers),
                "tasks": {t.task_id: t.state for t in framework.tasks.values()},
                "unreachable_tasks": {
                    t.task_id: t.state for t in framework.unreachable_tasks.values()
                },
                "completed_tasks": {t.task_id: t.state for t in framework.completed_tasks},
                "calls": dict(framework.calls),
                "principal": framework.info.get("principal"),
                "registered_time": framework.registered_time,
                "reregistered_time": framework.reregistered_time,
            }
        agents = {}
        for agent in master.agents.values():
            agents[agent.id] = {
                "address": f"{agent.ip}:{agent.port}",
                "connected": agent.connected,
                "deactivated": agent.deactivated,
                "unreachable": agent.unreachable_time is not None,
                "drain": agent.drain,
                "used": agent.used.format(allocated=False),
                "offered": agent.offered.format(allocated=False),
                "executors": {f: sorted(e) for f, e in agent.executors.items()},
                "registered_time": agent.registered_time,
                "reregistered_time": agent.reregistered_time,
            }
        return {
            "master": {
                "address": master.address,
                "id": master.id,
                "running": master.running,
                "scheme": master.scheme,
                "elected": master.elected,
                "leader": master.leader_address,
                "elected_time": master.elected_time,
                "start_time": master.start_time,
                "leadership_losses": self.leadership_losses,
                "registry": self.options.registry,
                "recovering": master.recovering,
                "recovered_agents": sorted(master.recovered_agents),
            },
            "zk": self.zk.introspect() if self.zk is not None else None,
            "frameworks": frameworks,
            "completed_frameworks": sorted(master.completed_frameworks),
            "agents": agents,
            "agent_processes": [a.introspect() for a in self.agents],
            "counters": master.counters.as_dict(),
            "fetch": self.fetch_stats.as_dict(),
            "executor_pids": {
                key: pid for a in self.agents for key, pid in a.executor_pids.items()
            },
            "framework_counters": self.framework_counters(),
        }

    def framework_counters(self) -> dict[str, JsonDict]:
        """Per framework id, what this process's master and agents counted (``traffic``)."""
        out: dict[str, JsonDict] = {}
        for framework_id, traffic in self.master.traffic.items():
            merge(out, framework_id, traffic)
        for agent in self.agents:
            for framework_id, traffic in agent.traffic.items():
                merge(out, framework_id, traffic)
        return out

    def warnings(self) -> JsonDict:
        """The master's executor-resource warnings: counts and the latest texts."""
        counters = self.master.counters
        return {
            "executor_cpus": counters.executor_cpus_warnings,
            "executor_mem": counters.executor_mem_warnings,
            "recent": list(self.master.warnings),
        }


async def _wait(future: asyncio.Future[None], timeout: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(future), max(0.0, timeout))
