"""The Scheduler callbacks: Mesos events in, core events out. Never blocks.

This object is separate from the driver (I/O) and from the public batch system. Each
callback parses what Mesos sent and posts core events; nothing here keeps offers (an
offer's resource entries travel inside the core's Offer, see messages.parse_offer).
The one thing the callbacks note is the life of our executors (executors.py), which
only Mesos messages tell.
"""

from __future__ import annotations

import logging
import os
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
from .executors import Executors
from .interface import Message, Scheduler, SchedulerDriver
from .messages import parse_offer, parse_update

log = logging.getLogger(__name__)


class MesosFramework(Scheduler):
    """Translates the driver's callbacks into core events for ``post``."""

    def __init__(self, post: Post, executors: Executors, role: str | None,
                 executor_overhead: Resources, log_dir: str | None = None) -> None:
        self.post = post
        self.executors = executors
        self.role = role
        self.overhead = executor_overhead
        #: where logs that come inside terminal updates go (None: they are not asked for)
        self.log_dir = log_dir

    def registered(self, driver: SchedulerDriver, frameworkId: Message,
                   masterInfo: Message) -> None:
        log.info("subscribed as framework %s", frameworkId.get("value"))
        self.post(Connected(time.time()))  # the core drops offers of older subscriptions

    def reregistered(self, driver: SchedulerDriver, masterInfo: Message) -> None:
        log.info("subscribed again (master %s)", masterInfo.get("hostname", "?"))
        self.post(Connected(time.time()))

    def disconnected(self, driver: SchedulerDriver) -> None:
        self.post(Disconnected(time.time(), "lost the Mesos master"))

    def resourceOffers(self, driver: SchedulerDriver, offers: list[Message]) -> None:
        parsed = []
        for raw in offers:
            try:
                agent = raw["agent_id"]["value"]
                parsed.append(parse_offer(raw, self.role, self.executors.on(agent),
                                          self.overhead))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                log.warning("ignoring an offer we cannot read (%s): %.300r", e, raw)
        if parsed:
            self.post(OffersReceived(tuple(parsed), time.time()))

    def offerRescinded(self, driver: SchedulerDriver, offerId: Message) -> None:
        self.post(OfferRescinded(offerId["value"], time.time()))

    def inverseOffers(self, driver: SchedulerDriver, offers: list[Message]) -> None:
        # Maintenance is coming: that node's offers carry `unavailability`, so the core
        # already places nothing new there and lets running jobs finish. Say so.
        if offers:
            driver.acceptInverseOffers([o["id"] for o in offers])

    def statusUpdate(self, driver: SchedulerDriver, status: Message) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("status %s %s %s %s", status.get("task_id"), status.get("state"),
                      status.get("reason"), status.get("message"))
        try:
            event, returned = parse_update(status, time.time())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("ignoring a status update we cannot read (%s): %.300r", e, status)
            return
        if event.state.terminal:
            self.executors.ended(event.task_id)
            if self.log_dir is not None and returned is not None:
                self._write_log(*returned)  # before the job is reported
        self.post(event)

    def _write_log(self, name: str, content: bytes) -> None:
        assert self.log_dir is not None
        try:
            with open(os.path.join(self.log_dir, name), "wb") as f:
                f.write(content)
        except OSError as e:
            log.warning("cannot write the job log %s: %s", name, e)

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
        lost = self.executors.lost(executorId["value"])
        code = (status >> 8) & 0xFF if status else 0
        now = time.time()
        events = [TaskStatus(t, TaskState.LOST, now, agent_id=(slaveId or {}).get("value"),
                             message=f"executor {executorId['value']} exited (status {code})")
                  for t in sorted(lost)]
        if events:
            self.post(*events)

    def slaveLost(self, driver: SchedulerDriver, slaveId: Message) -> None:
        # Partition-aware: its tasks come as TASK_UNREACHABLE and may come back.
        self.executors.agent_lost(slaveId["value"])
        self.post(AgentLost(slaveId["value"], time.time(), tasks_lost=False))

    def error(self, driver: SchedulerDriver, message: str) -> None:
        log.error("Mesos ended this framework: %s", message)
        now = time.time()
        self.post(Disconnected(now, message),
                  *(TaskStatus(t, TaskState.LOST, now, message=message)
                    for t in self.executors.all_lost()))
