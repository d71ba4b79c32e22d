"""The requests the aws_batch backend builds (pure)."""

from __future__ import annotations

from mesobatch.integration.aws_batch import requests
from mesobatch.scheduler.core.jobs import JobSpec, Shape
from mesobatch.scheduler.core.resources import Resources


def spec(cores: float = 0.5, memory: int = 100 * 2**20, gpus: int = 0,
         walltime: float | None = None, name: str = "a job/with:odd chars") -> JobSpec:
    shape = Shape(preemptible=False, resources=Resources(
        cpus=int(cores * 1000), mem=memory // 2**20, disk=1, gpus=gpus))
    return JobSpec(job_id=42, command="echo 'hi there' | tr a-z A-Z", name=name, shape=shape,
                   cores=cores, memory=memory, disk=2**20, walltime=walltime,
                   environment={"B": "2"}, job_environment=None)


def test_submit_job_carries_command_resources_environment_tags_and_timeout() -> None:
    request = requests.submit_job(spec(cores=2.5, memory=100 * 2**20 + 1, gpus=2,
                                       walltime=3600.2), {"B": "2", "A": "1"},
                                  run_tag="mb-abc-1234", workflow_id="wf", queue="q",
                                  definition="arn:def:1", attempts=1)
    overrides = request["containerOverrides"]
    # the command is one argument of /bin/sh -c, exactly as given
    assert overrides["command"] == ["/bin/sh", "-c", "echo 'hi there' | tr a-z A-Z"]
    assert overrides["environment"] == [{"name": "A", "value": "1"},
                                        {"name": "B", "value": "2"}]
    assert overrides["resourceRequirements"] == [
        {"type": "VCPU", "value": "3"}, {"type": "MEMORY", "value": "101"},
        {"type": "GPU", "value": "2"}]
    assert request["timeout"] == {"attemptDurationSeconds": 3601}
    assert request["tags"] == {"mesobatch-run": "mb-abc-1234", "mesobatch-workflow": "wf",
                               "mesobatch-job": "42"}
    assert (request["jobQueue"], request["jobDefinition"]) == ("q", "arn:def:1")
    assert request["jobName"] == "mb-abc-1234-42-a_job_with_odd_chars"
    assert request["retryStrategy"] == {"attempts": 1}


def test_aws_limits_are_respected() -> None:
    request = requests.submit_job(spec(cores=0.1, memory=1, walltime=5, name="x" * 300), {},
                                  run_tag="mb-t-0000", workflow_id="w", queue="q",
                                  definition="d", attempts=3)
    assert request["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "4"}]
    assert request["timeout"] == {"attemptDurationSeconds": 60}  # AWS's least
    assert len(request["jobName"]) == 128
    assert "GPU" not in str(request["containerOverrides"])
    # AWS retries only attempts whose host went away
    assert request["retryStrategy"]["attempts"] == 3
    assert request["retryStrategy"]["evaluateOnExit"][0] == {
        "onStatusReason": "Host EC2*", "action": "RETRY"}
    assert "timeout" not in requests.submit_job(spec(), {}, run_tag="t", workflow_id="w",
                                                queue="q", definition="d", attempts=1)


def test_job_definition_name_follows_its_content() -> None:
    one = requests.container_properties("python:3.11", None)
    assert requests.definition_name(one) == requests.definition_name(
        requests.container_properties("python:3.11", None))
    other_image = requests.container_properties("python:3.12", None)
    with_role = requests.container_properties("python:3.11", "arn:aws:iam::1:role/r")
    assert len({requests.definition_name(p) for p in (one, other_image, with_role)}) == 3
    assert with_role["jobRoleArn"] == "arn:aws:iam::1:role/r"
    registered = requests.register_definition(with_role)
    assert registered["jobDefinitionName"] == requests.definition_name(with_role)
    assert registered["containerProperties"]["image"] == "python:3.11"


def test_describe_takes_100_ids_per_call() -> None:
    ids = [str(i) for i in range(250)]
    assert [len(c) for c in requests.describe_chunks(ids)] == [100, 100, 50]
    assert [i for chunk in requests.describe_chunks(ids) for i in chunk] == ids
    assert requests.describe_chunks([]) == []
