"""What a pod's status says about its job (pure): still pending (and why), running,
ended (how), or unable to start. Shapes as the Pod v1 API reference gives them."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Any

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState

JsonDict = dict[str, Any]

#: a container waiting for one of these will not start without a change by a person
CANNOT_START = frozenset({
    "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError",
})
#: pod-level reasons of a Failed pod whose node or kubelet let it down, not the job
NODE_REASONS = frozenset({"Evicted", "NodeLost", "Shutdown", "Terminated",
                          "NodeAffinity", "UnexpectedAdmissionError"})


class Phase(enum.Enum):
    PENDING = "pending"  #: not yet running (scheduling, pulling, creating)
    RUNNING = "running"
    ENDED = "ended"  #: a terminal state: the outcome's fields say which
    UNKNOWN = "unknown"  #: the kubelet lost touch (phase Unknown): wait


@dataclass(frozen=True, slots=True)
class PodView:
    """The parts of a pod the backend acts on."""

    phase: Phase
    node: str | None = None
    #: ENDED: the job's state, exit code and why (MEMLIMIT, MAXJOBDURATION)
    state: TaskState | None = None
    exit_code: int | None = None
    exit_reason: BatchJobExitReason | None = None
    message: str = ""
    #: PENDING: the scheduler cannot place it; ``message`` quotes the scheduler
    unschedulable: bool = False
    #: PENDING: why the container waits (ContainerCreating, ErrImagePull, ...)
    waiting_reason: str | None = None
    started: float | None = None  #: the container's startedAt (epoch seconds)
    finished: float | None = None  #: the container's finishedAt

    @property
    def ran(self) -> bool:
        """The container started (so the pod has a log)."""
        return self.started is not None


def parse_time(text: object) -> float | None:
    """An RFC 3339 timestamp as epoch seconds; None if absent or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _d(value: object) -> JsonDict:
    """An object of the API's JSON, or {} where something else stands (never trusted)."""
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _condition(status: JsonDict, kind: str) -> JsonDict | None:
    conditions = status.get("conditions")
    for cond in conditions if isinstance(conditions, list) else []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def _container(status: JsonDict) -> JsonDict:
    statuses = status.get("containerStatuses")
    return _d(statuses[0]) if isinstance(statuses, list) and statuses else {}


def _said(reason: object, message: object) -> str:
    """``Reason: message``, whichever parts there are."""
    parts = [str(p) for p in (reason, message) if p]
    return ": ".join(parts)


def read_pod(pod: JsonDict, deleted: bool = False) -> PodView:
    """What ``pod`` says; ``deleted``: its last state, from a DELETED event (a pod gone
    before it ended was taken away: LOST)."""
    status = _d(pod.get("status"))
    node = _text(_d(pod.get("spec")).get("nodeName"))
    phase = status.get("phase")
    state = _d(_container(status).get("state"))
    term = _d(state.get("terminated")) or _d(_d(_container(status).get("lastState")).get(
        "terminated"))
    running = _d(state.get("running"))
    waiting = _d(state.get("waiting"))
    started = parse_time((term or running).get("startedAt"))
    finished = parse_time(term.get("finishedAt"))
    disruption = _condition(status, "DisruptionTarget")
    disrupted = disruption is not None and disruption.get("status") == "True"
    code = term.get("exitCode")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None

    def ended(state_: TaskState, message: str = "", exit_code: int | None = code,
              reason: BatchJobExitReason | None = None) -> PodView:
        return PodView(Phase.ENDED, node, state_, exit_code, reason, message,
                       started=started, finished=finished)

    if phase == "Succeeded":
        return ended(TaskState.FINISHED, exit_code=0 if code is None else code)
    if phase == "Failed" or (deleted and phase != "Succeeded"):
        term_reason = _text(term.get("reason"))
        pod_reason = _text(status.get("reason"))
        if disrupted:
            assert disruption is not None
            return ended(TaskState.LOST, "pod disrupted: " + _said(
                disruption.get("reason"), disruption.get("message")))
        if pod_reason in NODE_REASONS or term_reason == "ContainerStatusUnknown":
            return ended(TaskState.LOST, "pod lost: " + _said(
                pod_reason or term_reason, status.get("message") or term.get(
                    "message")))
        if pod_reason == "DeadlineExceeded":
            return ended(TaskState.FAILED, _said(pod_reason, status.get("message")),
                         reason=BatchJobExitReason.MAXJOBDURATION)
        if term_reason == "OOMKilled":
            return ended(TaskState.FAILED, "OOMKilled: the container went over its "
                         "memory limit", reason=BatchJobExitReason.MEMLIMIT)
        if term_reason == "StartError":
            return ended(TaskState.ERROR, "the container could not start: " + _said(
                term_reason, term.get("message")))
        waiting_reason = _text(waiting.get("reason"))
        if phase == "Failed" and _d(pod.get("metadata")).get("deletionTimestamp"):
            # its deletion (by someone, or by the garbage collector with its Job) ended it
            return ended(TaskState.LOST, "pod deleted while it ran" + (
                f" (exit {code})" if code is not None else ""))
        if phase != "Failed":  # deleted while pending or running, by someone else
            return ended(TaskState.LOST, "pod deleted before it ended"
                         + (f" ({waiting_reason})" if waiting_reason else ""),
                         exit_code=None)
        if code is None:  # failed without a container that ran
            return ended(TaskState.ERROR, _said(pod_reason or waiting_reason,
                                                status.get("message")) or "pod failed")
        return ended(TaskState.FAILED if code else TaskState.FINISHED,
                     _said(term_reason if code else None, term.get("message")))
    if phase == "Running":
        return PodView(Phase.RUNNING, node, started=started)
    if phase == "Unknown":
        return PodView(Phase.UNKNOWN, node)
    # Pending (or no status yet)
    reason = _text(waiting.get("reason"))
    if reason in CANNOT_START:
        return ended(TaskState.ERROR, "the pod cannot start: " + _said(
            reason, waiting.get("message")), exit_code=None)
    scheduled = _condition(status, "PodScheduled") or {}
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return PodView(Phase.PENDING, node, message=str(scheduled.get("message") or
                                                        "Unschedulable"),
                       unschedulable=True)
    return PodView(Phase.PENDING, node, waiting_reason=reason)

