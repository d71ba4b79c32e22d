"""The aws_batch backend's options (AWS credentials come from boto3's standard chain)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...scheduler.options import (
    CommonOptions,
    OptionError,
    opt,
    parse_cores,
    parse_count,
    parse_seconds,
    parse_str,
)


def parse_name_or_arn(value: Any) -> str:
    """A queue, job definition or role: a name or an ARN, without spaces."""
    text = parse_str(value).strip()
    if not text or re.search(r"\s", text):
        raise ValueError("expected a name or an ARN (no spaces)")
    return text


def parse_region(value: Any) -> str:
    text = parse_str(value).strip()
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", text):
        raise ValueError("expected an AWS region such as us-east-1 or eu-west-2")
    return text


def parse_url(value: Any) -> str:
    text = parse_str(value).strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise ValueError("expected an http:// or https:// URL")
    return text


def parse_attempts(value: Any) -> int:
    n = parse_count(value)
    if not 1 <= n <= 10:
        raise ValueError("expected a whole number from 1 to 10 (AWS Batch's range)")
    return n


def parse_positive_count(value: Any) -> int:
    n = parse_count(value)
    if n < 1:
        raise ValueError("expected a whole number >= 1")
    return n


@dataclass(frozen=True)
class AwsBatchOptions(CommonOptions):
    """Options of the aws_batch backend. The three Toil also has (--awsBatchRegion,
    --awsBatchQueue, --awsBatchJobRoleArn) keep Toil's dests, so Toil's values reach us."""

    aws_batch_region: str | None = opt(
        "awsBatchRegion", parse=parse_region, metavar="REGION",
        env_aliases=("TOIL_AWS_REGION",),
        help="the AWS region of the queue (default: boto3's, from AWS_REGION, "
             "AWS_DEFAULT_REGION or the profile)")
    aws_batch_queue: str | None = opt(
        "awsBatchQueue", parse=parse_name_or_arn, metavar="QUEUE",
        env_aliases=("TOIL_AWS_BATCH_QUEUE",),
        help="the job queue (name or ARN) jobs go to (required)")
    aws_batch_spot_queue: str | None = opt(
        "awsBatchSpotQueue", parse=parse_name_or_arn, metavar="QUEUE",
        help="a job queue on spot capacity for preemptible jobs (default: they go to "
             "--awsBatchQueue)")
    aws_batch_job_definition: str | None = opt(
        "awsBatchJobDefinition", parse=parse_name_or_arn, metavar="NAME",
        help="run jobs with this job definition (name, name:revision or ARN) instead of "
             "registering one from --awsBatchImage")
    aws_batch_image: str | None = opt(
        "awsBatchImage", parse=parse_name_or_arn, metavar="IMAGE",
        help="container image the jobs run in: a job definition is registered for it "
             "once (named by its content, so later runs reuse it)")
    aws_batch_job_role_arn: str | None = opt(
        "awsBatchJobRoleArn", parse=parse_name_or_arn, metavar="ARN",
        env_aliases=("TOIL_AWS_BATCH_JOB_ROLE_ARN",),
        help="IAM role the jobs' containers assume (goes into the registered job "
             "definition)")
    aws_batch_max_vcpus: float | None = opt(
        "awsBatchMaxVcpus", parse=parse_cores, metavar="VCPUS",
        help="cores this run may use at once (default: the sum of maxvCpus of the "
             "queues' compute environments)")
    aws_batch_attempts: int = opt(
        "awsBatchAttempts", parse=parse_attempts, default=1, metavar="N",
        help="AWS Batch's own attempts per job (retryStrategy); the workflow engine "
             "usually retries instead")
    aws_batch_endpoint: str | None = opt(
        "awsBatchEndpoint", parse=parse_url, metavar="URL",
        help="send AWS Batch and CloudWatch Logs requests here (a local emulation such "
             "as LocalStack; default: AWS's endpoints, or AWS_ENDPOINT_URL_BATCH)")
    aws_batch_log_group: str = opt(
        "awsBatchLogGroup", parse=parse_name_or_arn, default="/aws/batch/job",
        metavar="GROUP", help="CloudWatch log group of the jobs' output")
    poll_interval: float = opt(
        "pollInterval", parse=parse_seconds, default=5.0, metavar="SECONDS",
        help="time between two rounds of DescribeJobs (100 jobs per call, every job of "
             "the run each round)")
    api_attempts: int = opt(
        "awsBatchApiAttempts", parse=parse_positive_count, default=8, metavar="N",
        help="tries of a throttled (TooManyRequestsException) or failed request, with "
             "exponential backoff, before its job fails")

    def validate(self) -> None:
        super().validate()
        if self.poll_interval <= 0:
            raise OptionError(f"invalid value {self.poll_interval!r} for --pollInterval: "
                              "expected a number of seconds > 0")
        if self.aws_batch_max_vcpus is not None and self.aws_batch_max_vcpus <= 0:
            raise OptionError(f"invalid value {self.aws_batch_max_vcpus!r} for "
                              "--awsBatchMaxVcpus: expected a number > 0")
        if not self.aws_batch_queue:
            raise OptionError("--awsBatchQueue is required for the aws_batch backend: the "
                              "name or ARN of the job queue")
        if bool(self.aws_batch_image) == bool(self.aws_batch_job_definition):
            raise OptionError("the aws_batch backend needs exactly one of --awsBatchImage "
                              "(a job definition is registered for it) and "
                              "--awsBatchJobDefinition (an existing one)")
        if self.aws_batch_job_definition and self.aws_batch_job_role_arn:
            raise OptionError("--awsBatchJobRoleArn goes into the job definition mesobatch "
                              "registers from --awsBatchImage; with --awsBatchJobDefinition "
                              "set the role in that definition instead")
