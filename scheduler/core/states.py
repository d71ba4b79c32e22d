"""The one task-state enum every backend translates its native states into."""

from __future__ import annotations

import enum
from functools import cached_property


class TaskState(enum.Enum):
    """Where a job's task stands. Members in TERMINAL never change again."""

    QUEUED = "queued"  #: waiting in the queue for resources
    LAUNCHING = "launching"  #: matched to an offer; launch sent to the backend
    STARTING = "starting"  #: the backend or executor is starting it
    RUNNING = "running"  #: its process runs
    KILLING = "killing"  #: a kill is under way
    UNREACHABLE = "unreachable"  #: its node is cut off; it may come back
    UNKNOWN = "unknown"  #: the backend reported a state we do not know; not terminal
    FINISHED = "finished"  #: exited with status 0
    FAILED = "failed"  #: exited with a non-zero status (or hit a limit)
    KILLED = "killed"  #: killed (by us or by the cluster)
    LOST = "lost"  #: its node or executor is gone
    ERROR = "error"  #: could not be started at all

    # cached: asked of every status, and an enum member's hash is Python code
    @cached_property
    def terminal(self) -> bool:
        return self in TERMINAL

    @cached_property
    def active(self) -> bool:
        """Holds resources on a node (launched and not yet terminal)."""
        return self not in TERMINAL and self is not TaskState.QUEUED


TERMINAL = frozenset(
    {TaskState.FINISHED, TaskState.FAILED, TaskState.KILLED, TaskState.LOST, TaskState.ERROR}
)
