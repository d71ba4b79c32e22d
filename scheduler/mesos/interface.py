"""The scheduler callback contract, with pymesos's method names and argument order.

Our HTTP driver (driver.py) drives a Scheduler written against this; so does pymesos's
MesosSchedulerDriver where pymesos is installed. Messages are plain dicts in the Mesos
v1 JSON shapes (addict Dicts under pymesos's use_addict, which are dicts too).
Callbacks must not block: they hand events on and return.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: A Mesos v1 message in its JSON shape (the one definition every module here uses).
Message = dict[str, Any]


class SchedulerDriver:
    """What a Scheduler may ask of its driver (every call returns at once).

    Names and argument order are pymesos's; reviveOffers and suppressOffers take the
    roles of v1 REVIVE/SUPPRESS, and killTask may add v1 KILL's agent and grace period.
    """

    def start(self) -> None: ...
    def stop(self, failover: bool = False) -> None: ...
    def abort(self) -> None: ...
    def join(self) -> Any: ...
    def run(self) -> Any: ...
    def launchTasks(self, offerIds: Any, tasks: list[Message],
                    filters: Message | None = None) -> None: ...
    def acceptOffers(self, offerIds: Any, operations: list[Message],
                     filters: Message | None = None) -> None: ...
    def declineOffer(self, offerIds: Any, filters: Message | None = None) -> None: ...
    def acceptInverseOffers(self, offerIds: Any, filters: Message | None = None) -> None: ...
    def declineInverseOffer(self, offerIds: Any, filters: Message | None = None) -> None: ...
    def reviveOffers(self, roles: Iterable[str] | None = None) -> None: ...
    def suppressOffers(self, roles: Iterable[str] | None = None) -> None: ...
    def killTask(self, taskId: Any, agentId: Any = None,
                 gracePeriod: float | None = None) -> None: ...
    def acknowledgeStatusUpdate(self, status: Message) -> None: ...
    def reconcileTasks(self, tasks: list[Message]) -> None: ...
    def sendFrameworkMessage(self, executorId: Any, slaveId: Any, data: bytes) -> None: ...
    def requestResources(self, requests: list[Message]) -> None: ...


class Scheduler:
    """Callbacks from the driver; every default does nothing."""

    def registered(self, driver: SchedulerDriver, frameworkId: Message,
                   masterInfo: Message) -> None:
        """Subscribed for the first time (frameworkId is new, or the one we asked for)."""

    def reregistered(self, driver: SchedulerDriver, masterInfo: Message) -> None:
        """Subscribed again (a new stream, maybe a new leading master)."""

    def disconnected(self, driver: SchedulerDriver) -> None:
        """The subscription is gone; offers are void until we subscribe again."""

    def resourceOffers(self, driver: SchedulerDriver, offers: list[Message]) -> None: ...

    def inverseOffers(self, driver: SchedulerDriver, offers: list[Message]) -> None: ...

    def offerRescinded(self, driver: SchedulerDriver, offerId: Message) -> None: ...

    def statusUpdate(self, driver: SchedulerDriver, status: Message) -> None:
        """A task's state changed. Returning acknowledges it (implicit acknowledgement)."""

    def frameworkMessage(self, driver: SchedulerDriver, executorId: Message,
                         slaveId: Message, message: bytes) -> None: ...

    def slaveLost(self, driver: SchedulerDriver, slaveId: Message) -> None: ...

    def executorLost(self, driver: SchedulerDriver, executorId: Message, slaveId: Message,
                     status: int) -> None: ...

    def error(self, driver: SchedulerDriver, message: str) -> None:
        """An unrecoverable error; the driver has stopped."""

    # the v1 name for the same thing
    def agentLost(self, driver: SchedulerDriver, agentId: Message) -> None:
        self.slaveLost(driver, agentId)
