"""Master detection through a real ZooKeeper (Debian's package, started by the tests)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import mesobatch
from mesobatch.scheduler.mesos.master import MasterAddressError
from mesobatch.scheduler.mesos.zookeeper import (
    ZooKeeperMaster,
    ZooKeeperUnavailable,
    leading_child,
    master_address,
    parse_zk_url,
)
from tests.services.zookeeper import ZooKeeper, free_port

WIRE = Path(__file__).resolve().parents[2] / "fixtures" / "mesos-wire" / "07_zookeeper_ha.json"


def recorded_master_info() -> dict[str, dict[str, object]]:
    nodes = json.loads(WIRE.read_text())["extra"]["zk_before"]["nodes"]
    return {name: json.loads(node["data_utf8"]) for name, node in nodes.items()}


def test_urls_and_masking() -> None:
    u = parse_zk_url("zk://alice:s3cret@zk1:2181,zk2:2181/chroot/mesos")
    assert (u.hosts, u.path, u.credentials) == ("zk1:2181,zk2:2181", "/chroot/mesos",
                                                "alice:s3cret")
    assert u.masked() == "zk://***@zk1:2181,zk2:2181/chroot/mesos"
    assert parse_zk_url("zk://zk1:2181/mesos/").path == "/mesos"
    for bad, why in [("zk://zk1:2181/", "expecting a path"), ("zk://zk1:2181", "expecting a"),
                     ("zk://zk1/mesos", "expected host:port"),
                     ("zk://bob@zk1:2181/mesos", "expected user:password")]:
        with pytest.raises(MasterAddressError, match=why) as e:
            parse_zk_url(bad)
        assert "s3cret" not in str(e.value)
    with pytest.raises(mesobatch.OptionError) as refused:
        mesobatch.batch_system("mesos", mesosMaster="zk://u:topsecret@zk1/mesos")
    assert "topsecret" not in str(refused.value) and "***@" in str(refused.value)


def test_master_info_forms() -> None:
    infos = recorded_master_info()
    assert master_address(infos["json.info_0000000000"]) == ("127.0.0.1", 5060)
    assert master_address({"pid": "master@10.1.2.3:5051"}) == ("10.1.2.3", 5051)
    assert master_address({"hostname": "m1", "port": 5052}) == ("m1", 5052)
    assert master_address({"ip": 16777343, "port": 5050}) == ("127.0.0.1", 5050)
    assert leading_child(["log_replicas", "json.info_0000000010", "info_0000000001",
                          "json.info_0000000002"]) == "json.info_0000000002"
    assert leading_child(["log_replicas"]) is None


@pytest.fixture(scope="module")
def zookeeper() -> Iterator[ZooKeeper]:
    with ZooKeeper.standalone() as zk:
        yield zk


@pytest.fixture
def zk_client(zookeeper: ZooKeeper) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


def register(client: KazooClient, path: str, port: int) -> str:
    """What a Mesos master does: an ephemeral sequential json.info_ node with MasterInfo."""
    info = {"address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": port},
            "hostname": "127.0.0.1", "ip": 16777343, "pid": f"master@127.0.0.1:{port}",
            "port": port, "version": "1.11.0"}
    node: str = client.create(f"{path}/json.info_", json.dumps(info).encode(), ephemeral=True,
                              sequence=True, makepath=True)
    return node


def test_leader_is_the_lowest_member_and_changes_are_signalled(
        zookeeper: ZooKeeper, zk_client: KazooClient) -> None:
    path = f"/test-{time.monotonic_ns()}/mesos"
    changes = threading.Event()
    detector = ZooKeeperMaster(zookeeper.url(path))
    detector.start(changes.set)
    try:
        assert detector.leader() is None  # the path does not exist yet
        first = register(zk_client, path, 5060)
        zk_client.create(f"{path}/log_replicas", b"")
        register(zk_client, path, 5061)
        assert changes.wait(10)
        deadline = time.monotonic() + 10
        while detector.leader() != "http://127.0.0.1:5060" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert detector.leader() == "http://127.0.0.1:5060"
        changes.clear()
        zk_client.delete(first)  # the leader's session ended
        assert changes.wait(10)
        assert detector.leader() == "http://127.0.0.1:5061"
        for child in zk_client.get_children(path):
            zk_client.delete(f"{path}/{child}")
        deadline = time.monotonic() + 10
        while detector.leader() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert detector.leader() is None
    finally:
        detector.stop()


def test_unreachable_zookeeper_is_a_clear_error_with_credentials_masked() -> None:
    port = free_port()
    url = f"zk://admin:hunter2@127.0.0.1:{port}/mesos"
    started = time.monotonic()
    with pytest.raises(ZooKeeperUnavailable) as e:
        mesobatch.batch_system("mesos", mesosMaster=url, zkTimeout=1)
    assert time.monotonic() - started < 10
    message = str(e.value)
    assert "hunter2" not in message and "admin" not in message
    assert message == f"cannot reach ZooKeeper at zk://***@127.0.0.1:{port}/mesos within 1 s"


def test_job_runs_through_a_master_found_in_zookeeper(
        zookeeper: ZooKeeper, zk_client: KazooClient) -> None:
    from tests.doubles.mesos import MesosDouble

    path = f"/test-{time.monotonic_ns()}/mesos"
    with MesosDouble() as double:
        register(zk_client, path, int(double.master_address.rsplit(":", 1)[1]))
        with mesobatch.batch_system("mesos", mesosMaster=zookeeper.url(path),
                                    killGracePeriod=1) as bs:
            job = bs.issueBatchJob("true", mesobatch.JobDescription(
                cores=0.5, memory=2**26, disk=2**26))
            info = bs.getUpdatedBatchJob(30)
            assert info is not None and info.jobID == job and info.exitStatus == 0


def test_no_leader_is_explained(zookeeper: ZooKeeper) -> None:
    path = f"/test-{time.monotonic_ns()}/mesos"
    with mesobatch.batch_system("mesos", mesosMaster=zookeeper.url(path),
                                killGracePeriod=1) as bs:
        bs.issueBatchJob("true", mesobatch.JobDescription(cores=1, memory=2**26, disk=2**26))
        deadline = time.monotonic() + 10
        message = ""
        while "no leading master" not in message and time.monotonic() < deadline:
            message = bs.getSchedulingStatusMessage() or ""
            time.sleep(0.1)
        assert f"{zookeeper.url(path)}: no leading master" in message
