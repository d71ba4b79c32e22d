"""ZooKeeper leader election between double processes (recording 07, surprises 23-26).

Every test uses a real ZooKeeper (Debian's package, ``tests.services.zookeeper``) with its own
path in it, and masters in separate processes started with ``--zk``; the session timeout is
2 s instead of Mesos' 10 s so that a failover takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient

from tests.doubles.mesos import DoubleProcess, MesosDouble, wait_for_leader
from tests.doubles.mesos.master import Master, MasterConfig
from tests.doubles.mesos.zk import (
    ZkUrl,
    ZooKeeperGroup,
    leader_address,
    mask,
    sequence,
    znode_data,
)
from tests.services.zookeeper import ZooKeeper

from .conftest import recording
from .replay import Ids, assert_same, send
from .shapes import skeleton
from .wire_client import Http, Scheduler, executor_info, task_info

SESSION = 2.0
RECORDED = recording("07_zookeeper_ha")


def recorded_events(stream: int) -> list[dict[str, Any]]:
    """The decoded events of a recorded 07 stream."""
    return [e["event"] for e in RECORDED["streams"][stream]["response"]["events"]]


def unique_url(zookeeper: ZooKeeper) -> str:
    return zookeeper.url(f"/double-{uuid.uuid4().hex[:10]}/mesos")


def contender(url: str, agents: int = 0, *extra: str, registry: str = "in_memory") -> DoubleProcess:
    """A master process; in_memory registry by default, as recording 07 was made."""
    return DoubleProcess(
        "--zk",
        url,
        "--zk-session-timeout",
        str(SESSION),
        "--allocation-interval",
        "0.2",
        "--registry",
        registry,
        *extra,
        agents=agents,
    )


@contextlib.contextmanager
def started(*processes: DoubleProcess) -> Iterator[list[DoubleProcess]]:
    """Start in order (so sequences follow the order), stop all at the end."""
    running: list[DoubleProcess] = []
    try:
        for process in processes:
            running.append(process.start())
        yield running
    finally:
        for process in running:
            process.stop()


@contextlib.contextmanager
def zk_client(zookeeper: ZooKeeper) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def master_update(scheduler: Scheduler, task_id: str, reason: str) -> dict[str, Any]:
    """The next UPDATE of ``task_id`` with ``reason`` (resent agent updates may come first)."""

    def match(event: dict[str, Any]) -> bool:
        if event["type"] != "UPDATE":
            return False
        status = event["update"]["status"]
        return bool(status["task_id"]["value"] == task_id and status.get("reason") == reason)

    status: dict[str, Any] = scheduler.subscription.next(match, timeout=5)["update"]["status"]
    return status


def state(process: DoubleProcess) -> dict[str, Any]:
    assert process.control is not None
    return process.control.state()


# -- pure helpers --------------------------------------------------------------------------------
def test_urls_sequences_and_addresses() -> None:
    url = ZkUrl.parse("zk://alice:s3cret@zk1:2181,zk2:2181/chroot/mesos/")
    assert (url.hosts, url.path, url.credentials) == ("zk1:2181,zk2:2181", "/chroot/mesos",
                                                      "alice:s3cret")
    assert url.masked() == "zk://***@zk1:2181,zk2:2181/chroot/mesos"
    assert mask("zk://a:b@h:1/p") == "zk://***@h:1/p"
    for bad in ("zk://h:1/", "zk://h:1", "http://h:1/mesos", "zk://bob@h:1/mesos"):
        with pytest.raises(ValueError):
            ZkUrl.parse(bad)
    assert [sequence(c) for c in ("json.info_0000000042", "info_0000000001", "log_replicas",
                                  "json.info_x")] == [42, 1, None, None]
    nodes = RECORDED["extra"]["zk_before"]["nodes"]
    info = json.loads(nodes["json.info_0000000000"]["data_utf8"])
    assert leader_address(info) == ("127.0.0.1", 5060)
    assert leader_address({"pid": "master@10.0.0.1:5051"}) == ("10.0.0.1", 5051)
    assert leader_address({"hostname": "m1", "port": 5052}) == ("m1", 5052)


def test_znode_data_is_byte_for_byte_the_recorded_one() -> None:
    """The stream's master_info (QUOTA_V2 as {}) becomes exactly the recorded znode bytes."""
    subscribed = recorded_events(0)[0]["subscribed"]
    recorded = RECORDED["extra"]["zk_before"]["nodes"]["json.info_0000000000"]["data_utf8"]
    assert znode_data(subscribed["master_info"]) == recorded.encode()


