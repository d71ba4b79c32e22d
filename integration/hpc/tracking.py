"""What one poll says about one submitted job: pure rules, no I/O.

The evidence: the queue's answer, accounting's (asked only for jobs gone from the
queue), and the wrapper's records. The rules, in order:

1. an exit record of 0 ends the job FINISHED at once (the command succeeded; nothing
   the system adds can change that);
2. a terminal state from the queue or accounting ends the job with that state and
   reason (MEMLIMIT, MAXJOBDURATION, ...), and the recorded exit status if there is one;
   A job in a pack (packing.py) is the exception: its pack ends well when its jobs
   have ended, so a pack that ended well while one of its jobs recorded no exit status
   says nothing of that job: it is LOST, after waiting a few polls for the record (a
   shared file system may show it late); and a job of a pack that was signalled (a
   cancel, a time limit) waits for the pack's end, its reason, while the queue shows
   the pack ending, whatever its exit record says;
3. a non-zero exit record ends the job FAILED, after waiting a few polls for
   accounting to say why (only where there is accounting);
4. a live state from the queue (or accounting) is the job's state;
5. a job seen nowhere and without an exit record, after a queue query that answered,
   counts one poll towards vanishing; after ``vanish_after`` such polls in a row (and,
   where there is accounting, once its ``accounting_delay`` has passed) it is LOST,
   with a message that says so. Never an endless wait, never assumed success.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState
from .dialect import NativeStatus
from .wrapper import ExitRecord, StartRecord, wall_time


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything one poll learned about one job."""

    queued: NativeStatus | None = None  #: the queue's answer, if it shows the job
    queue_answered: bool = False  #: the status query ran (absence means gone)
    accounted: NativeStatus | None = None  #: accounting's answer, if it knows the job
    has_accounting: bool = False  #: the system keeps accounting at all
    started: StartRecord | None = None
    exited: ExitRecord | None = None
    at: float = 0.0  #: when (monotonic seconds), for the accounting delay
    packed: bool = False  #: the job runs in a pack: the native state is the pack's
    pack_signalled: bool = False  #: its pack's script got SIGTERM (a cancel, a time limit)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The job's state now; terminal states end it."""

    state: TaskState
    exit_code: int | None = None
    exit_reason: BatchJobExitReason | None = None
    message: str = ""
    wall_time: float | None = None
    node: str | None = None
    pending_reason: str | None = None


@dataclass(slots=True)
class Tracker:
    """One job's counters across polls."""

    native_id: str
    record_path: str  #: where its exit record would be (for messages)
    missing: int = 0  #: polls in a row seen nowhere
    missing_since: float | None = None  #: ``Evidence.at`` of the first of those polls
    waited: int = 0  #: polls a non-zero exit record has waited for accounting's reason

    def judge(self, ev: Evidence, *, vanish_after: int, reason_grace: int,
              accounting_delay: float = 0.0) -> Verdict | None:
        """The job's state from this poll's evidence; None: nothing new is known.
        ``accounting_delay``: seconds the system may take to write a finished job's
        accounting (Grid Engine's flush_time); a job is not LOST before it passed."""
        wall = _wall(ev.started, ev.exited)
        node = ev.started.node if ev.started is not None else None
        if ev.exited is not None and ev.exited.exit_code == 0:
            return Verdict(TaskState.FINISHED, 0, wall_time=wall, node=node)
        native = next((s for s in (ev.queued, ev.accounted)
                       if s is not None and s.state.terminal), None)
        if (native is not None and ev.packed and ev.exited is None
                and native.state in (TaskState.FINISHED, TaskState.FAILED)
                and native.exit_reason is None):
            if self.waited < reason_grace:
                self.waited += ev.queue_answered
                return _live(None, node)
            return Verdict(TaskState.LOST, message=(
                f"the pack {self.native_id} this job ran in ended ({native.state.value}), but "
                f"the job recorded no exit status in {self.record_path}"), node=node)
        if native is not None:
            return _ended(native, ev.exited, wall, node)
        live = ev.queued or ev.accounted
        if ev.exited is not None and ev.pack_signalled and ev.queued is not None:
            # its pack was signalled (cancelled, timed out): the command's death by that
            # signal is the pack's end, which the queue shows once its processes are gone
            return _live(live, node)
        if ev.exited is not None:
            if ev.has_accounting and self.waited < reason_grace:
                self.waited += ev.queue_answered  # polls, not record scans, count
                return _live(live, node)
            return Verdict(TaskState.FAILED, ev.exited.exit_code, wall_time=wall, node=node)
        if live is not None:
            self.missing, self.missing_since = 0, None
            return _live(live, node)
        if not ev.queue_answered:
            return _live(None, node)
        self.missing += 1
        if self.missing_since is None:
            self.missing_since = ev.at
        if self.missing < vanish_after or (
                ev.has_accounting and ev.at - self.missing_since < accounting_delay):
            return _live(None, node)
        where = "not in the queue" + (", not in accounting" if ev.has_accounting
                                      else " (and the system keeps no accounting)")
        ran = (f"it started on {ev.started.node}" if ev.started is not None and ev.started.node
               else "it started" if ev.started is not None else "it never started")
        return Verdict(TaskState.LOST, message=(
            f"job {self.native_id} vanished: {where}, and no exit status recorded in "
            f"{self.record_path} after {self.missing} polls; {ran}"), node=node)


def _live(status: NativeStatus | None, node: str | None) -> Verdict | None:
    if status is None:
        return Verdict(TaskState.RUNNING, node=node) if node is not None else None
    state = status.state
    if state is TaskState.STARTING and node is not None:
        state = TaskState.RUNNING  # the wrapper runs: the queue has not caught up
    return Verdict(state, node=status.node or node, message=status.message,
                   pending_reason=status.pending_reason if state is TaskState.STARTING
                   else None)


def _ended(native: NativeStatus, exited: ExitRecord | None, wall: float | None,
           node: str | None) -> Verdict:
    state, code = native.state, native.exit_code
    if exited is not None:
        code = exited.exit_code  # the command's own status, exact
        if state is TaskState.FINISHED:  # (non-zero here: a zero record ended it earlier)
            state = TaskState.FAILED
    elif state is TaskState.FINISHED and code is None:
        code = 0
    return Verdict(state, code, native.exit_reason, native.message,
                   wall if wall is not None else native.wall_time, native.node or node)


def _wall(started: StartRecord | None, exited: ExitRecord | None) -> float | None:
    if started is None or exited is None:
        return None
    return wall_time(started, exited)
