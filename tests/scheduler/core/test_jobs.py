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


def test_a_bad_request_is_refused_after_a_good_one_of_the_same_description() -> None:
    # the good one's shape is remembered; the bad ones must still get the full checks
    build_spec(1, "true", JobDescription(cores=1, memory=GIB), {}, None)
    for desc, message in [
        (JobDescription(cores=-1, memory=GIB), "invalid cores -1"),
        (JobDescription(cores=True, memory=GIB), "invalid cores True: expected a number"),
        (JobDescription(cores=1, memory=float("inf")),  # type: ignore[arg-type]
         "invalid memory inf"),
        (JobDescription(cores=1, memory=GIB, walltime=-3), "invalid walltime -3"),
    ]:
        with pytest.raises(InvalidJob, match=message):
            build_spec(2, "true", desc, {}, None)
    with pytest.raises(InvalidJob, match="invalid command ''"):
        build_spec(3, "", JobDescription(cores=1, memory=GIB), {}, None)
    with pytest.raises(InvalidJob, match="invalid value 1 for environment variable X"):
        build_spec(4, "true", JobDescription(cores=1, memory=GIB), {}, {"X": 1})  # type: ignore[dict-item]
    with pytest.raises(InsufficientSystemResources, match="'tpu'"):
        build_spec(5, "true", JobDescription(cores=1, memory=GIB, accelerators=[
            {"kind": "tpu", "count": 1}]), {}, None)


def test_remembered_shapes_give_each_job_its_own_values() -> None:
    first = build_spec(1, "a", JobDescription(cores=0.5, memory=GIB, walltime=10), {}, None)
    again = build_spec(2, "b", JobDescription(cores=0.5, memory=GIB, walltime=10, name="n"),
                       {"A": "1"}, {"B": "2"})
    assert again.shape is first.shape
    assert (again.job_id, again.command, again.name) == (2, "b", "n")
    assert (again.cores, again.memory, again.disk, again.walltime) == (0.5, GIB, 2 * GIB, 10.0)
    assert again.environment == {"A": "1"} and again.job_environment == {"B": "2"}
    assert build_spec(3, "c", JobDescription(cores=0.5, memory=GIB, walltime=0), {},
                      None).walltime is None


@pytest.mark.parametrize("other", [
    JobDescription(cores=0.25, memory=GIB),
    JobDescription(cores=0.5, memory=2 * GIB),
    JobDescription(cores=0.5, memory=GIB, disk=GIB),
    JobDescription(cores=0.5, memory=GIB, preemptible=True),
    JobDescription(cores=0.5, memory=GIB, accelerators=[{"kind": "gpu", "count": 1}]),
])
def test_distinct_requests_are_not_conflated(other: JobDescription) -> None:
    base = build_spec(1, "true", JobDescription(cores=0.5, memory=GIB), {}, None)
    spec = build_spec(2, "true", other, {}, None)
    fresh = build_spec(3, "true", other, {}, None)
    assert spec.shape != base.shape and fresh.shape == spec.shape
    assert build_spec(4, "true", JobDescription(cores=0.5, memory=GIB), {}, None).shape \
        == base.shape


def test_int_and_float_requests_of_one_value_give_the_same_shape() -> None:
    as_int = build_spec(1, "true", JobDescription(cores=1, memory=GIB), {}, None)
    as_float = build_spec(2, "true", JobDescription(
        cores=1.0, memory=float(GIB)), {}, None)  # type: ignore[arg-type]
    assert as_int.shape == as_float.shape and as_float.memory == GIB
