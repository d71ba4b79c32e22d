"""How the local backend starts jobs: off the batch system's lock, failures reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import mesobatch
from mesobatch import BatchJobExitReason, JobDescription

J = JobDescription(cores=1, memory=2**20, disk=2**20)


def test_a_job_that_cannot_start_is_reported_once_as_an_error(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with mesobatch.batch_system("local", maxCores=2, maxMemory="1G", maxDisk="1G",
                                logDir=str(logs)) as bs:
        shutil.rmtree(logs)  # its log file cannot be created: the launch fails
        job = bs.issueBatchJob("true", J)
        info = bs.getUpdatedBatchJob(10)
        assert info is not None and info.jobID == job
        assert info.exitReason is BatchJobExitReason.ERROR
        assert bs.getUpdatedBatchJob(0.3) is None
        assert bs.getIssuedBatchJobIDs() == []
        logs.mkdir()  # and the slot it held is free again
        jobs = {bs.issueBatchJob("true", J) for _ in range(4)}
        done = {bs.getUpdatedBatchJob(10) for _ in range(4)}
        assert {i.jobID for i in done if i} == jobs
        assert {i.exitStatus for i in done if i} == {0}


def test_many_jobs_on_two_slots_each_reported_once_with_status_zero() -> None:
    with mesobatch.batch_system("local", maxCores=2, maxMemory="1G", maxDisk="1G") as bs:
        jobs = {bs.issueBatchJob("true", J) for _ in range(400)}
        seen: list[int] = []
        for _ in range(400):
            info = bs.getUpdatedBatchJob(20)
            assert info is not None and info.exitStatus == 0, info
            seen.append(info.jobID)
        assert sorted(seen) == sorted(jobs)
        assert bs.getUpdatedBatchJob(0.2) is None
