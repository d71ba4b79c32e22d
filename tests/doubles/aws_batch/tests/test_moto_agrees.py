"""The backend's boto3 calls against moto's server (an independent implementation of the
API) and against the double: both accept them and answer with the same shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.doubles.aws_batch import AwsBatchDouble
from tests.services import moto

from .backend_calls import JOBS, run_backend_calls


@pytest.fixture(scope="module")
def moto_server() -> Iterator[moto.MotoServer]:
    if not moto.installed():
        pytest.skip("moto[server,batch] is not installed (tests/run.sh installs it)")
    with moto.MotoServer() as server:
        yield server


def check(result: dict[str, Any]) -> None:
    described = result["described"]
    assert len(described) == JOBS
    assert {job["jobId"] for job in described} == set(result["ids"])
    first = next(job for job in described if job["jobId"] == result["ids"][0])
    assert first["jobName"] == "mesobatch-0"
    assert first["tags"] == {"mesobatch-run": "run-1"}
    assert first["timeout"] == {"attemptDurationSeconds": 3600}
    env = {e["name"]: e["value"] for e in first["container"]["environment"]}
    assert env["MESOBATCH_JOB"] == "0"
    assert first["status"] in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING",
                               "SUCCEEDED")
    assert result["definitions"][0]["containerProperties"]["image"] == "python:3.11-slim"
    assert result["queues"][0]["jobQueueName"] == "mesobatch-queue"
    assert result["environments"][0]["type"] == "UNMANAGED"


def test_moto_accepts_the_backend_calls(moto_server: moto.MotoServer) -> None:
    args: dict[str, Any] = {"endpoint_url": moto_server.endpoint_url, "region_name": "us-east-1",
                            "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    # moto insists on a compute environment service role that exists in its IAM
    iam = boto3.client("iam", **args)
    iam.create_role(RoleName="AWSBatchServiceRole", AssumeRolePolicyDocument="{}")
    check(run_backend_calls(boto3.client("batch", **args), ["true"]))


def test_the_double_accepts_the_same_calls() -> None:
    with AwsBatchDouble(state_delay=0.01) as aws:
        result = run_backend_calls(aws.batch_client(), ["true"])
        check(result)
        counts = aws.requests()
        assert counts["SubmitJob"] == JOBS and counts["DescribeJobs"] == 1
