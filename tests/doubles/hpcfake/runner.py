"""The detached runner of one job: waits for room, runs the job, enforces its limits.

``launch`` forks it off a submit command (setsid, double fork: no interpreter start-up per
job). The runner waits until the job is pending, its start delay has passed and the fake
node has free cores; marks it running; runs its command in a session of its own with the
job's output files; watches its memory (resident set of the whole process tree, as LSF's
per-job limit and cgroups count it) and its run time; and records the end (exit status or
-signal, why it was killed) under the store's lock. Commands that kill, hold or make a job
vanish change the record and wake the runner with SIGUSR1.

A job held while it runs (HTCondor) goes back to waiting for a release; a job that vanished
from the store is killed and leaves no record.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from typing import Any

from .store import FINISHED, HELD, PENDING, RUNNING, Job, Node, Store, env_float

WAKE = signal.SIGUSR1
FALLBACK_CHECK = 2.0  #: seconds between re-reads of the record in case a wake-up was lost


def launch(store: Store, job_id: str, node: Node, *, start_delay: float = 0.0) -> int:
    """Fork a detached runner for ``job_id``; returns its pid."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # first child: new session, fork the runner, report its pid, leave
        try:
            os.close(read_fd)
            os.setsid()
            runner = os.fork()
            if runner == 0:
                os.close(write_fd)
                _detach_stdio()
                code = 0
                try:
                    Runner(store, job_id, node, start_delay).run()
                except BaseException:  # the runner has nobody to report to but its store
                    code = 1
                os._exit(code)
            os.write(write_fd, str(runner).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(child, 0)
    with os.fdopen(read_fd) as pipe:
        return int(pipe.read() or 0)


def _detach_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.closerange(3, 4096)


def _signum(name: str) -> int:
    return int(getattr(signal, name))


class Runner:
    """Runs one job to its end (see the module docstring)."""

    def __init__(self, store: Store, job_id: str, node: Node, start_delay: float) -> None:
        self.store = store
        self.job_id = job_id
        self.node = node
        self.start_delay = start_delay
        self.watch_interval = env_float("FAKE_HPC_WATCH_INTERVAL", 0.1)

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {WAKE, signal.SIGCHLD})
        while True:
            started = self._wait_for_start()
            if started is None:
                return
            if not self._run_once(*started):
                return

    # ------------------------------------------------------------------ waiting to start

    def _wait_for_start(
        self,
    ) -> tuple[Job, subprocess.Popen[bytes] | None, str] | None:
        """Wait until the job may start, then start it (marked running, pid recorded, in one
        step under the lock); None when it is gone or finished first."""
        pause = 0.02
        recorded = False
        while True:
            snapshot = self.store.read()  # lock-free: only take the lock to start
            job = snapshot["jobs"].get(self.job_id)
            if job is None or job["state"] == FINISHED:
                return None
            ready = (job["state"] == PENDING
                     and time.time() >= job["submit_time"] + self.start_delay
                     and self.node.fits(snapshot, job))
            if ready or not recorded:
                with self.store.locked() as state:
                    job = state["jobs"].get(self.job_id)
                    if job is None or job["state"] == FINISHED:
                        return None
                    job["runner_pid"] = os.getpid()
                    recorded = True
                    now = time.time()
                    if (
                        job["state"] == PENDING
                        and now >= job["submit_time"] + self.start_delay
                        and self.node.fits(state, job)
                    ):
                        job.update(
                            state=RUNNING, start_time=now, end_time=None, host=self.node.name,
                            returncode=None, kill_reason=None, kill_requested=None, pid=None,
                        )
                        job["starts"] += 1
                        try:
                            proc: subprocess.Popen[bytes] | None = self._start(job)
                            error = ""
                        except OSError as exc:
                            proc, error = None, str(exc)
                        job["pid"] = proc.pid if proc is not None else None
                        return dict(job), proc, error
            # a finishing job wakes the pending ones it made room for; polling is the fallback
            signal.sigtimedwait({WAKE}, pause)
            pause = min(pause * 2, FALLBACK_CHECK)

    # ------------------------------------------------------------------ running

    def _run_once(self, job: Job, proc: subprocess.Popen[bytes] | None, error: str) -> bool:
        """Watch the started job to its end; True: wait for another start (held, requeued)."""
        if proc is None:
            return self._finish(job, returncode=None, reason="exec", rss=0, error=error)
        reason, rss = self._watch(job, proc)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what the job left behind
        if reason == "vanished":
            return False
        return self._finish(job, returncode=proc.returncode, reason=reason, rss=rss)

    def _start(self, job: Job) -> subprocess.Popen[bytes]:
        out_mode = "ab" if job["extra"].get("append_output", True) else "wb"
        stdout: Any = subprocess.DEVNULL
        stderr: Any = subprocess.STDOUT
        files = []
        if job["stdout"]:
            stdout = open(job["stdout"], out_mode)  # noqa: SIM115 - closed below
            files.append(stdout)
        if job["stderr"]:
            stderr = open(job["stderr"], out_mode)  # noqa: SIM115 - closed below
            files.append(stderr)
        elif not job["stdout"]:
            stderr = subprocess.DEVNULL
        env: dict[str, str] = {}
        if job.get("env_file"):
            with open(job["env_file"]) as f:
                env = json.load(f)
        env.update(job["env"])
        try:
            return subprocess.Popen(
                job["command"], cwd=job["cwd"], env=env, stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, start_new_session=True, close_fds=True,
                restore_signals=True, preexec_fn=_unblock,  # noqa: PLW1509 - single-threaded
            )
        finally:
            for f in files:
                f.close()

    def _watch(self, job: Job, proc: subprocess.Popen[bytes]) -> tuple[str | None, int]:
        """Until the job's main process exits: its reason to be killed (if any), peak RSS."""
        mem_limit = job["mem_limit"]
        run_limit = job["run_limit"]
        start = time.monotonic()
        reason: str | None = None
        plan: list[str] = []
        next_signal_at = 0.0
        peak = 0
        last_check = start
        while proc.poll() is None:
            now = time.monotonic()
            timeout = FALLBACK_CHECK
            if mem_limit:
                timeout = self.watch_interval
            if run_limit is not None and reason is None:
                timeout = min(timeout, max(0.01, start + run_limit - now))
            if plan:
                timeout = min(timeout, max(0.01, next_signal_at - now))
            woken = signal.sigtimedwait({WAKE, signal.SIGCHLD}, timeout)
            now = time.monotonic()
            if mem_limit:
                rss = _tree_rss(proc.pid)
                peak = max(peak, rss)
                if rss > mem_limit and reason is None:
                    reason, plan = "memlimit", self._plan(job, "memlimit")
                    next_signal_at = now
            if run_limit is not None and reason is None and now - start >= run_limit:
                reason, plan = "runlimit", self._plan(job, "runlimit")
                next_signal_at = now
            if (woken is not None and woken.si_signo == WAKE) or now - last_check >= FALLBACK_CHECK:
                last_check = now
                live = self.store.read()["jobs"].get(self.job_id)
                if live is None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return "vanished", peak
                requested = live.get("kill_requested")
                if requested and reason is None:
                    reason, plan = requested, self._plan(job, requested)
                    next_signal_at = now
            if plan and now >= next_signal_at:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, _signum(plan.pop(0)))
                next_signal_at = now + float(job["kill_interval"])
        return reason, peak

    def _plan(self, job: Job, reason: str) -> list[str]:
        plans: dict[str, list[str]] = job["extra"].get("kill_plans", {})
        default: list[str] = job["kill_signals"]
        return list(plans.get(reason, default))

    def _finish(
        self, job: Job, *, returncode: int | None, reason: str | None, rss: int, error: str = ""
    ) -> bool:
        message = ""
        with self.store.locked() as state:
            live = state["jobs"].get(self.job_id)
            if live is None:
                return False
            live["pid"] = None
            live["returncode"] = returncode
            live["end_time"] = time.time()
            live["max_rss"] = max(int(live.get("max_rss") or 0), rss)
            live["kill_reason"] = reason
            live["kill_requested"] = None
            if error:
                live["extra"]["exec_error"] = error
            values = {
                "used": int(live["end_time"] - (live["start_time"] or live["end_time"])),
                "limit": int(live["run_limit"] or 0),
                "rss_kb": rss // 1024,
                "limit_kb": int(live["mem_limit"] or 0) // 1024,
                "rss_mb": rss // 2**20,
                "limit_mb": int(live["mem_limit"] or 0) // 2**20,
                "error": error,
                "host": live["host"] or "",
            }
            template = live["extra"].get("kill_messages", {}).get(reason or "")
            if template:
                message = template.format(**values)
            hold = live["extra"].get("hold_on", {}).get(reason or "")
            if hold:  # HTCondor holds a job its policy or a failure stopped
                live["state"] = HELD
                live["extra"]["hold"] = {"code": hold["code"], "subcode": hold.get("subcode", 0),
                                         "reason": hold["reason"].format(**values),
                                         "since": live["end_time"]}
            if live["state"] == HELD:
                again = True
            elif live["extra"].get("requeue"):
                live["extra"]["requeue"] = False
                live["state"] = PENDING
                again = True
            else:
                live["state"] = FINISHED
                again = False
            target = live["stderr"] or live["stdout"]
            waiting = [j for j in state["jobs"].values() if j["state"] == PENDING]
            waiting.sort(key=lambda j: j["submit_time"])
            room = self.node.cores - sum(
                int(j["cores"]) for j in state["jobs"].values() if j["state"] == RUNNING)
            to_wake = []
            for j in waiting:
                if room <= 0:
                    break
                to_wake.append(j)
                room -= int(j["cores"])
        for j in to_wake:
            wake(j)
        if message and target:
            with contextlib.suppress(OSError), open(target, "a") as f:
                f.write(message)
        return again


def _unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {WAKE, signal.SIGCHLD})
    # A batch system starts its jobs with default dispositions, whatever the submitter
    # had: a test run started in the background (`.ci/run &`) ignores SIGINT, and LSF's
    # bkill sends SIGINT first
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _tree_rss(pid: int) -> int:
    import psutil  # only jobs with a memory limit pay for the import

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def wake(job: Job) -> None:
    """Tell a job's runner that its record changed."""
    pid = job.get("runner_pid")
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(pid), WAKE)


