"""Starting one task on a node, the same way wherever it runs: its variables, its
shipped resources, the process spec, and what its exit means.

The Mesos executor (on an agent) and the local backend (in the scheduler's process)
both start tasks through here; each keeps only what differs: where the task comes
from, when it may start, and how its end is reported.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import function_task
from .protocol import log_path, result_id, ships
from .runner import ProcessSpec, TaskExit, WarmStart, build_environment
from .shipping import (
    DirectorySource,
    HttpSource,
    NodeResources,
    Prepared,
    ResourceError,
    Source,
    runner_argv,
    write_refused,
)


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """One task to start on this node."""

    task_id: str
    job_id: int
    name: str
    command: str
    cores: float
    walltime: float | None = None
    #: setEnv values: below OMP_NUM_THREADS in the task's environment
    set_env: Mapping[str, str] | None = None
    #: the job's own variables: above everything but the node's own (see process_spec)
    job_env: Mapping[str, str] = field(default_factory=dict)
    #: the workflow's work directory on this node (MESOBATCH_WORK_DIR), if any
    work_dir: str | None = None
    #: bytes: kill the task once its processes use more (--enforceMemory)
    memory_limit: int | None = None

    def variables(self) -> dict[str, str]:
        """Every variable the caller gave the task (setEnv values and its own)."""
        return {**(self.set_env or {}), **self.job_env}

    def ships(self) -> bool:
        """Whether the task names shipped resources (then prepare() must come first:
        it may fetch and unpack, so not on a thread that must not block)."""
        return ships(self.job_env) or (self.set_env is not None and ships(self.set_env))


def prepare(resources: NodeResources, req: TaskRequest, source: Source | None,
            work_dir: str) -> Prepared:
    """Fetch and check the task's shipped resources. One that cannot be had, or whose
    hash does not match, raises ResourceError, after a function job's caller was told
    why its call never ran (the task must then not start)."""
    env = req.variables()
    try:
        return resources.prepare(env, source, work_dir, req.task_id)
    except (ResourceError, ValueError, OSError) as e:
        refuse(env, source, work_dir, req.task_id, str(e))
        if isinstance(e, ResourceError):
            raise
        raise ResourceError(str(e)) from e


def refuse(env: Mapping[str, str], source: Source | None, work_dir: str, task_id: str,
           message: str) -> None:
    """A function job's outcome saying its call never ran, where its caller looks."""
    with contextlib.suppress(ResourceError, ValueError, OSError):
        rid = result_id(env)
        if rid is not None and isinstance(source, DirectorySource):
            write_refused(source.result_path(rid), message)
        elif rid is not None and isinstance(source, HttpSource):
            path = os.path.join(work_dir, f"refused-{task_id}")
            write_refused(path, message)
            try:
                source.upload_result(rid, path)
            finally:
                os.unlink(path)


def process_spec(req: TaskRequest, *, base_env: Mapping[str, str], log_dir: str,
                 prepared: Prepared | None = None,
                 node_env: Mapping[str, str] | None = None,
                 function_sys_path: str | None = None) -> ProcessSpec:
    """What the runner starts for ``req``: its environment is ``base_env`` < setEnv
    values < OMP_NUM_THREADS < the job's own variables; the node's variables
    (``node_env``, e.g. CUDA_VISIBLE_DEVICES, and MESOBATCH_JOB_ID/MESOBATCH_WORK_DIR)
    only where the job did not set them; then what its shipped resources need. A
    function job runs warm from a fork server, and with ``function_sys_path`` imports
    what its caller can (a caller on this machine). Output goes to the job's log file
    in ``log_dir``."""
    job_env = dict(req.job_env)
    for name, value in (node_env or {}).items():
        job_env.setdefault(name, value)
    job_env.setdefault("MESOBATCH_JOB_ID", str(req.job_id))
    if req.work_dir:
        job_env.setdefault("MESOBATCH_WORK_DIR", req.work_dir)
    warm = None
    if prepared is not None:
        job_env.update(prepared.env)
        if function_task.FUNCTION_FILE_ENV in prepared.env:
            if function_sys_path is not None:
                job_env[function_task.SYS_PATH_ENV] = function_sys_path
            warm = WarmStart("function", (*runner_argv(), "--forkserver"), base_env)
    log = log_path(log_dir, req.job_id, req.name)
    return ProcessSpec(
        task_id=req.task_id, command=req.command,
        env=build_environment(base_env, req.set_env, job_env, req.cores),
        stdout=log, stderr=log, walltime=req.walltime, warm=warm,
        memory_limit=req.memory_limit,
    )


class Ending(enum.Enum):
    """How a task ended; the values are the Mesos state names the executor sends."""

    FINISHED = "TASK_FINISHED"  #: exit status 0
    FAILED = "TASK_FAILED"  #: a non-zero exit status, or past its wall time
    KILLED = "TASK_KILLED"  #: killed on request (or at shutdown)
    ERROR = "TASK_ERROR"  #: never started


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a task's exit means, for whoever reports it."""

    ending: Ending
    message: str = ""
    walltime_exceeded: bool = False
    memory_exceeded: bool = False


def outcome(ex: TaskExit) -> Outcome:
    """The meaning of a task's exit: killed on request, past its wall time or over its
    memory (failures whatever the status), or by its exit status; ERROR if it never
    started."""
    if ex.launch_error is not None:
        return Outcome(Ending.ERROR, ex.launch_error)
    if ex.killed:
        return Outcome(Ending.KILLED)
    if ex.walltime_exceeded:
        return Outcome(Ending.FAILED, "wall time exceeded", walltime_exceeded=True)
    if ex.memory_exceeded:
        return Outcome(Ending.FAILED, "memory limit exceeded: killed", memory_exceeded=True)
    return Outcome(Ending.FINISHED if ex.exit_code == 0 else Ending.FAILED)
