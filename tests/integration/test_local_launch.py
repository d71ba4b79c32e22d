"""How the local backend starts jobs: off the batch system's lock, failures reported."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

import mesobatch
from mesobatch import BatchJobExitReason, JobDescription
from mesobatch.executor.shipping import Prepared, ResourceError
from mesobatch.executor.task_start import TaskRequest
from mesobatch.integration import local

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


def test_shipped_code_is_prepared_off_the_lock_and_a_kill_meanwhile_stops_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetching and unpacking a job's shipped code may take long: other jobs run and
    kills return meanwhile; a job killed while it is prepared never starts; one whose
    code is refused fails with the reason."""
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow_prepare(resources: object, req: TaskRequest, source: object,
                     work_dir: str) -> Prepared:
        entered.release()
        if req.job_env.get("REFUSE"):
            raise ResourceError("refused: its hash does not match")
        assert release.wait(30)
        return Prepared()

    monkeypatch.setattr(local, "prepare", slow_prepare)
    ships = {"JTRES_x": "y"}  # a job that names shipped resources
    with mesobatch.batch_system("local", maxCores=4, maxMemory="1G", maxDisk="1G",
                                logDir=str(tmp_path)) as bs:
        killed = bs.issueBatchJob(f"touch {tmp_path}/killed-ran", J, ships)
        kept = bs.issueBatchJob("exit 3", J, ships)
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
        plain = bs.issueBatchJob("true", J)  # runs while both are being prepared
        info = bs.getUpdatedBatchJob(10)
        assert info is not None and (info.jobID, info.exitStatus) == (plain, 0)
        started = time.monotonic()
        bs.killBatchJobs([killed])
        assert time.monotonic() - started < 2
        refused = bs.issueBatchJob("true", J, {**ships, "REFUSE": "1"})
        info = bs.getUpdatedBatchJob(10)
        assert info is not None and info.jobID == refused
        assert info.exitReason is BatchJobExitReason.FAILED
        release.set()
        info = bs.getUpdatedBatchJob(10)
        assert info is not None and (info.jobID, info.exitStatus) == (kept, 3)
        assert bs.getUpdatedBatchJob(0.5) is None
        assert not (tmp_path / "killed-ran").exists()
