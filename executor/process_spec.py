"""What the task runner runs (ProcessSpec, WarmStart, the job's environment) and how a
task's process ended (TaskExit, LaunchError)."""

from __future__ import annotations

import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass


def omp_threads(cores: float) -> str:
    """OMP_NUM_THREADS for a job of ``cores`` cores: at least 1, rounded up."""
    return str(max(1, math.ceil(round(cores, 3))))


def build_environment(
    base: Mapping[str, str],
    set_env: Mapping[str, str] | None,
    job_env: Mapping[str, str] | None,
    cores: float,
) -> dict[str, str]:
    """The job's environment: base < setEnv values < OMP_NUM_THREADS < the job's own."""
    env = dict(base)
    if set_env:
        env.update(set_env)
    env["OMP_NUM_THREADS"] = omp_threads(cores)
    if job_env:
        env.update(job_env)
    return env


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What to run for one task."""

    task_id: str
    command: str  #: a shell command line, run as ``/bin/sh -c command``
    env: Mapping[str, str]
    cwd: str | None = None  #: None: the runner's own working directory
    stdout: str | None = None  #: file path; None inherits the runner's stdout
    stderr: str | None = None
    walltime: float | None = None  #: seconds; past it the task is killed
    #: a fork server that runs the same program warm (see WarmStart)
    warm: WarmStart | None = None
    #: bytes; a task whose processes use more at once is killed (None: no limit)
    memory_limit: int | None = None
    #: a cgroup's cgroup.procs file the task joins before it execs (set by the runner
    #: when the kernel enforces memory_limit; see cgroups.py)
    cgroup: str | None = None


@dataclass(frozen=True, slots=True)
class WarmStart:
    """A fork server (forkserver.py) that can run a task's program without starting it
    afresh: the runner starts it on first use, and once it has loaded, such tasks are
    forked from it (each in its own process and process group, with the task's own
    environment, working directory and log file) instead of run from their command."""

    key: str  #: one server per key
    argv: tuple[str, ...]  #: the server's command; argv[0] an absolute path
    env: Mapping[str, str]  #: the server's environment (each task gets its own)


@dataclass(frozen=True, slots=True)
class TaskExit:
    """How a task's process ended."""

    task_id: str
    exit_code: int  #: the exit status, or 128 + signal number when killed by a signal
    wall_time: float
    signal: int | None = None
    killed: bool = False  #: killed through kill() or shutdown
    walltime_exceeded: bool = False
    launch_error: str | None = None  #: why a submitted task could not start
    #: what it used (None: not measured): peak resident
    #: memory of its process tree in bytes, CPU seconds (user + system)
    peak_memory: int | None = None
    cpu_time: float | None = None
    #: when its peak is unknown: bytes it used at most (see runner._child_ended)
    memory_at_most: int | None = None
    #: killed for using more than its memory_limit
    memory_exceeded: bool = False


def cancelled(task_id: str) -> TaskExit:
    """The exit of a submitted task killed before it started."""
    return TaskExit(task_id, 128 + signal.SIGTERM, 0.0, signal.SIGTERM, killed=True)


class LaunchError(OSError):
    """The task's process could not be started."""