def test_contending_master_without_a_leader() -> None:
    """No leader known: 503 'No leader elected'; a detected leader: 307; elected: served."""

    async def scenario() -> tuple[str, list[Any]]:
        master = Master(MasterConfig(contending=True))
        await master.start()
        loop = asyncio.get_running_loop()
        address = master.address
        subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u",
                                                                          "name": "n"}}}

        def ask(path: str, body: Any = None, method: str = "POST") -> Any:
            http = Http(address)
            try:
                return http.request(path, body, method=method)
            finally:
                http.close()

        try:
            out = [await loop.run_in_executor(None, ask, "/api/v1/scheduler", subscribe),
                   await loop.run_in_executor(None, ask, "/master/redirect", None, "GET"),
                   await loop.run_in_executor(None, ask, "/__agent__/link", None)]
            other = {"hostname": "127.0.0.1", "port": 5060,
                     "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": 5060}}
            assert master.detected(other, elected=False)
            out.append(await loop.run_in_executor(None, ask, "/api/v1", {"type": "GET_HEALTH"}))
            out.append(await loop.run_in_executor(None, ask, "/master/state", None, "GET"))
            assert master.detected(master.master_info(), elected=True)
            assert master.elected_time is not None
            out.append(await loop.run_in_executor(None, ask, "/api/v1", {"type": "GET_HEALTH"}))
            out.append(await loop.run_in_executor(None, ask, "/redirect", None, "GET"))
            assert not master.detected(other, elected=False)  # a leader must step down
            return address, out
        finally:
            await master.stop()

    address, (no_leader, redirect, link, api, state_path, health, itself) = asyncio.run(
        scenario()
    )
    assert (no_leader.status, no_leader.text) == (503, "No leader elected")
    assert no_leader.header("Content-Type") == "text/plain; charset=utf-8"
    assert redirect.status == 503
    assert link.status == 503
    assert (api.status, api.header("Location")) == (307, "//127.0.0.1:5060/master/api/v1")
    assert (state_path.status, state_path.header("Location")) == (
        307, "//127.0.0.1:5060/master/state")
    assert health.status == 200
    assert (itself.status, itself.header("Location")) == (307, f"//{address}")


