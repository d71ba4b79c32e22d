"""The local backend: this machine as one emulated Mesos agent.

It offers its free cores, memory, disk and GPUs (up to maxCores/maxMemory/maxDisk/
maxGpus) through the emulation base (emulated.py), and runs tasks with the executor's
task runner, started as on a Mesos agent (executor/task_start.py). What is its own:
which GPUs a task gets, preparing shipped code (on a thread of its own, never under
the batch system's lock), and the runner.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..deploy.resources import SharedDirectoryService, ram_scratch_dir, scratch_store
from ..executor.runner import ProcessSpec, TaskExit, TaskRunner
from ..executor.running_notice import RunningNotices
from ..executor.shipping import DirectorySource, NodeResources, Prepared, ResourceError
from ..executor.task_start import Ending, TaskRequest, outcome, prepare, process_spec
from ..scheduler.backend import BackendContext, Post
from ..scheduler.contract import BatchJobExitReason
from ..scheduler.core.events import Event, NodeLoad, NodeStats, TaskLaunch, TaskStatus
from ..scheduler.core.jobs import Limits
from ..scheduler.core.resources import MIB, Resources, offered_cpus_to_milli
from ..scheduler.core.states import TaskState
from ..scheduler.options import (
    CommonOptions,
    _cpu_count,
    enforce_memory_option,
    machine_disk,
    machine_memory,
    opt,
    parse_cores,
    parse_count,
    parse_limit_size,
    parse_path,
)
from .emulated import Capacity, EmulatedBackend, EmulatedNode

AGENT_ID = "local"

#: RUNNING is said of a task still running this long after its launch (seconds), as the
#: Mesos executor does: one ending sooner is told by its terminal status alone, which
#: spares the scheduling core an event per short job (getRunningBatchJobIDs lists a job
#: this much later)
RUNNING_DELAY = 0.1


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
        "maxMemory", parse=parse_limit_size, default_factory=machine_memory, metavar="SIZE",
        help="memory this machine offers to jobs, e.g. 4G (default: all)")
    max_disk: int | None = opt(
        "maxDisk", parse=parse_limit_size, default_factory=machine_disk, metavar="SIZE",
        help="disk this machine offers to jobs, e.g. 10G (default: free space here)")
    max_gpus: int | None = opt(
        "maxGpus", parse=parse_count, default_factory=detect_gpus, metavar="N",
        help="GPUs this machine offers to jobs (default: the /dev/nvidiaN devices)")
    enforce_memory: bool = enforce_memory_option()
    resource_dir: str | None = opt(
        "resourceDir", parse=parse_path, metavar="DIR",
        help="where shipped code and data (functions, the user's script) are kept while "
             "the batch system runs (default: a scratch directory in /dev/shm)")


_STATES = {
    Ending.FINISHED: TaskState.FINISHED,
    Ending.FAILED: TaskState.FAILED,
    Ending.KILLED: TaskState.KILLED,
    Ending.ERROR: TaskState.ERROR,
}


def exit_status(ex: TaskExit, now: float) -> TaskStatus:
    """The core's view of how a task's process ended."""
    out = outcome(ex)
    if out.ending is Ending.ERROR:
        return TaskStatus(ex.task_id, TaskState.ERROR, now, message=out.message,
                          agent_id=AGENT_ID)
    reason = None
    if out.walltime_exceeded:
        reason = BatchJobExitReason.MAXJOBDURATION
    elif out.memory_exceeded:
        reason = BatchJobExitReason.MEMLIMIT
    return TaskStatus(ex.task_id, _STATES[out.ending], now, exit_code=ex.exit_code,
                      wall_time=ex.wall_time, agent_id=AGENT_ID, message=out.message,
                      exit_reason=reason, peak_memory=ex.peak_memory, cpu_time=ex.cpu_time,
                      memory_at_most=ex.memory_at_most)


class LocalBackend(EmulatedBackend):
    """This machine as one emulated agent; tasks run in this process's task runner."""

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
        self._lock = threading.Lock()  # guards GPUs and tasks being prepared
        self._free_gpus = list(range(self.capacity.gpus))
        self._gpus: dict[str, tuple[int, ...]] = {}  # task id -> its GPUs
        self._preparing: set[str] = set()  # tasks whose shipped code is being prepared
        self._base_env = dict(os.environ)
        self._work: str | None = None
        # Two reapers: while one waits for the child it started to exec (~0.2 ms), the
        # other handles the next task's end; on 2 cores that is +25% at 1-core jobs.
        self.runner = TaskRunner(self._on_exit, kill_grace=options.kill_grace_period,
                                 reapers=2)
        # Launched tasks whose RUNNING was not said yet (leaf lock); _say_lock is held
        # while one is said, so that a task's end never overtakes its RUNNING.
        self._quiet_lock = threading.Lock()
        self._quiet: set[str] = set()
        self._say_lock = threading.Lock()
        self._notices = RunningNotices(self._say_running, RUNNING_DELAY)
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

    def limits(self) -> Limits:
        return replace(super().limits(), gpus=self.capacity.gpus, gpus_option="maxGpus")

    def emulated_nodes(self) -> Sequence[EmulatedNode]:
        return [EmulatedNode(AGENT_ID, self.hostname, "127.0.0.1", Capacity(self.capacity))]

    # ------------------------------------------------------------------ tasks
    def launch_tasks(self, node: EmulatedNode, tasks: Sequence[TaskLaunch]) -> list[Event]:
        work_dir = self._work_dir()
        with self._quiet_lock:
            self._quiet.update(task.task_id for task in tasks)
        for task in tasks:
            job = task.job
            node_env = None
            if job.resources.gpus:
                with self._lock:
                    gpus = self._gpus[task.task_id] = tuple(self._free_gpus[:job.resources.gpus])
                    del self._free_gpus[:job.resources.gpus]
                node_env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
            req = TaskRequest(task.task_id, job.job_id, job.name, job.command, job.cores,
                              job.walltime, job.environment, job.job_environment or {},
                              work_dir, memory_limit=job.memory
                              if self.options.enforce_memory else None)
            if req.ships():  # fetching and unpacking: not under the batch system's lock
                with self._lock:
                    self._preparing.add(task.task_id)
                threading.Thread(target=self._prepare_and_submit, args=(req, node_env),
                                 name=f"prepare-{task.task_id}", daemon=True).start()
            else:
                # Started in flush(), once the batch system's lock is released (or by
                # the runner's spawner thread). A task that cannot start ends in ERROR.
                self.runner.submit(self._spec(req, None, node_env))
            self._notices.started(task.task_id)
        return []

    def _say_running(self, task_id: str) -> None:
        """RUNNING for a task launched RUNNING_DELAY ago, unless it has ended."""
        with self._say_lock:
            with self._quiet_lock:
                if task_id not in self._quiet:
                    return
                self._quiet.discard(task_id)
            self.post(TaskStatus(task_id, TaskState.RUNNING, time.time(), agent_id=AGENT_ID))

    def _ended(self, task_ids: Sequence[str]) -> None:
        """These tasks end (their statuses follow): no RUNNING for them any more, and
        one being said goes first."""
        saying = False
        with self._quiet_lock:
            for task_id in task_ids:
                if task_id in self._quiet:
                    self._quiet.discard(task_id)
                else:
                    saying = True
        if saying:
            with self._say_lock:
                pass

    def _spec(self, req: TaskRequest, prepared: Prepared | None,
              node_env: dict[str, str] | None) -> ProcessSpec:
        return process_spec(req, base_env=self._base_env, log_dir=self.context.log_dir,
                            prepared=prepared, node_env=node_env,
                            function_sys_path=_sys_path() if prepared is not None else None)

    def _prepare_and_submit(self, req: TaskRequest, node_env: dict[str, str] | None) -> None:
        """Check and unpack the task's shipped code, then start it; a resource that is
        refused fails the task (a function job learns why), a kill meanwhile stops it."""
        self.resource_service()
        try:
            prepared = prepare(self._resources, req, self._source,
                               os.path.join(self._source.root, "work"))
        except ResourceError as e:
            with self._lock:
                if req.task_id not in self._preparing:
                    return  # killed meanwhile, and reported so
                self._preparing.discard(req.task_id)
                self._free_gpus_of(req.task_id)
            self._ended([req.task_id])
            self.tasks_ended([TaskStatus(req.task_id, TaskState.FAILED, time.time(),
                                         message=str(e), agent_id=AGENT_ID)])
            return
        spec = self._spec(req, prepared, node_env)
        with self._lock:  # a kill sees the task either here or in the runner
            if req.task_id not in self._preparing:
                return
            self._preparing.discard(req.task_id)
            self.runner.submit(spec)
        self.runner.start_submitted()

    def kill_task(self, task_id: str) -> list[Event]:
        with self._lock:
            if task_id in self._preparing:  # it never starts
                self._preparing.discard(task_id)
                self._free_gpus_of(task_id)
                with self._quiet_lock:  # (never _say_lock here: the batch system's is held)
                    self._quiet.discard(task_id)
                return [TaskStatus(task_id, TaskState.KILLED, time.time(), agent_id=AGENT_ID)]
        self.runner.kill(task_id)
        return []

    def kill_now(self) -> None:
        self.runner.hurry()

    def task_alive(self, task_id: str) -> bool:
        with self._lock:
            if task_id in self._preparing:
                return True
        return task_id in self.runner.running()

    def _free_gpus_of(self, task_id: str) -> None:
        """(lock held)"""
        self._free_gpus.extend(self._gpus.pop(task_id, ()))

    # ------------------------------------------------------------------ runner thread
    def _on_exit(self, exits: list[TaskExit]) -> None:
        self._ended([ex.task_id for ex in exits])
        now = time.time()
        if self._gpus:
            with self._lock:
                for ex in exits:
                    self._free_gpus_of(ex.task_id)
        self.tasks_ended([exit_status(ex, now) for ex in exits])

    def flush(self) -> None:
        self.runner.start_submitted()

    def poll_nodes(self) -> list[Event]:
        import psutil  # noqa: PLC0415

        mem = psutil.virtual_memory()
        load = NodeLoad(
            cpu_load=min(1.0, os.getloadavg()[0] / max(1, os.cpu_count() or 1)),
            mem_used=int(mem.total - mem.available), cores_total=self.capacity.cores,
            mem_total=int(mem.total), tasks_running=len(self.runner.running()),
        )
        return [NodeStats(AGENT_ID, self.hostname, "127.0.0.1", load, time.time())]

    def _work_dir(self) -> str:
        """The workflow's scratch directory on this node (MESOBATCH_WORK_DIR), made on
        first use and removed at shutdown, as the Mesos executor does at SHUTDOWN."""
        if self._work is None:
            self._work = tempfile.mkdtemp(prefix=f"mesobatch-{self.context.workflow_id}-work-")
        return self._work

    def shutdown(self) -> None:
        self._notices.close()
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
