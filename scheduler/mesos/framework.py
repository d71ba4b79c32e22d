"""The Scheduler callbacks: Mesos events in, core events out. Never blocks.

This object is separate from the driver (I/O) and from the public batch system; each
callback parses what Mesos sent, records what launches will need (the raw offer
entries, which executor runs where), and posts core events.
"""

from __future__ import annotations

import logging
import threading
import time

from ...executor.protocol import NodeReport
from ..backend import Post
from ..core.events import (
    AgentLost,
    Connected,
    Disconnected,
    NodeLoad,
    NodeStats,
    OfferRescinded,
    OffersReceived,
    TaskStatus,
)
from ..core.resources import Resources
from ..core.states import TaskState
from .interface import Message, Scheduler, SchedulerDriver
from .messages import parse_offer, parse_status

log = logging.getLogger(__name__)


class FrameworkState:
    """What launches need to know of past events (thread-safe)."""

    def __init__(self, workflow_id: str) -> None:
        self.lock = threading.Lock()
        self.workflow_id = workflow_id
        self.offers: dict[str, tuple[str, list[Message], bool]] = {}  # id -> agent, entries,
        #                                                               our executor runs
        self.executors: dict[str, str] = {}  # agent id -> our executor's id there
        self.executor_tasks: dict[str, set[str]] = {}  # executor id -> live task ids
        self._serial = 0
        self.fatal: str | None = None

    def executor_for(self, agent_id: str) -> str:
        """Our executor's id on an agent; a new one after the last one was lost, so that
        a late FAILURE of the old one can never be confused with the new one."""
        with self.lock:
            ex = self.executors.get(agent_id)
            if ex is None:
                self._serial += 1
                ex = self.executors[agent_id] = f"mesobatch-{self.workflow_id}-{self._serial}"
            return ex

    def launched(self, executor_id: str, task_ids: list[str]) -> None:
        with self.lock:
            self.executor_tasks.setdefault(executor_id, set()).update(task_ids)

    def ended(self, task_id: str) -> None:
        with self.lock:
            for tasks in self.executor_tasks.values():
                tasks.discard(task_id)

    def executor_lost(self, executor_id: str) -> set[str]:
        with self.lock:
            for agent, ex in list(self.executors.items()):
                if ex == executor_id:
                    del self.executors[agent]
            return self.executor_tasks.pop(executor_id, set())


class MesosFramework(Scheduler):
    def __init__(self, post: Post, state: FrameworkState, role: str | None,
                 executor_overhead: Resources) -> None:
        self.post = post
        self.state = state
        self.role = role
        self.overhead = executor_overhead

    def registered(self, driver: SchedulerDriver, frameworkId: Message,
                   masterInfo: Message) -> None:
        log.info("subscribed as framework %s", frameworkId.get("value"))
        self._connected()

    def reregistered(self, driver: SchedulerDriver, masterInfo: Message) -> None:
        log.info("subscribed again (master %s)", masterInfo.get("hostname", "?"))
        self._connected()

    def _connected(self) -> None:
        with self.state.lock:
            self.state.offers.clear()  # the master forgot every outstanding offer
        self.post(Connected(time.time()))

    def disconnected(self, driver: SchedulerDriver) -> None:
        with self.state.lock:
            self.state.offers.clear()
        self.post(Disconnected(time.time(), "lost the Mesos master"))

    def resourceOffers(self, driver: SchedulerDriver, offers: list[Message]) -> None:
        parsed = []
        with self.state.lock:
            running = dict(self.state.executors)
        for raw in offers:
            try:
                agent = raw["agent_id"]["value"]
                offer, entries = parse_offer(raw, self.role, running.get(agent), self.overhead)
            except (KeyError, TypeError, ValueError) as e:
                log.warning("ignoring an offer we cannot read (%s): %.300r", e, raw)
                continue
            ours = not offer.executor_overhead.cpus and not offer.executor_overhead.mem
            with self.state.lock:
                self.state.offers[offer.offer_id] = (offer.agent_id, entries, ours)
            parsed.append(offer)
        if parsed:
            self.post(OffersReceived(tuple(parsed), time.time()))

    def offerRescinded(self, driver: SchedulerDriver, offerId: Message) -> None:
        with self.state.lock:
            self.state.offers.pop(offerId["value"], None)
        self.post(OfferRescinded(offerId["value"], time.time()))

    def inverseOffers(self, driver: SchedulerDriver, offers: list[Message]) -> None:
        # Maintenance is coming: that node's offers carry `unavailability`, so the core
        # already places nothing new there and lets running jobs finish. Say so.
        accept = getattr(driver, "acceptInverseOffers", None)
        if accept is not None and offers:
            accept([o["id"] for o in offers])

    def statusUpdate(self, driver: SchedulerDriver, status: Message) -> None:
        log.debug("status %s %s %s %s", status.get("task_id"), status.get("state"),
                  status.get("reason"), status.get("message"))
        try:
            event = parse_status(status, time.time())
        except (KeyError, TypeError, ValueError) as e:
            log.warning("ignoring a status update we cannot read (%s): %.300r", e, status)
            return
        if event.state.terminal:
            self.state.ended(event.task_id)
        self.post(event)

    def frameworkMessage(self, driver: SchedulerDriver, executorId: Message,
                         slaveId: Message, message: bytes) -> None:
        try:
            report = NodeReport.decode(message)
        except (ValueError, TypeError):
            log.debug("ignoring a framework message: %.200r", message)
            return
        load = NodeLoad(report.cpu_load, report.mem_used, report.cores_total,
                        report.mem_total, report.tasks_running)
        self.post(NodeStats(slaveId["value"], report.hostname, report.ip, load, time.time()))

    def executorLost(self, driver: SchedulerDriver, executorId: Message, slaveId: Message,
                     status: int) -> None:
        lost = self.state.executor_lost(executorId["value"])
        code = (status >> 8) & 0xFF if status else 0
        now = time.time()
        events = [TaskStatus(t, TaskState.LOST, now, agent_id=(slaveId or {}).get("value"),
                             message=f"executor {executorId['value']} exited (status {code})")
                  for t in sorted(lost)]
        if events:
            self.post(*events)

    def slaveLost(self, driver: SchedulerDriver, slaveId: Message) -> None:
        # Partition-aware: its tasks come as TASK_UNREACHABLE and may come back.
        with self.state.lock:
            self.state.executors.pop(slaveId["value"], None)
        self.post(AgentLost(slaveId["value"], time.time(), tasks_lost=False))

    def error(self, driver: SchedulerDriver, message: str) -> None:
        log.error("Mesos ended this framework: %s", message)
        self.state.fatal = message
        now = time.time()
        with self.state.lock:
            tasks = sorted(t for ts in self.state.executor_tasks.values() for t in ts)
            self.state.executor_tasks.clear()
        self.post(Disconnected(now, message),
                  *(TaskStatus(t, TaskState.LOST, now, message=message) for t in tasks))
