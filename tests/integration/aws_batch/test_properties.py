"""Property tests: a JobDetail of any shape is read without error, and a terminal one
always yields a terminal state (so no job is left waiting on an answer we could not read)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mesobatch.integration.aws_batch.logs import log_stream
from mesobatch.integration.aws_batch.status import observe
from mesobatch.scheduler.core.states import TaskState
from tests.properties import FAST, json_values

statuses = st.sampled_from(["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING",
                            "SUCCEEDED", "FAILED", "", "ODD"])
details = st.fixed_dictionaries(
    {"status": st.one_of(statuses, json_values)},
    optional={"statusReason": json_values, "container": json_values,
              "attempts": st.one_of(json_values, st.lists(json_values, max_size=3)),
              "startedAt": json_values, "stoppedAt": json_values,
              "isTerminated": json_values, "isCancelled": json_values})


@FAST
@given(details)
def test_any_job_detail_is_read(detail: dict[str, Any]) -> None:
    seen = observe(detail)
    if detail["status"] in ("SUCCEEDED", "FAILED"):
        assert seen.state.terminal
    elif detail["status"] in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
        assert seen.state in (TaskState.STARTING, TaskState.RUNNING)
    else:
        assert seen.state is TaskState.UNKNOWN
    assert seen.exit_code is None or 0 <= seen.exit_code <= 255
    assert seen.wall_time is None or seen.wall_time >= 0
    stream = log_stream(detail)
    assert stream is None or isinstance(stream, str)


@FAST
@given(json_values)
def test_anything_at_all_is_read(value: Any) -> None:
    assert observe(value).state is TaskState.UNKNOWN
    assert log_stream(value) is None or isinstance(log_stream(value), str)
