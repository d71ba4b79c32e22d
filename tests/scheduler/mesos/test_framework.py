"""The mesos backend against the Mesos double: placement, offers, faults, draining."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mesobatch import BatchJobExitReason
from mesobatch.scheduler.mesos.driver import MesosSchedulerDriver
from tests.doubles.mesos import AgentSpec
from tests.waiting import wait_for

from .conftest import Cluster, agent_of, job, where

ROOT = Path(__file__).resolve().parents[3]


def results(bs: Any, n: int, timeout: float = 60) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        info = bs.getUpdatedBatchJob(0.5)
        if info is not None:
            out.append(info)
    return out


def test_preemptible_attribute_any_case_and_placement(cluster: Cluster,
                                                      tmp_path: Path) -> None:
    double = cluster.start([
        AgentSpec(resources="cpus:1.01;mem:2048;disk:4096", attributes="preemptible:True",
                  hostname="spot"),
        AgentSpec(resources="cpus:1.01;mem:2048;disk:4096", attributes="preemptible:false",
                  hostname="firm1"),
        AgentSpec(resources="cpus:1.01;mem:2048;disk:4096", hostname="firm2"),
    ])
    spot = double.agent_ids[0]
    bs = cluster.batch_system()
    for i in range(4):
        bs.issueBatchJob(where(tmp_path, f"firm{i}", "sleep 0.3"), job(1))
    assert len(results(bs, 4)) == 4
    assert all(agent_of(tmp_path, f"firm{i}") != spot for i in range(4))
    flexible = bs.issueBatchJob(where(tmp_path, "flexible"), job(1, preemptible=True))
    (info,) = results(bs, 1)
    assert info.jobID == flexible and agent_of(tmp_path, "flexible") == spot
    nodes = bs.getNodes(preemptible=True)
    assert len(nodes) == 1


def test_gpu_agent_offers_reach_us_and_gpu_jobs_run_there(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    double = cluster.start([AgentSpec(resources="cpus:2;mem:2048;disk:4096;gpus:1",
                                      hostname="gpu"),
                            AgentSpec(resources="cpus:2;mem:2048;disk:4096", hostname="cpu")])
    bs = cluster.batch_system()
    one = bs.issueBatchJob(where(tmp_path, "gpu"),
                           job(1, accelerators=[{"kind": "gpu", "count": 1}]))
    (info,) = results(bs, 1)
    assert info.jobID == one and info.exitStatus == 0
    assert agent_of(tmp_path, "gpu") == double.agent_ids[0]
    bs.issueBatchJob("true", job(1, accelerators=[{"kind": "gpu", "count": 2}]))
    message = wait_for(lambda: (m := bs.getSchedulingStatusMessage()) and "GPU" in m and m)
    assert "need 2 GPUs; the largest offer in the last 60 s had 1 GPU" in message


def test_idle_declines_with_an_explicit_filter_suppresses_and_revives(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    declined: list[Any] = []
    original = MesosSchedulerDriver.declineOffer

    def spy(self: MesosSchedulerDriver, offer_ids: Any, filters: Any = None) -> None:
        declined.append(filters)
        original(self, offer_ids, filters)

    monkeypatch.setattr(MesosSchedulerDriver, "declineOffer", spy)
    double = cluster.start(allocation_interval=0.2)
    # an hour's filter: the declined node comes back within the test only if revived
    bs = cluster.batch_system(mesosOfferHold=0.3, mesosDeclineFilter=3600)
    assert wait_for(lambda: declined, timeout=10)
    assert declined[0] == {"refuse_seconds": 3600.0}
    assert wait_for(lambda: double.counters()["suppress"] >= 1)
    revives = double.counters()["revive"]
    bs.issueBatchJob("true", job())
    (info,) = results(bs, 1)
    assert info.exitStatus == 0 and double.counters()["revive"] > revives


def test_dropped_stream_resubscribes_reconciles_and_loses_nothing(cluster: Cluster) -> None:
    double = cluster.start()
    bs = cluster.batch_system()
    running = bs.issueBatchJob("sleep 2", job())
    assert wait_for(lambda: running in bs.getRunningBatchJobIDs())
    framework = next(iter(double.state()["frameworks"]))
    before = double.state()["frameworks"][framework]["calls"].get("RECONCILE", 0)
    assert double.drop_subscription()
    assert wait_for(lambda: double.state()["frameworks"][framework]["calls"]
                    .get("RECONCILE", 0) > before, timeout=15)
    assert double.counters()["calls"]["SUBSCRIBE"] >= 2
    infos = results(bs, 1)
    assert [(i.jobID, i.exitStatus) for i in infos] == [(running, 0)]
    assert bs.getUpdatedBatchJob(2) is None
    after = bs.issueBatchJob("true", job())
    assert [i.jobID for i in results(bs, 1)] == [after]


def test_executor_killed_mid_task_gives_one_lost_result(cluster: Cluster) -> None:
    double = cluster.start()
    bs = cluster.batch_system()
    victim = bs.issueBatchJob("sleep 30", job())
    assert wait_for(lambda: victim in bs.getRunningBatchJobIDs())
    (executor,) = [e["executor_id"] for a in double.state()["agent_processes"]
                   for e in a["executors"]]
    assert double.kill_executor(executor)
    (info,) = results(bs, 1)
    assert info.jobID == victim and info.exitReason == BatchJobExitReason.LOST
    assert bs.getUpdatedBatchJob(2) is None  # the agent's own TASK_FAILED is not a second one
    fresh = bs.issueBatchJob("true", job())
    (info,) = results(bs, 1)
    assert info.jobID == fresh and info.exitStatus == 0  # on a new executor


def test_lost_agent_waits_while_unreachable_then_reports_partition_once(
        cluster: Cluster, tmp_path: Path) -> None:
    whole = "cpus:2.01;mem:4096;disk:10000"  # 2 cores for a job, 0.01 for the executor
    double = cluster.start([AgentSpec(whole, hostname="doomed"),
                            AgentSpec(whole, hostname="spare")],
                           agent_removal_timeout=1.0)
    bs = cluster.batch_system(mesosUnreachableTimeout=3)
    jobs = {bs.issueBatchJob(where(tmp_path, str(i), "sleep 60"), job(2)): str(i)
            for i in range(2)}
    assert wait_for(lambda: set(bs.getRunningBatchJobIDs()) == set(jobs))
    assert wait_for(lambda: all((tmp_path / f"{t}.agent").exists() for t in jobs.values()))
    on_doomed = [j for j, t in jobs.items() if agent_of(tmp_path, t) == double.agent_ids[0]]
    double.lose_agent(0)
    assert wait_for(lambda: "TASK_UNREACHABLE" in double.tasks().values(), timeout=15)
    assert bs.getUpdatedBatchJob(0.5) is None  # unreachable is not the end
    assert set(bs.getRunningBatchJobIDs()) == set(jobs)
    (info,) = results(bs, 1, timeout=20)
    assert info.jobID == on_doomed[0] and info.exitReason == BatchJobExitReason.PARTITION
    assert bs.getUpdatedBatchJob(2) is None


def test_agent_restart_redelivers_updates_and_each_job_is_reported_once(
        cluster: Cluster) -> None:
    double = cluster.start(executor_reregistration_timeout=5.0)
    bs = cluster.batch_system()
    jobs = [bs.issueBatchJob("sleep 3", job()) for _ in range(2)]
    assert wait_for(lambda: set(bs.getRunningBatchJobIDs()) == set(jobs))
    double.restart_agent(0, downtime=0.5)
    infos = results(bs, 2, timeout=30)
    assert sorted(i.jobID for i in infos) == sorted(jobs)
    assert all(i.exitStatus == 0 for i in infos)
    assert bs.getUpdatedBatchJob(3) is None


def test_drain_by_ignoring_a_busy_node(cluster: Cluster, tmp_path: Path) -> None:
    double = cluster.start([AgentSpec(resources="cpus:1.01;mem:2048;disk:4096", hostname="old"),
                            AgentSpec(resources="cpus:1.01;mem:2048;disk:4096", hostname="new")])
    bs = cluster.batch_system()
    busy = [bs.issueBatchJob("sleep 1.5", job(1)) for _ in range(2)]
    assert wait_for(lambda: set(bs.getRunningBatchJobIDs()) == set(busy))
    assert bs.nodeInUse("old") and bs.nodeInUse("new")
    bs.ignoreNode("old")
    assert bs.nodeInUse("old")  # its job runs on
    assert sorted(i.jobID for i in results(bs, 2)) == sorted(busy)
    assert wait_for(lambda: not bs.nodeInUse("old"))
    later = [bs.issueBatchJob(where(tmp_path, f"later{i}"), job(1)) for i in range(3)]
    assert sorted(i.jobID for i in results(bs, 3)) == sorted(later)
    assert {agent_of(tmp_path, f"later{i}") for i in range(3)} == {double.agent_ids[1]}
    assert not bs.nodeInUse("old")
    bs.unignoreNode("old")
    bs.unignoreNode("never-seen")


def test_operator_drain_kills_jobs_reported_as_killed(cluster: Cluster) -> None:
    import json
    import urllib.request

    double = cluster.start()
    bs = cluster.batch_system()
    victim = bs.issueBatchJob("sleep 60", job())
    assert wait_for(lambda: victim in bs.getRunningBatchJobIDs())
    body = json.dumps({"type": "DRAIN_AGENT", "drain_agent": {
        "agent_id": {"value": double.agent_ids[0]}, "max_grace_period": {"seconds": 1}}})
    request = urllib.request.Request(f"{double.master_url}/api/v1", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200
    (info,) = results(bs, 1)
    assert info.jobID == victim and info.exitReason == BatchJobExitReason.KILLED


def test_unschedulable_job_is_explained(cluster: Cluster) -> None:
    cluster.start([AgentSpec(resources="cpus:4;mem:4096;disk:10000", hostname="small")])
    bs = cluster.batch_system()
    bs.issueBatchJob("true", job(1, memory=64 * 2**30))
    message = wait_for(lambda: (m := bs.getSchedulingStatusMessage()) and "largest" in m and m)
    assert "1 job of 1 core, 64.0 GiB memory" in message
    assert "need 64.0 GiB memory; the largest offer in the last 60 s had 4.0 GiB memory" \
           in message and "(small)" in message


def test_node_reports_feed_get_nodes(cluster: Cluster) -> None:
    cluster.start([AgentSpec(resources="cpus:2;mem:4096;disk:10000", hostname="worker")])
    bs = cluster.batch_system(mesosNodeReportInterval=0.2)
    bs.issueBatchJob("true", job())
    results(bs, 1)
    nodes = wait_for(lambda: {ip: n for ip, n in bs.getNodes().items()
                              if n.memoryTotal != 4096 * 2**20})
    (info,) = nodes.values()
    assert info.coresTotal == os.cpu_count() or info.coresTotal >= 1
    assert 0 <= info.memoryUsed <= 1 and info.memoryTotal > 0


def test_role_subscribes_multi_role(cluster: Cluster) -> None:
    double = cluster.start()
    bs = cluster.batch_system(mesosRole="batch")
    done = bs.issueBatchJob("true", job())
    assert [i.jobID for i in results(bs, 1)] == [done]
    assert double.state()["frameworks"]


def test_reattach_with_framework_id_kills_orphans(cluster: Cluster) -> None:
    double = cluster.start()
    first = cluster.batch_system(mesosFailoverTimeout=60)
    orphan = first.issueBatchJob("sleep 60", job())
    assert wait_for(lambda: orphan in first.getRunningBatchJobIDs())
    (task,) = double.tasks()
    framework_id = first._backend.driver.framework_id  # type: ignore[attr-defined]
    first._backend.driver.stop(failover=True)  # type: ignore[attr-defined]  # a crash
    second = cluster.batch_system(mesosFrameworkId=framework_id)
    # the new scheduler does not know the task: it must not run on unwatched
    assert wait_for(lambda: double.tasks().get(task) == "TASK_KILLED", timeout=30)
    fresh = second.issueBatchJob("true", job())
    assert [i.jobID for i in results(second, 1)] == [fresh]


def test_command_line_run_on_mesos(cluster: Cluster, tmp_path: Path) -> None:
    # the examples hold a 2-core job: 2 cpus for it and 0.01 for the executor
    double = cluster.start([AgentSpec("cpus:2.01;mem:4096;disk:10000")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOBATCH_")}
    r = subprocess.run(
        [sys.executable, "-m", "mesobatch", "run", str(ROOT / "examples" / "jobs.jsonl"),
         "--backend", "mesos", "--mesosMaster", double.master_address, "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "succeeded  10" in r.stdout
