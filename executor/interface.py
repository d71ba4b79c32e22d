"""The executor callback contract, with pymesos's method names and argument order.

An Executor written against this runs under our HTTP executor driver, and under
pymesos's MesosExecutorDriver where pymesos is installed. Messages are plain dicts in
the Mesos v1 JSON shapes (pymesos with use_addict passes addict Dicts, which are
dicts too); ``message`` arguments are decoded bytes.
"""

from __future__ import annotations

from typing import Any


class ExecutorDriver:
    """What an Executor may ask of its driver."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def abort(self) -> None: ...
    def join(self) -> Any: ...
    def run(self) -> Any: ...
    def sendStatusUpdate(self, status: dict[str, Any]) -> None: ...
    def sendFrameworkMessage(self, message: bytes) -> None: ...


class Executor:
    """Callbacks from the driver; every default does nothing."""

    def registered(self, driver: ExecutorDriver, executorInfo: dict[str, Any],
                   frameworkInfo: dict[str, Any], agentInfo: dict[str, Any]) -> None:
        """Subscribed to the agent for the first time."""

    def reregistered(self, driver: ExecutorDriver, agentInfo: dict[str, Any]) -> None:
        """Subscribed again after the agent restarted."""

    def disconnected(self, driver: ExecutorDriver) -> None:
        """Lost the agent (it may be restarting)."""

    def launchTask(self, driver: ExecutorDriver, task: dict[str, Any]) -> None:
        """Run ``task`` (a TaskInfo); answer with status updates."""

    def killTask(self, driver: ExecutorDriver, taskId: dict[str, Any]) -> None:
        """Kill a task; a terminal status update must follow."""

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        """A best-effort message from the scheduler."""

    def shutdown(self, driver: ExecutorDriver) -> None:
        """Kill every task and exit within the grace period."""

    def error(self, driver: ExecutorDriver, message: str) -> None:
        """The agent reported an error."""
