"""The local backend: this machine as one emulated Mesos agent.

It offers its free cores, memory, disk and GPUs (up to maxCores/maxMemory/maxDisk)
and runs tasks with the executor's task runner, the same code a Mesos agent uses.
Like a Mesos allocator that reacts at once, it re-offers resources the moment a
launch leaves some unused or a task ends, so there is no allocation delay.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..deploy.resources import SharedDirectoryService, ram_scratch_dir, scratch_store
from ..executor import function_task
from ..executor.protocol import log_path, result_id, ships
from ..executor.runner import (
    ProcessSpec,
    TaskExit,
    TaskRunner,
    WarmStart,
    build_environment,
)
from ..executor.shipping import (
    DirectorySource,
    NodeResources,
    Prepared,
    ResourceError,
    runner_argv,
    write_refused,
)
from ..scheduler.backend import Backend, BackendContext, Post
from ..scheduler.contract import BatchJobExitReason
from ..scheduler.core.events import (
    Action,
    Decline,
    Event,
    KillTask,
    Launch,
    NodeLoad,
    NodeStats,
    Offer,
    OffersReceived,
    Reconcile,
    Revive,
    Suppress,
    TaskStatus,
)
from ..scheduler.core.resources import MIB, Resources, offered_cpus_to_milli
from ..scheduler.core.scheduler import CoreConfig
from ..scheduler.core.states import TaskState
from ..scheduler.options import (
    CommonOptions,
    _cpu_count,
    machine_disk,
    machine_memory,
    opt,
    parse_cores,
    parse_count,
    parse_path,
    parse_size,
)

AGENT_ID = "local"


def detect_gpus() -> int:
    """NVIDIA GPUs visible as /dev/nvidiaN."""
    return len([p for p in glob.glob("/dev/nvidia*") if re.fullmatch(r"/dev/nvidia\d+", p)])


@dataclass(frozen=True)
class LocalOptions(CommonOptions):
    """Options of the local backend; limits default to the machine's size."""

    max_cores: float | None = opt(
        "maxCores", parse=parse_cores, default_factory=_cpu_count, metavar="CORES",
        help="cores this machine offers to jobs (default: all)")
    max_memory: int | None = opt(
        "maxMemory", parse=parse_size, default_factory=machine_memory, metavar="SIZE",
        help="memory this machine offers to jobs, e.g. 4G (default: all)")
    max_disk: int | None = opt(
        "maxDisk", parse=parse_size, default_factory=machine_disk, metavar="SIZE",
        help="disk this machine offers to jobs, e.g. 10G (default: free space here)")
    max_gpus: int | None = opt(
        "maxGpus", parse=parse_count, default_factory=detect_gpus, metavar="N",
        help="GPUs this machine offers to jobs (default: the /dev/nvidiaN devices)")
    resource_dir: str | None = opt(
        "resourceDir", parse=parse_path, metavar="DIR",
        help="where shipped code and data (functions, the user's script) are kept while "
             "the batch system runs (default: a scratch directory in /dev/shm)")


def exit_status(ex: TaskExit, now: float) -> TaskStatus:
    """The core's view of how a task's process ended."""
    reason = None
    if ex.launch_error is not None:
        return TaskStatus(ex.task_id, TaskState.ERROR, now, message=ex.launch_error,
                          agent_id=AGENT_ID)
    if ex.killed:
        state = TaskState.KILLED
    elif ex.walltime_exceeded:
        state, reason = TaskState.FAILED, BatchJobExitReason.MAXJOBDURATION
    else:
        state = TaskState.FINISHED if ex.exit_code == 0 else TaskState.FAILED
    return TaskStatus(ex.task_id, state, now, exit_code=ex.exit_code, wall_time=ex.wall_time,
                      agent_id=AGENT_ID, exit_reason=reason)


