"""The fault suite's hooks, driven from another process through the control API (issue 10).

Executor kill -9 (at random, by agent), agent restart, agent lost for good, the leading
master killed with ZooKeeper failover, the scheduler stream dropped; plus the per-framework
counters (issue 16) and the executor-resource warnings.
"""

from __future__ import annotations

import json
import time
import urllib.error
import uuid

import pytest
from kazoo.client import KazooClient

from tests.doubles.mesos import DoubleProcess, MesosDouble, wait_for_leader
from tests.doubles.mesos.process import ControlClient
from tests.doubles.mesos.traffic import per_task
from tests.doubles.mesos.zk import REGISTRY_NODE, ZkUrl
from tests.services.zookeeper import ZooKeeper

from .wire_client import Scheduler, executor_info, task_info

FAST = ("--allocation-interval", "0.2", "--agent-removal-timeout", "1",
        "--executor-reregistration-timeout", "1")  # fmt: skip


def _launch_on_each_agent(scheduler: Scheduler, agents: int) -> dict[str, str]:
    """One running task per agent, each on its own executor; agent id -> task id."""
    placed: dict[str, str] = {}
    while len(placed) < agents:
        for offer in scheduler.offers(timeout=10):
            agent_id = offer["agent_id"]["value"]
            if agent_id in placed:
                continue
            task_id = f"t-{len(placed)}"
            executor = executor_info(f"e-{len(placed)}")
            task = task_info(task_id, offer, executor, mode="run")
            scheduler.launch(offer, [task], filters={"refuse_seconds": 0})
            scheduler.ack(scheduler.update(task_id, "TASK_RUNNING", timeout=20))
            placed[agent_id] = task_id
    return placed


def test_fault_hooks_through_the_control_client() -> None:
    with DoubleProcess(*FAST, agents=2) as double:
        control = double.control
        assert control is not None
        scheduler = Scheduler(double.master_address)
        placed = _launch_on_each_agent(scheduler, 2)
        first, second = double.agent_ids

        # Executor kill -9 at random on a chosen agent: FAILURE, then TASK_FAILED.
        killed = control.kill_random_executor(agent=1, seed=7)
        assert killed is not None
        assert (killed["agent_id"], killed["agent"]) == (second, double.agent_addresses[1])
        assert killed["framework_id"] == scheduler.framework_id
        assert killed["pid"] in [p["pid"] for p in killed["tree"]]
        failure = scheduler.subscription.next("FAILURE", timeout=10)["failure"]
        assert failure["executor_id"]["value"] == killed["executor_id"]
        assert failure["status"] == 35072  # kill -9, as the recordings show
        scheduler.ack(scheduler.update(placed[second], "TASK_FAILED", timeout=10))
        assert control.kill_random_executor(agent=1) is None  # nothing runs there any more
        assert control.kill_random_executor(framework_id="no-such-framework") is None

        # Agent restart: the executor lives on and re-subscribes; the task keeps running.
        before = control.state()["agent_processes"][0]["registrations"]
        control.restart_agent(0, wait=True)
        deadline = time.monotonic() + 10
        while (after := control.state())["agent_processes"][0]["registrations"] == before:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert after["frameworks"][scheduler.framework_id]["tasks"][placed[first]] == (
            "TASK_RUNNING"
        )

        # Agent lost for good: its executor processes are killed; the master gives up on it.
        lost = control.lose_agent(0, wait=True)
        assert lost is not None and [k["executor_id"] for k in lost] == ["e-0"]
        unreachable = scheduler.update(placed[first], "TASK_UNREACHABLE", timeout=10)
        assert unreachable["reason"] == "REASON_AGENT_REMOVED"
        assert control.state()["agent_processes"][0]["state"] == "down"

        # Scheduler stream dropped: a bare EOF.
        assert control.drop_subscription() == [scheduler.framework_id]
        assert scheduler.subscription.wait_closed().startswith("eof")

        counters = control.framework_counters(scheduler.framework_id)
        assert counters == control.framework_counters()[scheduler.framework_id]
        assert counters["tasks_launched"] == 2
        assert counters["calls"]["SUBSCRIBE"] == 1 and counters["calls"]["ACCEPT"] >= 2
        assert counters["executor_updates"] == {"TASK_RUNNING": 2}
        assert counters["executor_calls"] == {"SUBSCRIBE": 3, "UPDATE": 2}  # one re-subscribed
        assert control.warnings() == {"executor_cpus": 0, "executor_mem": 0, "recent": []}
        scheduler.close()


def test_kill_process_refused_in_process() -> None:
    with MesosDouble(agents=0) as double:
        with pytest.raises(urllib.error.HTTPError) as refused:
            ControlClient(double.master_address).kill_process()
        assert refused.value.code == 400


