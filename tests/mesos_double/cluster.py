"""A master and its agents on one event loop, with the fault hooks and introspection."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agent import Agent, AgentConfig
from .fetcher import FetchStats
from .leader import StaticLeader
from .master import Master, MasterConfig
from .wire import JsonDict


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
    agent_removal_timeout: float = 75.0
    executor_registration_timeout: float = 60.0
    executor_shutdown_grace_period: float = 5.0
    executor_reregistration_timeout: float = 2.0
    status_update_retry_base: float = 10.0
    status_update_retry_max: float = 600.0
    executor_environment_variables: dict[str, str] = field(default_factory=dict)
    work_dir: Path | None = None
    fetcher_cache_dir: Path | None = None


class Cluster:
    """Owns the master and agents; every method runs on the cluster's loop."""

    def __init__(self, agents: Sequence[AgentSpec], options: ClusterOptions) -> None:
        self.options = options
        self.specs = list(agents)
        self._own_work_dir = options.work_dir is None
        self.work_dir = options.work_dir or Path(tempfile.mkdtemp(prefix="mesos-double-"))
        self.master = Master(
            MasterConfig(
                host=options.host,
                port=options.port,
                allocation_interval=options.allocation_interval,
                heartbeat_interval=options.heartbeat_interval,
                agent_removal_timeout=options.agent_removal_timeout,
            )
        )
        self.fetch_stats = FetchStats()
        self.agents: list[Agent] = []
        self._bg: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        from .control import add_control_routes

        self.master.extra_routes.append(lambda router: add_control_routes(router, self))
        await self.master.start()
        detector = StaticLeader(self.options.host, self.master.port)
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
                fetcher_cache_dir=cache_dir,
            )
            agent = Agent(config, detector, self.fetch_stats)
            await agent.start()
            self.agents.append(agent)
        await self.wait_registered()

    async def wait_registered(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
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
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

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

    async def lose_agent(self, which: int | str = 0, restart_after: float | None = None) -> None:
        await self.agent(which).crash(restart_after)

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
        await self.master.restart(downtime)

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
            }
        return {
            "master": {"address": master.address, "id": master.id, "running": master.running},
            "frameworks": frameworks,
            "completed_frameworks": sorted(master.completed_frameworks),
            "agents": agents,
            "agent_processes": [a.introspect() for a in self.agents],
            "counters": master.counters.as_dict(),
            "fetch": self.fetch_stats.as_dict(),
            "executor_pids": {
                key: pid for a in self.agents for key, pid in a.executor_pids.items()
            },
        }
