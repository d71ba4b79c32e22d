"""mesobatch's executor: runs each task with the task runner and reports on it.

Per task: TASK_STARTING, TASK_RUNNING, then exactly one terminal update carrying the
exit code and wall time (TaskResult in ``data``). Every so often a framework message
reports the node's load. SHUTDOWN kills everything and exits; the per-workflow work
directory goes with the last task (worker cleanup).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
from typing import Any

from . import stats
from .interface import Executor, ExecutorDriver
from .protocol import NodeReport, TaskPayload, TaskResult, log_path
from .runner import LaunchError, ProcessSpec, TaskExit, TaskRunner, build_environment

log = logging.getLogger(__name__)

#: variables of the executor's own environment that tasks should not inherit
_PRIVATE = ("MESOS_EXECUTOR_AUTHENTICATION_TOKEN",)


class MesobatchExecutor(Executor):
    def __init__(self, *, report_interval: float = 30.0, kill_grace: float = 5.0,
                 sandbox: str | None = None) -> None:
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
        except (ValueError, KeyError, TypeError) as e:
            self._terminal(task_id, "TASK_ERROR", f"cannot read the task's data: {e}")
            return
        grace = task.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds")
        with self._lock:
            if task_id in self._live or task_id in self._done:
                return  # a re-sent launch: it already runs or ran
            self._live[task_id] = grace / 1e9 if grace is not None else self.kill_grace
        self._update(task_id, "TASK_STARTING")
        job_env = dict(payload.env)
        job_env.setdefault("MESOBATCH_JOB_ID", str(payload.job_id))
        work_dir = self._work_dir(payload.workflow_id)
        if work_dir:
            job_env.setdefault("MESOBATCH_WORK_DIR", work_dir)
        spec = ProcessSpec(
            task_id=task_id, command=payload.command,
            env=build_environment(self._base_env, None, job_env, payload.cores),
            stdout=log_path(self.sandbox, payload.job_id, payload.name),
            stderr=log_path(self.sandbox, payload.job_id, payload.name),
            walltime=payload.walltime,
        )
        # Under the lock, so that a task ending at once cannot have its terminal update
        # sent ahead of TASK_RUNNING (the reaper's _terminal waits for this lock).
        with self._lock:
            try:
                self.runner.launch(spec)
            except LaunchError as e:
                failed: str | None = str(e)
            else:
                failed = None
                self._update(task_id, "TASK_RUNNING")
        if failed is not None:
            self._terminal(task_id, "TASK_FAILED", failed)

    def killTask(self, driver: ExecutorDriver, taskId: dict[str, Any]) -> None:
        task_id = taskId["value"]
        with self._lock:
            grace = self._live.get(task_id)
            done = task_id in self._done
        if done:
            return
        if grace is None or not self.runner.kill(task_id, grace):
            self._terminal(task_id, "TASK_KILLED", "not running on this executor")
            return
        self._update(task_id, "TASK_KILLING")

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        log.debug("framework message: %r", message[:200])

    def shutdown(self, driver: ExecutorDriver) -> None:
        """Kill everything within the grace period, report it, clean up, stop."""
        grace = float(getattr(getattr(driver, "agent", None), "shutdown_grace", 5.0))
        kill_grace = max(0.1, min(self.kill_grace, grace / 2))
        self._stop.set()
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
            result = TaskResult(ex.exit_code, ex.wall_time, ex.signal, ex.walltime_exceeded)
            if ex.killed:
                state = "TASK_KILLED"
            else:
                state = "TASK_FINISHED" if ex.exit_code == 0 else "TASK_FAILED"
            message = "wall time exceeded" if ex.walltime_exceeded else ""
            reason = "REASON_MAX_COMPLETION_TIME_REACHED" if ex.walltime_exceeded else None
            self._terminal(ex.task_id, state, message, result, reason)

    def _terminal(self, task_id: str, state: str, message: str = "",
                  result: TaskResult | None = None, reason: str | None = None) -> None:
        """Send the task's one terminal update (later ones are dropped)."""
        with self._lock:
            if task_id in self._done:
                return
            self._done.add(task_id)
            self._live.pop(task_id, None)
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
