"""DescribeJobs' JobDetail read as the core's task states (pure).

AWS Batch's states: SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, then SUCCEEDED or
FAILED. A FAILED job says why in ``statusReason`` and its container's ``reason``; the
reasons come from the API Reference and the user guide ("Job states", "Job timeouts",
"Troubleshooting"):

- ``Host EC2 (instance i-...) terminated.`` (a spot reclaim or host failure) -> LOST
- container reason ``OutOfMemoryError: ...`` -> FAILED, MEMLIMIT
- ``Job attempt duration exceeded timeout`` -> FAILED, MAXJOBDURATION
- ``Task failed to start`` / ``CannotStartContainerError``, ``CannotPullContainerError``,
  ``ResourceInitializationError`` ... -> ERROR (the command never ran)
- TerminateJob or CancelJob by someone else -> KILLED, with their reason
- anything else -> FAILED with the exit code, and the reason in the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState
from .requests import KILL_REASON

#: an attempt's instance went away under it (AWS writes this for spot reclaims too)
HOST_LOST = re.compile(r"Host EC2 .*terminated|[Ss]pot .*(interrupt|reclaim)|"
                       r"instance .*(terminated|retired|reclaimed)")
OUT_OF_MEMORY = re.compile(r"^OutOfMemoryError\b|OutOfMemory")
TIMED_OUT = "Job attempt duration exceeded timeout"
NOT_STARTED = re.compile(r"Task failed to start|Cannot(Start|Pull|Create)Container|"
                         r"ResourceInitializationError|CannotInspectContainerError|"
                         r"MISCONFIGURATION")
#: the reason AWS Batch gives for a container that exited on its own
ESSENTIAL_EXIT = "Essential container in task exited"

_LIVE = {
    "SUBMITTED": TaskState.STARTING,
    "PENDING": TaskState.STARTING,
    "RUNNABLE": TaskState.STARTING,
    "STARTING": TaskState.STARTING,
    "RUNNING": TaskState.RUNNING,
}


@dataclass(frozen=True, slots=True)
class Observed:
    """What one JobDetail says about a job."""

    status: str  #: AWS Batch's own status (SUBMITTED ... FAILED, or what it sent)
    state: TaskState
    exit_code: int | None = None
    wall_time: float | None = None
    message: str = ""
    exit_reason: BatchJobExitReason | None = None
    #: why a job waits (RUNNABLE with a statusReason, e.g. CAPACITY:... or MISCONFIGURATION:...)
    pending_reason: str | None = None


def observe(job: Any) -> Observed:
    """The task state a JobDetail stands for; an unknown status is UNKNOWN (not terminal).
    Any shape is read without error: a field of the wrong type counts as absent."""
    job = _mapping(job)
    status = _text(job.get("status"))
    reason = _text(job.get("statusReason"))
    if status in _LIVE:
        return Observed(status, _LIVE[status],
                        pending_reason=(reason or None) if status != "RUNNING" else None)
    container = _mapping(job.get("container"))
    attempts = job.get("attempts")
    last = _mapping(attempts[-1]) if isinstance(attempts, list) and attempts else {}
    last_container = _mapping(last.get("container"))
    exit_code = _exit_code(container.get("exitCode"))
    if exit_code is None:
        exit_code = _exit_code(last_container.get("exitCode"))
    container_reason = _text(container.get("reason")) or _text(last_container.get("reason"))
    wall = _wall_time(job, last)
    if status == "SUCCEEDED":
        return Observed(status, TaskState.FINISHED, exit_code or 0, wall)
    if status != "FAILED":
        return Observed(status, TaskState.UNKNOWN,
                        message=f"AWS Batch status {status[:40]!r}")
    attempt_reason = _text(last.get("statusReason"))
    why = "; ".join(dict.fromkeys(r for r in (reason, container_reason) if r
                                  and r != ESSENTIAL_EXIT))
    said = f"AWS Batch: {why}" if why else ""
    if HOST_LOST.search(reason) or HOST_LOST.search(attempt_reason):
        return Observed(status, TaskState.LOST, exit_code, wall, said or "AWS Batch: host lost",
                        BatchJobExitReason.LOST)
    if OUT_OF_MEMORY.search(container_reason) or OUT_OF_MEMORY.search(reason):
        return Observed(status, TaskState.FAILED, exit_code if exit_code is not None else 137,
                        wall, said, BatchJobExitReason.MEMLIMIT)
    if TIMED_OUT in reason or TIMED_OUT in attempt_reason:
        return Observed(status, TaskState.FAILED, exit_code, wall, said,
                        BatchJobExitReason.MAXJOBDURATION)
    if NOT_STARTED.search(reason) or NOT_STARTED.search(container_reason):
        return Observed(status, TaskState.ERROR, None, None, said)
    if (job.get("isTerminated") is True or job.get("isCancelled") is True) \
            and reason != KILL_REASON:
        return Observed(status, TaskState.KILLED, exit_code, wall,
                        said or "AWS Batch: terminated")
    if exit_code is None:  # failed without running (a dependency, a cancelled attempt)
        return Observed(status, TaskState.FAILED, None, wall,
                        said or "AWS Batch: failed without an exit code")
    return Observed(status, TaskState.FAILED, exit_code, wall, said)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    """A reason or status: text only, and not unbounded in a message."""
    return value[:1000] if isinstance(value, str) else ""


def _exit_code(value: Any) -> int | None:
    """An exit status as a process reports it (0-255; AWS sends whole numbers)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        return None
    return value


def _wall_time(job: Mapping[str, Any], last: Mapping[str, Any]) -> float | None:
    """Seconds the last attempt ran, never less than it did: AWS gives whole (truncated)
    milliseconds since the epoch, so a millisecond is added."""
    for source in (last, job):
        started, stopped = _millis(source.get("startedAt")), _millis(source.get("stoppedAt"))
        if started is not None and stopped is not None:
            return max(0, stopped - started + 1) / 1000.0
    return None


def _millis(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53
    return value if ok else None
