"""Property tests of the scheduler's outside input: job files, option values and sizes,
and the arguments of issueBatchJob / setEnv / killBatchJobs. Each gives a clear error
(ValueError naming the value) or correct behaviour; an issued job is reported exactly
once; nothing raises in a thread."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mesobatch
from mesobatch.scheduler.contract import InsufficientSystemResources
from mesobatch.scheduler.jobfile import Defaults, JobFileError, parse_jobs
from mesobatch.scheduler.options import (
    MAX_SIZE,
    CommonOptions,
    OptionError,
    option_fields,
    parse_bool,
    parse_cores,
    parse_count,
    parse_seconds,
    parse_size,
    resolve,
)
from tests.properties import FAST, SLOW, json_values, no_thread_errors, scalars

job_keys = st.fixed_dictionaries(
    {"command": st.one_of(st.sampled_from(["true", "echo a", "", "a\0b"]), json_values)},
    optional={k: json_values for k in ("name", "cores", "memory", "disk", "env",
                                       "preemptible", "gpus", "walltime", "other")})


@FAST
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.one_of(job_keys.map(json.dumps), st.text(max_size=30)),
                          max_size=4).map("\n".join)),
       st.sampled_from(["jobs.jsonl", "jobs.txt"]))
def test_a_job_file_gives_jobs_or_an_error_naming_where(text: str, where: str) -> None:
    try:
        jobs = parse_jobs(text, where, Defaults())
    except JobFileError as e:
        assert str(e).startswith(("job file", where)), e
        return
    for job in jobs:
        assert job.command.strip() and "\0" not in job.command
        assert job.cores > 0 and 0 <= job.memory <= MAX_SIZE and 0 <= job.disk <= MAX_SIZE
        assert all(isinstance(k, str) and isinstance(v, str) and "=" not in k
                   for k, v in job.env.items())


sizes = st.one_of(scalars, st.from_regex(r"\s*[0-9]{0,30}(\.[0-9]*)?\s*[kKmMgGtTpPeE]?[iI]?[bB]?"
                                          r"\s*", fullmatch=True))


@FAST
@given(sizes)
def test_a_size_is_a_byte_count_or_a_value_error(value: Any) -> None:
    try:
        size = parse_size(value)
    except ValueError as e:
        assert str(e)
        return
    assert isinstance(size, int) and 0 <= size <= MAX_SIZE


@FAST
@given(scalars)
def test_numbers_and_flags_are_parsed_or_refused(value: Any) -> None:
    for parse in (parse_cores, parse_seconds, parse_count, parse_bool):
        try:
            parsed = parse(value)
        except ValueError:
            continue
        if parse is parse_bool:
            assert isinstance(parsed, bool)
        else:
            assert parsed >= 0 and not math.isnan(parsed)


OPTION_NAMES = [meta.name for _, meta in option_fields(CommonOptions)
                if meta.name != "logDir"]


@FAST
@given(st.dictionaries(st.sampled_from(OPTION_NAMES), st.one_of(sizes, json_values),
                       max_size=3))
def test_options_resolve_or_raise_option_error(arguments: dict[str, Any]) -> None:
    try:
        resolve(CommonOptions, arguments, environ={})
    except OptionError as e:
        assert "--" in str(e) or "option" in str(e)


@pytest.fixture(scope="module")
def bs() -> Any:
    with mesobatch.batch_system("local", maxCores=2, maxMemory="1G", maxDisk="1G",
                                maxGpus=0, killGracePeriod=1) as system:
        yield system


descriptions = st.builds(
    mesobatch.JobDescription,
    cores=st.one_of(st.floats(0.01, 2), json_values),
    memory=st.one_of(st.integers(0, 2**27), json_values),
    disk=st.one_of(st.integers(0, 2**27), json_values),
    accelerators=st.one_of(st.just(()), json_values),
    walltime=st.one_of(st.none(), st.floats(1, 60), json_values),
    preemptible=json_values, name=st.one_of(st.none(), st.text(max_size=10)))
#: never arbitrary text as a command: an accepted one would run
commands = st.one_of(st.sampled_from(["true", "exit 3", "t\0rue", " "]), json_values)
environments = st.one_of(st.none(), st.dictionaries(st.text(max_size=4), st.text(max_size=4),
                                                    max_size=2), json_values)


@SLOW
@given(commands, descriptions, environments, json_values, json_values)
def test_api_arguments_give_a_clear_error_or_a_job_reported_once(
        bs: mesobatch.BatchSystem, command: Any, desc: Any, env: Any, name: Any,
        kill_ids: Any) -> None:
    with no_thread_errors() as errors:
        try:
            bs.setEnv(name, "v")
        except (ValueError, RuntimeError) as e:  # RuntimeError: not in os.environ
            assert str(e)
        try:
            job = bs.issueBatchJob(command, desc, env)
        except (ValueError, InsufficientSystemResources) as e:
            assert str(e)
            assert bs.getIssuedBatchJobIDs() == []  # nothing was queued
        else:
            info = bs.getUpdatedBatchJob(30)
            assert info is not None and info.jobID == job
            assert bs.getUpdatedBatchJob(0) is None  # exactly once
        try:
            bs.killBatchJobs(kill_ids)
        except ValueError as e:
            assert "job id" in str(e)
        assert bs.getIssuedBatchJobIDs() == []
    assert errors == []
