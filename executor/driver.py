"""The executor driver for ``POST $MESOS_AGENT_ENDPOINT/api/v1/executor``.

It subscribes with what is not yet acknowledged, turns events into Executor callbacks,
and sends UPDATE (with a fresh 16-byte uuid, source SOURCE_EXECUTOR) and MESSAGE calls
from one sender thread, so a task's updates go out in the order they were made: the
calls waiting are written at once (pipelined), their answers read after. When
the agent goes away, a checkpointing executor re-subscribes with backoff for up to
MESOS_RECOVERY_TIMEOUT; a non-checkpointing one stops.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ..common.outbox import Outbox
from ..common.transport import Answer, EventStream, Transport, TransportError
from .interface import Executor, ExecutorDriver
from .protocol import b64decode, b64encode

log = logging.getLogger(__name__)

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0,
          "days": 86400.0, "weeks": 604800.0}


def parse_duration(text: str | None, default: float) -> float:
    """A stout duration such as "5secs", "15mins", "2secs" -> seconds."""
    if not text:
        return default
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-z]+)\s*", text)
    if not m or m.group(2) not in _UNITS:
        log.warning("cannot parse duration %r; using %s s", text, default)
        return default
    return float(m.group(1)) * _UNITS[m.group(2)]


def _is_id(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("value"), str) and bool(
        value["value"])


def _is_task(value: Any) -> bool:
    return isinstance(value, dict) and _is_id(value.get("task_id"))


def event_problem(event: Any) -> str | None:
    """What makes an executor event unusable, or None."""
    if not isinstance(event, dict):
        return f"not a JSON object but {type(event).__name__}"
    kind = event.get("type")
    raw = event.get(kind.lower()) if isinstance(kind, str) else None
    if kind in ("SUBSCRIBED", "LAUNCH", "LAUNCH_GROUP", "KILL", "ACKNOWLEDGED", "MESSAGE") \
            and not isinstance(raw, dict):
        return f"{kind} without an object {kind.lower()!r}"
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "LAUNCH" and not _is_task(body.get("task")):
        return "LAUNCH without a task that has a task_id"
    if kind == "LAUNCH_GROUP":
        group = body.get("task_group")
        tasks = group.get("tasks") if isinstance(group, dict) else None
        if not isinstance(tasks, list) or not all(_is_task(t) for t in tasks):
            return "LAUNCH_GROUP without a list of tasks that have task_ids"
    if kind == "KILL" and not _is_id(body.get("task_id")):
        return "KILL without a task_id"
    if kind == "ACKNOWLEDGED" and not (isinstance(body.get("uuid"), str)
                                       and _is_id(body.get("task_id"))):
        return "ACKNOWLEDGED without a uuid and a task_id"
    if kind == "MESSAGE":
        data = body.get("data")
        try:
            b64decode(data if isinstance(data, str) else "\x00")
        except ValueError:
            return "MESSAGE whose data is not base64"
    return None


class AgentEnvironment:
    """What the agent tells its executor through the environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        try:
            self.framework_id = env["MESOS_FRAMEWORK_ID"]
            self.executor_id = env["MESOS_EXECUTOR_ID"]
            self.endpoint = env["MESOS_AGENT_ENDPOINT"]
        except KeyError as e:
            raise RuntimeError(f"{e.args[0]} is not set: this must be started by a Mesos "
                               "agent") from None
        self.checkpoint = env.get("MESOS_CHECKPOINT") == "1"
        self.recovery_timeout = parse_duration(env.get("MESOS_RECOVERY_TIMEOUT"), 900.0)
        # The scheduler's own limit (--mesosAgentLossTimeout): cut off from the agent for
        # longer, its jobs are about to be reported lost, so they must not run on.
        own = env.get("MESOBATCH_AGENT_LOSS_TIMEOUT")
        if own:
            self.recovery_timeout = min(self.recovery_timeout,
                                        parse_duration(own, self.recovery_timeout))
        self.backoff_max = parse_duration(env.get("MESOS_SUBSCRIPTION_BACKOFF_MAX"), 2.0)
        self.shutdown_grace = parse_duration(env.get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"),
                                             5.0)
        self.sandbox = env.get("MESOS_SANDBOX") or env.get("MESOS_DIRECTORY") or os.getcwd()
        self.token = env.get("MESOS_EXECUTOR_AUTHENTICATION_TOKEN")
        scheme = "https" if env.get("MESOS_SSL_ENABLED") in ("1", "true") else "http"
        self.url = f"{scheme}://{self.endpoint}/api/v1/executor"


