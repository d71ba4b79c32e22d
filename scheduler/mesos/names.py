"""Names Toil's MesosBatchSystem has beyond the generic batch-system API, on ours.

``mesobatch.MesosBatchSystem`` (and Toil's ``--batchSystem mesos`` class) mix this in:
``get_default_mesos_endpoint()``, and the pymesos Scheduler callbacks, since Toil's
batch system is its own pymesos scheduler. The callbacks hand what they are given to
the backend's callback object (framework.py), exactly as our driver does; the
``driver`` argument is not used.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, cast

from ..options import option_fields
from .interface import Message
from .options import MesosOptions

if TYPE_CHECKING:
    from ..backend import Backend
    from .backend import MesosBackend
    from .framework import MesosFramework


class MesosNames:
    """Toil's MesosBatchSystem names on a mesobatch batch system of the mesos backend."""

    _backend: Backend

    @classmethod
    def get_default_mesos_endpoint(cls) -> str:
        """The master used when --mesosMaster is not given: $MESOBATCH_MESOS_MASTER,
        else $MESOS_MASTER, else localhost:5050 (Toil's guessed this host's IP)."""
        for dest, meta in option_fields(MesosOptions):
            if dest != "mesos_endpoint":
                continue
            for var in (meta.env, *meta.env_aliases):
                if os.environ.get(var):
                    return os.environ[var]
            field = next(f for f in dataclasses.fields(MesosOptions) if f.name == dest)
            return str(field.default)
        raise AssertionError("MesosOptions has no mesos_endpoint")  # pragma: no cover

    def _framework(self) -> MesosFramework:
        return cast("MesosBackend", self._backend).framework

    # pymesos's Scheduler callbacks, with its argument names and order
    def registered(self, driver: Any, frameworkId: Message, masterInfo: Message) -> None:
        """Subscribed (the first time)."""
        self._framework().registered(driver, frameworkId, masterInfo)

    def reregistered(self, driver: Any, masterInfo: Message) -> None:
        """Subscribed again (a new stream, maybe a new leading master)."""
        self._framework().reregistered(driver, masterInfo)

    def resourceOffers(self, driver: Any, offers: list[Message]) -> None:
        """Offers (Mesos v1 JSON shapes, or addict Dicts) for the core to match."""
        self._framework().resourceOffers(driver, offers)

    def statusUpdate(self, driver: Any, status: Message) -> None:
        """A task's status changed."""
        self._framework().statusUpdate(driver, status)

    def frameworkMessage(self, driver: Any, executorId: Message, slaveId: Message,
                         message: bytes) -> None:
        """A message from one of our executors (its node's load report)."""
        self._framework().frameworkMessage(driver, executorId, slaveId, message)

    def executorLost(self, driver: Any, executorId: Message, slaveId: Message,
                     status: int) -> None:
        """One of our executors ended: the tasks it held are lost."""
        self._framework().executorLost(driver, executorId, slaveId, status)
