"""The rules that turn one poll's evidence into a job's state (pure)."""

from __future__ import annotations

from typing import Any

from mesobatch.integration.hpc.dialect import NativeStatus
from mesobatch.integration.hpc.tracking import Evidence, Tracker, Verdict
from mesobatch.integration.hpc.wrapper import ExitRecord, StartRecord
from mesobatch.scheduler.contract import BatchJobExitReason
from mesobatch.scheduler.core.states import TaskState

STARTED = StartRecord("node7", 100.0)


def tracker() -> Tracker:
    return Tracker("42", "/logs/records/1.0.exit")


def judge(t: Tracker, **evidence: Any) -> Verdict | None:
    return t.judge(Evidence(**evidence), vanish_after=3, reason_grace=2)


def test_a_zero_exit_record_finishes_the_job_whatever_the_queue_says() -> None:
    v = judge(tracker(), queued=NativeStatus("42", TaskState.RUNNING), queue_answered=True,
              started=STARTED, exited=ExitRecord(0, 102.5))
    assert v is not None and v.state is TaskState.FINISHED and v.exit_code == 0
    assert v.wall_time == 2.5 and v.node == "node7"


def test_a_terminal_native_state_gives_the_reason_and_the_record_the_status() -> None:
    oom = NativeStatus("42", TaskState.FAILED, exit_code=0,
                       exit_reason=BatchJobExitReason.MEMLIMIT, wall_time=9.0)
    v = judge(tracker(), queue_answered=True, accounted=oom, has_accounting=True,
              started=STARTED, exited=ExitRecord(137, 101.0))
    assert v is not None and (v.state, v.exit_code, v.exit_reason) == (
        TaskState.FAILED, 137, BatchJobExitReason.MEMLIMIT)
    assert v.wall_time == 1.0
    # without records: the system's own figures
    v = judge(tracker(), queue_answered=True, accounted=oom, has_accounting=True)
    assert v is not None and v.exit_code == 0 and v.wall_time == 9.0
    # a system that says COMPLETED without a status means 0; a record saying
    # otherwise wins (the command failed)
    done = NativeStatus("42", TaskState.FINISHED)
    v = judge(tracker(), queued=done, queue_answered=True)
    assert v is not None and (v.state, v.exit_code) == (TaskState.FINISHED, 0)
    v = judge(tracker(), queued=done, queue_answered=True, exited=ExitRecord(3, 1.0))
    assert v is not None and (v.state, v.exit_code) == (TaskState.FAILED, 3)


def test_a_nonzero_record_waits_a_few_polls_for_accounting_then_fails() -> None:
    t = tracker()
    ev = {"queue_answered": True, "has_accounting": True, "exited": ExitRecord(2, 5.0)}
    assert judge(t, **ev) is None
    assert judge(t, exited=ExitRecord(2, 5.0), has_accounting=True) is None  # a scan
    assert judge(t, **ev) is None
    v = judge(t, **ev)
    assert v is not None and (v.state, v.exit_code) == (TaskState.FAILED, 2)
    # without accounting there is nothing to wait for
    v = judge(tracker(), exited=ExitRecord(2, 5.0))
    assert v is not None and v.state is TaskState.FAILED


def test_live_states_come_from_the_queue_or_the_start_record() -> None:
    pending = NativeStatus("42", TaskState.STARTING, pending_reason="Priority")
    v = judge(tracker(), queued=pending, queue_answered=True)
    assert v is not None and v.state is TaskState.STARTING and v.pending_reason == "Priority"
    v = judge(tracker(), queued=pending, queue_answered=True, started=STARTED)
    assert v is not None and v.state is TaskState.RUNNING and v.pending_reason is None
    v = judge(tracker(), started=STARTED)
    assert v is not None and v.state is TaskState.RUNNING
    assert judge(tracker()) is None


def test_a_job_seen_nowhere_for_n_answered_polls_in_a_row_is_lost() -> None:
    t = tracker()
    gone = {"queue_answered": True, "has_accounting": True}
    assert judge(t, **gone) is None
    assert judge(t, **gone) is None
    assert judge(t) is None  # a failed query says nothing: does not count
    assert judge(t, queued=NativeStatus("42", TaskState.RUNNING), queue_answered=True)
    assert t.missing == 0  # seen again: start over
    for _ in range(2):
        assert judge(t, **gone, started=STARTED) is not None  # running, per its record
    v = judge(t, **gone, started=STARTED)
    assert v is not None and v.state is TaskState.LOST
    assert v.message == ("job 42 vanished: not in the queue, not in accounting, and no exit "
                         "status recorded in /logs/records/1.0.exit after 3 polls; it "
                         "started on node7")
    t = tracker()
    for _ in range(2):
        judge(t, queue_answered=True)
    v = judge(t, queue_answered=True)
    assert v is not None and v.state is TaskState.LOST
    assert "(and the system keeps no accounting)" in v.message
    assert v.message.endswith("it never started")


