"""Packs on the batch-queue base, end to end on fakeq: jobs of less than a core issued
together run as packs (one allocation each, the packs one array), each job reported on
its own, once; a kill inside a pack kills that job alone; killing all of a pack cancels
it; a job that leaves no record in a pack that ended well is LOST."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mesobatch import BatchJobExitReason, JobDescription
from tests.waiting import wait_for

from .conftest import Make
from .fake import calls
from .test_base import _sleeping, collect, faults, hold, native_ids

QUARTER = JobDescription(cores=0.25, memory=2**20, disk=2**20)
HALF = JobDescription(cores=0.5, memory=2**20, disk=2**20)


def test_small_jobs_run_in_packs_each_reported_on_its_own(make: Make, state: str,
                                                          tmp_path: Path) -> None:
    go = tmp_path / "go"
    bs = make(fakePack=4)
    # each waits for the go file: all ten run at once, in 3 packs (4, 4, 2)
    ids = bs.issue_many([(f"while [ ! -e {go} ]; do sleep 0.05; done; echo {i}; exit {i % 3}",
                          QUARTER, None) for i in range(10)])
    assert wait_for(lambda: sorted(bs.getRunningBatchJobIDs()) == sorted(ids))
    assert [c[c.index("--array") + 1] for c in calls(state, "submit")] == ["3"]
    assert len(native_ids(state)) == 3
    go.touch()
    results = collect(bs, 10)
    assert {j: r.exitStatus for j, r in results.items()} == {
        j: i % 3 for i, j in enumerate(ids)}
    assert all(r.exitReason is (BatchJobExitReason.FINISHED if r.exitStatus == 0
                                else BatchJobExitReason.FAILED) for r in results.values())
    logs = tmp_path / "logs"
    assert [(logs / f"{j}-job{j}.log").read_text() for j in ids] == [
        f"{i}\n" for i in range(10)]
    assert bs.getUpdatedBatchJob(0.5) is None and bs.getIssuedBatchJobIDs() == []


def test_a_kill_inside_a_pack_kills_that_job_alone(make: Make, state: str,
                                                   tmp_path: Path) -> None:
    go = tmp_path / "go"
    marker = f"1000.{os.getpid()}{time.monotonic_ns() % 10**6}"
    bs = make(fakePack=4)
    wait = f"while [ ! -e {go} ]; do sleep 0.05; done"
    doomed, *others = bs.issue_many([(f"sleep {marker}", QUARTER, None),
                                     (wait, QUARTER, None), (wait, QUARTER, None)])
    assert wait_for(lambda: len(bs.getRunningBatchJobIDs()) == 3)
    assert wait_for(lambda: _sleeping(marker))
    bs.killBatchJobs([doomed])
    assert sorted(bs.getRunningBatchJobIDs()) == sorted(others)
    assert wait_for(lambda: not _sleeping(marker), timeout=30)  # its marker, then TERM
    assert calls(state, "cancel") == []  # the pack lives on
    go.touch()
    results = collect(bs, 2)
    assert sorted(results) == sorted(others)
    assert all(r.exitStatus == 0 for r in results.values())
    assert bs.getUpdatedBatchJob(0.5) is None  # the killed one is not reported


def test_killing_every_job_of_a_pack_cancels_that_pack_once(make: Make, state: str,
                                                            tmp_path: Path) -> None:
    go = tmp_path / "go"
    bs = make(fakePack=2)
    wait = f"while [ ! -e {go} ]; do sleep 0.05; done"
    ids = bs.issue_many([(wait, HALF, None)] * 4)  # two packs of two
    assert wait_for(lambda: len(bs.getRunningBatchJobIDs()) == 4)
    first, second = native_ids(state)
    bs.killBatchJobs(ids[:2])
    assert wait_for(lambda: calls(state, "cancel"))
    assert [c[1:] for c in calls(state, "cancel")] == [[first]]
    go.touch()
    results = collect(bs, 2)
    assert sorted(results) == sorted(ids[2:])
    assert bs.getUpdatedBatchJob(0.5) is None
    assert [c[1:] for c in calls(state, "cancel")] == [[first]]
    assert second not in {i for c in calls(state, "cancel") for i in c}


def test_a_job_without_a_record_in_a_pack_that_ended_well_is_lost(make: Make,
                                                                  tmp_path: Path) -> None:
    bs = make(fakePack=2)
    # the second kills its own wrapper: no exit record, while its pack exits 0
    ok, broken = bs.issue_many([("true", HALF, None), ("kill -KILL $PPID", HALF, None)])
    results = collect(bs, 2)
    assert results[ok].exitStatus == 0
    assert results[ok].exitReason is BatchJobExitReason.FINISHED
    assert results[broken].exitReason is BatchJobExitReason.LOST
    log = tmp_path / "logs" / f"{broken}-job{broken}.log"
    assert "ended (finished), but the job recorded no exit status" in log.read_text()


def test_shutdown_cancels_a_queued_pack_once(make: Make, state: str) -> None:
    hold(state)
    bs = make(fakePack=4)
    bs.issue_many([("true", QUARTER, None)] * 4)
    assert wait_for(lambda: "4 pending" in (bs.getSchedulingStatusMessage() or ""))
    bs.shutdown()
    assert [c[1:] for c in calls(state, "cancel")] == [native_ids(state)]
    assert len(native_ids(state)) == 1


def test_a_refused_pack_is_submitted_unpacked_and_its_shape_is_not_packed_again(
        make: Make, state: str) -> None:
    faults(state, "submit permanent")  # as sbatch refuses a pack's summed --tmp
    bs = make(fakePack=4)
    first = bs.issue_many([("true", QUARTER, None)] * 4)
    assert sorted(collect(bs, 4)) == sorted(first)
    later = bs.issue_many([("true", QUARTER, None)] * 4)
    assert sorted(collect(bs, 4)) == sorted(later)
    submits = calls(state, "submit")
    # the pack (one script, refused), then its jobs as an array of 4, then 4 again
    assert ["--array" in c for c in submits] == [False, True, True]
    assert [c[c.index("--array") + 1] for c in submits[1:]] == ["4", "4"]
