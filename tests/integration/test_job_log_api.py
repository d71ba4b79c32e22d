"""getJobLog on the local backend: a job's output by its id, while the batch system
runs (the Mesos side: tests/scheduler/mesos/test_job_logs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mesobatch

DESC = mesobatch.JobDescription(cores=1, memory=2**26, disk=2**26, name="talker")


def test_a_jobs_log_by_its_id(tmp_path: Path) -> None:
    with mesobatch.batch_system("local", maxCores=1, maxMemory="1G", maxDisk="1G",
                                logDir=str(tmp_path)) as bs:
        job = bs.issueBatchJob("seq 1 5; echo oops >&2; exit 2", DESC)
        info = bs.getUpdatedBatchJob(30)
        assert info is not None and info.jobID == job
        assert bs.getJobLog(job) == "1\n2\n3\n4\n5\noops\n"
        assert bs.getJobLog(job, lastLines=2) == "5\noops"
        assert bs.getJobLog(job, lastLines=0) == ""
        assert bs.getJobLog(job + 1) is None  # no such job (yet): no log
        with pytest.raises(ValueError, match="lastLines"):
            bs.getJobLog(job, lastLines=-1)
        with pytest.raises(ValueError, match="invalid job id"):
            bs.getJobLog(0)
