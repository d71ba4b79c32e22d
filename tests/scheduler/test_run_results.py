"""The results file's records, reading them back for --rerun-failed, and the judgement
of what a job used against what it asked for."""

from __future__ import annotations

import json

import pytest

from mesobatch.scheduler.contract import BatchJobExitReason, JobUsage, UpdatedBatchJobInfo
from mesobatch.scheduler.jobfile import JobFileError, JobLine
from mesobatch.scheduler.run_results import (
    format_bytes,
    format_records,
    merged,
    over_use,
    rerun_jobs,
    result_record,
    state_of,
)

MIB = 2**20
JOB = JobLine(4, "run it", "it", 2.0, 100 * MIB, 10 * MIB, {"X": "1"}, True, 1, 60.0)


def info(reason: BatchJobExitReason = BatchJobExitReason.FINISHED, status: int = 0,
         wall: float = 10.0, memory: int | None = 50 * MIB, cpu: float | None = 5.0
         ) -> UpdatedBatchJobInfo:
    return UpdatedBatchJobInfo(1, status, reason, wall, "1.0", JobUsage("n1", memory, cpu))


@pytest.mark.parametrize(("result", "state"), [
    (info(), "succeeded"),
    (info(BatchJobExitReason.FAILED, 3), "failed"),
    (info(BatchJobExitReason.MEMLIMIT, 137), "memlimit"),
    (info(BatchJobExitReason.FINISHED, 1), "finished"),  # status 1: not a success
    (None, "unfinished"),
])
def test_states(result: UpdatedBatchJobInfo | None, state: str) -> None:
    assert state_of(result) == state


def test_a_record_holds_the_job_and_how_it_went_and_reads_back_as_the_same_job() -> None:
    record = result_record(JOB, info(BatchJobExitReason.FAILED, 2), "/logs/1-it.log")
    assert record == {
        "command": "run it", "name": "it", "cores": 2.0, "memory": 100 * MIB,
        "disk": 10 * MIB, "env": {"X": "1"}, "gpus": 1, "preemptible": True,
        "walltime": 60.0, "state": "failed", "exit_code": 2, "wall_time": 10.0,
        "peak_memory": 50 * MIB, "cpu_time": 5.0, "memory_at_most": None, "node": "n1",
        "log": "/logs/1-it.log", "line": 4}
    ok = result_record(JOB, info(), None)
    unfinished = result_record(JOB, None, None)
    assert unfinished["exit_code"] is None and unfinished["peak_memory"] is None
    rerun = rerun_jobs(format_records([ok, record, unfinished]), "r.jsonl")
    assert rerun.jobs == [JOB, JOB] and rerun.kept == [ok]
    assert [r["line"] for r in merged(rerun.kept, [dict(record, line=1)])] == [1, 4]


@pytest.mark.parametrize(("text", "error"), [
    ("{", "r.jsonl:1: malformed JSON"),
    ('\n{"command": "x"}', "r.jsonl:2: not a line of a results file"),
    (json.dumps({"state": "failed", "name": "x"}), 'r.jsonl:1: no "command"'),
    (json.dumps({"state": "failed", "command": "x", "cores": -1}), "r.jsonl:1: invalid cores"),
])
def test_bad_results_files_are_named_with_their_line(text: str, error: str) -> None:
    with pytest.raises(JobFileError, match=error):
        rerun_jobs(text, "r.jsonl")


def test_far_over_is_flagged_for_memory_and_cpu() -> None:
    assert over_use(JOB, info(memory=140 * MIB, cpu=29.0)) == []  # within 1.5x
    assert over_use(JOB, info(memory=160 * MIB)) == ["mem 1.6x"]
    assert over_use(JOB, info(cpu=40.0)) == ["cpu 2.0x"]  # 40 s in 10 s on 2 cores
    assert over_use(JOB, info(wall=0.5, cpu=40.0)) == []  # too short to judge
    assert over_use(JOB, info(memory=None, cpu=None)) == []
    assert over_use(JOB, UpdatedBatchJobInfo(1, 0, BatchJobExitReason.FINISHED, 1.0)) == []


def test_sizes_are_short() -> None:
    assert [format_bytes(n) for n in (None, 512, 1536, 300 * MIB, 5 * 2**30)] == [
        "-", "512", "1.5K", "300M", "5.0G"]
