"""Fixtures: a running AWS Batch double with a compute environment, a queue and a job
definition, and boto3 clients for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import pytest

from tests.doubles.aws_batch import AwsBatchDouble

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_batch.type_defs import ComputeResourceTypeDef


def set_up(double: AwsBatchDouble) -> AwsBatchDouble:
    """Two compute environments (on-demand and spot, 4 vCPUs each), a queue on each and the
    ``python`` job definition."""
    batch = double.batch_client()
    kinds: list[tuple[str, Literal["EC2", "SPOT"]]] = [("ce-ondemand", "EC2"),
                                                       ("ce-spot", "SPOT")]
    for name, kind in kinds:
        resources: ComputeResourceTypeDef = {
            "type": kind, "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["optimal"],
            "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"],
            "instanceRole": "ecsInstanceRole"}
        batch.create_compute_environment(computeEnvironmentName=name, type="MANAGED",
                                         state="ENABLED", computeResources=resources)
    for queue, env in (("queue", "ce-ondemand"), ("spot-queue", "ce-spot")):
        batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}])
    batch.register_job_definition(
        jobDefinitionName="python", type="container",
        containerProperties={"image": "python:3.11-slim", "command": ["true"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "256"}]})
    return double


@pytest.fixture
def aws() -> Iterator[AwsBatchDouble]:
    with AwsBatchDouble(state_delay=0.02, minimum_timeout=1, stop_grace=0.5) as double:
        yield set_up(double)


@pytest.fixture
def slow_aws() -> Iterator[AwsBatchDouble]:
    """States last 0.5 s, so that polling sees each one even on a loaded machine."""
    with AwsBatchDouble(state_delay=0.5, minimum_timeout=1, stop_grace=0.5) as double:
        yield set_up(double)


@pytest.fixture
def batch(aws: AwsBatchDouble) -> BatchClient:
    return aws.batch_client()


def submit(batch: BatchClient, name: str, script: str, *, queue: str = "queue",
           vcpus: str = "1", memory: str = "256", **extra: Any) -> str:
    """Submit ``python -c script`` the way the backend does (containerOverrides)."""
    response = batch.submit_job(
        jobName=name, jobQueue=queue, jobDefinition="python",
        containerOverrides={
            "command": [sys.executable, "-c", script],
            "environment": extra.pop("environment", []),
            "resourceRequirements": [{"type": "VCPU", "value": vcpus},
                                     {"type": "MEMORY", "value": memory}],
        }, **extra)
    return response["jobId"]


def final(aws: AwsBatchDouble, batch: BatchClient, job_id: str,
          timeout: float = 30) -> dict[str, Any]:
    aws.wait_for(lambda: aws.status(job_id) in ("SUCCEEDED", "FAILED"), timeout)
    job: dict[str, Any] = dict(batch.describe_jobs(jobs=[job_id])["jobs"][0])
    return job
