"""The public batch-system object: Toil's camelCase API over the pure core and a backend.

Thread-safe. Every state change goes through one lock: an event is handed to the
core, and the actions it returns are carried out by the backend in order, before the
lock is released, so a kill can never overtake the launch it cancels.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import itertools
import logging
import math
import operator
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..executor.protocol import log_path
from .backend import Backend, BackendContext
from .contract import (
    BatchJobExitReason,
    ExecutorInfo,
    JobDescription,
    NodeInfo,
    UpdatedBatchJobInfo,
)
from .core.events import (
    Action,
    Event,
    IgnoreNode,
    JobsSubmitted,
    KillRequested,
    NodesFiltered,
    OffersReceived,
    Report,
    Tick,
    UnignoreNode,
)
from .core.explain import explain
from .core.jobs import JobSpec, build_spec, check_limits, check_variable
from .core.resources import MIB
from .core.scheduler import SchedulerCore
from .job_logs import read_log
from .options import (
    STATUS_OFF,
    CommonOptions,
    add_arguments,
    default_config_path,
    load_config_file,
    resolve,
)

if TYPE_CHECKING:
    from ..deploy.resources import ResourceService
    from .status.recorder import Recorder
    from .status.server import StatusServer
    from .status.snapshot import LiveView

log = logging.getLogger(__name__)

#: A node filter: called with a node's ExecutorInfo, true to let new jobs go there.
NodeFilter = Callable[[ExecutorInfo], bool]
_NodeView = ExecutorInfo  # the class attribute ExecutorInfo hides the name in the class


#: a wait longer than this is a wait without end (Condition.wait refuses huge timeouts)
_LONGEST_WAIT = 365 * 86400.0


def _job_ids(job_ids: Any) -> tuple[int, ...]:
    """Job ids from an iterable of whole numbers; a string, a float or a lone number is
    a mistake (a string "82" would be read as jobs 8 and 2)."""
    if isinstance(job_ids, str | bytes) or not isinstance(job_ids, Iterable):
        raise ValueError(f"invalid job ids {job_ids!r}: expected a list of job ids (ints)")
    ids = []
    for j in job_ids:
        if isinstance(j, bool):
            raise ValueError(f"invalid job id {j!r}: expected an int")
        try:
            ids.append(operator.index(j))
        except TypeError:
            raise ValueError(f"invalid job id {j!r}: expected an int") from None
    return tuple(ids)


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
    #: what nodeFilter callables are given (Toil's MesosBatchSystem.ExecutorInfo)
    ExecutorInfo: ClassVar[type[ExecutorInfo]] = ExecutorInfo

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
        self._kill_waiters = 0  # callers waiting on _changed (notified only if any)
        self._tick_stop = threading.Condition(self._lock)
        self._results: deque[UpdatedBatchJobInfo] = deque()
        self._unconsumed: set[int] = set()  # reported, not yet returned by getUpdatedBatchJob
        self._ids = itertools.count(1)
        self._env: Mapping[str, str] = MappingProxyType({})
        self._closed = False
        self._issued_any = False  # setUserScript must come before
        #: what setUserScript was given (Toil's attribute), None before
        self.userScript: Any = None
        self._node_filter: list[NodeFilter] = []
        self._recorder: Recorder | None = None
        self._status_server: StatusServer | None = None
        backend: Backend | None = None
        try:
            self._open_status(options)
            backend = self._backend = cls(options, self._post, BackendContext(
                self.workflow_id, log_dir, config, self.status_url))
            self._core = SchedulerCore(self._backend.core_config())
            self._limits = self._backend.limits()
            with self._lock:
                self._dispatch(self._backend.start())
            self._start_status()
            self._ticker = threading.Thread(target=self._tick_loop, name="mesobatch-ticker",
                                            daemon=True)
            self._ticker.start()
        except BaseException:
            # nothing of a batch system that never was may stay behind
            self._closed = True
            if backend is not None:
                try:
                    backend.shutdown()
                except Exception:
                    log.exception("cleaning up after a failed start")
            self._close_status()
            if self._own_log_dir:
                shutil.rmtree(self.log_dir, ignore_errors=True)
            raise
        # A caller that exits without shutdown() leaves no job running and no scratch
        # directory behind.
        atexit.register(self._at_exit)

    # ------------------------------------------------------------------ status page
    @property
    def status_url(self) -> str | None:
        """The status page's address (--statusPort), or None when none is served."""
        return self._status_server.url if self._status_server is not None else None

    def _open_status(self, options: CommonOptions) -> None:
        """Bind the status page's port (it serves once the backend has started)."""
        if options.status_port is None or options.status_port == STATUS_OFF:
            return
        from .status.live import Explained  # noqa: PLC0415
        from .status.recorder import Recorder  # noqa: PLC0415
        from .status.server import StatusServer  # noqa: PLC0415

        self._status_polled_at = -math.inf
        self._explained = Explained()
        self._recorder = Recorder(
            backend=self.backend_class.name, workflow_id=self.workflow_id,
            live=self._live_status,
            log_path=lambda job_id, name: log_path(self.log_dir, job_id, name))
        self._status_server = StatusServer(self._recorder, options.status_address,
                                           options.status_port)

    def _start_status(self) -> None:
        if self._recorder is not None and self._status_server is not None:
            self._recorder.start()
            self._status_server.start()

    def _live_status(self) -> LiveView:
        from .status.live import NODE_POLL_SECONDS, live_view  # noqa: PLC0415

        # the node's load, for the page: read off our lock, and not at every refresh
        # (psutil's look at /proc costs more than the rest of a snapshot)
        now = time.monotonic()
        stats = None
        if now - self._status_polled_at >= NODE_POLL_SECONDS:
            self._status_polled_at = now
            stats = self._backend.poll_nodes()
        with self._lock:
            if stats and not self._closed:
                self._dispatch(stats)
            return live_view(self._core, time.time(), self._backend.status_note(),
                             self._backend.fatal_error(), self._explained)

    def _close_status(self) -> None:
        if self._status_server is not None:
            self._status_server.close()
        if self._recorder is not None:
            self._recorder.close()

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
            self.userScript = userScript

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
        """Set a variable for jobs issued from now on; None reads it from os.environ.
        Raises ValueError for a name or value no environment can hold."""
        if value is None and isinstance(name, str):
            try:
                value = os.environ[name]
            except KeyError:
                raise RuntimeError(f"{name} does not exist in current environment") from None
        check_variable(name, value)
        with self._lock:
            env = dict(self._env)
            env[name] = value
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
        confirm that running ones ended. Raises ValueError for anything but job ids."""
        ids = _job_ids(jobIDs)
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
                self._kill_waiters += 1
                try:
                    self._changed.wait(left)
                finally:
                    self._kill_waiters -= 1

    def kill_now(self) -> None:
        """Skip the kill grace period: jobs being killed, and any killed from now on, get
        SIGKILL at once where the backend can do that (the local one; elsewhere kills
        keep their grace). For a caller that gives up waiting (a second Ctrl-C)."""
        with self._lock:
            self._backend.kill_now()

    def getIssuedBatchJobIDs(self) -> list[int]:
        with self._lock, self._results_lock:
            return self._core.issued() + list(self._unconsumed)

    def getRunningBatchJobIDs(self) -> dict[int, float]:
        with self._lock:
            return self._core.running(time.time())

    def getUpdatedBatchJob(self, maxWait: float | None) -> UpdatedBatchJobInfo | None:
        """The next finished job (each exactly once), waiting at most maxWait seconds."""
        if maxWait is not None and (isinstance(maxWait, bool) or not isinstance(
                maxWait, (int, float)) or math.isnan(maxWait)):
            raise ValueError(f"invalid maxWait {maxWait!r}: expected a number of seconds "
                             "or None")
        wait = None if maxWait is None else min(max(0.0, maxWait), _LONGEST_WAIT)
        deadline: float | None = None  # read from the clock only if we must wait
        with self._results_lock:
            while not self._results:
                left = None
                if wait is not None:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + wait
                    left = deadline - now
                if (left is not None and left <= 0) or self._closed:
                    return None
                self._results_ready.wait(left)
            info = self._results.popleft()
            self._unconsumed.discard(info.jobID)
            return info

    def getJobLog(self, jobID: int, lastLines: int | None = None) -> str | None:
        """Job ``jobID``'s output (stdout and stderr as written) from the log directory,
        its last ``lastLines`` lines if given; None while there is none: on the local
        backend and batch queues the log grows as the job runs; on Mesos it arrives from
        the agent with the job's result (up to --mesosMaxLogSize, the tail kept). Raises
        ValueError for anything but a job id."""
        if isinstance(jobID, bool) or not isinstance(jobID, int) or jobID < 1:
            raise ValueError(f"invalid job id {jobID!r}: expected a job id (an int >= 1)")
        if lastLines is not None and (isinstance(lastLines, bool) or not isinstance(
                lastLines, int) or lastLines < 0):
            raise ValueError(f"invalid lastLines {lastLines!r}: expected an int >= 0")
        return read_log(self.log_dir, jobID, lastLines)

    def fatal_error(self) -> str | None:
        """Why the backend can never run a job again (e.g. Mesos refused our credentials),
        or None. Queued jobs stay queued; a caller may stop waiting for them."""
        with self._lock:
            return self._backend.fatal_error()

    def getSchedulingStatusMessage(self) -> str | None:
        with self._lock:
            return explain(self._core, time.time(), self._backend.status_note())

    # ------------------------------------------------------------------ nodes
    def getNodes(self, preemptible: bool | None = None, timeout: float | None = 600
                 ) -> dict[str, NodeInfo]:
        """Address -> NodeInfo of the nodes seen in the last ``timeout`` seconds (None:
        ever) and not lost; preemptible ones only, or others only, if asked. A node the
        nodeFilter rejects is listed with ``filtered=True``."""
        infos = self._backend.node_infos(preemptible, timeout)  # may run a command
        if infos is not None:  # the cluster's own nodes (a batch queue)
            now = time.time()
            filters = list(self._node_filter)
            return {address: info if self._node_allowed(
                        ExecutorInfo(address, address, info, now), filters)
                    else info._replace(filtered=True) for address, info in infos.items()}
        with self._lock:
            self._dispatch(self._backend.poll_nodes())
            entries = [(address, info, ExecutorInfo(address, node.agent_id, info,
                                                    node.last_seen))
                       for address, info, node in self._core.nodes.node_entries(
                           preemptible, timeout, time.time())]
        filters = list(self._node_filter)  # the user's code runs without our lock
        return {address: info if self._node_allowed(executor, filters)
                else info._replace(filtered=True) for address, info, executor in entries}

    @property
    def nodeFilter(self) -> list[NodeFilter]:
        """Callables that restrict which nodes get new jobs (Toil's attribute): each is
        given a node's ExecutorInfo, and a node gets new jobs only while every one of
        them returns true (an exception counts as false). Offers of other nodes are
        declined, running jobs there go on, and getNodes flags those nodes
        (``filtered``).

        The callables run in this process, in the thread that receives the offers
        (or that calls getNodes or sets this attribute), never under the batch system's
        lock: they may call back into it. A node is asked again at each of its offers;
        assign a new list (or use ``nodeFiltering``) to have every known node asked at
        once."""
        return self._node_filter

    @nodeFilter.setter
    def nodeFilter(self, filters: Iterable[NodeFilter] | None) -> None:
        self._node_filter = list(filters or ())
        self._judge_known_nodes()

    @contextlib.contextmanager
    def nodeFiltering(self, nodeFilter: NodeFilter | None) -> Iterator[None]:
        """Within the block, only nodes ``nodeFilter`` accepts get new jobs (Toil's
        autoscaler uses this while it picks nodes to terminate); None: no filter."""
        before = self._node_filter
        self.nodeFilter = [nodeFilter] if nodeFilter is not None else []
        try:
            yield
        finally:
            self.nodeFilter = before

    @staticmethod
    def _node_allowed(executor: _NodeView, filters: Sequence[NodeFilter]) -> bool:
        for node_filter in filters:
            try:
                if not node_filter(executor):
                    return False
            except Exception as e:
                log.warning("nodeFilter %r failed on node %s (%s); no new jobs go there",
                            node_filter, executor.nodeAddress, e)
                return False
        return True

    def _judge_known_nodes(self) -> None:
        """Ask the node filter about every node known (after it changed)."""
        with self._lock:
            if self._closed:
                return
            now = time.time()
            known = [ExecutorInfo(address, node.agent_id, info, node.last_seen)
                     for address, info, node in self._core.nodes.node_entries(None, None, now)]
        filters = list(self._node_filter)
        verdicts = tuple((e.agentId, self._node_allowed(e, filters)) for e in known)
        with self._lock:
            if not self._closed:
                self._dispatch([NodesFiltered(verdicts, time.time())])

    def _judge_offers(self, events: Sequence[Event], filters: Sequence[NodeFilter]
                      ) -> NodesFiltered:
        """The node filter's verdicts on the nodes that make these offers."""
        offers = {o.agent_id: o for e in events if isinstance(e, OffersReceived)
                  for o in e.offers}
        now = time.time()
        with self._lock:
            nodes = self._core.nodes.nodes
            known = {a: self._core.nodes.info(nodes[a]) for a in offers if a in nodes}
        verdicts = []
        for agent_id, offer in offers.items():
            info = known.get(agent_id)
            if info is None:  # first seen: what its offer tells
                info = NodeInfo(0.0, 0.0, offer.resources.cores, offer.resources.mem * MIB,
                                0.0, 0, 0)
            executor = ExecutorInfo(offer.ip or offer.hostname, agent_id, info, now)
            verdicts.append((agent_id, self._node_allowed(executor, filters)))
        return NodesFiltered(tuple(verdicts), now)

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
        atexit.unregister(self._at_exit)
        self._backend.shutdown()
        self._ticker.join(timeout=5)
        self._close_status()
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def _at_exit(self) -> None:
        try:
            self.shutdown()
        except Exception:
            log.exception("shutting down %s at exit", type(self).__name__)

    def __enter__(self) -> BatchSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this batch system has been shut down")

    def _post(self, *events: Event) -> None:
        """Events from the backend's own threads (never called with our lock held)."""
        if self._node_filter:
            filters = list(self._node_filter)
            if any(isinstance(e, OffersReceived) for e in events):
                events = (self._judge_offers(events, filters), *events)
        with self._lock:
            self._dispatch(events)
        self._backend.flush()

    def _dispatch(self, events: Sequence[Event]) -> None:
        """Feed events to the core; carry out its actions (lock held)."""
        pending = deque(events)
        recorder = self._recorder
        handle = self._core.handle
        while pending:
            event = pending.popleft()
            actions = handle(event)
            if recorder is not None:
                recorder.observe(event, actions)
            if not actions:
                continue
            todo: list[Action] = actions
            if Report in map(type, actions):
                todo = []
                reports = []
                for action in actions:
                    if isinstance(action, Report):
                        reports.append(action.info)
                        if (action.info.exitReason == BatchJobExitReason.ERROR
                                and action.message):
                            log.warning("job %d could not be started: %s",
                                        action.info.jobID, action.message)
                    else:
                        todo.append(action)
                # published before the backend acts on what came with them
                with self._results_lock:
                    self._results.extend(reports)
                    self._unconsumed.update(r.jobID for r in reports)
                    self._results_ready.notify_all()
            if todo and not self._closed:
                pending.extend(self._backend.execute(todo))
        if self._kill_waiters:
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
