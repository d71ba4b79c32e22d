"""The boto3 calls the aws_batch backend will make, as one scenario run against both the
double and moto's server: create a compute environment, a queue and a job definition, submit
with containerOverrides (VCPU/MEMORY/GPU, command, environment), a timeout and tags, describe
100 ids in one call, terminate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_batch.type_defs import ContainerOverridesTypeDef, ResourceRequirementTypeDef

JOBS = 100


def run_backend_calls(batch: BatchClient, command: list[str]) -> dict[str, Any]:
    """Returns what the backend reads back, for the test to check."""
    ce = batch.create_compute_environment(
        computeEnvironmentName="mesobatch-ce", type="UNMANAGED", state="ENABLED",
        serviceRole="arn:aws:iam::123456789012:role/AWSBatchServiceRole")
    queue = batch.create_job_queue(
        jobQueueName="mesobatch-queue", state="ENABLED", priority=10,
        computeEnvironmentOrder=[{"order": 1,
                                  "computeEnvironment": ce["computeEnvironmentArn"]}],
        tags={"mesobatch": "yes"})
    definition = batch.register_job_definition(
        jobDefinitionName="mesobatch-python", type="container",
        containerProperties={"image": "python:3.11-slim", "command": ["true"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "128"}]},
        tags={"mesobatch": "yes"})
    found = batch.describe_job_definitions(jobDefinitionName="mesobatch-python",
                                           status="ACTIVE")["jobDefinitions"]
    ids = []
    for index in range(JOBS):
        requirements: list[ResourceRequirementTypeDef] = [
            {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]
        if index == 0:
            requirements.append({"type": "GPU", "value": "1"})
        overrides: ContainerOverridesTypeDef = {
            "command": command,
            "environment": [{"name": "MESOBATCH_JOB", "value": str(index)}],
            "resourceRequirements": requirements,
        }
        response = batch.submit_job(
            jobName=f"mesobatch-{index}", jobQueue=queue["jobQueueArn"],
            jobDefinition=definition["jobDefinitionArn"], containerOverrides=overrides,
            timeout={"attemptDurationSeconds": 3600}, tags={"mesobatch-run": "run-1"})
        ids.append(response["jobId"])
    described = batch.describe_jobs(jobs=ids)["jobs"]
    batch.terminate_job(jobId=ids[-1], reason="mesobatch: killed")
    queues = batch.describe_job_queues(jobQueues=["mesobatch-queue"])["jobQueues"]
    environments = batch.describe_compute_environments(
        computeEnvironments=["mesobatch-ce"])["computeEnvironments"]
    return {"ids": ids, "described": described, "definitions": found, "queues": queues,
            "environments": environments}
