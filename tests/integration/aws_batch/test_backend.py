"""The aws_batch backend end to end on the AWS Batch double: what it asks AWS Batch, how
often, and what it reports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import mesobatch
from mesobatch import BatchJobExitReason, InsufficientSystemResources
from mesobatch.scheduler.options import OptionError
from tests.doubles.aws_batch import AwsBatchDouble
from tests.doubles.aws_batch.queues import add_queue

from .conftest import Make, small


def results(bs: mesobatch.BatchSystem, n: int, timeout: float = 60) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for _ in range(n):
        info = bs.getUpdatedBatchJob(timeout)
        assert info is not None, f"only {len(out)} of {n} results"
        out[info.jobID] = info
    return out


def aws_jobs(aws: AwsBatchDouble) -> list[dict[str, Any]]:
    return aws.call(lambda b: [j.detail() for j in b.jobs.values()])


def test_throttled_submissions_are_tried_again(make: Make, aws: AwsBatchDouble) -> None:
    bs = make()
    aws.reset_requests()
    aws.throttle(3, "SubmitJob")
    job = bs.issueBatchJob("true", small())
    (info,) = results(bs, 1).values()
    assert (info.jobID, info.exitStatus) == (job, 0)
    assert aws.requests()["SubmitJob"] == 4  # three 429s, then accepted
    assert bs._backend.api.throttled == 3  # type: ignore[attr-defined]


def test_one_describe_per_100_jobs_per_poll(make: Make, aws: AwsBatchDouble) -> None:
    add_queue(aws, "big", vcpus=256)
    bs = make(awsBatchQueue="big", pollInterval=0.3)
    aws.reset_requests()
    ids = {bs.issueBatchJob("sleep 1", small(cores=0.5)) for _ in range(150)}
    done = results(bs, 150, timeout=120)
    assert set(done) == ids and all(r.exitStatus == 0 for r in done.values())
    polls = bs._backend.polls  # type: ignore[attr-defined]
    counts = aws.requests()
    assert counts["SubmitJob"] == 150
    # every round asks about every live job, at most 100 per call: 1 or 2 calls a round
    assert polls <= counts["DescribeJobs"] <= 2 * polls
    assert counts["DescribeJobs"] / 150 < 0.5


def test_tags_resources_and_environment_reach_aws_batch(make: Make, aws: AwsBatchDouble,
                                                        tmp_path: Path) -> None:
    bs = make()
    bs.setEnv("FROM_SET_ENV", "yes")
    out = tmp_path / "out"
    job = bs.issueBatchJob(f'echo "$FROM_SET_ENV $OMP_NUM_THREADS $AWS_BATCH_JQ_NAME" > {out}',
                           small(cores=1.5, memory=300 * 2**20), {"OWN": "1"})
    assert results(bs, 1)[job].exitStatus == 0
    assert out.read_text() == "yes 2 queue\n"
    (detail,) = aws_jobs(aws)
    run_tag = bs._backend.run_tag  # type: ignore[attr-defined]
    assert detail["tags"]["mesobatch-run"] == run_tag
    assert detail["jobName"].startswith(f"{run_tag}-{job}-")
    assert {"type": "VCPU", "value": "2"} in detail["container"]["resourceRequirements"]
    assert {"type": "MEMORY", "value": "300"} in detail["container"]["resourceRequirements"]
    assert {"name": "OWN", "value": "1"} in detail["container"]["environment"]


def test_preemptible_jobs_go_to_the_spot_queue_and_a_reclaim_is_lost(
        make: Make, aws: AwsBatchDouble) -> None:
    bs = make(awsBatchSpotQueue="spot", awsBatchMaxVcpus=1)
    steady = bs.issueBatchJob("sleep 0.5", small())
    spot = bs.issueBatchJob("sleep 60", small(preemptible=True))
    aws.wait_for(lambda: any(j["status"] == "RUNNING" and j["jobQueue"].endswith("/spot")
                             for j in aws_jobs(aws)), 30)
    queues = {j["tags"]["mesobatch-job"]: j["jobQueue"].rsplit("/", 1)[-1]
              for j in aws_jobs(aws)}
    assert queues == {str(steady): "queue", str(spot): "spot"}
    assert aws.reclaim_spot()
    done = results(bs, 2)
    assert done[steady].exitReason == BatchJobExitReason.FINISHED
    assert done[spot].exitReason == BatchJobExitReason.LOST


def test_capacity_comes_from_the_compute_environments(make: Make) -> None:
    bs = make()  # the double's queue: one compute environment of maxvCpus 4
    with pytest.raises(InsufficientSystemResources, match="awsBatchMaxVcpus"):
        bs.issueBatchJob("true", small(cores=5))
    jobs = [bs.issueBatchJob("sleep 30", small(cores=2)) for _ in range(3)]
    assert _wait(lambda: len(bs.getRunningBatchJobIDs()) == 2)
    message = bs.getSchedulingStatusMessage()
    assert message is not None and "4 of 4 cores" in message and "1 job waiting" in message
    bs.killBatchJobs(jobs)


def test_job_definition_is_registered_once_per_image_and_role(make: Make,
                                                              aws: AwsBatchDouble) -> None:
    make()
    make()
    assert aws.requests()["RegisterJobDefinition"] == 1
    make(awsBatchJobRoleArn="arn:aws:iam::123456789012:role/jobs")
    make(awsBatchImage="python:3.12-slim")
    assert aws.requests()["RegisterJobDefinition"] == 3
    bs = make(awsBatchImage=None, awsBatchJobDefinition=bs_definition(aws))
    job = bs.issueBatchJob("true", small())
    assert results(bs, 1)[job].exitStatus == 0
    assert aws.requests()["RegisterJobDefinition"] == 3


def bs_definition(aws: AwsBatchDouble) -> str:
    names: list[str] = aws.call(lambda b: sorted(b.definitions))
    return names[0]


def test_logs_are_copied_into_the_log_dir(make: Make, tmp_path: Path) -> None:
    bs = make()
    ok = bs.issueBatchJob("echo out; echo err >&2", small(name="greeter"))
    oom = bs.issueBatchJob(f"{sys.executable} -c 'x = bytearray(400 * 2**20); "
                           "import time; time.sleep(5)'", small(memory=64 * 2**20))
    done = results(bs, 2)
    assert done[oom].exitReason == BatchJobExitReason.MEMLIMIT
    logs = tmp_path / "logs"
    assert (logs / f"{ok}-greeter.log").read_text() == "out\nerr\n"
    (oom_log,) = logs.glob(f"{oom}-*.log")
    assert "mesobatch: AWS Batch: OutOfMemoryError" in oom_log.read_text()


def test_kill_terminates_and_shutdown_sweeps_the_run(make: Make, aws: AwsBatchDouble) -> None:
    bs = make()
    job = bs.issueBatchJob("sleep 60", small())
    assert _wait(lambda: job in bs.getRunningBatchJobIDs()
                 and any(j["status"] == "RUNNING" for j in aws_jobs(aws)))
    bs.killBatchJobs([job])
    assert aws.requests()["TerminateJob"] == 1
    aws.wait_for(lambda: all(j["status"] == "FAILED" for j in aws_jobs(aws)), 30)
    # a job of this run whose submission answer was lost: only ListJobs can find it
    backend: Any = bs._backend
    run_tag = backend.run_tag
    stray = aws.batch_client().submit_job(
        jobName=f"{run_tag}-99-stray", jobQueue="queue", jobDefinition=bs_definition(aws),
        containerOverrides={"command": ["sleep", "60"]})["jobId"]
    other = aws.batch_client().submit_job(
        jobName="someone-else", jobQueue="queue", jobDefinition=bs_definition(aws),
        containerOverrides={"command": ["sleep", "60"]})["jobId"]
    aws.reset_requests()
    bs.shutdown()
    assert "ListJobs" not in aws.requests()  # no answer was lost: no sweep
    backend.api.uncertain["submit_job"] += 1  # as a SubmitJob read timeout leaves it
    backend.shutdown()
    assert aws.call(lambda b: b.jobs[stray].is_terminated)
    aws.wait_for(lambda: aws.status(stray) == "FAILED", 30)
    assert not aws.call(lambda b: b.jobs[other].is_terminated)
    aws.batch_client().terminate_job(jobId=other, reason="test over")


@pytest.mark.parametrize(("options", "message"), [
    ({"awsBatchQueue": None}, "--awsBatchQueue is required"),
    ({"awsBatchQueue": "nope"}, "'nope' for --awsBatchQueue: no such job queue"),
    ({"awsBatchJobDefinition": "x"}, "exactly one of --awsBatchImage"),
    ({"awsBatchImage": None, "awsBatchJobDefinition": "nope"},
     "'nope' for --awsBatchJobDefinition"),
    ({"awsBatchRegion": "mars"}, "expected an AWS region"),
    ({"awsBatchEndpoint": "ftp://x"}, "expected an http"),
])
def test_bad_options_are_refused_at_start(make: Make, options: dict[str, Any],
                                          message: str) -> None:
    with pytest.raises(OptionError, match=message):
        make(**options)


def _wait(predicate: Any, timeout: float = 30) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
