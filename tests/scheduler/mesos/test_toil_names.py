"""The names of Toil's MesosBatchSystem on ours (issue 10, "the seed's API, name for name"):
``mesobatch.MesosBatchSystem(config, maxCores, maxMemory, maxDisk)``, ``ExecutorInfo``,
``userScript``, ``get_default_mesos_endpoint()``, ``getNodes(preemptible, timeout)``,
``nodeFilter`` and the pymesos callbacks, against the Mesos double."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import mesobatch
from mesobatch import BatchJobExitReason
from mesobatch.executor.protocol import NodeReport
from tests.doubles.mesos import AgentSpec
from tests.waiting import wait_for

from .conftest import Cluster, agent_of, job, where
from .test_framework import results


def test_mesos_batch_system_is_made_as_toil_makes_it(cluster: Cluster) -> None:
    double = cluster.start()
    cls = mesobatch.MesosBatchSystem
    assert cls is mesobatch.batch_system_class("mesos") and cls.__name__ == "MesosBatchSystem"
    # Toil's Config carries the master as mesos_endpoint, and the workflow id
    config = SimpleNamespace(workflowID="wf-toil", mesos_endpoint=double.master_address,
                             mesos_name="toil-like")
    bs = cls(config=config, maxCores=2, maxMemory=1e9,  # type: ignore[arg-type]  # as Toil may
              maxDisk=2**30)
    cluster.systems.append(bs)
    assert bs.workflow_id == "wf-toil" and bs.options.max_memory == 10**9
    done = bs.issueBatchJob("true", job())
    (info,) = results(bs, 1)
    assert (info.jobID, info.exitStatus) == (done, 0)
    (framework,) = double.state()["frameworks"].values()
    assert framework["name"] == "toil-like"


def test_get_default_mesos_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESOS_MASTER", raising=False)
    monkeypatch.delenv("MESOBATCH_MESOS_MASTER", raising=False)
    cls = mesobatch.MesosBatchSystem
    assert cls.get_default_mesos_endpoint() == "localhost:5050"
    monkeypatch.setenv("MESOS_MASTER", "zk://zk1:2181/mesos")
    assert cls.get_default_mesos_endpoint() == "zk://zk1:2181/mesos"
    monkeypatch.setenv("MESOBATCH_MESOS_MASTER", "m1:5050")
    assert cls.get_default_mesos_endpoint() == "m1:5050"


def test_executor_info_and_user_script(cluster: Cluster, tmp_path: Path) -> None:
    assert mesobatch.MesosBatchSystem.ExecutorInfo is mesobatch.ExecutorInfo
    assert mesobatch.ExecutorInfo._fields == ("nodeAddress", "agentId", "nodeInfo",
                                              "lastSeen")
    cluster.start()
    bs = cluster.batch_system()
    assert [bs.userScript] == [None]  # (no narrowing: set below)
    script = tmp_path / "helper_mod_for_names.py"
    script.write_text("ANSWER = 42\n")
    bs.setUserScript(str(script))
    assert bs.userScript == str(script)
    bs.issueBatchJob("python3 -c 'import helper_mod_for_names as h; assert h.ANSWER == 42'",
                     job())
    (info,) = results(bs, 1)
    assert info.exitStatus == 0


def test_node_filter_keeps_jobs_off_the_nodes_it_rejects(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    double = cluster.start([AgentSpec(hostname="kept"), AgentSpec(hostname="spared")])
    spared = double.agent_ids[1]
    bs = cluster.batch_system()
    asked: set[str] = set()

    def not_spared(node: mesobatch.ExecutorInfo) -> bool:
        asked.add(node.agentId)
        return node.agentId != spared

    bs.nodeFilter = [not_spared]
    jobs = bs.issue_many([(where(tmp_path, str(i)), job(1), None) for i in range(6)])
    assert sorted(i.jobID for i in results(bs, 6)) == sorted(jobs)
    assert {agent_of(tmp_path, str(i)) for i in range(6)} == {double.agent_ids[0]}
    assert spared in asked
    bs.nodeFilter = []
    later = bs.issue_many([(where(tmp_path, f"later{i}", "sleep 0.5"), job(1), None)
                           for i in range(4)])
    assert sorted(i.jobID for i in results(bs, 4)) == sorted(later)
    assert spared in {agent_of(tmp_path, f"later{i}") for i in range(4)}


def test_get_nodes_takes_toils_arguments(cluster: Cluster) -> None:
    cluster.start()
    bs = cluster.batch_system()
    assert wait_for(lambda: bs.getNodes(preemptible=None, timeout=None))
    assert bs.getNodes(None, None) == bs.getNodes(preemptible=False, timeout=600)
    assert bs.getNodes(preemptible=True, timeout=None) == {}


def test_the_pymesos_callbacks_are_the_batch_systems(cluster: Cluster) -> None:
    double = cluster.start()
    bs = cluster.batch_system(mesosOfferHold=0.1)  # the made-up offer goes back at once
    # subscribed, and a real offer seen, before the callbacks are called by hand
    framework = wait_for(lambda: next(iter(double.state()["frameworks"]), None))
    assert framework and wait_for(bs.getNodes)
    # resourceOffers and frameworkMessage: a node only these callbacks told of
    ghost = {"id": {"value": "ghost-offer"}, "agent_id": {"value": "ghost"},
             "hostname": "ghost", "url": {"address": {"ip": "10.9.9.9", "port": 5051}},
             "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 3.0}},
                           {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024.0}}]}
    bs.resourceOffers(None, [ghost])  # type: ignore[attr-defined]
    assert bs.getNodes()["10.9.9.9"].coresTotal == 3.0
    report = NodeReport("ghost", "10.9.9.9", 0.25, 2**30, 16.0, 2**34, 0)
    bs.frameworkMessage(None, {"value": "e"}, {"value": "ghost"},  # type: ignore[attr-defined]
                        report.encode())
    assert bs.getNodes()["10.9.9.9"].coresTotal == 16.0
    # statusUpdate and executorLost: results as if Mesos had sent them
    failing, lost = bs.issue_many([("sleep 60", job(), None), ("sleep 60", job(), None)])
    assert wait_for(lambda: set(bs.getRunningBatchJobIDs()) == {failing, lost})
    tasks = {int(t.split(".")[0]): t for t in double.tasks()}
    bs.statusUpdate(None, {"task_id": {"value": tasks[failing]},  # type: ignore[attr-defined]
                           "state": "TASK_FAILED", "message": "told by a callback"})
    (info,) = results(bs, 1)
    assert (info.jobID, info.exitReason) == (failing, BatchJobExitReason.FAILED)
    executor = bs._backend.executors.on(double.agent_ids[0])  # type: ignore[attr-defined]
    bs.executorLost(None, {"value": executor},  # type: ignore[attr-defined]
                    {"value": double.agent_ids[0]}, 9)
    (info,) = results(bs, 1)
    assert (info.jobID, info.exitReason) == (lost, BatchJobExitReason.LOST)
    # registered / reregistered: a (re)subscription, so tasks are reconciled (last: the
    # offers the master still counts as ours are forgotten here, as after a real one)
    reconciles = double.state()["frameworks"][framework]["calls"].get("RECONCILE", 0)
    bs.reregistered(None, {})  # type: ignore[attr-defined]
    bs.registered(None, {"value": framework}, {})  # type: ignore[attr-defined]
    assert wait_for(lambda: double.state()["frameworks"][framework]["calls"]
                    .get("RECONCILE", 0) >= reconciles + 2)