# -- election ------------------------------------------------------------------------------------
def test_lowest_sequence_leads_and_znodes_have_the_recorded_shape(zookeeper: ZooKeeper) -> None:
    url = unique_url(zookeeper)
    path = ZkUrl.parse(url).path
    with started(contender(url), contender(url, agents=1), contender(url)) as (a, b, c):
        assert wait_for_leader([a, b, c]) is a
        with zk_client(zookeeper) as client:
            children = sorted(client.get_children(path))
            data = {child: client.get(f"{path}/{child}")[0] for child in children}
        assert children == ["json.info_0000000000", "json.info_0000000001",
                            "json.info_0000000002"]
        recorded = RECORDED["extra"]["zk_before"]["nodes"]["json.info_0000000000"]["data_utf8"]
        for child, process in zip(children, (a, b, c), strict=True):
            info = json.loads(data[child])
            assert data[child] == json.dumps(info, sort_keys=True, separators=(",", ":")).encode()
            assert skeleton(info) == skeleton(json.loads(recorded))
            port = int(process.master_address.rsplit(":", 1)[1])
            assert info["address"] == {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": port}
            assert (info["ip"], info["pid"]) == (16777343, f"master@127.0.0.1:{port}")
            assert info["id"] == state(process)["master"]["id"]
        states = [state(p) for p in (a, b, c)]
        assert [s["master"]["elected"] for s in states] == [True, False, False]
        assert {s["master"]["leader"] for s in states} == {a.master_address}
        assert [s["zk"]["node"] for s in states] == children
        # B's agent found the leader in ZooKeeper and registered with it, not with B.
        agent_id = b.agent_ids[0]
        assert list(states[0]["agents"]) == [agent_id]
        assert states[1]["agents"] == {}
        assert states[1]["agent_processes"][0]["master"] == a.master_address
        assert states[0]["master"]["elected_time"] is not None
        assert states[1]["master"]["elected_time"] is None


def test_non_leader_answers_as_recorded(zookeeper: ZooKeeper) -> None:
    """Replay 07's exchanges with the non-leader: 307 with a /master Location (surprise 23)."""
    url = unique_url(zookeeper)
    with started(contender(url), contender(url, agents=1)) as (a, b):
        wait_for_leader([a, b])
        ids = Ids()
        ids.add("127.0.0.1:5060", a.master_address)
        ids.add("127.0.0.1:5061", b.master_address)
        for exchange in RECORDED["exchanges"]:
            host = dict(exchange["request"]["headers"])["Host"]
            if exchange["response"]["status"] != 307:
                continue
            http = Http(ids.to_ours(host))
            response = send(http, exchange, ids)
            http.close()
            if exchange["request"]["path"] == "/state":
                # The double has no /state, yet a non-leader redirects it all the same.
                assert response.status == 307
            else:
                assert_same(response, exchange, ids)
            recorded_location = dict(exchange["response"]["headers"])["Location"]
            assert ids.to_recorded(response.header("Location") or "") == recorded_location
        # The operator API redirects too; the control API and the leader's /redirect do not.
        api = Http(b.master_address).request("/api/v1", {"type": "GET_HEALTH"})
        assert (api.status, api.header("Location")) == (
            307, f"//{a.master_address}/master/api/v1")
        assert Http(a.master_address).request("/api/v1", {"type": "GET_HEALTH"}).status == 200
        leader_redirect = Http(a.master_address).request("/redirect", method="GET",
                                                         content_type=None)
        assert leader_redirect.header("Location") == f"//{a.master_address}"
        assert state(b)["master"]["leader"] == a.master_address


def test_restart_hook_hands_leadership_over(zookeeper: ZooKeeper) -> None:
    """A restarted leader withdraws (its znode goes at once) and comes back as a follower."""
    url = unique_url(zookeeper)
    with started(contender(url), contender(url, agents=1)) as (a, b):
        assert wait_for_leader([a, b]) is a
        old_id = state(a)["master"]["id"]
        agent_id = b.agent_ids[0]
        assert a.control is not None
        began = time.monotonic()
        a.control.restart_master()
        while wait_for_leader([a, b], timeout=10) is not b:
            assert time.monotonic() - began < 10
            time.sleep(0.01)
        handover = time.monotonic() - began
        deadline = time.monotonic() + 5
        while agent_id not in state(b)["agents"] and time.monotonic() < deadline:
            time.sleep(0.02)
        after = state(a)
        assert after["master"]["id"] != old_id and not after["master"]["elected"]
        assert after["zk"]["node"] == "json.info_0000000002"
        assert after["master"]["leadership_losses"] == 0
        assert agent_id in state(b)["agents"]
        assert handover < 2.0, handover  # no session expiry to wait for


def test_a_deposed_leader_cannot_overwrite_the_registry(zookeeper: ZooKeeper) -> None:
    """Registry writes are conditional on the version the master read: the replicated log
    refuses a deposed leader's writes, and so does the double's znode."""
    url = unique_url(zookeeper)

    async def scenario() -> tuple[Any, Any, Any]:
        old, new, reader = (ZooKeeperGroup(url, SESSION) for _ in range(3))
        for group in (old, new, reader):
            await group.start()
        try:
            assert await old.load_registry() is None
            old.save_registry({"agents": ["from the old leader"]})
            await old.flush_registry()
            first = await new.load_registry()  # the next leader recovers it...
            new.save_registry({"agents": ["from the new leader"]})
            await new.flush_registry()
            old.save_registry({"agents": ["stale"]})  # ...and the deposed one writes late
            await old.flush_registry()
            old.save_registry({"agents": ["stale again"]})
            await old.flush_registry()
            return first, await reader.load_registry(), await new.load_registry()
        finally:
            for group in (old, new, reader):
                await group.stop()

    first, seen, again = asyncio.run(scenario())
    assert first == {"agents": ["from the old leader"]}
    assert seen == again == {"agents": ["from the new leader"]}


# -- failover ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_failover_after_kill_9_of_the_leader(zookeeper: ZooKeeper) -> None:
    """07 end to end: the stream just ends, the follower redirects to the dead leader until
    the session expires (surprise 24), then accepts the same framework id, and the running
    task survives and is reported (surprise 25)."""
    url = unique_url(zookeeper)
    with started(contender(url), contender(url, agents=1), contender(url)) as (a, b, c):
        assert wait_for_leader([a, b, c]) is a
        scheduler = Scheduler(a.master_address)
        framework_id = scheduler.framework_id
        offer = scheduler.offers()[0]
        executor = executor_info("e7")
        scheduler.launch(offer, [task_info("t7-run", offer, executor, mode="run")])
        running = scheduler.update("t7-run", "TASK_RUNNING", timeout=20)
        scheduler.ack(running)
        pids = state(b)["executor_pids"]

        killed_at = a.kill()
        assert scheduler.subscription.wait_closed(5).startswith("eof")  # no terminating chunk
        redirects: list[tuple[int, str | None]] = []
        while True:
            again = Scheduler(b.master_address, scheduler.info, framework_id=framework_id)
            if again.subscription.status == 200:
                break
            redirects.append((again.subscription.status, again.subscription.header("Location")))
            again.close()
            assert time.time() - killed_at < SESSION + 10, redirects[-3:]
            time.sleep(0.05)
        subscribed_after = time.time() - killed_at
        leader_state = state(b)
        election = leader_state["master"]["elected_time"] - killed_at
        print(f"\nelection {election:.2f} s, SUBSCRIBE accepted {subscribed_after:.2f} s after "
              f"kill -9 (session timeout {SESSION:g} s)")
        assert redirects, "the follower answered at once; the dead leader's session expired?"
        assert set(redirects) == {(307, f"//{a.master_address}/master/api/v1/scheduler")}
        assert SESSION / 2 < election < SESSION + 2
        assert again.framework_id == framework_id
        assert again.subscribed["subscribed"]["master_info"]["id"] == leader_state["master"]["id"]
        assert wait_for_leader([b, c], timeout=5) is b

        # The agent re-registers (after its random backoff) reporting the running task.
        deadline = time.monotonic() + 5
        agent_id = running["agent_id"]["value"]
        while agent_id not in state(b)["agents"] and time.monotonic() < deadline:
            time.sleep(0.02)
        now = state(b)
        framework = now["frameworks"][framework_id]
        assert framework["tasks"] == {"t7-run": "TASK_RUNNING"}
        if framework["reregistered_time"] < now["agents"][agent_id]["registered_time"]:
            update = master_update(again, "t7-run", "REASON_AGENT_REREGISTERED")
            recorded = recorded_events(1)[2]
            assert recorded["update"]["status"]["reason"] == "REASON_AGENT_REREGISTERED"
            assert skeleton({"type": "UPDATE", "update": {"status": update}}) == skeleton(recorded)
            assert (update["message"], update["reason"]) == (
                "Unknown agent reregistered", "REASON_AGENT_REREGISTERED")
        # Either way, reconciliation on the new leader answers from what the agent reported.
        assert again.call("RECONCILE", {"tasks": [{"task_id": {"value": "t7-run"}}]}).status == 202
        reconciled = master_update(again, "t7-run", "REASON_RECONCILIATION")
        assert (reconciled["state"], reconciled["source"]) == ("TASK_RUNNING", "SOURCE_MASTER")
        assert "uuid" not in reconciled
        assert reconciled["container_status"] == running["container_status"]
        assert state(b)["executor_pids"] == pids  # the executor lived through it

        # The new leader offers the agent and launches through it.
        offer = again.offers(timeout=5)[0]
        assert offer["id"]["value"].startswith(leader_state["master"]["id"] + "-O")
        again.launch(offer, [task_info("t7-new", offer, executor, mode="finish")])
        again.ack(again.update("t7-new", "TASK_RUNNING", timeout=20))
        again.ack(again.update("t7-new", "TASK_FINISHED", timeout=20))
        again.close()
        scheduler.close()


@pytest.mark.slow
def test_a_leader_whose_session_expires_steps_down(zookeeper: ZooKeeper) -> None:
    """A leader frozen past its session timeout (a long GC pause, a partition) loses the
    election; when it wakes up it learns its session expired and gives up leadership (Mesos
    exits, "Lost candidacy as a leader"; the double restarts the master in place)."""
    url = unique_url(zookeeper)
    with started(contender(url), contender(url, agents=1)) as (a, b):
        assert wait_for_leader([a, b]) is a
        old_id = state(a)["master"]["id"]
        os.kill(a.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + SESSION + 10
            while not state(b)["master"]["elected"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            os.kill(a.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while True:
            after = state(a)
            if after["master"]["leadership_losses"] == 1 and after["zk"]["node"] is not None:
                break
            assert time.monotonic() < deadline, after["master"]
            time.sleep(0.05)
        assert wait_for_leader([a, b], timeout=10) is b
        assert after["master"]["id"] != old_id and not after["master"]["elected"]
        assert after["zk"]["node"] == "json.info_0000000002"
        assert after["zk"]["session_losses"] == 1
        deadline = time.monotonic() + 5
        while b.agent_ids[0] not in state(b)["agents"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.slow
def test_zookeeper_ensemble_leader_loss_keeps_the_masters() -> None:
    """Killing ZooKeeper's own leader moves the sessions, not the Mesos leadership."""
    with ZooKeeper.ensemble(3) as ensemble:
        url = ensemble.url(f"/double-{uuid.uuid4().hex[:10]}/mesos")
        with started(contender(url), contender(url, agents=1)) as (a, b):
            assert wait_for_leader([a, b], timeout=30) is a
            scheduler = Scheduler(a.master_address)
            before = [state(p)["master"]["id"] for p in (a, b)]
            ensemble.leader().kill()
            ensemble.wait_serving(timeout=30)
            offer = scheduler.offers(timeout=10)[0]
            scheduler.launch(offer, [task_info("t-ens", offer, executor_info("e-ens"))])
            scheduler.ack(scheduler.update("t-ens", "TASK_RUNNING", timeout=20))
            scheduler.ack(scheduler.update("t-ens", "TASK_FINISHED", timeout=20))
            time.sleep(SESSION)  # past any session expiry
            assert wait_for_leader([a, b], timeout=5) is a
            after = [state(p) for p in (a, b)]
            assert [s["master"]["id"] for s in after] == before
            assert [s["zk"]["session_losses"] for s in after] == [0, 0]
            assert scheduler.subscription.closed is None
            scheduler.close()


def test_in_process_double_contends_too(zookeeper: ZooKeeper) -> None:
    """MesosDouble(zk=...) is a contender like the CLI; a clean stop hands over at once."""
    url = unique_url(zookeeper)
    with MesosDouble(agents=1, zk=url, zk_session_timeout=SESSION,
                     allocation_interval=0.2) as double:
        assert double.elected and double.leader_address == double.master_address
        assert double.state()["zk"]["node"] == "json.info_0000000000"
        scheduler = Scheduler(double.master_address)
        offer = scheduler.offers()[0]
        scheduler.launch(offer, [task_info("t-in", offer, executor_info("e-in"))])
        scheduler.ack(scheduler.update("t-in", "TASK_RUNNING", timeout=20))
        scheduler.ack(scheduler.update("t-in", "TASK_FINISHED", timeout=20))
        with started(contender(url)) as (follower,):
            assert state(follower)["master"]["leader"] == double.master_address
            redirected = Http(follower.master_address).request(
                "/api/v1/scheduler", {"type": "SUBSCRIBE"})
            assert redirected.header("Location") == (
                f"//{double.master_address}/master/api/v1/scheduler")
            scheduler.close()
            double.stop()
            began = time.monotonic()
            assert wait_for_leader([follower], timeout=5) is follower
            assert time.monotonic() - began < 1.5  # the closed session removed the znode


def test_unreachable_zookeeper_is_a_clear_error() -> None:
    import subprocess
    import sys

    from tests.doubles.mesos.process import REPO_ROOT
    from tests.services.zookeeper import free_port

    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "tests.doubles.mesos", "--port", "0", "--agents", "1",
         "--zk", f"zk://user:hunter2@127.0.0.1:{port}/mesos", "--zk-connect-timeout", "1"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert f"error: cannot reach ZooKeeper at zk://***@127.0.0.1:{port}/mesos within 1 s" in (
        result.stderr
    )
    assert "hunter2" not in result.stderr
