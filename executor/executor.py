"""mesobatch's executor: runs each task with the task runner and reports on it.

Per task: TASK_RUNNING if it still runs ``running_delay`` seconds after its start (see
running_notice), then exactly one terminal update carrying the exit code and wall time
(TaskResult in ``data``); no TASK_STARTING, which tells the scheduler nothing. Every
so often a framework message reports the node's load. SHUTDOWN kills everything and
exits; the per-workflow work directory goes with the last task (worker cleanup).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import job_logs, stats
from .interface import Executor, ExecutorDriver
from .protocol import NodeReport, TaskPayload, TaskResult, b64encode, log_file_name
from .runner import LaunchError, TaskExit, TaskRunner
from .running_notice import RunningNotices
from .shipping import (
    HttpSource,
    NodeResources,
    Prepared,
    ResourceError,
    Source,
    source_for,
)
from .task_start import Ending, TaskRequest, outcome, prepare, process_spec

log = logging.getLogger(__name__)

#: variables of the executor's own environment that tasks should not inherit
_PRIVATE = ("MESOS_EXECUTOR_AUTHENTICATION_TOKEN",)


def kill_grace_of(task: dict[str, Any], default: float) -> float:
    """The task's kill_policy grace period in seconds; ValueError if it is not one."""
    grace: Any = task.get("kill_policy")
    for key in ("grace_period", "nanoseconds"):
        if grace is None:
            return default
        if not isinstance(grace, dict):
            raise ValueError(f"the task's kill_policy is {grace!r}: expected an object")
        grace = grace.get(key)
    if grace is None:
        return default
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise ValueError(f"kill_policy.grace_period.nanoseconds is {grace!r}: expected a "
                         "whole number >= 0")
    return grace / 1e9