def test_a_job_gone_from_the_queue_waits_for_the_accounting_delay_before_it_is_lost() -> None:
    t = tracker()
    gone = {"queue_answered": True, "has_accounting": True}
    for at in (10.0, 11.0, 12.0, 14.0):  # three polls, but only 4 s of the 5 s delay
        assert t.judge(Evidence(**gone, at=at), vanish_after=3, reason_grace=2,  # type: ignore[arg-type]
                       accounting_delay=5.0) is None
    limit = NativeStatus("42", TaskState.FAILED, exit_reason=BatchJobExitReason.MAXJOBDURATION)
    late = t.judge(Evidence(**gone, accounted=limit, at=14.5), vanish_after=3,  # type: ignore[arg-type]
                   reason_grace=2, accounting_delay=5.0)
    assert late is not None and late.exit_reason is BatchJobExitReason.MAXJOBDURATION
    # accounting never knows it: LOST once both the polls and the delay have passed
    t = tracker()
    verdicts = [t.judge(Evidence(**gone, at=at), vanish_after=3, reason_grace=2,  # type: ignore[arg-type]
                        accounting_delay=5.0) for at in (10.0, 11.0, 12.0, 15.0)]
    assert verdicts[:3] == [None] * 3
    assert verdicts[3] is not None and verdicts[3].state is TaskState.LOST
    # no accounting at all: nothing to wait for
    t = tracker()
    verdicts = [t.judge(Evidence(queue_answered=True, at=at), vanish_after=3, reason_grace=2,
                        accounting_delay=5.0) for at in (10.0, 11.0, 12.0)]
    assert verdicts[2] is not None and verdicts[2].state is TaskState.LOST


def test_in_a_pack_the_pack_s_state_speaks_for_a_job_only_when_the_pack_failed() -> None:
    done = NativeStatus("42", TaskState.FINISHED, exit_code=0)
    # a pack that ended well says nothing of a job without a record: it waits two
    # polls for the record (a shared file system may show it late), then LOST
    t = tracker()
    for _ in range(2):
        assert judge(t, queued=done, queue_answered=True, started=STARTED,
                     packed=True) == Verdict(TaskState.RUNNING, node="node7")
    v = judge(t, queued=done, queue_answered=True, started=STARTED, packed=True)
    assert v is not None and v.state is TaskState.LOST
    assert "pack 42" in v.message and "/logs/records/1.0.exit" in v.message
    # ... and the record, when it comes, decides
    v = judge(tracker(), queued=done, queue_answered=True, exited=ExitRecord(3, 1.0),
              packed=True)
    assert v is not None and (v.state, v.exit_code) == (TaskState.FAILED, 3)
    # a pack cancelled, timed out or lost: each job without a record ends so
    for native, reason in [
            (NativeStatus("42", TaskState.KILLED, exit_reason=BatchJobExitReason.KILLED),
             BatchJobExitReason.KILLED),
            (NativeStatus("42", TaskState.FAILED,
                          exit_reason=BatchJobExitReason.MAXJOBDURATION),
             BatchJobExitReason.MAXJOBDURATION),
            (NativeStatus("42", TaskState.LOST, exit_reason=BatchJobExitReason.LOST),
             BatchJobExitReason.LOST)]:
        v = judge(tracker(), accounted=native, queue_answered=True, has_accounting=True,
                  packed=True)
        assert v is not None and v.state is native.state and v.exit_reason is reason


def test_a_failure_in_a_signalled_pack_waits_for_the_pack_s_end() -> None:
    t = tracker()
    ending = NativeStatus("42", TaskState.RUNNING)  # COMPLETING: its processes are killed
    for _ in range(5):  # however long the pack takes to end
        v = judge(t, queued=ending, queue_answered=True, has_accounting=True,
                  started=STARTED, exited=ExitRecord(143, 101.0), packed=True,
                  pack_signalled=True)
        assert v is not None and v.state is TaskState.RUNNING
    cancelled = NativeStatus("42", TaskState.KILLED, exit_reason=BatchJobExitReason.KILLED)
    v = judge(t, queued=cancelled, queue_answered=True, has_accounting=True, started=STARTED,
              exited=ExitRecord(143, 101.0), packed=True, pack_signalled=True)
    assert v is not None and (v.state, v.exit_code, v.exit_reason) == (
        TaskState.KILLED, 143, BatchJobExitReason.KILLED)
    # a failure in a pack nobody signalled is the job's own, after the usual grace
    t = tracker()
    for _ in range(2):
        assert judge(t, queued=ending, queue_answered=True, has_accounting=True,
                     exited=ExitRecord(143, 101.0), packed=True) is not None
    v = judge(t, queued=ending, queue_answered=True, has_accounting=True,
              exited=ExitRecord(143, 101.0), packed=True)
    assert v is not None and (v.state, v.exit_code) == (TaskState.FAILED, 143)