def test_framework_counters_per_task(double: MesosDouble) -> None:
    """Issue 16: per task, what the framework and its executors sent and received."""
    scheduler = Scheduler(double.master_address)
    offer = scheduler.offers(timeout=10)[0]
    executor = executor_info("e-count")
    tasks = [task_info(f"c{i}", offer, executor, cpus=0.1) for i in range(3)]
    scheduler.launch(offer, tasks)
    for task in tasks:
        for state in ("TASK_RUNNING", "TASK_FINISHED"):
            scheduler.ack(scheduler.update(task["task_id"]["value"], state, timeout=20))
    counters = double.wait_for(
        lambda s: s["framework_counters"][scheduler.framework_id]["executor_events"].get(
            "ACKNOWLEDGED"
        )
        == 6
    )["framework_counters"][scheduler.framework_id]
    assert counters["tasks_launched"] == 3
    assert counters["calls"]["ACKNOWLEDGE"] == 6 and counters["calls"]["ACCEPT"] == 1
    assert counters["updates"] == {"TASK_RUNNING": 3, "TASK_FINISHED": 3}
    assert counters["events"]["UPDATE"] == 6 and counters["events"]["SUBSCRIBED"] == 1
    assert counters["executor_updates"] == {"TASK_RUNNING": 3, "TASK_FINISHED": 3}
    assert counters["executor_events"]["LAUNCH"] == 3
    assert counters["executor_events"]["SUBSCRIBED"] == 1
    figures = per_task(counters)
    assert (figures["status_updates"], figures["acknowledgements"]) == (2.0, 2.0)
    assert figures["updates_and_acks"] == 4.0
    scheduler.close()


@pytest.mark.slow
def test_leading_master_killed_with_the_registry_in_zookeeper(zookeeper: ZooKeeper) -> None:
    """kill -9 of the leader's process through its control API; the next leader recovers the
    agent from the registry the dead one wrote (``<path>/log_replicas``), keeps reconciliation
    of its task unanswered until the agent re-registers, and announces nothing when it does."""
    url = zookeeper.url(f"/double-{uuid.uuid4().hex[:10]}/mesos")
    common = ("--zk", url, "--zk-session-timeout", "2", "--allocation-interval", "0.2")
    with DoubleProcess(*common, agents=0) as a:
        wait_for_leader([a])
        with DoubleProcess(*common, "--agent-registration-backoff", "3", agents=1) as b:
            assert wait_for_leader([a, b]) is a and a.control is not None
            scheduler = Scheduler(a.master_address)
            offer = scheduler.offers(timeout=10)[0]
            scheduler.launch(offer, [task_info("t-ha", offer, executor_info("e-ha"), "run")])
            running = scheduler.update("t-ha", "TASK_RUNNING", timeout=20)
            scheduler.ack(running)
            agent_id = running["agent_id"]["value"]
            client = KazooClient(hosts=zookeeper.hosts)
            client.start(timeout=10)
            try:
                data, _ = client.get(f"{ZkUrl.parse(url).path}/{REGISTRY_NODE}")
            finally:
                client.stop()
                client.close()
            assert [e["info"]["id"] for e in json.loads(data)["agents"]] == [agent_id]

            assert a.control.kill_process() == a.pid
            assert scheduler.subscription.wait_closed(5).startswith("eof")
            assert wait_for_leader([b], timeout=15) is b and b.control is not None
            again = _resubscribe(b.master_address, scheduler)
            state = b.control.state()
            if agent_id in state["master"]["recovered_agents"]:
                body = {"tasks": [{"task_id": {"value": "t-ha"}, "agent_id": {"value": agent_id}}]}
                again.call("RECONCILE", body)
                assert b.control.state()["counters"]["reconciliations_dropped"] >= 1
            deadline = time.monotonic() + 10
            while agent_id not in b.control.state()["agents"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            again.call("RECONCILE", {"tasks": [{"task_id": {"value": "t-ha"}}]})
            answer = again.update("t-ha", timeout=5)
            assert (answer["state"], answer["reason"]) == ("TASK_RUNNING", "REASON_RECONCILIATION")
            events = [e.event for e in again.subscription.events]
            reasons = [e["update"]["status"].get("reason") for e in events if e["type"] == "UPDATE"]
            assert "REASON_AGENT_REREGISTERED" not in reasons  # a recovered agent: no news
            again.close()
            scheduler.close()


def _resubscribe(master: str, scheduler: Scheduler) -> Scheduler:
    """SUBSCRIBE with the same framework id, retrying while the new leader settles."""
    deadline = time.monotonic() + 15
    while True:
        again = Scheduler(master, scheduler.info, framework_id=scheduler.framework_id)
        if again.subscription.status == 200:
            return again
        again.close()
        assert time.monotonic() < deadline, again.subscription.status
        time.sleep(0.05)
