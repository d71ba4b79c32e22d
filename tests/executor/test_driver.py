"""The executor driver against a scripted agent endpoint: SUBSCRIBE, events turned into
Executor callbacks, UPDATE and MESSAGE calls, acknowledgements, losing the agent."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mesobatch.executor.driver import MesosExecutorDriver
from mesobatch.executor.interface import Executor, ExecutorDriver
from tests.waiting import wait_for

from .agent_endpoint import EXECUTOR_ID, FRAMEWORK_ID, AgentEndpoint, JsonDict


class RecordingExecutor(Executor):
    """Every callback, in order: (name, arguments other than the driver)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = threading.Condition()

    def _add(self, name: str, *args: Any) -> None:
        with self._changed:
            self.calls.append((name, args))
            self._changed.notify_all()

    def wait(self, n: int, timeout: float = 10) -> list[tuple[str, tuple[Any, ...]]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.calls) >= n, timeout), self.calls
            return list(self.calls)

    def registered(self, driver: ExecutorDriver, executorInfo: JsonDict,
                   frameworkInfo: JsonDict, agentInfo: JsonDict) -> None:
        self._add("registered", executorInfo["executor_id"]["value"],
                  frameworkInfo["id"]["value"], agentInfo["hostname"])

    def reregistered(self, driver: ExecutorDriver, agentInfo: JsonDict) -> None:
        self._add("reregistered", agentInfo["hostname"])

    def disconnected(self, driver: ExecutorDriver) -> None:
        self._add("disconnected")

    def launchTask(self, driver: ExecutorDriver, task: JsonDict) -> None:
        self._add("launchTask", task["task_id"]["value"])

    def killTask(self, driver: ExecutorDriver, taskId: JsonDict) -> None:
        self._add("killTask", taskId["value"])

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        self._add("frameworkMessage", message)

    def shutdown(self, driver: ExecutorDriver) -> None:
        self._add("shutdown")

    def error(self, driver: ExecutorDriver, message: str) -> None:
        self._add("error", message)


@pytest.fixture
def agent() -> Iterator[AgentEndpoint]:
    with AgentEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def executor() -> RecordingExecutor:
    return RecordingExecutor()


@pytest.fixture
def start(agent: AgentEndpoint, executor: RecordingExecutor
          ) -> Iterator[Callable[..., MesosExecutorDriver]]:
    drivers: list[MesosExecutorDriver] = []

    def start(**env: str) -> MesosExecutorDriver:
        driver = MesosExecutorDriver(executor, agent.env(**env))
        drivers.append(driver)
        driver.start()
        agent.wait_for(lambda: agent.subscribe_count() == 1)
        return driver

    yield start
    for driver in drivers:
        driver.stop()


def task(task_id: str) -> JsonDict:
    return {"name": task_id, "task_id": {"value": task_id}, "agent_id": {"value": "agent-1"},
            "resources": []}


def update(task_id: str, state: str) -> JsonDict:
    return {"task_id": {"value": task_id}, "state": state}


def test_events_become_callbacks_in_order(
        agent: AgentEndpoint, executor: RecordingExecutor,
        start: Callable[..., MesosExecutorDriver]) -> None:
    start()
    subscribe = agent.of("SUBSCRIBE")[0]
    assert subscribe["framework_id"] == {"value": FRAMEWORK_ID}
    assert subscribe["executor_id"] == {"value": EXECUTOR_ID}
    assert not subscribe["subscribe"].get("unacknowledged_tasks")
    assert not subscribe["subscribe"].get("unacknowledged_updates")
    assert agent.headers[0]["content-type"] == "application/json"
    for event in (
        agent.subscribed(),
        {"type": "LAUNCH", "launch": {"task": task("t1")}},
        {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": [
            task("t2"), task("t3")]}}},
        {"type": "HEARTBEAT"},
        {"type": "SOMETHING_NEW"},  # a later agent's event: ignored
        {"type": "KILL", "kill": {"task_id": {"value": "t1"}}},
        {"type": "MESSAGE", "message": {"data": base64.b64encode(b"hello").decode()}},
        {"type": "ERROR", "error": {"message": "boom"}},
        {"type": "SHUTDOWN"},
    ):
        agent.send(event)
    assert executor.wait(8) == [
        ("registered", (EXECUTOR_ID, FRAMEWORK_ID, "agent-host")),
        ("launchTask", ("t1",)), ("launchTask", ("t2",)), ("launchTask", ("t3",)),
        ("killTask", ("t1",)), ("frameworkMessage", (b"hello",)), ("error", ("boom",)),
        ("shutdown", ()),
    ]


