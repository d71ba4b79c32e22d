"""Bad arguments to the API, on every backend: a clear error at the call, nothing queued,
and the batch system goes on working (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import mesobatch
from mesobatch.scheduler.core.jobs import MAX_ARG_STRLEN

from .conftest import Factory

SMALL = mesobatch.JobDescription(cores=0.5, memory=64 * 2**20, disk=64 * 2**20)


def desc(**kw: Any) -> mesobatch.JobDescription:
    return mesobatch.JobDescription(**{"cores": 0.5, "memory": 2**26, "disk": 2**26, **kw})


def still_works(bs: mesobatch.BatchSystem) -> None:
    """Nothing was queued by the refused calls, and a good job runs and is reported."""
    assert bs.getIssuedBatchJobIDs() == []
    job = bs.issueBatchJob("true", SMALL)
    info = bs.getUpdatedBatchJob(30)
    assert info is not None and (info.jobID, info.exitStatus) == (job, 0)
    assert bs.getIssuedBatchJobIDs() == []


def test_a_nul_byte_is_refused_at_issue_time(make_bs: Factory, tmp_path: Path) -> None:
    bs = make_bs()
    after = tmp_path / "after"
    with pytest.raises(ValueError, match="NUL"):
        bs.issueBatchJob(f"echo before\0; touch {after}", SMALL)
    with pytest.raises(ValueError, match="NUL"):
        bs.issueBatchJob("true", SMALL, {"X": "a\0b"})
    with pytest.raises(ValueError, match="NUL"):
        bs.setEnv("X", "a\0b")
    still_works(bs)
    assert not after.exists()


def test_set_env_refuses_what_no_environment_can_hold(make_bs: Factory) -> None:
    bs = make_bs()
    cases: list[tuple[Any, Any, str]] = [(123, "x", "name 123"), ("A=B", "x", "without '='"),
                             ("", "x", "non-empty"), ("A", 5, "expected a string"),
                             ("A", b"x", "expected a string")]
    for name, value, why in cases:
        with pytest.raises(ValueError, match=why):
            bs.setEnv(name, value)
    still_works(bs)  # the local backend was poisoned by setEnv(123, "x") before


@pytest.mark.parametrize("env, why", [
    (["A=1"], "expected a mapping"), ({"A=B": "1"}, "without '='"),
    ({"A": 1}, "expected a string"), ({5: "x"}, "name 5"), ("A=1", "expected a mapping"),
])
def test_job_environment_is_checked(make_bs: Factory, env: Any, why: str) -> None:
    bs = make_bs()
    with pytest.raises(ValueError, match=why):
        bs.issueBatchJob("true", SMALL, env)
    still_works(bs)


def test_a_command_too_long_for_execve_is_refused_with_the_limit(make_bs: Factory) -> None:
    bs = make_bs()
    longest = "true " + "x" * (MAX_ARG_STRLEN - 6)  # with its NUL, exactly the limit
    with pytest.raises(ValueError, match=r"131071 bytes.*MAX_ARG_STRLEN"):
        bs.issueBatchJob(longest + "x", SMALL)
    with pytest.raises(ValueError, match="MAX_ARG_STRLEN"):
        bs.issueBatchJob("true", SMALL, {"BIG": "x" * MAX_ARG_STRLEN})
    job = bs.issueBatchJob(f": {longest[5:]}", SMALL)  # just fits: it runs
    info = bs.getUpdatedBatchJob(30)
    assert info is not None and (info.jobID, info.exitStatus) == (job, 0)


def test_kill_and_wait_arguments_are_checked(make_bs: Factory) -> None:
    bs = make_bs()
    bad_ids: list[tuple[Any, str]] = [
        ("82", "expected a list"), ([83.9], "job id 83.9"), (5, "expected a list"),
        ([True], "job id True"), (["1"], "job id '1'")]
    for ids, why in bad_ids:
        with pytest.raises(ValueError, match=why):
            bs.killBatchJobs(ids)
    with pytest.raises(ValueError, match="maxWait"):
        bs.getUpdatedBatchJob("1")  # type: ignore[arg-type]
    still_works(bs)


@pytest.mark.parametrize("kw, why", [
    ({"accelerators": 5}, "invalid accelerators 5"),
    ({"accelerators": "gpu"}, "invalid accelerators 'gpu'"),
    ({"memory": 2**1100}, "invalid memory"), ({"disk": float("inf")}, "invalid disk"),
    ({"cores": 1e300}, "invalid cores"), ({"walltime": float("nan")}, "invalid walltime"),
    ({"accelerators": [{"kind": "gpu", "count": 2**40}]}, "accelerator count"),
])
def test_job_descriptions_are_checked(make_bs: Factory, kw: dict[str, Any], why: str) -> None:
    bs = make_bs()
    with pytest.raises(ValueError, match=why):
        bs.issueBatchJob("true", desc(**kw))
    still_works(bs)
