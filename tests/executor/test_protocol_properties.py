"""Property tests of what the executor reads: any TaskInfo.data or TaskStatus.data gives
a well-typed payload or result, or ValueError; any task given to the executor fails
alone or runs; any agent event is handled or skipped by the executor driver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mesobatch.executor.driver import MesosExecutorDriver
from mesobatch.executor.executor import MesobatchExecutor
from mesobatch.executor.interface import Executor
from mesobatch.executor.protocol import NodeReport, TaskPayload, TaskResult, b64encode
from tests.properties import FAST, SLOW, json_values, mesos_id

from .test_executor import RecordingDriver

#: payload fields with values of the right type, or anything; the command is never
#: arbitrary text (a decoded payload may run it)
payload_fields = st.fixed_dictionaries({}, optional={
    "job_id": st.one_of(st.integers(0, 10**6), json_values),
    "name": st.one_of(st.text(max_size=10), json_values),
    "command": st.one_of(st.sampled_from(["true", "exit 3", "", "tr\0ue"]), json_values),
    "cores": st.one_of(st.floats(0, 4), json_values),
    "env": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
                     json_values),
    "walltime": st.one_of(st.none(), st.floats(0, 100), json_values),
    "workflow_id": st.one_of(st.just(""), json_values), "version": json_values,
    "resource_url": st.one_of(st.just(""), json_values),
    "resource_token": st.one_of(st.just(""), json_values), "unknown": json_values})


def data_of(raw: Any) -> str:
    return b64encode(json.dumps(raw).encode())


@FAST
@given(st.one_of(st.text(max_size=50), payload_fields.map(data_of), json_values))
def test_any_task_data_gives_a_typed_payload_or_value_error(data: Any) -> None:
    try:
        payload = TaskPayload.decode(data)
    except ValueError as e:
        assert str(e)
        return
    assert isinstance(payload.job_id, int) and not isinstance(payload.job_id, bool)
    assert isinstance(payload.command, str) and payload.command.strip()
    assert "\0" not in payload.command and isinstance(payload.cores, int | float)
    assert all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k
               for k, v in payload.env.items())
    assert payload.walltime is None or payload.walltime >= 0


@FAST
@given(st.fixed_dictionaries({}, optional={
    "exit_code": json_values, "wall_time": json_values, "signal": json_values,
    "walltime_exceeded": json_values}).map(data_of))
def test_any_result_blob_gives_a_typed_result_or_value_error(data: str) -> None:
    try:
        result = TaskResult.decode(data)
    except ValueError:
        return
    assert isinstance(result.exit_code, int) and isinstance(result.wall_time, int | float)
    assert result.signal is None or isinstance(result.signal, int)
    assert isinstance(result.walltime_exceeded, bool)


@FAST
@given(json_values)
def test_any_node_report_is_read_or_refused(raw: Any) -> None:
    try:
        report = NodeReport.decode(json.dumps(raw).encode())
    except ValueError:
        return
    assert isinstance(report.hostname, str) and isinstance(report.tasks_running, int)


@SLOW
@given(payload_fields, st.one_of(st.none(), json_values))
def test_any_task_fails_alone_or_runs(tmp_path_factory: Any, fields: dict[str, Any],
                                      kill_policy: Any) -> None:
    sandbox: Path = tmp_path_factory.mktemp("sandbox")
    ex = MesobatchExecutor(report_interval=60, kill_grace=1, sandbox=str(sandbox))
    driver = RecordingDriver()
    ex.registered(driver, {}, {}, {})
    task = {"task_id": {"value": "1.0"}, "data": data_of(fields)}
    if kill_policy is not None:
        task["kill_policy"] = kill_policy
    try:
        ex.launchTask(driver, task)
        update = driver.wait_terminal("1.0")  # exactly one terminal update comes
        assert update["state"] in ("TASK_ERROR", "TASK_FINISHED", "TASK_FAILED"), update
        if update["state"] == "TASK_ERROR":
            assert update["message"].startswith("cannot read the task's data")
    finally:
        ex.runner.close(grace=0.1, timeout=2)


class Recording(Executor):
    def __init__(self) -> None:
        self.launched: list[Any] = []

    def launchTask(self, driver: Any, task: Any) -> None:
        self.launched.append(task)
        raise RuntimeError("a callback that fails")


agent_events = st.one_of(json_values, st.builds(
    lambda kind, body: {"type": kind, kind.lower(): body},
    st.sampled_from(["SUBSCRIBED", "LAUNCH", "LAUNCH_GROUP", "KILL", "ACKNOWLEDGED",
                     "MESSAGE", "SHUTDOWN", "ERROR", "HEARTBEAT"]),
    st.one_of(json_values, st.fixed_dictionaries({"task": st.fixed_dictionaries(
        {"task_id": mesos_id()})}), st.fixed_dictionaries({"task_id": mesos_id(),
                                                            "uuid": json_values}))))


@FAST
@given(st.lists(agent_events, max_size=4))
def test_any_agent_event_is_handled_or_skipped(events: list[Any]) -> None:
    executor = Recording()
    driver = MesosExecutorDriver(executor, {"MESOS_FRAMEWORK_ID": "f", "MESOS_EXECUTOR_ID": "e",
                                            "MESOS_AGENT_ENDPOINT": "127.0.0.1:9"})
    for event in events:
        driver._dispatch(event)  # never raises
    errors = driver._outbox.take_waiting()
    assert len(errors) == len(executor.launched)  # each failed launch: TASK_ERROR
    for call in errors:
        assert call is not None and call["update"]["status"]["state"] == "TASK_ERROR"
