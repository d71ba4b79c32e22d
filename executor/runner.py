"""Run tasks as process groups: environment, log files, wall time, kill with grace.

The same runner serves the local backend (in the scheduler's process) and the Mesos
executor (on an agent). One reaper thread waits on every child through pidfds, so a
thousand running tasks cost one thread, and it never steals other code's children.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import select
import shlex
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .command import direct_argv, forget
from .forkserver import ForkServer, ForkServerError
from .spawn import FileAction, spawn

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
_HAVE_PIDFD = hasattr(os, "pidfd_open") and sys.platform.startswith("linux")
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


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


class LaunchError(OSError):
    """The task's process could not be started."""


@dataclass(slots=True)
class _Helper:
    """A further reaper thread and its epoll set."""

    epoll: select.epoll
    wake_r: int
    wake_w: int
    thread: threading.Thread = None  # type: ignore[assignment]


@dataclass(slots=True)
class _Proc:
    spec: ProcessSpec
    pid: int
    started: float
    pidfd: int = -1
    epoll: select.epoll | None = None  #: the reaper's set that watches pidfd
    term_at: float = math.inf  #: SIGTERM due (wall time limit)
    kill_at: float = math.inf  #: SIGKILL due (grace after SIGTERM)
    killed: bool = False
    walltime_exceeded: bool = False


