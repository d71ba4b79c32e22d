"""``MesosDouble``: the whole double on a background event-loop thread, for in-process tests."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .auth import load_credentials
from .cluster import AgentSpec, Cluster, ClusterOptions
from .wire import JsonDict

T = TypeVar("T")


class MesosDouble:
    """A Mesos 1.11 master and agents speaking the v1 HTTP APIs on loopback ports.

    ``with MesosDouble(agents=[AgentSpec(...)], allocation_interval=1.0) as m:`` starts it on a
    daemon thread; every hook and query below is thread-safe and blocks until done.
    """

    def __init__(
        self,
        agents: int | Sequence[AgentSpec] = 1,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allocation_interval: float = 1.0,
        heartbeat_interval: float = 15.0,
        agent_ping_timeout: float = 15.0,
        max_agent_ping_timeouts: int = 5,
        agent_removal_timeout: float | None = None,
        agent_reregister_timeout: float = 600.0,
        registry: str = "replicated_log",
        fast_agent_reregistration: bool = False,
        refuse_small_executors: bool = False,
        executor_registration_timeout: float = 60.0,
        executor_shutdown_grace_period: float = 5.0,
        executor_reregistration_timeout: float = 2.0,
        status_update_retry_base: float = 10.0,
        status_update_retry_max: float = 600.0,
        executor_environment_variables: dict[str, str] | None = None,
        work_dir: str | Path | None = None,
        fetcher_cache_dir: str | Path | None = None,
        zk: str | None = None,
        zk_session_timeout: float = 10.0,
        zk_connect_timeout: float = 15.0,
        agent_registration_backoff: float | None = None,
        credentials: dict[str, str] | str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        if isinstance(credentials, (str, Path)):
            credentials = load_credentials(credentials)
        specs = [AgentSpec() for _ in range(agents)] if isinstance(agents, int) else list(agents)
        self.options = ClusterOptions(
            host=host,
            port=port,
            allocation_interval=allocation_interval,
            heartbeat_interval=heartbeat_interval,
            agent_ping_timeout=agent_ping_timeout,
            max_agent_ping_timeouts=max_agent_ping_timeouts,
            agent_removal_timeout=agent_removal_timeout,
            agent_reregister_timeout=agent_reregister_timeout,
            registry=registry,
            fast_agent_reregistration=fast_agent_reregistration,
            refuse_small_executors=refuse_small_executors,
            executor_registration_timeout=executor_registration_timeout,
            executor_shutdown_grace_period=executor_shutdown_grace_period,
            executor_reregistration_timeout=executor_reregistration_timeout,
            status_update_retry_base=status_update_retry_base,
            status_update_retry_max=status_update_retry_max,
            executor_environment_variables=dict(executor_environment_variables or {}),
            work_dir=Path(work_dir) if work_dir is not None else None,
            fetcher_cache_dir=Path(fetcher_cache_dir) if fetcher_cache_dir is not None else None,
            zk=zk,
            zk_session_timeout=zk_session_timeout,
            zk_connect_timeout=zk_connect_timeout,
            agent_registration_backoff=agent_registration_backoff,
            credentials=credentials,
            tls_cert=Path(tls_cert) if tls_cert is not None else None,
            tls_key=Path(tls_key) if tls_key is not None else None,
        )
        self.specs = specs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.cluster: Cluster | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> MesosDouble:
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop, ready), daemon=True, name="mesos-double"
        )
        self._thread.start()
        ready.wait()
        self.cluster = Cluster(self.specs, self.options)
        try:
            self._call(self.cluster.start())
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self.cluster is not None:
            future = asyncio.run_coroutine_threadsafe(self.cluster.stop(), loop)
            with contextlib.suppress(Exception):  # best effort on teardown
                future.result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> MesosDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        assert self._loop is not None, "the double is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _sync(self, function: Callable[[], T]) -> T:
        async def call() -> T:
            return function()

        return self._call(call())

    def _cluster(self) -> Cluster:
        assert self.cluster is not None, "the double is not running"
        return self.cluster

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def master_address(self) -> str:
        """``host:port`` of the master (what ``--master`` would be given)."""
        return self._cluster().master.address

    @property
    def master_url(self) -> str:
        """``http://host:port``, or ``https://`` when the API is served over TLS."""
        return f"{self._cluster().master.scheme}://{self.master_address}"

    @property
    def elected(self) -> bool:
        """This double's master leads (always, without ZooKeeper)."""
        return self._cluster().master.elected

    @property
    def leader_address(self) -> str | None:
        """``host:port`` of the master this double's master believes leads."""
        return self._cluster().master.leader_address

    @property
    def agent_addresses(self) -> list[str]:
        return [a.address for a in self._cluster().agents]

    @property
    def agent_ids(self) -> list[str | None]:
        return [a.agent_id for a in self._cluster().agents]

    # -- fault hooks -------------------------------------------------------------------------------
    def kill_executor(
        self, executor_id: str, framework_id: str | None = None, sig: int = signal.SIGKILL
    ) -> bool:
        """Signal the executor process (SIGKILL by default): FAILURE then TASK_FAILED follow."""
        cluster = self._cluster()
        return self._sync(lambda: cluster.kill_executor(executor_id, framework_id, sig))

    def kill_random_executor(
        self,
        agent: int | str | None = None,
        framework_id: str | None = None,
        sig: int = signal.SIGKILL,
        seed: int | None = None,
    ) -> JsonDict | None:
        """kill -9 of a running executor picked at random (on ``agent`` if given): its ids,
        agent, pid and the pids of its container just before (``tree``); None if none runs."""
        cluster = self._cluster()
        return self._sync(lambda: cluster.kill_random_executor(agent, framework_id, sig, seed))

    def lose_agent(
        self, agent: int | str = 0, restart_after: float | None = None
    ) -> list[JsonDict]:
        """kill -9 of the agent and its executor processes (not their jobs); with
        ``restart_after`` it comes back. Returns what was killed (see ``kill_random_executor``)."""
        return self._call(self._cluster().lose_agent(agent, restart_after), timeout=120)

    def mark_agent_unreachable(self, agent: int | str = 0) -> None:
        """Expire the master's ping timeout for a lost agent now."""
        cluster = self._cluster()
        self._sync(lambda: cluster.mark_agent_unreachable(agent))

    def restart_agent(self, agent: int | str = 0, downtime: float = 0.0) -> None:
        """Restart with checkpoint recovery: executors survive and must re-subscribe."""
        self._call(self._cluster().restart_agent(agent, downtime), timeout=120)

    def drop_subscription(self, framework_id: str | None = None) -> list[str]:
        """Close subscription streams at the TCP level (no terminating chunk)."""
        cluster = self._cluster()
        return self._sync(lambda: cluster.drop_subscription(framework_id))

    def restart_master(self, downtime: float = 0.0) -> None:
        """Master process restart: streams and agent links drop; the registry (by default)
        gives the new master its agents as recovered; they re-register after their ping
        timeout (at once with ``fast_agent_reregistration``, or through ZooKeeper)."""
        self._call(self._cluster().restart_master(downtime), timeout=120)

    # -- introspection -----------------------------------------------------------------------------
    def state(self) -> JsonDict:
        cluster = self._cluster()
        return self._sync(cluster.state)

    def counters(self) -> JsonDict:
        counters: JsonDict = self.state()["counters"]
        return counters

    def tasks(self) -> dict[str, str]:
        """Task id -> latest state over all frameworks (live and completed)."""
        out: dict[str, str] = {}
        for framework in self.state()["frameworks"].values():
            out.update(framework["completed_tasks"])
            out.update(framework["unreachable_tasks"])
            out.update(framework["tasks"])
        return out

    def framework_counters(self, framework_id: str | None = None) -> JsonDict:
        """Per framework id (or of one entry): see ``traffic``."""
        cluster = self._cluster()
        counters = self._sync(cluster.framework_counters)
        if framework_id is not None:
            return dict(counters.get(framework_id, {}))
        return counters

    def warnings(self) -> JsonDict:
        """The master's executor-resource warnings: counts and the latest texts."""
        cluster = self._cluster()
        return self._sync(cluster.warnings)

    def executor_pids(self) -> dict[str, int]:
        pids: dict[str, int] = self.state()["executor_pids"]
        return pids

    def fetch_stats(self) -> JsonDict:
        stats: JsonDict = self.state()["fetch"]
        return stats

    def wait_for(
        self, predicate: Callable[[JsonDict], bool], timeout: float = 10.0, interval: float = 0.02
    ) -> JsonDict:
        """Poll ``state()`` until ``predicate(state)`` holds; return that state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError("condition not reached; last state: " + repr(state)[:2000])
            time.sleep(interval)