class MesobatchExecutor(Executor):
    def __init__(self, *, report_interval: float = 30.0, kill_grace: float = 5.0,
                 sandbox: str | None = None, running_delay: float = 0.1) -> None:
        self.report_interval = report_interval
        self.kill_grace = kill_grace
        self.sandbox = sandbox or os.environ.get("MESOS_SANDBOX") or os.getcwd()
        self.runner = TaskRunner(self._on_exits, kill_grace=kill_grace)
        self.driver: ExecutorDriver | None = None
        self._lock = threading.Lock()
        self._live: dict[str, float] = {}  # task id -> kill grace seconds
        self._done: set[str] = set()  # tasks whose terminal update was sent
        self._work_dirs: set[str] = set()
        self._hostname = socket.gethostname()
        self._ip = (os.environ.get("MESOS_AGENT_ENDPOINT", "").rpartition(":")[0]
                    or "127.0.0.1")
        self._stop = threading.Event()
        self._base_env = {k: v for k, v in os.environ.items() if k not in _PRIVATE}
        # Shipped blobs, by hash: one download per agent (MESOBATCH_CACHE_DIR may name a
        # cache that outlives the sandbox and is shared by the agent's executors).
        self.resources = NodeResources(os.environ.get("MESOBATCH_CACHE_DIR")
                                       or os.path.join(self.sandbox, "cache"))
        self._sources: dict[tuple[str, str], Source] = {}
        self._outcomes: dict[str, Prepared] = {}  # task id -> where its outcome goes
        self._log_plans: dict[str, _LogPlan] = {}  # task id -> where its log goes
        self._running = RunningNotices(self._say_running, running_delay)
        self._killing: set[str] = set()  # live tasks that were told TASK_KILLING

    # ------------------------------------------------------------------ callbacks
    def registered(self, driver: ExecutorDriver, executorInfo: dict[str, Any],
                   frameworkInfo: dict[str, Any], agentInfo: dict[str, Any]) -> None:
        self.driver = driver
        self._hostname = agentInfo.get("hostname") or self._hostname
        threading.Thread(target=self._report_loop, name="node-reports", daemon=True).start()

    def reregistered(self, driver: ExecutorDriver, agentInfo: dict[str, Any]) -> None:
        self.driver = driver

    def launchTask(self, driver: ExecutorDriver, task: dict[str, Any]) -> None:
        self.driver = driver
        task_id = task["task_id"]["value"]
        try:
            payload = TaskPayload.decode(task.get("data", ""))
            grace = kill_grace_of(task, self.kill_grace)
        except (ValueError, KeyError, TypeError) as e:
            self._terminal(task_id, "TASK_ERROR", f"cannot read the task's data: {e}")
            return
        with self._lock:
            if task_id in self._live or task_id in self._done:
                return  # a re-sent launch: it already runs or ran
            self._live[task_id] = grace
            if payload.log_cap > 0:
                name = log_file_name(payload.job_id, payload.name)
                self._log_plans[task_id] = _LogPlan(
                    name, os.path.join(self.sandbox, name), payload.log_cap,
                    self._uploader(payload.resource_url, payload.resource_token))
        req = self._request(task_id, payload)
        if req.ships():  # fetching may take a while: not on the event thread
            threading.Thread(target=self._prepare_and_start, args=(req, payload),
                             name=f"prepare-{task_id}", daemon=True).start()
        else:
            self._start(req, None)

    def _request(self, task_id: str, payload: TaskPayload) -> TaskRequest:
        return TaskRequest(task_id, payload.job_id, payload.name, payload.command,
                           payload.cores, payload.walltime, None, payload.env,
                           self._work_dir(payload.workflow_id),
                           memory_limit=payload.memory_limit or None)

    def _prepare_and_start(self, req: TaskRequest, payload: TaskPayload) -> None:
        """Fetch and check the task's shipped resources, then start it; a resource
        that cannot be had, or whose hash does not match, fails the task instead."""
        source = None
        try:
            if payload.resource_url:
                key = (payload.resource_url, payload.resource_token)
                source = self._sources.get(key)
                if source is None:
                    source = self._sources[key] = source_for(*key)
            prepared = prepare(self.resources, req, source, req.work_dir or self.sandbox)
        except (ResourceError, ValueError) as e:  # prepare() told a function job why
            log.warning("task %s: %s", req.task_id, e)
            self._terminal(req.task_id, "TASK_FAILED", str(e))
            return
        self._start(req, prepared)

    def _start(self, req: TaskRequest, prepared: Prepared | None) -> None:
        task_id = req.task_id
        spec = process_spec(req, base_env=self._base_env, log_dir=self.sandbox,
                            prepared=prepared)
        # Under the lock, so that a task killed while its resources were fetched does
        # not start, and its exit is not handled before it is known to have started.
        with self._lock:
            if task_id in self._done:
                return
            if prepared is not None and prepared.upload is not None:
                self._outcomes[task_id] = prepared
            try:
                self.runner.launch(spec)
            except LaunchError as e:
                failed: str | None = str(e)
                self._outcomes.pop(task_id, None)
            else:
                failed = None
        if failed is not None:
            self._terminal(task_id, "TASK_FAILED", failed)
        else:
            self._running.started(task_id)

    def _say_running(self, task_id: str) -> None:
        """TASK_RUNNING, unless the task has ended (its terminal update said all). Under
        the lock, so that it cannot follow the terminal update."""
        with self._lock:
            if task_id in self._live and task_id not in self._killing:
                self._update(task_id, "TASK_RUNNING")

    def killTask(self, driver: ExecutorDriver, taskId: dict[str, Any]) -> None:
        task_id = taskId["value"]
        with self._lock:
            grace = self._live.get(task_id)
            done = task_id in self._done
        if done:
            return
        # Under the lock, so that TASK_KILLING goes out before the reaper's TASK_KILLED.
        with self._lock:
            killing = grace is not None and self.runner.kill(task_id, grace)
            if killing:
                self._killing.add(task_id)  # no TASK_RUNNING after this
                self._update(task_id, "TASK_KILLING")
        if not killing:
            self._terminal(task_id, "TASK_KILLED", "not running on this executor")

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        log.debug("framework message: %r", message[:200])

    def shutdown(self, driver: ExecutorDriver) -> None:
        """Kill everything within the grace period, report it, clean up, stop."""
        grace = float(getattr(getattr(driver, "agent", None), "shutdown_grace", 5.0))
        kill_grace = max(0.1, min(self.kill_grace, grace / 2))
        self._stop.set()
        self._running.close()
        self.runner.close(grace=kill_grace, timeout=kill_grace + 0.5)
        deadline = time.monotonic() + max(0.2, grace - kill_grace - 1.0)
        unacked = getattr(driver, "unacknowledged", lambda: 0)
        while unacked() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._cleanup()
        driver.stop()

    def error(self, driver: ExecutorDriver, message: str) -> None:
        log.error("agent error: %s", message)

    # ------------------------------------------------------------------ task ends
    def _on_exits(self, exits: list[TaskExit]) -> None:
        for ex in exits:
            with self._lock:
                pending = self._outcomes.pop(ex.task_id, None)
                plan = self._log_plans.pop(ex.task_id, None)
            if pending is not None and ex.killed:
                pending = None
            small = plan is not None and _log_size(plan.path) <= job_logs.INLINE_MAX
            if pending is not None or (plan is not None and not small):
                # the result and the log go to the scheduler before the task is reported
                threading.Thread(target=self._return_then_end, args=(ex, pending, plan),
                                 name=f"outcome-{ex.task_id}", daemon=True).start()
            else:
                self._ended(ex, plan)

    def _return_then_end(self, ex: TaskExit, pending: Prepared | None,
                         plan: _LogPlan | None) -> None:
        if pending is not None and not self._return_outcome(ex, pending):
            return
        self._ended(ex, plan)

    def _return_outcome(self, ex: TaskExit, pending: Prepared) -> bool:
        """The function job's outcome to its caller; False if that failed the task."""
        assert pending.upload is not None and pending.result_id and pending.result_file
        try:
            if os.path.exists(pending.result_file):
                pending.upload.upload_result(pending.result_id, pending.result_file)
        except ResourceError as e:
            log.warning("task %s: %s", ex.task_id, e)
            result = TaskResult(ex.exit_code, ex.wall_time, ex.signal, ex.walltime_exceeded,
                                **_usage(ex))
            self._terminal(ex.task_id, "TASK_FAILED", str(e), result)
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(pending.result_file)
        return True

    def _ended(self, ex: TaskExit, plan: _LogPlan | None = None) -> None:
        result = TaskResult(ex.exit_code, ex.wall_time, ex.signal, ex.walltime_exceeded,
                            **(_return_log(ex.task_id, plan) if plan is not None else {}),
                            **_usage(ex))
        out = outcome(ex)
        reason = "REASON_MAX_COMPLETION_TIME_REACHED" if out.walltime_exceeded else None
        if out.memory_exceeded:
            reason = "REASON_CONTAINER_LIMITATION_MEMORY"
        state = out.ending.value if out.ending is not Ending.ERROR else "TASK_FAILED"
        self._terminal(ex.task_id, state, out.message, result, reason)

    def _uploader(self, url: str, token: str) -> HttpSource | None:
        if not url.startswith(("http://", "https://")):
            return None
        key = (url, token)
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = source_for(*key)
        return source if isinstance(source, HttpSource) else None

    def _terminal(self, task_id: str, state: str, message: str = "",
                  result: TaskResult | None = None, reason: str | None = None) -> None:
        """Send the task's one terminal update (later ones are dropped)."""
        with self._lock:
            if task_id in self._done:
                return
            self._done.add(task_id)
            self._live.pop(task_id, None)
            self._killing.discard(task_id)
            self._log_plans.pop(task_id, None)
        self._update(task_id, state, message, result.encode() if result else None, reason)

    def _update(self, task_id: str, state: str, message: str = "", data: str | None = None,
                reason: str | None = None) -> None:
        status: dict[str, Any] = {"task_id": {"value": task_id}, "state": state}
        if message:
            status["message"] = message
        if data is not None:
            status["data"] = data
        if reason:
            status["reason"] = reason
        assert self.driver is not None
        self.driver.sendStatusUpdate(status)

    # ------------------------------------------------------------------ node reports
    def report(self) -> NodeReport:
        used, total = stats.memory()
        return NodeReport(self._hostname, self._ip, stats.cpu_load(), used, stats.cpu_count(),
                          total, len(self.runner.running()))

    def _report_loop(self) -> None:
        while not self._stop.is_set():
            if self.driver is not None:
                with contextlib.suppress(Exception):
                    self.driver.sendFrameworkMessage(self.report().encode())
            self._stop.wait(self.report_interval)

    # ------------------------------------------------------------------ work dirs
    def _work_dir(self, workflow_id: str) -> str | None:
        if not workflow_id:
            return None
        base = os.environ.get("MESOBATCH_WORK_BASE") or os.path.join(self.sandbox, "work")
        path = os.path.join(base, f"mesobatch-{workflow_id}")
        if path not in self._work_dirs:
            os.makedirs(path, exist_ok=True)
            self._work_dirs.add(path)
        return path

    def _cleanup(self) -> None:
        for path in self._work_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._work_dirs.clear()