class TaskRunner:
    """Starts tasks and reports each exit once through ``on_exit`` (from its own thread;
    exits noticed together come in one list)."""

    def __init__(self, on_exit: Callable[[list[TaskExit]], None], *,
                 kill_grace: float = 5.0, reapers: int = 1) -> None:
        self._on_exit = on_exit
        self.kill_grace = kill_grace
        self._procs: dict[str, _Proc] = {}
        self._groups: set[int] = set()  # groups of ended tasks that still had members
        self._by_fd: dict[int, str] = {}
        self._servers: dict[str, ForkServer] = {}  # WarmStart key -> its fork server
        self._server_fds: dict[int, ForkServer] = {}  # its exits pipe -> it
        self._forked: dict[tuple[str, int], str] = {}  # (key, pid) -> task id
        self._unclaimed: dict[tuple[str, int], int] = {}  # exits seen before their launch
        self._warm_off: set[str] = set()  # keys whose server failed: their tasks run cold
        self._pending: list[TaskExit] = []  # exits found outside the reaper, to report
        self._lock = threading.Lock()
        self._queued: dict[str, bool] = {}  # submitted, not yet watched -> kill requested
        self._spawn_queue: deque[tuple[ProcessSpec, list[str] | None]] = deque()
        self._spawn_ready = threading.Condition(self._lock)
        self._spawner: threading.Thread | None = None
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._epoll = select.epoll() if _HAVE_PIDFD else None
        if self._epoll is not None:
            self._epoll.register(self._wake_r, select.EPOLLIN)
        self._thread = threading.Thread(target=self._reap_loop, name="mesobatch-reaper",
                                        daemon=True)
        # More reapers (each its own epoll set) let one task's end be handled while
        # another reaper waits for the child it started to exec. A task goes to the
        # reaper watching fewest, so when one ends, the reaper that handled its end
        # watches the next one it starts. The first reaper also keeps the deadlines.
        self._helpers: list[_Helper] = []
        self._epoll_of: dict[int, select.epoll] = {}  # reaper thread ident -> its set
        self._watching: dict[select.epoll, int] = {}  # epoll set -> tasks it watches
        if self._epoll is not None:
            self._watching[self._epoll] = 0
        for i in range(1, reapers if self._epoll is not None else 1):
            helper = _Helper(select.epoll(), *os.pipe())
            helper.epoll.register(helper.wake_r, select.EPOLLIN)
            helper.thread = threading.Thread(target=self._helper_loop, args=(helper,),
                                             name=f"mesobatch-reaper-{i}", daemon=True)
            self._helpers.append(helper)
            self._watching[helper.epoll] = 0
        self._thread.start()
        for helper in self._helpers:
            helper.thread.start()

    # ------------------------------------------------------------------ API
    def launch(self, spec: ProcessSpec) -> None:
        """Start ``spec`` in its own session (so its own process group), now.

        Raises LaunchError if the task cannot start."""
        self._start(spec, _direct_argv(spec))

    def _start(self, spec: ProcessSpec, argv: list[str] | None) -> None:
        if spec.warm is not None and self._epoll is not None and self._launch_forked(spec):
            return
        self._register(self._spawn(spec, argv))

    def submit(self, spec: ProcessSpec) -> None:
        """Start ``spec`` soon and return at once, so the caller need not wait for the
        child to exec: submitted from an exit callback, that reaper starts it right after
        the callback; from elsewhere, the spawner thread does, unless start_submitted()
        comes first. A task that cannot start is reported through ``on_exit`` with
        ``launch_error`` set; kill() reaches it before it starts too."""
        # Resolved in the caller's thread: the first lookup of a program stats the
        # PATH entries, and a spawner doing that while the caller issues jobs in a
        # loop (holding the GIL) waits a switch interval for the GIL after each stat.
        argv = _direct_argv(spec)
        with self._lock:
            if self._closed:
                self._pending.append(_cancelled(spec.task_id))
            else:
                self._queued[spec.task_id] = False
                self._spawn_queue.append((spec, argv))
                if threading.get_ident() in self._epoll_of:
                    return  # submitted from an exit callback: that reaper starts it next
                self._spawn_ready.notify()
                if self._spawner is None:
                    self._spawner = threading.Thread(target=self._spawn_loop,
                                                     name="mesobatch-spawner", daemon=True)
                    self._spawner.start()
                return
        self._wake()

    def _spawn(self, spec: ProcessSpec, argv: list[str] | None) -> _Proc:
        """posix_spawn (vfork underneath) costs half of subprocess.Popen in the parent,
        and spawn() lets our other threads run while the child execs. Every descriptor
        we hold is close-on-exec; the child opens its own log files."""
        command = spec.command
        if spec.cwd is not None:  # posix_spawn has no chdir: let the shell do it
            command = f"cd -- {shlex.quote(spec.cwd)} || exit 127\n{command}"
        actions: list[FileAction] = [("open", 0, os.devnull, os.O_RDONLY, 0)]
        if spec.stdout is not None:
            actions.append(("open", 1, spec.stdout, _LOG_FLAGS, 0o644))
        if spec.stderr is not None:
            actions.append(("dup2", 1, 2) if spec.stderr == spec.stdout
                           else ("open", 2, spec.stderr, _LOG_FLAGS, 0o644))
        started = time.monotonic()
        try:
            pid = -1
            if argv is not None:
                try:
                    pid = spawn(argv[0], argv, spec.env, actions)
                except OSError:  # e.g. gone since we looked: the shell says why
                    forget(spec.command, spec.env)
            if pid < 0:
                pid = spawn(SHELL, [SHELL, "-c", command], spec.env, actions)
        except OSError as e:
            raise LaunchError(e.errno, f"cannot start task {spec.task_id}: {e}") from e
        proc = _Proc(spec, pid, started)
        if spec.walltime is not None:
            proc.term_at = started + spec.walltime
        return proc

    def _register(self, proc: _Proc) -> None:
        """Watch a started task; one killed (or a runner closed) meanwhile goes at once."""
        task_id = proc.spec.task_id
        with self._lock:
            cancelled = self._queued.pop(task_id, False)
            self._procs[task_id] = proc
            if self._epoll is not None:
                proc.pidfd = os.pidfd_open(proc.pid)
                self._by_fd[proc.pidfd] = task_id
                # to the reaper watching fewest tasks (this thread's own on a tie)
                own = self._epoll_of.get(threading.get_ident())
                epoll = min(self._watching, key=lambda e: (self._watching[e], e is not own))
                epoll.register(proc.pidfd, select.EPOLLIN)
                self._watching[epoll] += 1
                proc.epoll = epoll
            else:
                threading.Thread(target=self._wait_one, args=(proc,), daemon=True).start()
            if self._closed:
                proc.killed = True
                _signal_group(proc.pid, signal.SIGKILL)
            elif cancelled:
                self._terminate(proc, self.kill_grace)
        if cancelled or proc.spec.walltime is not None:
            self._wake()

    def start_submitted(self) -> None:
        """Start what was submitted, in this thread, now (the spawner thread would too,
        but waking it costs a thread switch on the way from one task's end to the next
        one's start)."""
        while True:
            with self._lock:
                if not self._spawn_queue:
                    return
                spec, argv = self._spawn_queue.popleft()
            self._start_submitted(spec, argv)

    def _spawn_loop(self) -> None:
        while True:
            with self._lock:
                while not self._spawn_queue:
                    if self._closed:
                        return
                    self._spawn_ready.wait()
                spec, argv = self._spawn_queue.popleft()
            self._start_submitted(spec, argv)

    def _start_submitted(self, spec: ProcessSpec, argv: list[str] | None) -> None:
        with self._lock:
            cancelled = self._closed or self._queued[spec.task_id]
            if cancelled:  # killed (or the runner closed) before it started
                del self._queued[spec.task_id]
                self._pending.append(_cancelled(spec.task_id))
        if not cancelled:
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
                self._pending.append(TaskExit(spec.task_id, 127, 0.0, launch_error=error))
        self._wake()  # the first reaper reports it

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
        self._wake()
        return True

    def _launch_forked(self, spec: ProcessSpec) -> bool:
        """Fork the task from its fork server; False to start it cold (the server is
        still loading, or failed)."""
        warm = spec.warm
        assert warm is not None and self._epoll is not None
        with self._lock:
            if self._closed or warm.key in self._warm_off:
                return False
            server = self._servers.get(warm.key)
        if server is None:
            self._start_server(warm)
            return False
        if not server.is_ready():
            return False
        task = {"env": dict(spec.env), "cwd": spec.cwd, "stdout": spec.stdout,
                "stderr": spec.stderr}
        try:
            started = time.monotonic()
            pid = server.fork(task)
        except (ForkServerError, OSError) as e:
            log.warning("%s; such tasks start cold from now on", e)
            with self._lock:
                self._warm_off.add(warm.key)
            return False
        proc = _Proc(spec, pid, started)
        if spec.walltime is not None:
            proc.term_at = started + spec.walltime
        with self._lock:
            cancelled = self._queued.pop(spec.task_id, False)
            self._procs[spec.task_id] = proc
            self._forked[(warm.key, pid)] = spec.task_id
            status = self._unclaimed.pop((warm.key, pid), None)
            if status is not None:  # it ended before we knew its pid
                self._pending.append(self._forked_exit(warm.key, pid, status))
            if self._is_closed():  # close() came meanwhile: it missed this task
                proc.killed = True
                _signal_group(pid, signal.SIGKILL)
            elif cancelled and status is None:  # kill() came while it was submitted
                self._terminate(proc, self.kill_grace)
        self._wake()
        return True

    def _is_closed(self) -> bool:
        return self._closed

    def _start_server(self, warm: WarmStart) -> None:
        try:
            server = ForkServer(warm.key, warm.argv, warm.env)
        except OSError as e:
            log.warning("cannot start a fork server for %s (%s); its tasks start cold",
                        warm.key, e)
            with self._lock:
                self._warm_off.add(warm.key)
            return
        with self._lock:
            if not self._closed and warm.key not in self._servers:
                assert self._epoll is not None
                self._servers[warm.key] = server
                self._server_fds[server.exits_fd] = server
                self._epoll.register(server.exits_fd, select.EPOLLIN)
                return
        server.close()

    def _forked_exit(self, key: str, pid: int, status: int) -> TaskExit:
        """A forked task's exit, from the status its server reported (lock held)."""
        task_id = self._forked.pop((key, pid))
        proc = self._procs.pop(task_id)
        return self._exit_of(proc, os.waitstatus_to_exitcode(status))

    def _collect_forked(self, server: ForkServer) -> list[TaskExit]:
        """Exits a fork server reported; if it is gone, its tasks go with it."""
        exits, gone = server.read_exits()
        out: list[TaskExit] = []
        with self._lock:
            for pid, status in exits:
                if (server.key, pid) in self._forked:
                    out.append(self._forked_exit(server.key, pid, status))
                else:
                    self._unclaimed[(server.key, pid)] = status
            if gone:
                log.warning("the %s fork server ended; such tasks start cold from now on",
                            server.key)
                self._warm_off.add(server.key)
                self._servers.pop(server.key, None)
                self._server_fds.pop(server.exits_fd, None)
                if self._epoll is not None:
                    with contextlib.suppress(OSError, ValueError):
                        self._epoll.unregister(server.exits_fd)
                for (key, pid), _ in list(self._forked.items()):
                    if key == server.key:  # nobody can reap or report it any more
                        _signal_group(pid, signal.SIGKILL)
                        out.append(self._forked_exit(key, pid, signal.SIGKILL))
        if gone:
            server.close(timeout=0.5)
        return out

    def running(self) -> list[str]:
        """Tasks started or submitted that have not ended."""
        with self._lock:
            return [*self._procs, *self._queued]

    def close(self, grace: float | None = None, timeout: float | None = None) -> None:
        """Kill every task, wait for them to end (bounded), stop the reaper thread."""
        grace = self.kill_grace if grace is None else grace
        with self._lock:
            self._closed = True
            for proc in self._procs.values():
                self._terminate(proc, grace)
            self._spawn_ready.notify()
            spawner = self._spawner
        self._wake()
        deadline = time.monotonic() + (grace + 2.0 if timeout is None else timeout)
        if spawner is not None:
            spawner.join(timeout=max(0.0, deadline - time.monotonic()))
        self.start_submitted()  # what nobody started is reported as killed
        while time.monotonic() < deadline:
            with self._lock:
                if not self._procs:
                    break
            time.sleep(0.01)
        with self._lock:
            for proc in self._procs.values():
                _signal_group(proc.pid, signal.SIGKILL)
        # what the tasks left behind in their groups is gone before we return
        while time.monotonic() < deadline + 1.0:
            with self._lock:
                self._groups = {g for g in self._groups if _group_exists(g)}
                for g in self._groups:
                    _signal_group(g, signal.SIGKILL)
                if not self._groups:
                    break
            time.sleep(0.005)
        os.write(self._wake_w, b"q")
        for helper in self._helpers:
            os.write(helper.wake_w, b"q")
        self._thread.join(timeout=2.0)
        for helper in self._helpers:
            helper.thread.join(timeout=2.0)
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.close()

    # ------------------------------------------------------------------ internals
    def _terminate(self, proc: _Proc, grace: float) -> None:
        if not proc.killed:
            proc.killed = True
            _signal_group(proc.pid, signal.SIGTERM)
        proc.kill_at = min(proc.kill_at, time.monotonic() + grace)
        if grace <= 0:
            _signal_group(proc.pid, signal.SIGKILL)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"w")

    def _next_timeout(self) -> float:
        now = time.monotonic()
        with self._lock:
            due = min((min(p.term_at, p.kill_at) for p in self._procs.values()),
                      default=math.inf)
        return -1 if due == math.inf else max(0.0, due - now)

    def _reap_loop(self) -> None:
        if self._epoll is not None:
            self._epoll_of[threading.get_ident()] = self._epoll
        stopping = False
        while not stopping:
            timeout = self._next_timeout()
            if self._epoll is not None:
                events = self._epoll.poll(timeout)
                fds = [fd for fd, _ in events]
            else:
                r, _, _ = select.select([self._wake_r], [], [], None if timeout < 0 else timeout)
                fds = list(r)
            exits: list[TaskExit] = []
            for fd in fds:
                if fd == self._wake_r:
                    data = os.read(self._wake_r, 4096)
                    stopping = stopping or b"q" in data
                else:
                    exits.extend(self._ended(fd))
            with self._lock:
                exits.extend(self._pending)
                self._pending.clear()
            if exits:  # all exits seen at once go out in one call
                self._report(exits)
            self.start_submitted()  # what the callbacks submitted
            self._enforce_deadlines()

    def _helper_loop(self, helper: _Helper) -> None:
        """A further reaper: only the tasks it watches, and what they lead to."""
        self._epoll_of[threading.get_ident()] = helper.epoll
        stopping = False
        while not stopping:
            exits: list[TaskExit] = []
            for fd, _ in helper.epoll.poll():
                if fd == helper.wake_r:
                    stopping = stopping or b"q" in os.read(helper.wake_r, 4096)
                else:
                    exits.extend(self._ended(fd))
            if exits:  # reported even when a stop came with them
                self._report(exits)
            self.start_submitted()

    def _ended(self, fd: int) -> list[TaskExit]:
        """The exits behind a readable descriptor: a task's pidfd or a fork server's."""
        with self._lock:
            task_id = self._by_fd.pop(fd, None)
            proc = self._procs.get(task_id) if task_id else None
            server = self._server_fds.get(fd)
        if proc is not None:
            return [self._finish(proc)]
        if server is not None:
            return self._collect_forked(server)
        return []

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
                    _signal_group(proc.pid, signal.SIGKILL)

    def _wait_one(self, proc: _Proc) -> None:  # without pidfds: one waiter per task
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        self._report([self._finish(proc)])

    def _report(self, exits: list[TaskExit]) -> None:
        try:
            self._on_exit(exits)
        except Exception:  # a broken callback must not kill the reaper
            log.exception("exit callback failed for tasks %s", [e.task_id for e in exits])

    def _finish(self, proc: _Proc) -> TaskExit:
        pid = proc.pid
        # The leader is a zombie until reaped, so its group id cannot be reused yet:
        # kill whatever the job left behind in its group, then reap.
        _signal_group(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        with self._lock:
            self._procs.pop(proc.spec.task_id, None)
            # Killed members may take a moment to go; close() waits for such groups.
            # (A group id is not handed out again while the group exists.)
            self._groups = {g for g in self._groups if _group_exists(g)}
            if _group_exists(pid):
                self._groups.add(pid)
            if proc.pidfd >= 0:
                # Out of the epoll set explicitly: a child being spawned by another
                # thread holds a copy of every descriptor until it execs, so closing
                # would leave the registration behind, and a stale readiness for
                # this number would be taken for the task that gets it next.
                if proc.epoll is not None:
                    self._watching[proc.epoll] -= 1
                    with contextlib.suppress(OSError):
                        proc.epoll.unregister(proc.pidfd)
                os.close(proc.pidfd)
        return self._exit_of(proc, os.waitstatus_to_exitcode(status))

    @staticmethod
    def _exit_of(proc: _Proc, rc: int) -> TaskExit:
        wall = time.monotonic() - proc.started
        sig = -rc if rc < 0 else None
        exit_code = 128 + sig if sig is not None else rc
        return TaskExit(proc.spec.task_id, exit_code, wall, sig,
                        killed=proc.killed and not proc.walltime_exceeded,
                        walltime_exceeded=proc.walltime_exceeded)


def _direct_argv(spec: ProcessSpec) -> list[str] | None:
    """The argv to exec ``spec`` without a shell, or None (posix_spawn has no chdir)."""
    return direct_argv(spec.command, spec.env) if spec.cwd is None else None


def _cancelled(task_id: str) -> TaskExit:
    """The exit of a submitted task killed before it started."""
    return TaskExit(task_id, 128 + signal.SIGTERM, 0.0, signal.SIGTERM, killed=True)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError as e:
        if e.errno not in (errno.ESRCH, errno.EPERM):
            raise
