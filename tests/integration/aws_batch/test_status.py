"""JobDetails read as task states: each reason as the AWS Batch double writes it (its
shapes follow the API reference), submitted straight through boto3."""

from __future__ import annotations

import sys
from typing import Any

from mesobatch import BatchJobExitReason
from mesobatch.integration.aws_batch.requests import KILL_REASON
from mesobatch.integration.aws_batch.status import observe
from mesobatch.scheduler.core.states import TaskState
from tests.doubles.aws_batch import AwsBatchDouble


def run(aws: AwsBatchDouble, script: str, *, memory: str = "64", timeout: int | None = None,
        queue: str = "queue", then: Any = None) -> dict[str, Any]:
    """Submit ``python -c script`` as the backend would and return its final JobDetail;
    ``then(job_id)`` acts on it once it runs."""
    batch = aws.batch_client()
    if not batch.describe_job_definitions(jobDefinitionName="python")["jobDefinitions"]:
        batch.register_job_definition(jobDefinitionName="python", type="container",
                                      containerProperties={"image": "python:3.11"})
    extra: dict[str, Any] = {"timeout": {"attemptDurationSeconds": timeout}} if timeout else {}
    job_id = batch.submit_job(
        jobName="status-test", jobQueue=queue, jobDefinition="python",
        containerOverrides={"command": [sys.executable, "-c", script],
                            "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                     {"type": "MEMORY", "value": memory}]},
        **extra)["jobId"]
    if then is not None:
        aws.wait_for(lambda: aws.status(job_id) == "RUNNING", 30)
        then(job_id)
    aws.wait_for(lambda: aws.status(job_id) in ("SUCCEEDED", "FAILED"), 30)
    detail: dict[str, Any] = dict(batch.describe_jobs(jobs=[job_id])["jobs"][0])
    return detail


def test_success_and_exit_codes(aws: AwsBatchDouble) -> None:
    ok = observe(run(aws, "print('fine')"))
    assert (ok.state, ok.exit_code, ok.exit_reason) == (TaskState.FINISHED, 0, None)
    assert ok.wall_time is not None and ok.wall_time >= 0
    bad = observe(run(aws, "import sys; sys.exit(7)"))
    assert (bad.state, bad.exit_code, bad.exit_reason) == (TaskState.FAILED, 7, None)
    assert bad.message == ""  # "Essential container in task exited" says nothing more


def test_out_of_memory_is_memlimit(aws: AwsBatchDouble) -> None:
    seen = observe(run(aws, "x = bytearray(300 * 2**20); import time; time.sleep(5)",
                       memory="64"))
    assert (seen.state, seen.exit_reason) == (TaskState.FAILED, BatchJobExitReason.MEMLIMIT)
    assert seen.exit_code == 137 and "OutOfMemoryError" in seen.message


def test_attempt_timeout_is_maxjobduration(aws: AwsBatchDouble) -> None:
    seen = observe(run(aws, "import time; time.sleep(30)", timeout=1))
    assert seen.exit_reason == BatchJobExitReason.MAXJOBDURATION
    assert "Job attempt duration exceeded timeout" in seen.message


def test_host_and_spot_loss_are_lost(aws: AwsBatchDouble) -> None:
    host = observe(run(aws, "import time; time.sleep(30)", then=aws.lose_host))
    assert (host.state, host.exit_reason) == (TaskState.LOST, BatchJobExitReason.LOST)
    assert "Host EC2 (instance i-" in host.message
    spot = observe(run(aws, "import time; time.sleep(30)", queue="spot",
                       then=lambda _: aws.reclaim_spot()))
    assert (spot.state, spot.exit_reason) == (TaskState.LOST, BatchJobExitReason.LOST)


def test_a_container_that_cannot_start_is_an_error(aws: AwsBatchDouble) -> None:
    batch = aws.batch_client()
    batch.register_job_definition(jobDefinitionName="missing", type="container",
                                  containerProperties={"image": "python:3.11"})
    job_id = batch.submit_job(
        jobName="nostart", jobQueue="queue", jobDefinition="missing",
        containerOverrides={"command": ["/no/such/program"],
                            "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                     {"type": "MEMORY", "value": "64"}]}
    )["jobId"]
    aws.wait_for(lambda: aws.status(job_id) == "FAILED", 30)
    seen = observe(batch.describe_jobs(jobs=[job_id])["jobs"][0])
    assert seen.state is TaskState.ERROR
    assert "Task failed to start" in seen.message and "CannotStartContainerError" in seen.message


def test_terminated_by_someone_else_is_killed_with_their_reason(aws: AwsBatchDouble) -> None:
    batch = aws.batch_client()

    def terminate(reason: str) -> Any:
        return lambda job_id: batch.terminate_job(jobId=job_id, reason=reason)

    theirs = observe(run(aws, "import time; time.sleep(30)",
                         then=terminate("operator: queue drained")))
    assert theirs.state is TaskState.KILLED and "operator: queue drained" in theirs.message
    ours = observe(run(aws, "import time; time.sleep(30)", then=terminate(KILL_REASON)))
    assert ours.state is TaskState.FAILED  # never reported: our kill ended it already


def test_live_and_unknown_states() -> None:
    assert observe({"status": "RUNNABLE", "statusReason": "CAPACITY:INSUFFICIENT"}) \
        .pending_reason == "CAPACITY:INSUFFICIENT"
    assert observe({"status": "SUBMITTED"}).state is TaskState.STARTING
    assert observe({"status": "RUNNING"}).state is TaskState.RUNNING
    odd = observe({"status": "HIBERNATING"})
    assert odd.state is TaskState.UNKNOWN and not odd.state.terminal


def test_wall_time_is_never_short() -> None:
    # AWS truncates to whole milliseconds: a run of 0.5 s from 100.7009 to 101.2009 s reads
    # as 100700 to 101200 ms, and one of 0.5009 s (100.7001 - 101.2010) reads the same
    detail = {"status": "SUCCEEDED", "container": {"exitCode": 0},
              "attempts": [{"startedAt": 100_700, "stoppedAt": 101_200}]}
    wall = observe(detail).wall_time
    assert wall is not None and 0.5009 <= wall <= 0.502
    # the job's own stamps when no attempt has them
    wall = observe({"status": "FAILED", "startedAt": 5_000, "stoppedAt": 5_000}).wall_time
    assert wall == 0.001
