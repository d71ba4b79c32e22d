"""mesobatch's executor, driven through its callbacks by a recording driver."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesobatch.executor.driver import AgentEnvironment, parse_duration
from mesobatch.executor.executor import MesobatchExecutor
from mesobatch.executor.interface import ExecutorDriver
from mesobatch.executor.protocol import NodeReport, TaskPayload, TaskResult

TERMINAL = ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR")


class RecordingDriver(ExecutorDriver):
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.messages: list[bytes] = []
        self.stopped = False
        self._changed = threading.Condition()

    def sendStatusUpdate(self, status: dict[str, Any]) -> None:
        with self._changed:
            self.updates.append(status)
            self._changed.notify_all()

    def sendFrameworkMessage(self, message: bytes) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def stop(self) -> None:
        self.stopped = True

    def states(self, task: str) -> list[str]:
        with self._changed:
            return [u["state"] for u in self.updates if u["task_id"]["value"] == task]

    def wait_terminal(self, task: str, timeout: float = 10) -> dict[str, Any]:
        def terminal() -> dict[str, Any] | None:
            return next((u for u in self.updates if u["task_id"]["value"] == task
                         and u["state"] in TERMINAL), None)

        with self._changed:
            assert self._changed.wait_for(terminal, timeout), \
                f"no terminal update for {task}: {self.updates}"
            found = terminal()
            assert found is not None
            return found

    def wait_message(self, timeout: float = 10) -> bytes:
        with self._changed:
            assert self._changed.wait_for(lambda: self.messages, timeout), "no message"
            return self.messages[0]


def task(task_id: str, command: str, **payload: Any) -> dict[str, Any]:
    data = TaskPayload(job_id=int(task_id.split(".", maxsplit=1)[0]), name="t", command=command,
                       cores=payload.pop("cores", 1), workflow_id="wf", **payload).encode()
    return {"task_id": {"value": task_id}, "data": data,
            "kill_policy": {"grace_period": {"nanoseconds": 500_000_000}}}


Running = tuple[MesobatchExecutor, RecordingDriver]


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[tuple[MesobatchExecutor, RecordingDriver]]:
    ex = MesobatchExecutor(report_interval=0.1, kill_grace=1, sandbox=str(tmp_path))
    driver = RecordingDriver()
    ex.registered(driver, {}, {}, {"hostname": "agent-host"})
    yield ex, driver
    ex._stop.set()
    ex.runner.close(grace=0.1)


def test_running_then_exactly_one_terminal_update(executor: Running,
                                                  tmp_path: Path) -> None:
    ex, driver = executor
    ex.launchTask(driver, task("1.0", "echo $OMP_NUM_THREADS $MESOBATCH_WORK_DIR; sleep 0.5; "
                                      "exit 4", cores=2))
    final = driver.wait_terminal("1.0")
    # no TASK_STARTING (issue 16); RUNNING once it has run for running_delay (0.1 s)
    assert driver.states("1.0") == ["TASK_RUNNING", "TASK_FAILED"]
    result = TaskResult.decode(final["data"])
    assert result.exit_code == 4 and result.wall_time > 0
    log = (tmp_path / "1-t.log").read_text().split()
    assert log[0] == "2" and log[1].endswith("mesobatch-wf")
    # A re-sent launch changes nothing
    ex.launchTask(driver, task("1.0", "true"))
    assert driver.states("1.0") == ["TASK_RUNNING", "TASK_FAILED"]
    assert ex.runner.running() == []


def test_a_job_that_ends_before_the_running_delay_sends_its_terminal_update_alone(
        tmp_path: Path) -> None:
    ex = MesobatchExecutor(report_interval=30, kill_grace=1, sandbox=str(tmp_path),
                           running_delay=30.0)
    driver = RecordingDriver()
    ex.registered(driver, {}, {}, {"hostname": "agent-host"})
    try:
        for n in range(3):
            ex.launchTask(driver, task(f"{n}.0", "true"))
        for n in range(3):
            assert driver.wait_terminal(f"{n}.0")["state"] == "TASK_FINISHED"
        # one killed before its delay, which ignores TERM for its grace period (2 s):
        # its RUNNING, coming due meanwhile, is not said after TASK_KILLING
        stubborn = task("7.0", "trap '' TERM; sleep 30")
        stubborn["kill_policy"]["grace_period"]["nanoseconds"] = 2_000_000_000
        ex.launchTask(driver, stubborn)
        ex.killTask(driver, {"value": "7.0"})
        ex._say_running("7.0")
        assert driver.wait_terminal("7.0")["state"] == "TASK_KILLED"
        ex._say_running("0.0")  # and none after the end
    finally:
        ex._stop.set()
        ex._running.close()
        ex.runner.close(grace=0.1)
    assert [driver.states(f"{n}.0") for n in range(3)] == [["TASK_FINISHED"]] * 3
    assert driver.states("7.0") == ["TASK_KILLING", "TASK_KILLED"]


def test_kill_sends_killing_then_killed(executor: Running) -> None:
    ex, driver = executor
    ex.launchTask(driver, task("2.0", "sleep 30"))
    assert driver_waits_for(driver, "2.0", "TASK_RUNNING")
    ex.killTask(driver, {"value": "2.0"})
    driver.wait_terminal("2.0")
    assert driver.states("2.0") == ["TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
    ex.killTask(driver, {"value": "2.0"})  # already over: nothing more
    ex.killTask(driver, {"value": "9.0"})  # never here: a terminal answer anyway
    assert driver.states("2.0")[-1] == "TASK_KILLED" and len(driver.states("2.0")) == 3
    assert driver.states("9.0") == ["TASK_KILLED"]


def driver_waits_for(driver: RecordingDriver, task_id: str, state: str,
                     timeout: float = 10) -> bool:
    with driver._changed:
        return driver._changed.wait_for(lambda: state in driver.states(task_id), timeout)


def test_unreadable_task_data_is_a_task_error(executor: Running) -> None:
    ex, driver = executor
    ex.launchTask(driver, {"task_id": {"value": "3.0"},
                           "data": base64.b64encode(b"not json").decode()})
    assert driver.states("3.0") == ["TASK_ERROR"]


def test_walltime_and_node_reports(executor: Running) -> None:
    ex, driver = executor
    ex.launchTask(driver, task("4.0", "sleep 30", walltime=0.3))
    final = driver.wait_terminal("4.0")
    assert final["state"] == "TASK_FAILED"
    assert final["reason"] == "REASON_MAX_COMPLETION_TIME_REACHED"
    assert TaskResult.decode(final["data"]).walltime_exceeded
    report = NodeReport.decode(driver.wait_message())
    assert report.hostname == "agent-host" and report.mem_total > 0 and report.cores_total >= 1


def test_shutdown_kills_everything_cleans_up_and_stops(executor: Running, tmp_path: Path) -> None:
    ex, driver = executor
    for i in (5, 6):
        ex.launchTask(driver, task(f"{i}.0", "trap '' TERM; sleep 30"))
    assert (tmp_path / "work" / "mesobatch-wf").is_dir()
    started = time.monotonic()
    ex.shutdown(driver)
    assert time.monotonic() - started < 5 and driver.stopped
    assert driver.states("5.0")[-1] == "TASK_KILLED" and driver.states("6.0")[-1] == "TASK_KILLED"
    assert not (tmp_path / "work" / "mesobatch-wf").exists()


def test_agent_environment() -> None:
    assert parse_duration("5secs", 1) == 5 and parse_duration("15mins", 1) == 900
    assert parse_duration("100ms", 1) == pytest.approx(0.1) and parse_duration("bad", 7) == 7
    env = AgentEnvironment({"MESOS_FRAMEWORK_ID": "f", "MESOS_EXECUTOR_ID": "e",
                            "MESOS_AGENT_ENDPOINT": "10.0.0.1:5051", "MESOS_CHECKPOINT": "1",
                            "MESOS_RECOVERY_TIMEOUT": "15mins",
                            "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs"})
    assert env.url == "http://10.0.0.1:5051/api/v1/executor"
    assert env.checkpoint and env.recovery_timeout == 900 and env.backoff_max == 2
    with pytest.raises(RuntimeError, match="MESOS_FRAMEWORK_ID is not set"):
        AgentEnvironment({})
    assert json.loads(NodeReport("h", "1.2.3.4", 0.5, 1, 2, 3, 4).encode())["kind"] == \
        "node_report"
