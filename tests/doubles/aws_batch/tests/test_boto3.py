"""The AWS Batch double through boto3: the state machine, exit codes and status reasons,
timeouts, memory, host loss, retries, throttling, batched describe, logs and counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from tests.doubles.aws_batch import AwsBatchDouble

from .conftest import final, submit

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient


def test_job_walks_the_state_machine_and_succeeds(slow_aws: AwsBatchDouble) -> None:
    aws = slow_aws
    batch = aws.batch_client()
    job_id = submit(batch, "hello", "import os, time; time.sleep(0.5); "
                    "print('attempt', os.environ['AWS_BATCH_JOB_ATTEMPT'], os.environ['MY'])",
                    environment=[{"name": "MY", "value": "value"}], tags={"run": "r1"},
                    timeout={"attemptDurationSeconds": 60})
    seen: list[str] = []
    while not seen or seen[-1] not in ("SUCCEEDED", "FAILED"):
        status = batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
    assert seen == ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    job = final(aws, batch, job_id)
    assert job["statusReason"] == "Essential container in task exited"
    assert job["container"]["exitCode"] == 0
    assert job["tags"] == {"run": "r1"} and job["timeout"]["attemptDurationSeconds"] == 60
    assert job["jobQueue"].endswith(":job-queue/queue")
    assert len(job["attempts"]) == 1 and job["attempts"][0]["container"]["exitCode"] == 0
    assert job["startedAt"] <= job["stoppedAt"]
    stream = job["container"]["logStreamName"]
    assert stream.startswith("python/default/")
    logs = aws.logs_client()
    events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream,
                                 startFromHead=True)
    assert [e["message"] for e in events["events"]] == ["attempt 1 value"]
    again = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream,
                                nextToken=events["nextForwardToken"], startFromHead=True)
    assert again["events"] == [] and again["nextForwardToken"] == events["nextForwardToken"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName="/aws/batch/job", logStreamName="missing")


def test_exit_code_failure(aws: AwsBatchDouble, batch: BatchClient) -> None:
    job = final(aws, batch, submit(batch, "fails", "import sys; sys.exit(3)"))
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Essential container in task exited"
    assert job["container"]["exitCode"] == 3
    assert job["attempts"][0]["statusReason"] == "Essential container in task exited"


def test_attempt_timeout(aws: AwsBatchDouble, batch: BatchClient) -> None:
    job = final(aws, batch, submit(batch, "slow", "import time; time.sleep(30)",
                                   timeout={"attemptDurationSeconds": 1}))
    assert (job["status"], job["statusReason"]) == ("FAILED",
                                                    "Job attempt duration exceeded timeout")
    assert job["attempts"][0]["statusReason"] == "Job attempt duration exceeded timeout"


def test_memory_watchdog(aws: AwsBatchDouble, batch: BatchClient) -> None:
    job = final(aws, batch, submit(batch, "hungry", "x = bytearray(400 * 1024 * 1024); "
                                   "import time; time.sleep(30)", memory="128"))
    assert job["status"] == "FAILED"
    assert job["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert job["container"]["exitCode"] == 137


def test_host_loss_and_retry(aws: AwsBatchDouble, batch: BatchClient) -> None:
    job_id = submit(batch, "spot", "import time; time.sleep(30)", queue="spot-queue")
    aws.wait_for(lambda: aws.status(job_id) == "RUNNING")
    assert aws.reclaim_spot() == [job_id]
    job = final(aws, batch, job_id)
    instance = job["attempts"][0]["container"]["containerInstanceArn"]
    assert instance
    assert job["statusReason"].startswith("Host EC2 (instance i-")
    assert job["statusReason"].endswith(") terminated.")
    assert "exitCode" not in job["container"]
    retried = submit(batch, "retried", "import time; time.sleep(30)",
                     retryStrategy={"attempts": 2})
    aws.wait_for(lambda: aws.status(retried) == "RUNNING")
    aws.lose_host(retried)
    aws.wait_for(lambda: len(batch.describe_jobs(jobs=[retried])["jobs"][0]["attempts"]) == 1
                 and aws.status(retried) == "RUNNING")
    batch.terminate_job(jobId=retried, reason="killed by the test")
    job = final(aws, batch, retried)
    assert job["statusReason"] == "killed by the test" and job["isTerminated"] is True
    assert len(job["attempts"]) == 2


def test_capacity_keeps_jobs_runnable_and_cancel(aws: AwsBatchDouble,
                                                 batch: BatchClient) -> None:
    first = submit(batch, "big", "import time; time.sleep(30)", vcpus="4")
    aws.wait_for(lambda: aws.status(first) == "RUNNING")
    second = submit(batch, "waits", "pass", vcpus="1")
    aws.wait_for(lambda: aws.status(second) == "RUNNABLE")
    batch.cancel_job(jobId=first, reason="no effect on a running job")
    batch.cancel_job(jobId=second, reason="cancelled by the test")
    job = final(aws, batch, second)
    assert (job["statusReason"], job["isCancelled"]) == ("cancelled by the test", True)
    assert aws.status(first) == "RUNNING"
    batch.terminate_job(jobId=first, reason="done")
    assert final(aws, batch, first)["status"] == "FAILED"
    env = batch.describe_compute_environments(computeEnvironments=["ce-ondemand"])
    assert env["computeEnvironments"][0]["computeResources"]["maxvCpus"] == 4


def test_describe_jobs_takes_100_ids_and_list_jobs(aws: AwsBatchDouble,
                                                   batch: BatchClient) -> None:
    ids = [submit(batch, f"many-{i}", "pass", vcpus="0.25") for i in range(101)]
    aws.wait_for(lambda: all(aws.status(i) == "SUCCEEDED" for i in ids), 120)
    aws.reset_requests()
    described = batch.describe_jobs(jobs=ids[:100])["jobs"]
    assert len(described) == 100 and {j["status"] for j in described} == {"SUCCEEDED"}
    with pytest.raises(ClientError) as too_many:
        batch.describe_jobs(jobs=ids)
    assert too_many.value.response["Error"]["Code"] == "ClientException"
    assert batch.describe_jobs(jobs=["no-such-job"])["jobs"] == []
    listed = batch.list_jobs(jobQueue="queue", jobStatus="SUCCEEDED", maxResults=60)
    assert len(listed["jobSummaryList"]) == 60 and "nextToken" in listed
    by_name = batch.list_jobs(jobQueue="queue", filters=[{"name": "JOB_NAME",
                                                          "values": ["many-10*"]}])
    assert sorted(j["jobName"] for j in by_name["jobSummaryList"]) == ["many-10", "many-100"]
    assert aws.requests() == {"DescribeJobs": 3, "ListJobs": 2}


def test_throttling_and_errors(aws: AwsBatchDouble, batch: BatchClient) -> None:
    strict = aws.batch_client(retries={"total_max_attempts": 1})
    aws.throttle(1, "SubmitJob")
    with pytest.raises(ClientError) as throttled:
        submit(strict, "throttled", "pass")
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    aws.reset_requests()
    aws.throttle(2, "SubmitJob")
    submit(batch, "after-retries", "pass")  # botocore retries throttling by itself
    assert aws.requests() == {"SubmitJob": 3}
    with pytest.raises(ClientError) as missing:
        batch.submit_job(jobName="x", jobQueue="nope", jobDefinition="python")
    assert missing.value.response["Error"]["Code"] == "ClientException"
    with pytest.raises(ClientError):
        batch.submit_job(jobName="bad name!", jobQueue="queue", jobDefinition="python")


def test_job_definitions_and_queues(batch: BatchClient) -> None:
    second = batch.register_job_definition(
        jobDefinitionName="python", type="container",
        containerProperties={"image": "python:3.12", "resourceRequirements": [
            {"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "512"}]})
    assert second["revision"] == 2 and second["jobDefinitionArn"].endswith(
        ":job-definition/python:2")
    found = batch.describe_job_definitions(jobDefinitionName="python", status="ACTIVE")
    assert [d["revision"] for d in found["jobDefinitions"]] == [1, 2]
    assert found["jobDefinitions"][1]["containerProperties"]["image"] == "python:3.12"
    queues = batch.describe_job_queues(jobQueues=["queue"])["jobQueues"]
    assert queues[0]["state"] == "ENABLED" and queues[0]["status"] == "VALID"
    assert queues[0]["computeEnvironmentOrder"][0]["computeEnvironment"].endswith(
        ":compute-environment/ce-ondemand")
