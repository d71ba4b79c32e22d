"""The aws_batch backend itself against moto's server, an independent implementation of
the AWS Batch API: every call it makes (DescribeJobDefinitions, RegisterJobDefinition,
DescribeJobQueues, SubmitJob with containerOverrides, timeout and tags, DescribeJobs,
GetLogEvents, ListJobs with a JOB_NAME filter, TerminateJob) is accepted as sent.

moto runs no container without Docker: each job SUCCEEDS as soon as it is submitted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

import mesobatch
from tests.services import moto

from .conftest import small


@pytest.fixture(scope="module")
def moto_server() -> Iterator[moto.MotoServer]:
    if not moto.installed():
        pytest.fail("moto[server,batch] is not installed (tests/run.sh installs it)")
    with moto.MotoServer() as server:
        yield server


def test_moto_accepts_every_call_of_the_backend(moto_server: moto.MotoServer) -> None:
    args: dict[str, Any] = {"endpoint_url": moto_server.endpoint_url, "region_name": "us-east-1"}
    boto3.client("iam", **args).create_role(RoleName="AWSBatchServiceRole",
                                            AssumeRolePolicyDocument="{}")
    batch = boto3.client("batch", **args)
    env = batch.create_compute_environment(
        computeEnvironmentName="mesobatch-ce", type="UNMANAGED", state="ENABLED",
        serviceRole="arn:aws:iam::123456789012:role/AWSBatchServiceRole")
    batch.create_job_queue(jobQueueName="mesobatch-q", state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{
                               "order": 1, "computeEnvironment": env["computeEnvironmentArn"]}])

    def make() -> mesobatch.BatchSystem:
        # moto keeps no unmanagedvCpus: the run's vCPUs are given
        return mesobatch.batch_system(
            "aws_batch", awsBatchEndpoint=moto_server.endpoint_url, awsBatchRegion="us-east-1",
            awsBatchQueue="mesobatch-q", awsBatchImage="busybox", awsBatchMaxVcpus=8,
            pollInterval=0.1)

    bs = make()
    ids = {bs.issueBatchJob(f"echo {i}", small(walltime=120)) for i in range(3)}
    done = [bs.getUpdatedBatchJob(30) for _ in ids]
    assert {d.jobID for d in done if d is not None} == ids
    assert all(d is not None and d.exitStatus == 0 for d in done)
    api = bs._backend.api  # type: ignore[attr-defined]
    assert api.counts["submit_job"] == 3 and api.counts["describe_jobs"] >= 1
    assert api.counts["register_job_definition"] == 1
    run_tag = bs._backend.run_tag  # type: ignore[attr-defined]
    # the last job is killed (moto may end it first): TerminateJob or nothing, no error
    last = bs.issueBatchJob("sleep 100", small())
    time.sleep(0.3)
    bs.killBatchJobs([last])
    api.uncertain["submit_job"] += 1  # as a lost SubmitJob answer: shutdown sweeps
    bs.shutdown()
    assert api.counts["list_jobs"] == 1
    jobs = batch.list_jobs(jobQueue="mesobatch-q",
                           filters=[{"name": "JOB_NAME", "values": [f"{run_tag}-*"]}])
    assert len(jobs["jobSummaryList"]) == 4
    detail = batch.describe_jobs(jobs=[jobs["jobSummaryList"][0]["jobId"]])["jobs"][0]
    assert detail["tags"]["mesobatch-run"] == run_tag
    assert detail["container"]["command"][:2] == ["/bin/sh", "-c"]
    # a second run finds the job definition by its content-derived name
    again = make()
    assert again._backend.api.counts["register_job_definition"] == 0  # type: ignore[attr-defined]
    again.shutdown()