def test_updates_keep_their_order_per_task_until_acknowledged(
        agent: AgentEndpoint, start: Callable[..., MesosExecutorDriver]) -> None:
    driver = start()
    agent.send(agent.subscribed())
    states = ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED")
    for state in states:
        for task_id in ("a", "b", "c", "d"):
            driver.sendStatusUpdate(update(task_id, state))
    agent.wait_for(lambda: len(agent.of("UPDATE")) == 12)
    updates = [c["update"]["status"] for c in agent.of("UPDATE")]
    for task_id in ("a", "b", "c", "d"):
        mine = [u for u in updates if u["task_id"]["value"] == task_id]
        assert tuple(u["state"] for u in mine) == states
    for status in updates:  # the double's checks passed; and what the driver adds
        assert status["source"] == "SOURCE_EXECUTOR"
        assert status["executor_id"] == {"value": EXECUTOR_ID} and status["timestamp"] > 0
        assert len(base64.b64decode(status["uuid"])) == 16
    assert len({u["uuid"] for u in updates}) == 12
    assert driver.unacknowledged() == 12
    for status in updates:
        agent.send({"type": "ACKNOWLEDGED", "acknowledged": {
            "task_id": status["task_id"], "uuid": status["uuid"]}})
    wait_for(lambda: driver.unacknowledged() == 0)


def test_framework_messages_and_the_token_go_with_the_calls(
        agent: AgentEndpoint, start: Callable[..., MesosExecutorDriver]) -> None:
    driver = start(MESOS_EXECUTOR_AUTHENTICATION_TOKEN="secret")
    agent.send(agent.subscribed())
    driver.sendFrameworkMessage(b"node report")
    agent.wait_for(lambda: agent.of("MESSAGE"))
    assert base64.b64decode(agent.of("MESSAGE")[0]["message"]["data"]) == b"node report"
    assert {h["authorization"] for h in agent.headers} == {"Bearer secret"}


def test_stop_returns_once_the_updates_made_are_with_the_agent(
        agent: AgentEndpoint, start: Callable[..., MesosExecutorDriver]) -> None:
    driver = start()
    agent.send(agent.subscribed())
    for i in range(30):
        driver.sendStatusUpdate(update(f"t{i}", "TASK_FINISHED"))
    driver.stop()
    assert len(agent.of("UPDATE")) == 30
    assert driver.join() == "stopped"


def test_an_update_refused_while_the_agent_recovers_is_sent_again(
        agent: AgentEndpoint, start: Callable[..., MesosExecutorDriver]) -> None:
    driver = start()
    agent.send(agent.subscribed())
    agent.answer = 503
    driver.sendStatusUpdate(update("t", "TASK_RUNNING"))
    agent.wait_for(lambda: len(agent.of("UPDATE")) >= 2)
    first, again = agent.of("UPDATE")[:2]
    assert first["update"] == again["update"]  # the same update, the same uuid
    agent.answer = 202


def test_a_checkpointing_executor_subscribes_again_with_what_is_unacknowledged(
        agent: AgentEndpoint, executor: RecordingExecutor,
        start: Callable[..., MesosExecutorDriver]) -> None:
    driver = start(MESOS_CHECKPOINT="1", MESOS_SUBSCRIPTION_BACKOFF_MAX="50ms",
                   MESOS_RECOVERY_TIMEOUT="10secs")
    agent.send(agent.subscribed())
    agent.send({"type": "LAUNCH", "launch": {"task": task("t1")}})
    executor.wait(2)
    driver.sendStatusUpdate(update("t1", "TASK_RUNNING"))
    agent.wait_for(lambda: agent.of("UPDATE"))
    sent = agent.of("UPDATE")[0]["update"]
    agent.drop()  # the agent goes away without ending the stream
    agent.wait_for(lambda: agent.subscribe_count() == 2)
    again = agent.of("SUBSCRIBE")[1]["subscribe"]
    assert [t["task_id"]["value"] for t in again["unacknowledged_tasks"]] == ["t1"]
    assert [u["status"]["uuid"] for u in again["unacknowledged_updates"]] == [
        sent["status"]["uuid"]]
    agent.send(agent.subscribed())
    assert executor.wait(4)[2:] == [("disconnected", ()), ("reregistered", ("agent-host",))]
    assert driver.status == "running"


def test_without_checkpointing_losing_the_agent_aborts(
        agent: AgentEndpoint, executor: RecordingExecutor,
        start: Callable[..., MesosExecutorDriver]) -> None:
    driver = start()
    agent.send(agent.subscribed())
    executor.wait(1)
    agent.drop()
    assert driver.join() == "aborted"
    assert executor.wait(2)[1] == ("disconnected", ())
    assert agent.subscribe_count() == 1


def test_a_refused_subscription_is_retried_only_when_checkpointing(
        agent: AgentEndpoint, executor: RecordingExecutor) -> None:
    agent.refuse_subscribe = 503
    driver = MesosExecutorDriver(executor, agent.env())
    driver.start()
    assert driver.join() == "aborted" and agent.subscribe_count() == 1
    driver.stop()
    driver = MesosExecutorDriver(executor, agent.env(
        MESOS_CHECKPOINT="1", MESOS_SUBSCRIPTION_BACKOFF_MAX="20ms"))
    driver.start()
    try:
        agent.wait_for(lambda: agent.subscribe_count() >= 3)
        agent.refuse_subscribe = None
        agent.wait_for(lambda: agent.streams_opened == 1)
        agent.send(agent.subscribed())
        assert executor.wait(1) == [("registered", (EXECUTOR_ID, FRAMEWORK_ID, "agent-host"))]
    finally:
        driver.stop()

