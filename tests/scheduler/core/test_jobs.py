import pytest

from mesobatch.scheduler.contract import InsufficientSystemResources, JobDescription
from mesobatch.scheduler.core.jobs import InvalidJob, Limits, build_spec, check_limits

GIB = 1024**3


class ToilLike:
    """The attributes of Toil's JobDescription that we read."""

    jobName = "toil-job"
    cores = 0.5
    memory = GIB
    disk = 2 * GIB
    preemptible = True
    accelerators = [{"kind": "gpu", "count": 2, "brand": "nvidia", "api": "cuda"}]


def test_accepts_any_object_with_the_attributes() -> None:
    spec = build_spec(1, "true", ToilLike(), {}, None)
    assert spec.name == "toil-job" and spec.preemptible
    assert spec.resources.cpus == 500 and spec.resources.mem == 1024
    assert spec.resources.disk == 2048 and spec.resources.gpus == 2


@pytest.mark.parametrize(("desc", "message"), [
    (JobDescription(cores=-1), "invalid cores -1"),
    (JobDescription(memory=-5), "invalid memory -5"),
    (JobDescription(cores=float("nan")), "invalid cores nan"),
    (JobDescription(disk="2G"), "invalid disk '2G'"),  # type: ignore[arg-type]
])
def test_bad_descriptions_are_refused_with_the_value(desc: JobDescription, message: str) -> None:
    with pytest.raises(InvalidJob, match=message):
        build_spec(1, "true", desc, {}, None)


def test_empty_command_is_refused() -> None:
    with pytest.raises(InvalidJob, match="invalid command ''"):
        build_spec(1, "", JobDescription(), {}, None)


@pytest.mark.parametrize(("desc", "resource", "option"), [
    (JobDescription(cores=2000), "cores", "maxCores"),
    (JobDescription(memory=5000 * GIB), "memory", "maxMemory"),
    (JobDescription(disk=12 * GIB), "disk", "maxDisk"),
])
def test_limits_name_resource_request_limit_and_option(
        desc: JobDescription, resource: str, option: str) -> None:
    spec = build_spec(1, "true", desc, {}, None)
    with pytest.raises(InsufficientSystemResources) as e:
        check_limits(spec, Limits(cpus=2000, mem=4096, disk=10 * 1024))
    assert e.value.resource == resource
    assert f"--{option}" in str(e.value) and "job 'job1'" in str(e.value)
    assert f" {resource} of {resource}" not in str(e.value)


def test_unknown_accelerator_kind_can_never_be_satisfied() -> None:
    desc = JobDescription(accelerators=[{"kind": "tpu", "count": 1}])
    with pytest.raises(InsufficientSystemResources, match="'tpu'"):
        build_spec(1, "true", desc, {}, None)


def test_message_of_the_exception() -> None:
    e = InsufficientSystemResources("job 'x'", "memory", "64.0 GiB of memory",
                                    "15.6 GiB of memory", "maxMemory")
    assert str(e) == ("job 'x' requests 64.0 GiB of memory, but at most 15.6 GiB of memory "
                      "can be provided; raise the limit with --maxMemory")
