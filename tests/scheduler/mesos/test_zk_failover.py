"""Master failover through a real ZooKeeper: several double masters in separate
processes elect a leader the way Mesos masters do; killing it must lose no job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import mesobatch
from tests.doubles.mesos import DoubleProcess
from tests.doubles.mesos.process import wait_for_leader
from tests.services.zookeeper import ZooKeeper

pytestmark = pytest.mark.slow

JOB = mesobatch.JobDescription(cores=0.25, memory=2**25, disk=2**25)


class Masters:
    """Contenders in their own processes: the first two without agents, the last one
    with the agents (so killing the leader kills no agent)."""

    def __init__(self, zk: ZooKeeper, session_timeout: float) -> None:
        self.url = zk.url("/mesos")
        common = ("--zk", self.url, "--zk-session-timeout", str(session_timeout))
        self.first = DoubleProcess(*common, agents=0).start()
        wait_for_leader([self.first])
        self.others = [
            DoubleProcess(*common, agents=0).start(),
            DoubleProcess(*common, "--agent-resources", "cpus:2;mem:4096;disk:10000",
                          agents=2).start(),
        ]
        self.all = [self.first, *self.others]

    def stop(self) -> None:
        for p in self.all:
            p.stop()


def run_jobs(bs: mesobatch.BatchSystem, n: int, midway: Any, at: int) -> list[Any]:
    ids = [bs.issueBatchJob("sleep 0.05", JOB) for _ in range(n)]
    results: list[Any] = []
    deadline = time.monotonic() + 180
    while len(results) < n and time.monotonic() < deadline:
        info = bs.getUpdatedBatchJob(0.5)
        if info is not None:
            results.append(info)
            if len(results) == at:
                midway()
    assert sorted(r.jobID for r in results) == sorted(ids), "a job was lost"
    assert len({r.jobID for r in results}) == len(results), "a job was reported twice"
    assert bs.getUpdatedBatchJob(2) is None
    return results


@pytest.fixture
def zookeeper() -> Iterator[ZooKeeper]:
    with ZooKeeper.standalone(tick_ms=200) as zk:
        yield zk


def test_killing_the_leading_master_loses_no_job(zookeeper: ZooKeeper) -> None:
    masters = Masters(zookeeper, session_timeout=2)
    try:
        assert wait_for_leader(masters.all) is masters.first
        with mesobatch.batch_system("mesos", mesosMaster=masters.url,
                                    killGracePeriod=1) as bs:
            driver = bs._backend.driver  # type: ignore[attr-defined]
            seen: dict[str, Any] = {}

            def kill_leader() -> None:
                seen["framework_id"] = driver.framework_id
                masters.first.kill()

            results = run_jobs(bs, 300, kill_leader, at=100)
            assert all(r.exitStatus == 0 for r in results)
            assert driver.framework_id == seen["framework_id"]
            leader = wait_for_leader(masters.others)
            assert leader.control is not None
            assert seen["framework_id"] in leader.control.state()["frameworks"]
    finally:
        masters.stop()


def test_zookeeper_leader_killed_during_a_run() -> None:
    with ZooKeeper.ensemble(3) as zk:
        masters = Masters(zk, session_timeout=10)
        try:
            with mesobatch.batch_system("mesos", mesosMaster=masters.url,
                                        killGracePeriod=1) as bs:
                results = run_jobs(bs, 100, lambda: zk.leader().kill(), at=30)
                assert all(r.exitStatus == 0 for r in results)
        finally:
            masters.stop()
