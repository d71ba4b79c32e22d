"""One Mesos agent: executor containers, the executor API state, status updates, the master link.

The agent knows the master only through a LeaderDetector and the private link protocol, so it
can (re-)register with a master living in another process. Its "checkpoint" is its own memory:
a restart keeps what a real agent would recover from its work_dir (checkpointing frameworks)
and forgets the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import signal
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import containerizer
from .executor_env import executor_environment
from .fetcher import Fetcher, FetchError, FetchStats
from .httpserver import EventStream, HttpServer, Router
from .leader import LeaderDetector
from .link import LINK_PATH, Link, open_link
from .resources import DEFAULT_PORTS, Resources, parse_attributes
from .schema import TERMINAL_STATES
from .status_update_manager import StatusUpdateManager
from .statuses import make_status, reorder
from .traffic import FrameworkTraffic, bump
from .wire import JsonDict, format_duration, new_uuid, new_uuid_b64, now

log = logging.getLogger(__name__)

# src/slave/constants.cpp: DEFAULT_AGENT_PING_TIMEOUT (15 s) x DEFAULT_MAX_AGENT_PING_TIMEOUTS (5),
# until a master tells its own.
DEFAULT_MASTER_PING_TIMEOUT = 75.0


@dataclass
class AgentConfig:
    host: str = "127.0.0.1"
    port: int = 0
    hostname: str | None = None
    resources: str = "cpus:2;mem:4096;disk:10000"
    attributes: str = ""
    work_dir: Path = field(default_factory=lambda: Path("/tmp/mesos-double"))
    executor_environment_variables: dict[str, str] = field(default_factory=dict)
    executor_registration_timeout: float = 60.0
    executor_shutdown_grace_period: float = 5.0
    executor_reregistration_timeout: float = 2.0
    recovery_timeout: float = 900.0
    status_update_retry_base: float = 10.0
    status_update_retry_max: float = 600.0
    fetcher_cache_dir: Path | None = None
    # A real agent waits random(0, registration_backoff_factor) after detecting a new master.
    registration_backoff_factor: float = 0.0
    # Re-register as soon as the master's connection drops, instead of after the ping timeout
    # a real agent waits when no other master is detected (the double's fast mode).
    fast_reregistration: bool = False


@dataclass
class AgentTask:
    task_id: str
    framework_id: str
    executor_id: str
    info: JsonDict
    state: str = "TASK_STAGING"
    last_status: JsonDict | None = None
    container_status: JsonDict | None = None
    delivered: bool = False

    def record(self, status: JsonDict) -> None:
        self.state = status["state"]
        self.last_status = status
        if "container_status" in status:
            self.container_status = status["container_status"]


@dataclass
class ExecutorRun:
    framework_id: str
    executor_id: str
    info: JsonDict
    container_id: str
    directory: Path
    checkpoint: bool
    state: str = "launching"  # launching, registering, running, terminating, terminated
    process: subprocess.Popen[bytes] | None = None
    stream: EventStream | None = None
    queued: list[JsonDict] = field(default_factory=list)
    tasks: dict[str, AgentTask] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)  # completed task -> final state
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    pending_termination: tuple[str, str, str] | None = None
    exit_status: int | None = None
    subscribed_once: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


@dataclass
class FrameworkState:
    id: str
    info: JsonDict
    executors: dict[str, ExecutorRun] = field(default_factory=dict)
    terminating: bool = False

    @property
    def checkpoint(self) -> bool:
        return bool(self.info.get("checkpoint", False))

    def task(self, task_id: str) -> tuple[ExecutorRun, AgentTask] | None:
        for run in self.executors.values():
            task = run.tasks.get(task_id)
            if task is not None:
                return run, task
        return None


class Agent:
    """States: down, recovering (HTTP up, executors may re-subscribe), running."""

    def __init__(
        self,
        config: AgentConfig,
        detector: LeaderDetector,
        fetch_stats: FetchStats | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.port = config.port
        self.state = "down"
        self.agent_id: str | None = None
        self.master_id: str | None = None
        total = Resources.parse(config.resources)
        if "ports" not in total.items:
            total.items["ports"] = DEFAULT_PORTS
        self.total = total
        self.attributes = parse_attributes(config.attributes) if config.attributes else []
        self.frameworks: dict[str, FrameworkState] = {}
        self.sum = StatusUpdateManager(
            self._forward_update, config.status_update_retry_base, config.status_update_retry_max
        )
        self.fetch_stats = fetch_stats or FetchStats()
        cache_dir = config.fetcher_cache_dir or config.work_dir / "fetch-cache"
        self.fetcher = Fetcher(cache_dir, self.fetch_stats)
        self.drain_config: JsonDict | None = None
        self.link: Link | None = None
        self.linked_to: str | None = None  # host:port of the master the link goes to
        self.registrations = 0
        self.executor_pids: dict[str, int] = {}
        self.completed_runs: deque[ExecutorRun] = deque(maxlen=1000)
        self._server: HttpServer | None = None
        self._link_task: asyncio.Task[None] | None = None
        self._deferred_exits: list[tuple[ExecutorRun, int]] = []
        self.traffic: dict[str, FrameworkTraffic] = {}
        # Container roots of forgotten (uncheckpointed) frameworks, destroyed at recovery.
        self._orphans: list[subprocess.Popen[bytes]] = []
        self.master_ping_timeout = DEFAULT_MASTER_PING_TIMEOUT
        self.ping_timeouts = 0
        self._last_ping = 0.0
        self._registered_on: Link | None = None  # the link the last REGISTERED came on
        self._bg: set[asyncio.Task[Any]] = set()

    @property
    def hostname(self) -> str:
        return self.config.hostname or self.config.host

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    def resources_json(self) -> list[JsonDict]:
        return self.total.to_json()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self._listen()
        self.state = "running"
        self._link_task = asyncio.get_running_loop().create_task(self._link_loop())

    async def _listen(self) -> None:
        from . import executor_api

        router = Router()
        handler = executor_api.handler(self)
        router.add("/api/v1/executor", handler)
        router.add("/slave(1)/api/v1/executor", handler)
        server = HttpServer(router)
        self.port = await server.start(self.config.host, self.port)
        self._server = server

    async def _go_down(self) -> None:
        self.state = "down"
        self.sum.pause()
        if self.link is not None:
            self.link.close()
            self.link = None
        if self._link_task is not None:
            self._link_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._link_task
            self._link_task = None
        for run in self._runs():
            if run.stream is not None:
                run.stream.drop()
                run.stream = None
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def stop(self) -> None:
        """Orderly double shutdown: destroy every container, reap them, close everything."""
        self.state = "stopping"
        runs = self._runs()
        for run in runs:
            run.cancel_timers()
            _destroy(run.process)
        for process in self._orphans:
            _destroy(process)
        self._orphans.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while loop.time() < deadline and any(
            r.process is not None and r.process.returncode is None for r in runs
        ):
            await asyncio.sleep(0.01)  # let the exit watchers reap and close their pidfds
        await self._go_down()
        for task in list(self._bg):
            task.cancel()

    async def restart(self, downtime: float = 0.0) -> None:
        """Agent process restart with recovery: executors of checkpointing frameworks live on."""
        await self._go_down()
        self._forget_uncheckpointed()
        if downtime > 0:
            await asyncio.sleep(downtime)
        await self._recover()

    async def crash(self, restart_after: float | None = None) -> list[JsonDict]:
        """kill -9 of the agent and of each executor process; optionally start it again later.

        Only the executor processes themselves are killed (as ``kill_executor`` does): a dead
        agent destroys no container, so whatever else runs in a container (jobs the executor
        started in sessions of their own, children of the shell) lives on. A restart destroys
        what is left of the containers during recovery, as a real agent does.
        Returns, per executor killed, its ids, pid and the process tree it had just before.
        """
        killed = []
        for run in self._runs():
            run.cancel_timers()
            if run.process is not None and run.process.poll() is None:
                killed.append(self.kill_executor_process(run, signal.SIGKILL))
        await self._go_down()
        self._forget_uncheckpointed()
        if restart_after is not None:
            await asyncio.sleep(restart_after)
            await self._recover()
        return killed

    async def _recover(self) -> None:
        await self._listen()
        self.state = "recovering"
        # Containers of frameworks the agent did not checkpoint are orphans: destroyed now.
        orphans, self._orphans = self._orphans, []
        for process in orphans:
            _destroy(process)
        await asyncio.sleep(self.config.executor_reregistration_timeout)
        if self.state != "recovering":
            return
        exited = {id(run) for run, _ in self._deferred_exits}
        for run in self._runs():
            alive = run.process is not None and run.process.poll() is None and id(run) not in exited
            if alive and run.state in ("running", "registering") and run.stream is None:
                run.pending_termination = (
                    "TASK_FAILED",
                    "REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
                    "Executor did not reregister within "
                    + format_duration(self.config.executor_reregistration_timeout),
                )
                _destroy(run.process)
        await asyncio.sleep(0.05)  # let the kills be reaped before registering
        self.state = "running"
        deferred, self._deferred_exits = self._deferred_exits, []
        for run, status in deferred:
            self._executor_exited(run, status)
        self._link_task = asyncio.get_running_loop().create_task(self._link_loop())

    def _forget_uncheckpointed(self) -> None:
        for framework in list(self.frameworks.values()):
            if framework.checkpoint:
                continue
            for run in framework.executors.values():
                run.cancel_timers()
                if run.process is not None:
                    self._orphans.append(run.process)
                run.state = "terminated"
            del self.frameworks[framework.id]
        self.sum.drop_uncheckpointed()

    def _runs(self) -> list[ExecutorRun]:
        return [run for f in self.frameworks.values() for run in f.executors.values()]

    # -- master link ---------------------------------------------------------------------------
    async def _link_loop(self) -> None:
        """Register with the leading master; re-register whenever a new one is detected."""
        backoff = 0.05
        seen = self.detector.version
        while self.state == "running":
            if self.detector.version != seen:
                # A new master was detected: like a real agent, wait a random part of
                # registration_backoff_factor before re-registering (0 for the first time).
                seen = self.detector.version
                backoff = 0.05
                if self.agent_id is not None and self.config.registration_backoff_factor > 0:
                    await asyncio.sleep(
                        random.uniform(0, self.config.registration_backoff_factor)
                    )
                continue
            leader = self.detector.leader()
            if leader is None:
                await _wait(self.detector.changed(seen), 1.0)
                continue
            host, port = leader
            try:
                link = await open_link(host, port, LINK_PATH)
            except (OSError, asyncio.TimeoutError):
                await _wait(self.detector.changed(seen), backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            self.link = link
            self.linked_to = f"{host}:{port}"
            link.on_message = self._on_master_message
            link.send(self._registration())
            closed = asyncio.ensure_future(link.wait_closed())
            try:
                await asyncio.wait(
                    {closed, self.detector.changed(seen)}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                closed.cancel()
                if not link.closed:
                    link.close()  # a new leader: leave the old one
                if self.link is link:
                    self.link = None
                self.sum.pause()
            if self.detector.version != seen:
                continue
            if self._registered_on is link and not self.config.fast_reregistration:
                # The master went away, but nothing says another one leads: like a real
                # agent, wait for the ping timeout before looking for a master again.
                await self._await_ping_timeout(seen)
            else:
                await _wait(self.detector.changed(seen), backoff)

    async def _await_ping_timeout(self, seen: int) -> None:
        """Slave::pingTimeout: no pings within the master's total ping timeout, re-detect."""
        loop = asyncio.get_running_loop()
        remaining = self._last_ping + self.master_ping_timeout - loop.time()
        await _wait(self.detector.changed(seen), max(0.0, remaining))
        if self.detector.version != seen or self.state != "running":
            return  # a new leader was detected: the link loop takes it from here
        log.info(
            "agent %s: No pings from master received within %s",
            self.address,
            format_duration(self.master_ping_timeout),
        )
        self.ping_timeouts += 1
        if self.config.registration_backoff_factor > 0:
            await asyncio.sleep(random.uniform(0, self.config.registration_backoff_factor))

    def _registration(self) -> JsonDict:
        tasks = []
        executors = []
        frameworks = []
        for framework in self.frameworks.values():
            if framework.terminating:
                continue
            frameworks.append(framework.info)
            for run in framework.executors.values():
                if run.state != "terminated":
                    executors.append({"framework_id": framework.id, "info": run.info})
                for task in run.tasks.values():
                    tasks.append(
                        {
                            "framework_id": framework.id,
                            "task_id": task.task_id,
                            "info": task.info,
                            "resources": task.info.get("resources", []),
                            "state": task.state,
                            "last_status": task.last_status,
                            "container_status": task.container_status,
                        }
                    )
        return {
            "type": "REGISTER",
            "agent_id": self.agent_id,
            "hostname": self.hostname,
            "ip": self.config.host,
            "port": self.port,
            "resources": self.resources_json(),
            "attributes": self.attributes,
            "frameworks": frameworks,
            "executors": executors,
            "tasks": tasks,
        }

    def _on_master_message(self, message: JsonDict) -> None:
        kind = message["type"]
        handler = getattr(self, "_on_" + kind.lower(), None)
        if handler is None:
            log.warning("unknown master message %s", kind)
            return
        handler(message)

    def _on_registered(self, message: JsonDict) -> None:
        reregistration = self.agent_id is not None
        self.agent_id = message["agent_id"]
        self.master_id = message.get("master_id")
        self.registrations += 1
        # The master tells its agent_ping_timeout x max_agent_ping_timeouts (Mesos: in
        # SlaveRegisteredMessage.connection); the ping timer starts now.
        self.master_ping_timeout = float(
            message.get("total_ping_timeout", DEFAULT_MASTER_PING_TIMEOUT)
        )
        self._last_ping = asyncio.get_running_loop().time()
        self._registered_on = self.link
        for entry in message.get("reconcile", []):
            state = "TASK_DROPPED" if entry.get("partition_aware") else "TASK_LOST"
            status = make_status(
                entry["task_id"],
                state,
                "SOURCE_AGENT",
                message="Reconciliation: task unknown to the agent",
                reason="REASON_RECONCILIATION",
                agent_id=self.agent_id,
                uuid=new_uuid_b64(),
            )
            self.sum.update(entry["framework_id"], status, checkpoint=True)
        # A re-registering agent flushes its pending updates twice (surprise 30).
        self.sum.resume(times=2 if reregistration else 1)

    def _on_ping(self, message: JsonDict) -> None:
        self._last_ping = asyncio.get_running_loop().time()

    def _forward_update(self, framework_id: str, status: JsonDict) -> None:
        if self.link is None:
            return
        latest = None
        framework = self.frameworks.get(framework_id)
        if framework is not None:
            found = framework.task(status["task_id"]["value"])
            if found is not None:
                latest = found[1].state
        self.link.send(
            {
                "type": "STATUS_UPDATE",
                "framework_id": framework_id,
                "status": status,
                "latest_state": latest,
            }
        )

    # -- messages from the master ------------------------------------------------------------------
    def _framework(self, info: JsonDict) -> FrameworkState:
        framework_id = info["id"]["value"]
        framework = self.frameworks.get(framework_id)
        if framework is None:
            framework = FrameworkState(framework_id, info)
            self.frameworks[framework_id] = framework
        else:
            framework.info = info
        return framework

    def _on_run_task(self, message: JsonDict) -> None:
        framework = self._framework(message["framework_info"])
        task = message["task"]
        if "executor" not in task:
            # Command tasks need Mesos' built-in command executor, which the double lacks.
            status = make_status(
                task["task_id"]["value"],
                "TASK_FAILED",
                "SOURCE_AGENT",
                message="Failed to launch container: the Mesos double runs custom executors "
                "only (no built-in command executor)",
                reason="REASON_CONTAINER_LAUNCH_FAILED",
                agent_id=self.agent_id,
                uuid=new_uuid_b64(),
            )
            self.sum.update(framework.id, status, framework.checkpoint)
            return
        self._add_tasks(framework, task["executor"], [task], group=False)

    def _on_run_task_group(self, message: JsonDict) -> None:
        framework = self._framework(message["framework_info"])
        self._add_tasks(framework, message["executor"], message["task_group"]["tasks"], group=True)

    def _add_tasks(
        self, framework: FrameworkState, executor: JsonDict, tasks: list[JsonDict], *, group: bool
    ) -> None:
        if framework.terminating:
            return
        executor_id = executor["executor_id"]["value"]
        run = framework.executors.get(executor_id)
        if run is None or run.state in ("terminating", "terminated"):
            run = self._new_run(framework, executor)
        for task in tasks:
            task_id = task["task_id"]["value"]
            run.tasks[task_id] = AgentTask(task_id, framework.id, executor_id, task)
        event: JsonDict = (
            {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": tasks}}}
            if group
            else {"type": "LAUNCH", "launch": {"task": tasks[0]}}
        )
        if run.state == "running" and run.stream is not None:
            self._to_executor(run, event)
            for task in tasks:
                run.tasks[task["task_id"]["value"]].delivered = True
        else:
            run.queued.append(event)

    def _new_run(self, framework: FrameworkState, executor: JsonDict) -> ExecutorRun:
        assert self.agent_id is not None
        executor_id = executor["executor_id"]["value"]
        container_id = new_uuid()
        runs = (
            self.config.work_dir
            / "slaves"
            / self.agent_id
            / "frameworks"
            / framework.id
            / "executors"
            / executor_id
            / "runs"
        )
        run = ExecutorRun(
            framework_id=framework.id,
            executor_id=executor_id,
            info=executor,
            container_id=container_id,
            directory=runs / container_id,
            checkpoint=framework.checkpoint,
        )
        framework.executors[executor_id] = run
        task = asyncio.get_running_loop().create_task(self._launch(framework, run, runs))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return run

    async def _launch(self, framework: FrameworkState, run: ExecutorRun, runs: Path) -> None:
        run.directory.mkdir(parents=True, exist_ok=True)
        latest = runs / "latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink():
                latest.unlink()
            latest.symlink_to(run.container_id)
        command = run.info.get("command", {})
        user = command.get("user") or framework.info.get("user", "")
        try:
            await self.fetcher.fetch_all(command.get("uris", []), run.directory, user)
        except FetchError as exc:
            run.pending_termination = (
                "TASK_FAILED",
                "REASON_CONTAINER_LAUNCH_FAILED",
                f"Failed to launch container: Failed to fetch all URIs for container "
                f"'{run.container_id}': {exc}",
            )
            self._executor_exited(run, None)
            return
        if run.state != "launching":
            return
        grace_ns = run.info.get("shutdown_grace_period", {}).get("nanoseconds")
        grace = (
            grace_ns / 1e9 if grace_ns is not None else self.config.executor_shutdown_grace_period
        )
        assert self.agent_id is not None
        env = executor_environment(
            agent_id=self.agent_id,
            agent_ip=self.config.host,
            agent_port=self.port,
            framework_id=framework.id,
            executor_id=run.executor_id,
            directory=str(run.directory),
            checkpoint=framework.checkpoint,
            shutdown_grace_period=grace,
            recovery_timeout=self.config.recovery_timeout,
            subscription_backoff_max=self.config.executor_reregistration_timeout,
            agent_variables=self.config.executor_environment_variables,
            command=command,
        )
        try:
            run.process = containerizer.spawn(command, env, run.directory)
        except OSError as exc:
            run.pending_termination = (
                "TASK_FAILED",
                "REASON_CONTAINER_LAUNCH_FAILED",
                f"Failed to launch container: {exc}",
            )
            self._executor_exited(run, None)
            return
        self.executor_pids[f"{framework.id}/{run.executor_id}"] = run.process.pid
        run.state = "registering"
        containerizer.watch_exit(run.process, lambda status: self._on_process_exit(run, status))
        loop = asyncio.get_running_loop()
        run.timers.append(
            loop.call_later(
                self.config.executor_registration_timeout, self._registration_timeout, run
            )
        )

    def _registration_timeout(self, run: ExecutorRun) -> None:
        if run.state != "registering":
            return
        run.pending_termination = (
            "TASK_FAILED",
            "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
            "Executor did not register within "
            + format_duration(self.config.executor_registration_timeout),
        )
        _destroy(run.process)

    def _on_process_exit(self, run: ExecutorRun, status: int) -> None:
        if self.state != "running":
            self._deferred_exits.append((run, status))
            return
        self._executor_exited(run, status)

    def _executor_exited(self, run: ExecutorRun, status: int | None) -> None:
        if run.state == "terminated" and run.exit_status is not None:
            return
        run.state = "terminated"
        run.exit_status = status
        run.cancel_timers()
        _destroy(run.process)  # what is left of the container's group and session
        if run.stream is not None:
            run.stream.drop()
            run.stream = None
        framework = self.frameworks.get(run.framework_id)
        if self.link is not None:
            self.link.send(
                {
                    "type": "EXITED_EXECUTOR",
                    "framework_id": run.framework_id,
                    "executor_id": run.executor_id,
                    "status": status if status is not None else -1,
                }
            )
        if framework is None:
            return
        if not framework.terminating:
            state, reason, message = run.pending_termination or (
                "TASK_FAILED",
                "REASON_EXECUTOR_TERMINATED",
                "Executor terminated",
            )
            for task in run.tasks.values():
                if task.state in TERMINAL_STATES:
                    continue
                update = make_status(
                    task.task_id,
                    state,
                    "SOURCE_AGENT",
                    message=message,
                    reason=reason,
                    agent_id=self.agent_id,
                    executor_id=run.executor_id,
                    uuid=new_uuid_b64(),
                )
                task.record(update)
                self.sum.update(framework.id, update, framework.checkpoint)
        self._maybe_remove(framework, run)

    def _maybe_remove(self, framework: FrameworkState, run: ExecutorRun) -> None:
        if run.state != "terminated":
            return
        for task in list(run.tasks.values()):
            if not self.sum.has_pending(framework.id, task.task_id):
                run.done[task.task_id] = run.tasks.pop(task.task_id).state
        if not run.tasks and framework.executors.get(run.executor_id) is run:
            del framework.executors[run.executor_id]
            self.completed_runs.append(run)
        if not framework.executors and framework.terminating:
            self.frameworks.pop(framework.id, None)

    def _on_kill_task(self, message: JsonDict) -> None:
        framework = self.frameworks.get(message["framework_id"])
        if framework is None:
            return
        found = framework.task(message["task_id"])
        if found is None:
            return
        run, task = found
        event: JsonDict = {"task_id": {"value": task.task_id}}
        if "kill_policy" in message:
            event["kill_policy"] = message["kill_policy"]
        self._kill(framework, run, task, event)

    def _kill(
        self, framework: FrameworkState, run: ExecutorRun, task: AgentTask, kill: JsonDict
    ) -> None:
        if not task.delivered and run.state != "terminated":
            run.queued = [e for e in run.queued if not _event_has_task(e, task.task_id)]
            update = make_status(
                task.task_id,
                "TASK_KILLED",
                "SOURCE_AGENT",
                message="Killed before delivery to the executor",
                reason="REASON_TASK_KILLED_DURING_LAUNCH",
                agent_id=self.agent_id,
                executor_id=run.executor_id,
                uuid=new_uuid_b64(),
            )
            task.record(update)
            self.sum.update(framework.id, update, framework.checkpoint)
            return
        if run.stream is not None:
            self._to_executor(run, {"type": "KILL", "kill": kill})

    def _on_framework_message(self, message: JsonDict) -> None:
        framework = self.frameworks.get(message["framework_id"])
        run = framework.executors.get(message["executor_id"]) if framework else None
        if run is not None and run.stream is not None:
            self._to_executor(run, {"type": "MESSAGE", "message": {"data": message["data"]}})

    def _on_shutdown_executor(self, message: JsonDict) -> None:
        framework = self.frameworks.get(message["framework_id"])
        run = framework.executors.get(message["executor_id"]) if framework else None
        if run is not None:
            self.shutdown_executor(run)

    def _on_shutdown_framework(self, message: JsonDict) -> None:
        framework = self.frameworks.get(message["framework_id"])
        if framework is None:
            return
        framework.terminating = True
        self.sum.drop_framework(framework.id)
        for run in list(framework.executors.values()):
            self.shutdown_executor(run)
        if not framework.executors:
            del self.frameworks[framework.id]

    def _on_update_framework(self, message: JsonDict) -> None:
        info = message["framework_info"]
        framework = self.frameworks.get(info["id"]["value"])
        if framework is not None:
            framework.info = info
        if self.link is not None:
            self.sum.resume(framework_id=info["id"]["value"])

    def _on_ack(self, message: JsonDict) -> None:
        framework_id = message["framework_id"]
        matched, finished = self.sum.acknowledge(framework_id, message["task_id"], message["uuid"])
        if not matched:
            return
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        found = framework.task(message["task_id"])
        if finished and found is not None:
            run, task = found
            if task.state in TERMINAL_STATES:
                run.done[task.task_id] = run.tasks.pop(task.task_id).state
            self._maybe_remove(framework, run)

    def _on_drain(self, message: JsonDict) -> None:
        max_grace = message.get("max_grace_period_ns")
        self.drain_config = {"max_grace_period_ns": max_grace}
        for framework in self.frameworks.values():
            for run in framework.executors.values():
                for task in list(run.tasks.values()):
                    if task.state in TERMINAL_STATES:
                        continue
                    event: JsonDict = {"task_id": {"value": task.task_id}}
                    own = (
                        task.info.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds")
                    )
                    if max_grace is not None and (own is None or own > max_grace):
                        event["kill_policy"] = {"grace_period": {"nanoseconds": max_grace}}
                    self._kill(framework, run, task, event)

    # -- executors ---------------------------------------------------------------------------------
    def shutdown_executor(self, run: ExecutorRun) -> None:
        if run.state in ("terminating", "terminated"):
            return
        if run.stream is None or run.pid is None:
            run.state = "terminating"
            if run.process is not None:
                _destroy(run.process)
            else:
                self._executor_exited(run, None)
            return
        run.state = "terminating"
        self._to_executor(run, {"type": "SHUTDOWN"})
        grace_ns = run.info.get("shutdown_grace_period", {}).get("nanoseconds")
        grace = (
            grace_ns / 1e9 if grace_ns is not None else self.config.executor_shutdown_grace_period
        )
        loop = asyncio.get_running_loop()
        run.timers.append(loop.call_later(grace, _destroy, run.process))

    def subscribe(self, run: ExecutorRun, stream: EventStream, call: JsonDict) -> None:
        """An executor (re-)subscribed: SUBSCRIBED, queued launches, pending acknowledgements."""
        if run.stream is not None and run.stream is not stream:
            run.stream.end()
        run.stream = stream
        run.subscribed_once = True
        if run.state == "registering":
            run.state = "running"
        run.cancel_timers()
        framework = self.frameworks[run.framework_id]
        assert self.agent_id is not None
        agent_info: JsonDict = {
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.resources_json(),
        }
        if self.attributes:
            agent_info["attributes"] = self.attributes
        agent_info["id"] = {"value": self.agent_id}
        self._to_executor(
            run,
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "executor_info": run.info,
                    "framework_info": framework.info,
                    "agent_info": agent_info,
                    "container_id": {"value": run.container_id},
                },
            },
        )
        queued, run.queued = run.queued, []
        for event in queued:
            self._to_executor(run, event)
            for task_id in _event_task_ids(event):
                if task_id in run.tasks:
                    run.tasks[task_id].delivered = True
        for update in call.get("subscribe", {}).get("unacknowledged_updates", []):
            self.status_update(run.framework_id, run, update["status"])

    def status_update(self, framework_id: str, run: ExecutorRun, raw: JsonDict) -> None:
        """An executor UPDATE: rewrite like the agent does, hand to the SUM, ACK the executor."""
        framework = self.frameworks.get(framework_id)
        if framework is not None and framework.terminating:
            return  # a real agent ignores updates of a terminating framework
        status = dict(raw)
        status["agent_id"] = {"value": self.agent_id}
        if "timestamp" not in status:
            status["timestamp"] = now()
        found = framework.task(status["task_id"]["value"]) if framework else None
        if found is not None:
            owner, task = found
            if owner.pid is not None:
                status["container_status"] = {
                    "container_id": {"value": owner.container_id},
                    "network_infos": [
                        {"ip_addresses": [{"protocol": "IPv4", "ip_address": self.config.host}]}
                    ],
                    "executor_pid": owner.pid,
                }
            if self.drain_config is not None and status["state"] in ("TASK_KILLING", "TASK_KILLED"):
                status["reason"] = "REASON_AGENT_DRAINING"
        status = reorder(status)
        checkpoint = framework.checkpoint if framework else False
        if found is not None:
            task.record(status)
        self.sum.update(framework_id, status, checkpoint)
        if found is not None and owner.stream is not None:
            self._to_executor(
                owner,
                {
                    "type": "ACKNOWLEDGED",
                    "acknowledged": {"task_id": status["task_id"], "uuid": status["uuid"]},
                },
            )

    def _to_executor(self, run: ExecutorRun, event: JsonDict) -> None:
        if run.stream is not None:
            run.stream.send(event)
            bump(self.traffic_of(run.framework_id).executor_events, event["type"])

    def traffic_of(self, framework_id: str) -> FrameworkTraffic:
        """This agent's counters of one framework's executors (see ``traffic``)."""
        traffic = self.traffic.get(framework_id)
        if traffic is None:
            traffic = self.traffic[framework_id] = FrameworkTraffic()
        return traffic

    def executor_message(self, run: ExecutorRun, data: str) -> None:
        if self.link is not None:
            self.link.send(
                {
                    "type": "EXECUTOR_MESSAGE",
                    "framework_id": run.framework_id,
                    "executor_id": run.executor_id,
                    "data": data,
                }
            )

    def stream_closed(self, run: ExecutorRun, stream: EventStream) -> None:
        if run.stream is stream:
            run.stream = None

    # -- fault hooks -------------------------------------------------------------------------------
    def kill_executor(self, framework_id: str, executor_id: str, sig: int = signal.SIGKILL) -> bool:
        """Signal the executor process itself (like ``kill -9 <executor pid>``)."""
        framework = self.frameworks.get(framework_id)
        run = framework.executors.get(executor_id) if framework else None
        if run is None or run.process is None:
            return False
        self.kill_executor_process(run, sig)
        return True

    def live_executors(self, framework_id: str | None = None) -> list[ExecutorRun]:
        """Executors whose process runs (those a kill -9 can hit)."""
        return [
            run
            for run in self._runs()
            if (framework_id is None or run.framework_id == framework_id)
            and run.process is not None
            and run.process.poll() is None
            and run.state in ("registering", "running")
        ]

    def kill_executor_process(self, run: ExecutorRun, sig: int) -> JsonDict:
        """The executor under ``/bin/sh -c`` (or the process itself), and nothing else: the
        agent then destroys the container as the posix launcher does (``_executor_exited``)."""
        assert run.process is not None
        pid = run.process.pid
        tree = containerizer.process_tree(pid)
        target = containerizer.executor_process(pid, run.info.get("command", {}).get("shell", True))
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, sig)
        return {
            "agent_id": self.agent_id,
            "agent": self.address,
            "framework_id": run.framework_id,
            "executor_id": run.executor_id,
            "pid": pid,  # the container's root (the shell, for a shell command)
            "signalled": target,
            "tree": tree,
        }

    def cleanup_work_dir(self) -> None:
        shutil.rmtree(self.config.work_dir, ignore_errors=True)

    def introspect(self) -> JsonDict:
        executors = []
        live = [run for f in self.frameworks.values() for run in f.executors.values()]
        for run in [*self.completed_runs, *live]:
            executors.append(
                {
                    "framework_id": run.framework_id,
                    "executor_id": run.executor_id,
                    "state": run.state,
                    "pid": run.pid,
                    "container_id": run.container_id,
                    "directory": str(run.directory),
                    # every task the executor was given, live or completed, with its state
                    "tasks": {**run.done, **{t.task_id: t.state for t in run.tasks.values()}},
                }
            )
        return {
            "id": self.agent_id,
            "address": self.address,
            "state": self.state,
            "executors": executors,
            "executor_pids": dict(self.executor_pids),
            "status_updates_resent": self.sum.resent,
            "registrations": self.registrations,
            "ping_timeouts": self.ping_timeouts,
            "master_ping_timeout": self.master_ping_timeout,
            "master_id": self.master_id,
            "master": self.linked_to if self.link is not None else None,
        }


def _event_task_ids(event: JsonDict) -> list[str]:
    if event["type"] == "LAUNCH":
        return [event["launch"]["task"]["task_id"]["value"]]
    return [t["task_id"]["value"] for t in event["launch_group"]["task_group"]["tasks"]]


def _event_has_task(event: JsonDict, task_id: str) -> bool:
    return task_id in _event_task_ids(event)


def _destroy(process: subprocess.Popen[bytes] | None) -> None:
    """Destroy the container whose root is ``process`` (``containerizer.destroy``)."""
    if process is not None:
        containerizer.destroy(process.pid, root_exited=process.poll() is not None)


async def _wait(future: asyncio.Future[None], timeout: float) -> None:
    """Wait for ``future`` at most ``timeout`` seconds (without cancelling it)."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(future), timeout)
