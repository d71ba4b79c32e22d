"""The public batch-system object: Toil's camelCase API over the pure core and a backend.

Thread-safe. Every state change goes through one lock: an event is handed to the
core, and the actions it returns are carried out by the backend in order, before the
lock is released, so a kill can never overtake the launch it cancels.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from .backend import Backend, BackendContext
from .contract import JobDescription, NodeInfo, UpdatedBatchJobInfo
from .core.events import (
    Action,
    Event,
    IgnoreNode,
    JobsSubmitted,
    KillRequested,
    Report,
    Tick,
    UnignoreNode,
)
from .core.explain import explain
from .core.jobs import JobSpec, build_spec, check_limits
from .core.resources import MIB
from .core.scheduler import SchedulerCore
from .options import CommonOptions, add_arguments, default_config_path, load_config_file, resolve

if TYPE_CHECKING:
    from ..deploy.resources import ResourceService

log = logging.getLogger(__name__)


def _scratch_dir() -> str | None:
    """Where logs that live only as long as the batch system go: RAM-backed /dev/shm
    when there is one (creating a file there costs microseconds; on a busy ext4 it can
    cost half a millisecond, on the launch path), else the usual temporary directory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


class NodeType(NamedTuple):
    """A kind of node seen in the cluster (for autoscalers)."""

    cores: float
    memory: int  #: bytes
    disk: int  #: bytes
    gpus: int
    preemptible: bool