class LocalBackend(Backend):
    name = "local"
    options_class = LocalOptions
    cleans_workers = True

    def __init__(self, options: LocalOptions, post: Post, context: BackendContext) -> None:
        super().__init__(options, post, context)
        assert options.max_cores is not None
        assert options.max_memory is not None and options.max_disk is not None
        self.capacity = Resources(
            cpus=offered_cpus_to_milli(options.max_cores), mem=options.max_memory // MIB,
            disk=options.max_disk // MIB, gpus=options.max_gpus or 0,
        )
        self.hostname = socket.gethostname()
        self._lock = threading.Lock()  # guards the resource accounting below
        self._free = self.capacity  # neither running nor offered
        self._offered: dict[str, Resources] = {}
        self._running: dict[str, tuple[Resources, tuple[int, ...]]] = {}  # task -> (res, gpus)
        self._free_gpus = list(range(self.capacity.gpus))
        self._suppressed = False
        self._withheld = False  # declined: no offers until a revive or a task ends
        self._offer_ids = itertools.count(1)
        self._base_env = dict(os.environ)
        self._work: str | None = None
        # Two reapers: while one waits for the child it started to exec (~0.2 ms), the
        # other handles the next task's end; on 2 cores that is +25% at 1-core jobs.
        self.runner = TaskRunner(self._on_exit, kill_grace=options.kill_grace_period,
                                 reapers=2)
        self._service: SharedDirectoryService | None = None
        self._service_lock = threading.Lock()
        atexit.register(self._atexit)

    def resource_service(self) -> SharedDirectoryService:
        """Shipped code stays on this machine: tasks read the store's directory."""
        with self._service_lock:
            if self._service is None:
                o = self.options
                base = o.resource_dir or ram_scratch_dir()
                if base is not None:
                    os.makedirs(base, exist_ok=True)
                store = scratch_store(o.max_resource_size, base)
                self._service = SharedDirectoryService(store)
                self._source = DirectorySource(store.root)
                self._resources = NodeResources(os.path.join(store.root, "cache"))
            return self._service

    def core_config(self) -> CoreConfig:
        # This allocator re-offers at once, so hold offers for ever and never revive
        # on free; a decline only happens for an ignored node.
        return CoreConfig(offer_hold_seconds=float("inf"), revive_on_free=False)

    def limits(self):  # type: ignore[no-untyped-def]
        lim = super().limits()
        from dataclasses import replace  # noqa: PLC0415

        return replace(lim, gpus=self.capacity.gpus, gpus_option="maxGpus")

    def start(self) -> list[Event]:
        with self._lock:
            return self._offer_free()

    # ------------------------------------------------------------------ actions
    def execute(self, actions: Sequence[Action]) -> list[Event]:
        events: list[Event] = []
        now = time.time()
        for action in actions:
            if isinstance(action, Launch):
                events.extend(self._launch(action, now))
            elif isinstance(action, KillTask):
                self.runner.kill(action.task_id)
            elif isinstance(action, Decline):
                with self._lock:
                    for oid in action.offer_ids:
                        self._free = self._free + self._offered.pop(oid, Resources())
                    self._withheld = True
            elif isinstance(action, Suppress):
                with self._lock:
                    self._suppressed = True
            elif isinstance(action, Revive):
                with self._lock:
                    self._suppressed = False
                    self._withheld = False
                    events.extend(self._offer_free())
            elif isinstance(action, Reconcile):
                events.extend(self._reconcile(action, now))
        return events

    def _launch(self, action: Launch, now: float) -> list[Event]:
        events: list[Event] = []
        with self._lock:
            for oid in action.offer_ids:
                self._free = self._free + self._offered.pop(oid, Resources())
        for task in action.tasks:
            job = task.job
            res = job.resources
            with self._lock:
                if not res.fits_in(self._free):  # a stale offer: the core will requeue
                    events.append(TaskStatus(task.task_id, TaskState.LOST, now,
                                             message="offer no longer valid",
                                             never_started=True))
                    continue
                self._free = self._free - res
                gpus = tuple(self._free_gpus[:res.gpus])
                del self._free_gpus[:res.gpus]
            job_env = dict(job.job_environment or {})
            if gpus and "CUDA_VISIBLE_DEVICES" not in job_env:
                job_env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
            job_env.setdefault("MESOBATCH_JOB_ID", str(job.job_id))
            job_env.setdefault("MESOBATCH_WORK_DIR", self._work_dir())
            with self._lock:
                self._running[task.task_id] = (res, gpus)
            try:
                prepared = self._prepare(task.task_id, {**job.environment, **job_env})
            except ResourceError as e:
                with self._lock:
                    self._release(task.task_id)
                events.append(TaskStatus(task.task_id, TaskState.FAILED, now, message=str(e),
                                         agent_id=AGENT_ID))
                continue
            warm = None
            if prepared is not None:
                job_env.update(prepared.env)
                if function_task.FUNCTION_FILE_ENV in prepared.env:
                    job_env[function_task.SYS_PATH_ENV] = _sys_path()
                    warm = WarmStart("function", (*runner_argv(), "--forkserver"),
                                     self._base_env)
            log = log_path(self.context.log_dir, job.job_id, job.name)
            spec = ProcessSpec(
                task_id=task.task_id, command=job.command,
                env=build_environment(self._base_env, job.environment, job_env, job.cores),
                stdout=log, stderr=log, walltime=job.walltime, warm=warm,
            )
            # Started in flush(), once the batch system's lock is released (or by the
            # runner's spawner thread). A task that cannot start ends in ERROR.
            self.runner.submit(spec)
            events.append(TaskStatus(task.task_id, TaskState.RUNNING, now,
                                     agent_id=AGENT_ID))
        with self._lock:
            events.extend(self._offer_free())
        return events

    def _prepare(self, task_id: str, env: Mapping[str, str]) -> Prepared | None:
        """A job that names shipped resources gets them checked and handed over; one
        whose resource is refused fails, and a function job learns why."""
        if not ships(env):
            return None
        self.resource_service()
        try:
            return self._resources.prepare(env, self._source,
                                           os.path.join(self._source.root, "work"), task_id)
        except ResourceError as e:
            rid = None
            with contextlib.suppress(ValueError):
                rid = result_id(env)
            if rid is not None:
                write_refused(self._source.result_path(rid), str(e))
            raise

    def _reconcile(self, action: Reconcile, now: float) -> list[Event]:
        running = set(self.runner.running())
        return [TaskStatus(task_id, TaskState.RUNNING if task_id in running
                           else TaskState.UNKNOWN, now)
                for task_id, _ in action.tasks]

    # ------------------------------------------------------------------ resources
    def _release(self, task_id: str) -> None:
        res, gpus = self._running.pop(task_id, (Resources(), ()))
        self._free = self._free + res
        self._free_gpus.extend(gpus)

    def _offer_free(self) -> list[Event]:
        """Offer whatever is free (lock held)."""
        if self._suppressed or self._withheld or self._free.cpus <= 0:
            return []
        oid = f"local-{next(self._offer_ids)}"
        self._offered[oid] = self._free
        offer = Offer(oid, AGENT_ID, self.hostname, "127.0.0.1", self._free)
        self._free = Resources()
        return [OffersReceived((offer,), time.time())]

    # ------------------------------------------------------------------ runner thread
    def _on_exit(self, exits: list[TaskExit]) -> None:
        now = time.time()
        with self._lock:
            for ex in exits:
                self._release(ex.task_id)
            self._withheld = False
            offers = self._offer_free()
        # The freed resources first: post() starts the next job from this thread
        # (flush) before the bookkeeping, as from one task's end to the next one's
        # start is the path that bounds throughput when every slot is busy.
        self.post(*offers)
        self.post(*(exit_status(ex, now) for ex in exits))

    def flush(self) -> None:
        self.runner.start_submitted()

    def poll_nodes(self) -> list[Event]:
        import psutil  # noqa: PLC0415

        mem = psutil.virtual_memory()
        with self._lock:
            n = len(self._running)
        load = NodeLoad(
            cpu_load=min(1.0, os.getloadavg()[0] / max(1, os.cpu_count() or 1)),
            mem_used=int(mem.total - mem.available), cores_total=self.capacity.cores,
            mem_total=int(mem.total), tasks_running=n,
        )
        return [NodeStats(AGENT_ID, self.hostname, "127.0.0.1", load, time.time())]

    def _work_dir(self) -> str:
        """The workflow's scratch directory on this node (MESOBATCH_WORK_DIR), made on
        first use and removed at shutdown, as the Mesos executor does at SHUTDOWN."""
        if self._work is None:
            self._work = tempfile.mkdtemp(prefix=f"mesobatch-{self.context.workflow_id}-work-")
        return self._work

    def shutdown(self) -> None:
        self.runner.close()
        atexit.unregister(self._atexit)
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
        with self._service_lock:
            if self._service is not None:
                self._service.close()

    def _atexit(self) -> None:
        self.runner.close(grace=0.5, timeout=2.0)
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
        if self._service is not None:
            self._service.close()


def _sys_path() -> str:
    """This process's import path, for function tasks on this machine: what the caller
    can import, the call can (as multiprocessing's spawn does)."""
    return os.pathsep.join(p or os.getcwd() for p in sys.path)