@dataclass(frozen=True, slots=True)
class _LogPlan:
    """Where a task's log is, and how it goes back (--mesosMaxLogSize)."""

    name: str  #: its file name, the same here and in the scheduler's log directory
    path: str
    cap: int
    upload: HttpSource | None  #: None: only a log small enough to ride in the result


def _log_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _return_log(task_id: str, plan: _LogPlan) -> dict[str, Any]:
    """TaskResult's log fields: a small log inline, a larger one uploaded first (in the
    calling thread); nothing when neither worked."""
    collected = job_logs.collect(plan.path, plan.cap)
    if collected is None:  # never started: no log
        return {}
    if collected.inline:
        return {"log_file": plan.name, "log_size": collected.size,
                "log": b64encode(collected.body)}
    if plan.upload is None:
        log.warning("task %s: its log (%d bytes) stays in %s: no resource server to send "
                    "it to", task_id, collected.size, plan.path)
        return {}
    try:
        plan.upload.upload_log(plan.name, collected.body)
    except ResourceError as e:
        log.warning("task %s: %s; its log stays in %s", task_id, e, plan.path)
        return {}
    return {"log_file": plan.name, "log_size": collected.size}


def _usage(ex: TaskExit) -> dict[str, Any]:
    """What the task used, for its TaskResult."""
    return {"peak_memory": ex.peak_memory, "cpu_time": ex.cpu_time,
            "memory_exceeded": ex.memory_exceeded, "memory_at_most": ex.memory_at_most}
