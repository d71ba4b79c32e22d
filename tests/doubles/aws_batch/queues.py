"""Compute environments and job queues made in a running double, as an AWS account's
administrator would have made them before a workflow runs."""

from __future__ import annotations

from typing import Literal

from .double import AwsBatchDouble


def add_queue(aws: AwsBatchDouble, name: str, *, vcpus: int = 256,
              spot: bool = False) -> str:
    """A MANAGED compute environment of ``vcpus`` (EC2, or SPOT) and a job queue on it;
    returns the queue's name."""
    batch = aws.batch_client()
    kind: Literal["EC2", "SPOT"] = "SPOT" if spot else "EC2"
    batch.create_compute_environment(
        computeEnvironmentName=f"{name}-ce", type="MANAGED", state="ENABLED",
        computeResources={"type": kind, "minvCpus": 0, "maxvCpus": vcpus,
                          "instanceTypes": ["optimal"], "subnets": ["subnet-1"],
                          "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole"})
    batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1,
                                                     "computeEnvironment": f"{name}-ce"}])
    return name
