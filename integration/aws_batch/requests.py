"""Every AWS Batch request the backend sends, built from plain values (no I/O here).

AWS Batch's limits shape them (API Reference, SubmitJob and ResourceRequirement): a job
name is at most 128 letters, digits, hyphens and underscores; on EC2 compute
environments VCPU is a whole number >= 1 and MEMORY whole MiB (>= 4);
``attemptDurationSeconds`` is at least 60; ``retryStrategy.attempts`` 1 to 10.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ...scheduler.core.jobs import JobSpec

MIB = 1024 * 1024
#: AWS Batch's least attempt timeout, in seconds
MIN_TIMEOUT = 60
#: least MEMORY (MiB) a container may have
MIN_MEMORY_MIB = 4
#: the ids DescribeJobs takes in one call
DESCRIBE_CHUNK = 100
#: the reason given to TerminateJob for our kills (jobs failed with it are ours)
KILL_REASON = "mesobatch: killed by the workflow"
#: statuses a job may still leave
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")

Request = dict[str, Any]


def job_name(run_tag: str, job_id: int, name: str) -> str:
    """``<run tag>-<job id>-<name>``, cut to AWS's 128 allowed characters."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    return (f"{run_tag}-{job_id}-{safe}" if safe else f"{run_tag}-{job_id}")[:128]


def vcpus(cores: float) -> int:
    """Whole vCPUs, at least 1: what an EC2 compute environment reserves for the job."""
    return max(1, math.ceil(cores - 1e-9))


def memory_mib(memory: int) -> int:
    return max(MIN_MEMORY_MIB, math.ceil(memory / MIB))


def timeout_seconds(walltime: float | None) -> int | None:
    """The attempt timeout for a wall time (AWS's least is 60 s)."""
    return None if walltime is None else max(MIN_TIMEOUT, math.ceil(walltime))


def container_properties(image: str, job_role_arn: str | None) -> Request:
    """The job definition registered for an image; overridden per job at submission."""
    props: Request = {
        "image": image,
        "command": ["/bin/sh", "-c", "true"],
        "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                 {"type": "MEMORY", "value": "256"}],
    }
    if job_role_arn:
        props["jobRoleArn"] = job_role_arn
    return props


def definition_name(properties: Mapping[str, Any]) -> str:
    """A job definition name made from its content: one per image and role, found again
    by a later run instead of registering a new revision each time."""
    digest = hashlib.sha256(json.dumps(properties, sort_keys=True).encode()).hexdigest()
    return f"mesobatch-{digest[:24]}"


def register_definition(properties: Mapping[str, Any]) -> Request:
    return {"jobDefinitionName": definition_name(properties), "type": "container",
            "containerProperties": dict(properties),
            "tags": {"mesobatch": "job-definition"}}


def submit_job(spec: JobSpec, env: Mapping[str, str], *, run_tag: str, workflow_id: str,
               queue: str, definition: str, attempts: int) -> Request:
    """SubmitJob for one job: its command under /bin/sh, environment, resources,
    timeout and this run's tags."""
    requirements = [{"type": "VCPU", "value": str(vcpus(spec.cores))},
                    {"type": "MEMORY", "value": str(memory_mib(spec.memory))}]
    if spec.resources.gpus:
        requirements.append({"type": "GPU", "value": str(spec.resources.gpus)})
    request: Request = {
        "jobName": job_name(run_tag, spec.job_id, spec.name),
        "jobQueue": queue,
        "jobDefinition": definition,
        "containerOverrides": {
            "command": ["/bin/sh", "-c", spec.command],
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "resourceRequirements": requirements,
        },
        "tags": {"mesobatch-run": run_tag, "mesobatch-workflow": workflow_id[:256],
                 "mesobatch-job": str(spec.job_id)},
        "retryStrategy": retry_strategy(attempts),
    }
    timeout = timeout_seconds(spec.walltime)
    if timeout is not None:
        request["timeout"] = {"attemptDurationSeconds": timeout}
    return request


def retry_strategy(attempts: int) -> Request:
    """AWS Batch's own retries: only of attempts whose host went away (spot reclaim,
    host failure); a job's own failure is the workflow engine's to retry."""
    if attempts <= 1:
        return {"attempts": 1}
    return {"attempts": attempts, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ]}


def describe_chunks(ids: list[str]) -> list[list[str]]:
    """The DescribeJobs calls for ``ids``: 100 per call."""
    return [ids[i:i + DESCRIBE_CHUNK] for i in range(0, len(ids), DESCRIBE_CHUNK)]


def run_jobs_filter(run_tag: str) -> list[Request]:
    """ListJobs' filter for every job of this run (their names start with its tag)."""
    return [{"name": "JOB_NAME", "values": [f"{run_tag}-*"]}]
