"""Mesos task state names in the one state enum (the Mesos adapter's translate table)."""

from __future__ import annotations

from ..core.states import TaskState

#: Mesos TaskState names -> TaskState (src/common/protobuf_utils.cpp isTerminalState).
MESOS_STATES: dict[str, TaskState] = {
    "TASK_STAGING": TaskState.LAUNCHING,
    "TASK_STARTING": TaskState.STARTING,
    "TASK_RUNNING": TaskState.RUNNING,
    "TASK_KILLING": TaskState.KILLING,
    "TASK_UNREACHABLE": TaskState.UNREACHABLE,
    "TASK_UNKNOWN": TaskState.UNKNOWN,
    "TASK_FINISHED": TaskState.FINISHED,
    "TASK_FAILED": TaskState.FAILED,
    "TASK_KILLED": TaskState.KILLED,
    "TASK_ERROR": TaskState.ERROR,
    "TASK_LOST": TaskState.LOST,
    "TASK_DROPPED": TaskState.LOST,
    "TASK_GONE": TaskState.LOST,
    "TASK_GONE_BY_OPERATOR": TaskState.LOST,
}


def from_mesos(name: str) -> TaskState:
    """Translate a Mesos state name; unknown names map to UNKNOWN, never to a crash."""
    return MESOS_STATES.get(name, TaskState.UNKNOWN)
