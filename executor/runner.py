"""Run tasks as process groups: environment, log files, wall time, kill with grace.

The same runner serves the local backend (in the scheduler's process) and the Mesos
executor (on an agent). It keeps the table of tasks (submitted, started) with their
deadlines, and puts together the mechanisms, each in a module of its own: cold starts
(cold_start.py, posix_spawn through spawn.py), warm starts from fork servers
(warm_start.py), the reaper threads that learn of ends (reapers.py), the spawner
thread for submitted launches (spawner.py) and process groups (process_groups.py).
"""

from __future__ import annotations

import logging
import math
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from .cgroups import CgroupError, Cgroups, Detection, TaskCgroup, Usage
from .cold_start import SHELL, ColdStart, Starter
from .keeper_link import KeeperLink
from .memory_watch import MemoryWatch
from .process_groups import LeftoverGroups, signal_group
from .process_spec import (
    LaunchError,
    ProcessSpec,
    TaskExit,
    WarmStart,
    build_environment,
    cancelled,
    omp_threads,
)
from .reapers import Reapers
from .spawner import Spawner
from .warm_start import Ended, WarmStarts

__all__ = ["SHELL", "LaunchError", "ProcessSpec", "TaskExit", "TaskRunner", "WarmStart",
           "build_environment", "omp_threads"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Proc:
    """A started task."""

    spec: ProcessSpec
    pid: int  #: also its process group's id
    started: float
    term_at: float = math.inf  #: SIGTERM due (wall time limit)
    kill_at: float = math.inf  #: SIGKILL due (grace after SIGTERM)
    killed: bool = False
    walltime_exceeded: bool = False
    memory_exceeded: bool = False
    cgroup: TaskCgroup | None = None  #: the kernel limits its memory (cgroups.py)


class TaskRunner:
    """Starts tasks and reports each exit once through ``on_exit`` (from its own thread;
    exits noticed together come in one list).

    ``reapers`` threads wait for tasks to end (see reapers.py); ``starter`` starts the
    tasks that no fork server runs (default: ColdStart). A keeper process (keeper.py)
    kills every task's group if this process dies without close().

    A task with a memory limit is limited by the kernel, in a cgroup v2 of its own, if
    this process may make them under ``cgroup_root`` (looked for at the first such
    task; None: never), else by the memory watch; ``memory_limits`` says which."""

    def __init__(self, on_exit: Callable[[list[TaskExit]], None], *,
                 kill_grace: float = 5.0, reapers: int = 1,
                 starter: Starter | None = None, cgroup_root: str | None = "/") -> None:
        self._on_exit = on_exit
        self.kill_grace = kill_grace
        self._starter: Starter = starter or ColdStart()
        self._lock = threading.Lock()
        self._all_ended = threading.Condition(self._lock)  # no started task left
        self._procs: dict[str, _Proc] = {}
        self._queued: dict[str, bool] = {}  # submitted, not yet started -> kill requested
        self._closed = False
        self._leftovers = LeftoverGroups()
        self._keeper = KeeperLink()
        self._memory = MemoryWatch(self._over_memory)
        self._cgroup_root = cgroup_root
        self._cgroups: Cgroups | None = None
        self._cgroups_lock = threading.Lock()
        self._stale_cgroups: list[TaskCgroup] = []  # still busy when their task ended
        #: how memory limits are enforced (None: no limited task yet)
        self.memory_limits: Detection | None = None
        self._spawner: Spawner[tuple[ProcessSpec, list[str] | None]] = Spawner(
            self._start_submitted)
        self._reapers: Reapers[TaskExit] = Reapers(
            reapers, self._report, timeout=self._next_timeout, after_turn=self._after_turn)
        self._warm = WarmStarts(self._reapers, self._forked_ended)

    # ------------------------------------------------------------------ API
    def launch(self, spec: ProcessSpec) -> None:
        """Start ``spec`` in its own session (so its own process group), now.

        Raises LaunchError if the task cannot start."""
        self._start(spec, self._starter.resolve(spec))

    def submit(self, spec: ProcessSpec) -> None:
        """Start ``spec`` soon and return at once, so the caller need not wait for the
        child to exec: submitted from an exit callback, that reaper starts it right after
        the callback; from elsewhere, the spawner thread does, unless start_submitted()
        comes first. A task that cannot start is reported through ``on_exit`` with
        ``launch_error`` set; kill() reaches it before it starts too."""
        argv = self._starter.resolve(spec)
        with self._lock:
            if not self._closed:
                self._queued[spec.task_id] = False
                # from an exit callback: that reaper starts it next
                self._spawner.put((spec, argv), wake=not self._reapers.in_reaper())
                return
        self._reapers.post([cancelled(spec.task_id)])

    def start_submitted(self) -> None:
        """Start what was submitted, in this thread, now (the spawner thread would too,
        but waking it costs a thread switch on the way from one task's end to the next
        one's start)."""
        self._spawner.drain()

    def kill(self, task_id: str, grace: float | None = None) -> bool:
        """SIGTERM the task's process group; SIGKILL after ``grace`` seconds."""
        with self._lock:
            if task_id in self._queued:  # not started yet: it will not start
                self._queued[task_id] = True
                return True
            proc = self._procs.get(task_id)
            if proc is None:
                return False
            self._terminate(proc, self.kill_grace if grace is None else grace)
        self._reapers.wake()
        return True

    def hurry(self) -> None:
        """No more grace: tasks being killed get SIGKILL now, and later kills at once."""
        with self._lock:
            self.kill_grace = 0.0
            for proc in self._procs.values():
                if proc.killed:
                    self._terminate(proc, 0.0)
        self._reapers.wake()

    def running(self) -> list[str]:
        """Tasks started or submitted that have not ended."""
        with self._lock:
            return [*self._procs, *self._queued]

    def close(self, grace: float | None = None, timeout: float | None = None) -> None:
        """Kill every task, wait for them to end (bounded), stop the reaper threads."""
        grace = self.kill_grace if grace is None else grace
        with self._lock:
            self._closed = True
            for proc in self._procs.values():
                self._terminate(proc, grace)
        self._reapers.wake()
        deadline = time.monotonic() + (grace + 2.0 if timeout is None else timeout)
        self._spawner.close(timeout=deadline - time.monotonic())
        self.start_submitted()  # what nobody started is reported as killed
        with self._lock:
            self._all_ended.wait_for(lambda: not self._procs,
                                     timeout=max(0.0, deadline - time.monotonic()))
            for proc in self._procs.values():
                signal_group(proc.pid, signal.SIGKILL)
        # what the tasks left behind in their groups is gone before we return
        self._leftovers.kill_until_gone(deadline + 1.0)
        self._reapers.stop(timeout=2.0)
        self._warm.close()
        self._keeper.close()
        self._memory.close()
        for cgroup in self._stale_cgroups:
            if not cgroup.remove(timeout=1.0):
                log.warning("cannot remove cgroup %s", cgroup.path)

    @property
    def keeper_pid(self) -> int | None:
        """The keeper's pid (None: it could not start)."""
        return self._keeper.pid

    # ------------------------------------------------------------------ starting
    def _start(self, spec: ProcessSpec, argv: list[str] | None) -> None:
        cgroup = None
        if spec.memory_limit is not None and (cgroups := self._kernel_limits()) is not None:
            try:
                cgroup = cgroups.create(spec.task_id, spec.memory_limit)
            except CgroupError as e:
                log.warning("%s; task %s is limited by the watchdog", e, spec.task_id)
            else:  # started cold: it joins its cgroup before it execs
                spec = replace(spec, cgroup=cgroup.procs, warm=None)
        if cgroup is not None:
            try:
                child = self._starter.start(spec, argv)
            except BaseException:
                cgroup.remove(timeout=0.0)
                raise
            self._register(_Proc(spec, child, time.monotonic(), cgroup=cgroup), None)
            return
        started = time.monotonic()
        if spec.warm is not None:
            forked = self._warm.fork(spec)
            if forked is not None:
                self._register(_Proc(spec, forked, started), spec.warm.key)
                return
            started = time.monotonic()
        self._register(_Proc(spec, self._starter.start(spec, argv), started), None)

    def _register(self, proc: _Proc, warm_key: str | None) -> None:
        """Watch a started task; one killed (or a runner closed) meanwhile goes at once.
        ``warm_key``: the fork server that forked it (None: our own child)."""
        task_id = proc.spec.task_id
        if proc.spec.walltime is not None:
            proc.term_at = proc.started + proc.spec.walltime
        ended: TaskExit | None = None
        with self._lock:
            cancel = self._queued.pop(task_id, False)
            self._procs[task_id] = proc
            self._keeper.watch(proc.pid)
            # sampled for its peak in any case; limited by the watch unless by the kernel
            self._memory.watch(task_id, proc.pid,
                               proc.spec.memory_limit if proc.cgroup is None else None)
            if warm_key is None:
                self._reapers.watch_child(proc.pid, lambda: [self._child_ended(proc)])
            else:
                forked = self._warm.claim(warm_key, proc.pid, task_id)
                if forked is not None:  # it ended before we knew its pid
                    ended = self._remove(proc, forked.status, forked.cpu_time,
                                         forked.peak_memory)
            if ended is None and self._closed:  # close() came meanwhile: it missed this task
                proc.killed = True
                signal_group(proc.pid, signal.SIGKILL)
            elif ended is None and cancel:  # kill() came while it was submitted
                self._terminate(proc, self.kill_grace)
        if ended is not None:
            self._keeper.flush()
            self._reapers.post([ended])
        elif cancel or proc.spec.walltime is not None:
            self._reapers.wake()

    def _start_submitted(self, item: tuple[ProcessSpec, list[str] | None]) -> None:
        spec, argv = item
        with self._lock:
            cancel = self._closed or self._queued[spec.task_id]
            if cancel:  # killed (or the runner closed) before it started
                del self._queued[spec.task_id]
        if cancel:
            self._reapers.post([cancelled(spec.task_id)])
            return
        try:
            self._start(spec, argv)
            return
        except LaunchError as e:
            error = str(e)
        except Exception as e:  # never lose a task: report it as not started
            log.exception("cannot start task %s", spec.task_id)
            error = f"cannot start task {spec.task_id}: {e}"
        with self._lock:
            self._queued.pop(spec.task_id, None)
        self._reapers.post([TaskExit(spec.task_id, 127, 0.0, launch_error=error)])

    # ------------------------------------------------------------------ ends
    def _child_ended(self, proc: _Proc) -> TaskExit:
        """The end of a task that is our own child (in the reaper thread)."""
        # The leader is a zombie until reaped, so its group id cannot be reused yet:
        # kill whatever the job left behind in its group, then reap.
        signal_group(proc.pid, signal.SIGKILL)
        # wait4: what the task used, its descendants that were waited for included
        _, status, usage = os.wait4(proc.pid, 0)
        # Killed members may take a moment to go; close() waits for such groups.
        self._leftovers.add(proc.pid)
        # ru_maxrss (KiB) is the peak of the task's largest process; the first one
        # took over the peak of our own memory when it exec'd (posix_spawn shares it
        # until then), so it tells the job's peak only when it is above our own peak;
        # else that the job used at most as much as we did.
        largest = usage.ru_maxrss * 1024
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        limited = self._cgroup_ended(proc.cgroup) if proc.cgroup is not None else None
        kernel_peak = largest if largest > own else None
        at_most = largest if largest and largest <= own else None
        if limited is not None and limited.peak is not None:  # all its processes, exact
            kernel_peak, at_most = limited.peak, None
        with self._lock:
            if limited is not None and limited.oom_killed:
                proc.memory_exceeded = True
            return self._remove(proc, status, round(usage.ru_utime + usage.ru_stime, 3),
                                kernel_peak, at_most)

    def _cgroup_ended(self, cgroup: TaskCgroup) -> Usage:
        """What a limited task's cgroup saw; the cgroup removed (or left for close())."""
        used = cgroup.usage()
        if not cgroup.remove(timeout=0.1):
            with self._lock:
                self._stale_cgroups.append(cgroup)
        return used

    def _kernel_limits(self) -> Cgroups | None:
        """Where limited tasks' cgroups go (None: the watchdog limits them), found out
        at the first limited task."""
        with self._cgroups_lock:
            if self.memory_limits is None:
                if self._cgroup_root is None:
                    self.memory_limits = Detection(None, "kernel limits not asked for")
                else:
                    self._cgroups, self.memory_limits = Cgroups.detect(self._cgroup_root)
                log.info("memory limits: %s", self.memory_limits.describe())
            return self._cgroups

    def _forked_ended(self, ends: list[Ended]) -> list[TaskExit]:
        """The ends a fork server reported (in the first reaper's thread)."""
        with self._lock:
            return [self._remove(proc, ex.status, ex.cpu_time, ex.peak_memory)
                    for task_id, ex in ends if (proc := self._procs.get(task_id)) is not None]

    def _remove(self, proc: _Proc, status: int, cpu: float | None = None,
                kernel_peak: int | None = None, at_most: int | None = None) -> TaskExit:
        """Out of the table, as a TaskExit from its wait status and what it used: CPU
        seconds and the kernel's peak (None: unknown or not to be trusted), beside
        the memory watch's samples; ``at_most``: a bound on the peak (lock held)."""
        del self._procs[proc.spec.task_id]
        # Killed already (its group) or gone: what it left is killed or dies at once.
        self._keeper.forget(proc.pid)
        if not self._procs:
            self._all_ended.notify_all()
        wall = time.monotonic() - proc.started
        rc = os.waitstatus_to_exitcode(status)
        sig = -rc if rc < 0 else None
        exit_code = 128 + sig if sig is not None else rc
        peak = self._memory.forget(proc.spec.task_id)
        if kernel_peak is not None:
            peak = max(peak or 0, kernel_peak)
        return TaskExit(proc.spec.task_id, exit_code, wall, sig,
                        killed=proc.killed and not proc.walltime_exceeded
                        and not proc.memory_exceeded,
                        walltime_exceeded=proc.walltime_exceeded, peak_memory=peak,
                        cpu_time=cpu, memory_exceeded=proc.memory_exceeded,
                        memory_at_most=at_most if peak is None else None)

    def _over_memory(self, task_id: str, used: int) -> None:
        """The memory watch found a task over its limit: SIGKILL, as the kernel's OOM
        killer would (no grace: it is using what others need)."""
        with self._lock:
            proc = self._procs.get(task_id)
            if proc is None or proc.killed:
                return
            log.info("task %s uses %d bytes, over its limit of %s: killing it", task_id,
                     used, proc.spec.memory_limit)
            proc.memory_exceeded = True
            signal_group(proc.pid, signal.SIGKILL)

    def _report(self, exits: list[TaskExit]) -> None:
        try:
            self._on_exit(exits)
        except Exception:  # a broken callback must not kill the reaper
            log.exception("exit callback failed for tasks %s", [e.task_id for e in exits])

    # ------------------------------------------------------------------ deadlines
    def _terminate(self, proc: _Proc, grace: float) -> None:
        if not proc.killed:
            proc.killed = True
            signal_group(proc.pid, signal.SIGTERM)
        proc.kill_at = min(proc.kill_at, time.monotonic() + grace)
        if grace <= 0:
            signal_group(proc.pid, signal.SIGKILL)

    def _next_timeout(self) -> float:
        now = time.monotonic()
        with self._lock:
            due = min((min(p.term_at, p.kill_at) for p in self._procs.values()),
                      default=math.inf)
        return -1 if due == math.inf else max(0.0, due - now)

    def _after_turn(self, first: bool) -> None:
        """After each reaper's turn: start what the exit callbacks submitted; the first
        reaper also keeps the deadlines."""
        self.start_submitted()
        self._keeper.flush()  # the ends of this turn whose start did not tell it already
        if first:
            self._enforce_deadlines()

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            for proc in self._procs.values():
                if now >= proc.term_at and not proc.killed:
                    proc.walltime_exceeded = True
                    proc.term_at = math.inf
                    self._terminate(proc, self.kill_grace)
                if now >= proc.kill_at:
                    proc.kill_at = math.inf
                    signal_group(proc.pid, signal.SIGKILL)