class BatchSystem:
    """A batch system: issue jobs, collect each result exactly once, kill, shut down.

    Subclasses bind a backend (``batch_system_class("local")``); construct them with
    ``mesobatch.batch_system(name, **options)`` or, from Toil, as
    ``Cls(config=..., maxCores=..., maxMemory=..., maxDisk=...)``.
    """

    backend_class: ClassVar[type[Backend]]
    TICK_SECONDS: ClassVar[float] = 0.1

    def __init__(
        self,
        config: Any = None,
        maxCores: float | None = None,
        maxMemory: int | str | None = None,
        maxDisk: int | str | None = None,
        *,
        options: CommonOptions | None = None,
        config_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        cls = self.backend_class
        if options is None:
            path = config_file or default_config_path()
            arguments = {"maxCores": maxCores, "maxMemory": maxMemory, "maxDisk": maxDisk,
                         **kwargs}
            options = resolve(cls.options_class, arguments, backend=cls.name,
                              config=load_config_file(path), config_path=str(path),
                              toil_config=config)
        self.options = options
        self.config = config
        self.workflow_id = str(getattr(config, "workflowID", None) or uuid.uuid4().hex[:12])
        self._own_log_dir = options.log_dir is None
        log_dir = options.log_dir or tempfile.mkdtemp(
            prefix=f"mesobatch-{self.workflow_id}-",
            dir=os.getcwd() if cls.shared_log_dir else _scratch_dir())
        os.makedirs(log_dir, exist_ok=True)
        self.log_dir = log_dir
        self._lock = threading.Lock()
        # Results have a lock of their own, taken after self._lock when both are: a
        # caller waiting for results is never held up by scheduling work.
        self._results_lock = threading.Lock()
        self._results_ready = threading.Condition(self._results_lock)
        self._changed = threading.Condition(self._lock)
        self._tick_stop = threading.Condition(self._lock)
        self._results: deque[UpdatedBatchJobInfo] = deque()
        self._unconsumed: set[int] = set()  # reported, not yet returned by getUpdatedBatchJob
        self._ids = itertools.count(1)
        self._env: Mapping[str, str] = MappingProxyType({})
        self._closed = False
        self._issued_any = False  # setUserScript must come before
        self._backend = cls(options, self._post, BackendContext(self.workflow_id, log_dir,
                                                                config))
        self._core = SchedulerCore(self._backend.core_config())
        self._limits = self._backend.limits()
        with self._lock:
            self._dispatch(self._backend.start())
        self._ticker = threading.Thread(target=self._tick_loop, name="mesobatch-ticker",
                                        daemon=True)
        self._ticker.start()

    # ------------------------------------------------------------------ options
    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser | Any) -> None:
        """Add this backend's command-line options to an argparse parser."""
        add_arguments(cls.backend_class.options_class, parser)

    @classmethod
    def setOptions(cls, setOption: Callable[..., None]) -> None:
        """Toil's hook: copy each of this backend's parsed options into its Config."""
        from .options import option_fields  # noqa: PLC0415

        for dest, _ in option_fields(cls.backend_class.options_class):
            setOption(dest)

    @classmethod
    def supportsAutoDeployment(cls) -> bool:
        """Whether setUserScript works: the backend ships code to its nodes."""
        return callable(getattr(cls.backend_class, "resource_service", None))

    @classmethod
    def supportsWorkerCleanup(cls) -> bool:
        """Whether each node's per-workflow work directory goes after its last job."""
        return cls.backend_class.cleans_workers

    @classmethod
    def getWaitDuration(cls) -> int:
        """Seconds a caller should wait between polls of the issued jobs (Toil's leader)."""
        return 1

    @classmethod
    def getRescueBatchJobFrequency(cls) -> float:
        return 30.0

    def setUserScript(self, userScript: Any) -> None:
        """Ship the user's code to the nodes of every job issued from now on, where it
        goes on sys.path (PYTHONPATH): a module, a module name, a path (a .py file, a
        package directory or a directory of modules), or a Toil Resource. Zipped once,
        fetched once per node, removed with the workflow's work directory. Must come
        before the first job is issued."""
        from ..deploy.userscript import user_script_env  # noqa: PLC0415

        def check() -> None:
            if self._issued_any:
                raise RuntimeError("setUserScript must be called before the first job is "
                                   "issued")

        with self._lock:
            check()
        env = user_script_env(userScript, self.resource_service())
        with self._lock:
            check()
            self._env = MappingProxyType({**self._env, **env})

    def resource_service(self) -> ResourceService:
        """The backend's resource store and how its nodes fetch from it (made on first
        use); raises NotImplementedError for a backend that cannot ship code."""
        factory = getattr(self._backend, "resource_service", None)
        if factory is None:
            raise NotImplementedError(
                f"the {self.backend_class.name} backend cannot ship code to its nodes")
        service: ResourceService = factory()
        return service

    @property
    def is_shut_down(self) -> bool:
        return self._closed

    def setEnv(self, name: str, value: str | None = None) -> None:
        """Set a variable for jobs issued from now on; None reads it from os.environ."""
        if value is None:
            try:
                value = os.environ[name]
            except KeyError:
                raise RuntimeError(f"{name} does not exist in current environment") from None
        with self._lock:
            env = dict(self._env)
            env[name] = str(value)
            self._env = MappingProxyType(env)

    # ------------------------------------------------------------------ jobs
    def issueBatchJob(self, command: str, job_desc: Any = None,
                      job_environment: Mapping[str, str] | None = None) -> int:
        """Queue a job and return its id. Raises InsufficientSystemResources if it can
        never fit, ValueError if its description makes no sense."""
        return self.issue_many([(command, job_desc, job_environment)])[0]

    def validate_job(self, command: str, job_desc: Any = None,
                     job_environment: Mapping[str, str] | None = None) -> None:
        """Raise what issueBatchJob would raise for this job, without issuing it."""
        spec = build_spec(0, command, job_desc or JobDescription(command), self._env,
                          job_environment)
        check_limits(spec, self._limits)

    def issue_many(
        self, jobs: Iterable[tuple[str, Any, Mapping[str, str] | None]]
    ) -> list[int]:
        """Issue several jobs at once (one pass through the core); all or none."""
        specs: list[JobSpec] = []
        with self._lock:
            self._check_open()
            for command, desc, job_env in jobs:
                spec = build_spec(next(self._ids), command, desc or JobDescription(command),
                                  self._env, job_env)
                check_limits(spec, self._limits)
                specs.append(spec)
            self._dispatch([JobsSubmitted(tuple(specs), time.time())])
            self._issued_any = True
        return [s.job_id for s in specs]

    def killBatchJobs(self, jobIDs: Iterable[int]) -> None:
        """Kill jobs; after return they are not running and will never be reported.

        Waits (bounded by the kill grace period plus a margin) for the backend to
        confirm that running ones ended."""
        ids = tuple(int(j) for j in jobIDs)
        wanted = set(ids)
        deadline = time.monotonic() + self.options.kill_grace_period + 5.0
        with self._lock:
            self._dispatch([KillRequested(ids, time.time())])
            with self._results_lock:
                if wanted & self._unconsumed:
                    self._unconsumed -= wanted
                    self._results = deque(r for r in self._results if r.jobID not in wanted)
            while self._core.unconfirmed_kills(wanted):
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("kill of jobs %s not yet confirmed by the %s backend",
                                sorted(self._core.unconfirmed_kills(wanted)),
                                self.backend_class.name)
                    break
                self._changed.wait(left)

    def getIssuedBatchJobIDs(self) -> list[int]:
        with self._lock, self._results_lock:
            return self._core.issued() + list(self._unconsumed)

    def getRunningBatchJobIDs(self) -> dict[int, float]:
        with self._lock:
            return self._core.running(time.time())

    def getUpdatedBatchJob(self, maxWait: float | None) -> UpdatedBatchJobInfo | None:
        """The next finished job (each exactly once), waiting at most maxWait seconds."""
        deadline = None if maxWait is None else time.monotonic() + max(0.0, maxWait)
        with self._results_lock:
            while not self._results:
                left = None if deadline is None else deadline - time.monotonic()
                if (left is not None and left <= 0) or self._closed:
                    return None
                self._results_ready.wait(left)
            info = self._results.popleft()
            self._unconsumed.discard(info.jobID)
            return info

    def fatal_error(self) -> str | None:
        """Why the backend can never run a job again (e.g. Mesos refused our credentials),
        or None. Queued jobs stay queued; a caller may stop waiting for them."""
        with self._lock:
            return self._backend.fatal_error()

    def getSchedulingStatusMessage(self) -> str | None:
        with self._lock:
            return explain(self._core, time.time(), self._backend.status_note())

    # ------------------------------------------------------------------ nodes
    def getNodes(self, preemptible: bool | None = None, timeout: float = 600
                 ) -> dict[str, NodeInfo]:
        infos = self._backend.node_infos(preemptible, timeout)  # may run a command
        if infos is not None:
            return infos
        with self._lock:
            self._dispatch(self._backend.poll_nodes())
            return self._core.nodes.node_infos(preemptible, timeout, time.time())

    def nodeInUse(self, nodeIP: str) -> bool:
        with self._lock:
            in_use = self._backend.node_in_use(nodeIP)
            return self._core.nodes.in_use(nodeIP) if in_use is None else in_use

    def ignoreNode(self, nodeAddress: str) -> None:
        """No new jobs go to this node (hostname, IP or agent id); running ones finish."""
        with self._lock:
            self._backend.node_ignored(nodeAddress, True)
            self._dispatch([IgnoreNode(nodeAddress, time.time())])

    def unignoreNode(self, nodeAddress: str) -> None:
        with self._lock:
            self._backend.node_ignored(nodeAddress, False)
            self._dispatch([UnignoreNode(nodeAddress, time.time())])

    def nodeTypes(self) -> set[NodeType]:
        """The distinct node sizes seen so far (largest resources each offered at once)."""
        with self._lock:
            return {
                NodeType(n.largest_offer.cores, n.largest_offer.mem * MIB,
                         n.largest_offer.disk * MIB, n.largest_offer.gpus, n.preemptible)
                for n in self._core.nodes.nodes.values() if not n.lost
            }

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Kill every job, stop the backend; nothing this batch system started runs on."""
        with self._lock:
            if self._closed:
                return
            issued = tuple(self._core.jobs)
            self._dispatch([KillRequested(issued, time.time())])
            self._closed = True
            with self._results_lock:
                self._results_ready.notify_all()
            self._changed.notify_all()
            self._tick_stop.notify_all()
        self._backend.shutdown()
        self._ticker.join(timeout=5)
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> BatchSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this batch system has been shut down")

    def _post(self, *events: Event) -> None:
        """Events from the backend's own threads."""
        with self._lock:
            self._dispatch(events)
        self._backend.flush()

    def _dispatch(self, events: Sequence[Event]) -> None:
        """Feed events to the core; carry out its actions (lock held)."""
        pending = deque(events)
        while pending:
            actions = self._core.handle(pending.popleft())
            todo: list[Action] = []
            reports = []
            for action in actions:
                if isinstance(action, Report):
                    reports.append(action.info)
                else:
                    todo.append(action)
            if reports:  # published before the backend acts on what came with them
                with self._results_lock:
                    self._results.extend(reports)
                    self._unconsumed.update(r.jobID for r in reports)
                    self._results_ready.notify_all()
            if todo and not self._closed:
                pending.extend(self._backend.execute(todo))
        self._changed.notify_all()

    def _tick_loop(self) -> None:
        # Polls at a coarse interval rather than being woken by every event: timed
        # work (offer hold, revive retry, reconciliation) needs no finer resolution.
        with self._lock:
            while not self._closed:
                deadline = self._core.next_deadline()
                now = time.time()
                if deadline is not None and deadline <= now:
                    self._dispatch([Tick(now)])
                    continue
                wait = self.TICK_SECONDS if deadline is None else min(deadline - now,
                                                                       self.TICK_SECONDS)
                self._tick_stop.wait(wait)