class MesosExecutorDriver(ExecutorDriver):
    """Drives an Executor over the v1 executor HTTP API."""

    #: calls written at once at most (their answers fit any socket buffer)
    BATCH = 32

    def __init__(self, executor: Executor, env: Mapping[str, str] | None = None) -> None:
        self.executor = executor
        self.agent = AgentEnvironment(os.environ if env is None else env)
        auth = f"Bearer {self.agent.token}" if self.agent.token else None
        self._http = Transport(authorization=auth, timeout=30.0)
        self._ids = {"framework_id": {"value": self.agent.framework_id},
                     "executor_id": {"value": self.agent.executor_id}}
        self._lock = threading.Lock()
        self._unacked_updates: dict[str, dict[str, Any]] = {}  # uuid -> update
        self._unacked_tasks: dict[str, dict[str, Any]] = {}  # task id -> TaskInfo
        self._outbox: Outbox[dict[str, Any]] = Outbox()
        self._stream: EventStream | None = None
        self._stopped = threading.Event()
        self._subscribed_once = False
        self._generation = 0  # SUBSCRIBEs so far
        self._sender = threading.Thread(target=self._send_loop, name="executor-sender",
                                        daemon=True)
        self._thread: threading.Thread | None = None
        self.status = "created"

    # ------------------------------------------------------------------ driver API
    def start(self) -> None:
        self._sender.start()
        self._thread = threading.Thread(target=self._run, name="executor-driver", daemon=True)
        self._thread.start()
        self.status = "running"

    def run(self) -> str:
        self.start()
        return self.join()

    def join(self) -> str:
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)
        return self.status

    def stop(self) -> None:
        """Stop after the updates already made have been handed to the agent."""
        self._outbox.close()
        if self._sender.ident is not None:
            self._sender.join(timeout=5)
        self._stop("stopped")

    def abort(self) -> None:
        self._stop("aborted")

    def _stop(self, status: str) -> None:
        self.status = status
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def sendStatusUpdate(self, status: dict[str, Any]) -> None:
        status = dict(status)
        status.setdefault("executor_id", self._ids["executor_id"])
        status["source"] = "SOURCE_EXECUTOR"
        status["uuid"] = b64encode(uuid.uuid4().bytes)
        status.setdefault("timestamp", time.time())
        update = {"status": status}
        with self._lock:
            self._unacked_updates[status["uuid"]] = update
        self._outbox.put({"type": "UPDATE", **self._ids, "update": update})

    def sendFrameworkMessage(self, message: bytes) -> None:
        self._outbox.put({"type": "MESSAGE", **self._ids,
                               "message": {"data": b64encode(message)}})

    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._unacked_updates)

    # ------------------------------------------------------------------ subscription
    def _subscribe_body(self) -> dict[str, Any]:
        self._generation += 1  # updates failed before now ride on this SUBSCRIBE
        with self._lock:
            tasks = list(self._unacked_tasks.values())
            updates = list(self._unacked_updates.values())
        return {"type": "SUBSCRIBE", **self._ids, "subscribe": {
            "unacknowledged_tasks": tasks, "unacknowledged_updates": updates}}

    def _run(self) -> None:
        lost_since: float | None = None
        backoff = 0.1
        while not self._stopped.is_set():
            try:
                self._stream = self._http.stream(self.agent.url, self._subscribe_body())
                answer = self._stream.answer
                if answer is not None:
                    raise TransportError(f"HTTP {answer.status}: {answer.text}")
                lost_since, backoff = None, 0.1
                for event in self._stream.events():
                    self._dispatch(event)
                    if self._stopped.is_set():
                        return
                reason = "the agent closed the stream"
            except TransportError as e:
                reason = str(e)
            if self._stopped.is_set():
                return
            if self._subscribed_once:
                self.executor.disconnected(self)
            if not self.agent.checkpoint:
                log.warning("lost the agent (%s); not checkpointing, so stopping", reason)
                self._stop("aborted")
                return
            now = time.monotonic()
            lost_since = lost_since or now
            if now - lost_since > self.agent.recovery_timeout:
                log.warning("agent did not come back within %.0f s; stopping",
                            self.agent.recovery_timeout)
                self._stop("aborted")
                return
            log.info("lost the agent (%s); subscribing again in %.2f s", reason, backoff)
            self._stopped.wait(backoff * random.uniform(0.5, 1.0))
            # At most half of MESOS_SUBSCRIPTION_BACKOFF_MAX apart: a restarted agent waits
            # that long (its executor_reregistration_timeout) for us, then kills us.
            backoff = min(backoff * 2, self.agent.backoff_max / 2)

    def _dispatch(self, event: Any) -> None:
        """Hand one event to the executor. A malformed event is logged and skipped; an
        exception from a callback never ends this thread (a launch that raised fails
        only its own task)."""
        problem = event_problem(event)
        if problem is not None:
            log.warning("skipping a malformed event from the agent (%s): %.300r", problem,
                        event)
            return
        try:
            self._handle(event)
        except Exception as e:
            log.exception("executor event %s not handled", event.get("type"))
            if event.get("type") == "LAUNCH":
                task_id = event["launch"]["task"]["task_id"]
                self.sendStatusUpdate({"task_id": task_id, "state": "TASK_ERROR",
                                       "message": f"the executor could not launch it: {e}"})

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        ex = self.executor
        if kind == "SUBSCRIBED":
            body = event["subscribed"]
            if self._subscribed_once:
                ex.reregistered(self, body.get("agent_info") or {})
            else:
                self._subscribed_once = True
                ex.registered(self, body.get("executor_info") or {},
                              body.get("framework_info") or {}, body.get("agent_info") or {})
        elif kind == "LAUNCH":
            task = event["launch"]["task"]
            with self._lock:
                self._unacked_tasks[task["task_id"]["value"]] = task
            ex.launchTask(self, task)
        elif kind == "LAUNCH_GROUP":
            for task in event["launch_group"]["task_group"]["tasks"]:
                with self._lock:
                    self._unacked_tasks[task["task_id"]["value"]] = task
                try:
                    ex.launchTask(self, task)
                except Exception as e:  # the group's other tasks still go
                    log.exception("task %s not launched", task["task_id"]["value"])
                    self.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_ERROR",
                                           "message": f"the executor could not launch it: {e}"})
        elif kind == "KILL":
            ex.killTask(self, event["kill"]["task_id"])
        elif kind == "ACKNOWLEDGED":
            ack = event["acknowledged"]
            with self._lock:
                self._unacked_updates.pop(ack["uuid"], None)
                self._unacked_tasks.pop(ack["task_id"]["value"], None)
        elif kind == "MESSAGE":
            ex.frameworkMessage(self, b64decode(event["message"]["data"]))
        elif kind == "SHUTDOWN":
            ex.shutdown(self)
        elif kind == "ERROR":
            error = event.get("error")
            ex.error(self, str(error.get("message", "")) if isinstance(error, dict) else "")
        elif kind == "HEARTBEAT":
            pass
        else:
            log.debug("ignoring executor event %.100r", kind)

    # ------------------------------------------------------------------ sending
    def _send_loop(self) -> None:
        while (calls := self._outbox.take(self.BATCH)) is not None:
            self._http.deliver(
                self.agent.url, calls, self._answered, self._lost,
                bodies=[{k: v for k, v in call.items() if k != "_attempt"}
                        if "_attempt" in call else call for call in calls])

    def _lost(self, call: dict[str, Any], why: str) -> None:
        log.info("%s not delivered: %s", call["type"], why)
        self._retry(call)

    def _answered(self, call: dict[str, Any], answer: Answer) -> None:
        if answer.status == 503:  # the agent is still recovering
            self._retry(call)
        elif answer.status != 202:
            log.warning("agent refused %s: HTTP %s %s", call["type"], answer.status,
                        answer.text)

    def _retry(self, call: dict[str, Any]) -> None:
        """Send an undelivered UPDATE again later, unless a SUBSCRIBE carries it first
        (the agent then has it) or it has been acknowledged meanwhile."""
        if call["type"] != "UPDATE" or self._stopped.is_set():
            return
        generation = self._generation
        attempt = call.get("_attempt", 0) + 1
        delay = min(0.1 * 2**attempt, self.agent.backoff_max)

        def again() -> None:
            uuid_ = call["update"]["status"]["uuid"]
            with self._lock:
                pending = uuid_ in self._unacked_updates
            if pending and generation == self._generation and not self._stopped.is_set():
                self._outbox.put({**call, "_attempt": attempt})

        timer = threading.Timer(delay, again)
        timer.daemon = True
        timer.start()
