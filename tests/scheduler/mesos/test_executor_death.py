"""A job never outlives its executor (issue 10 defect 2): the executor killed with
SIGKILL, or its agent lost with it, takes every process of its jobs along (jobs that
ignore SIGTERM and the children they forked included), and the jobs are reported once."""

from __future__ import annotations

import threading
from pathlib import Path

import mesobatch
from tests.processes import still_running, wait_gone
from tests.scheduler.mesos.conftest import Cluster, job
from tests.stubborn_jobs import pids_of, started, stubborn
from tests.waiting import wait_for


def _run_stubborn(cluster: Cluster, tmp_path: Path, count: int) -> tuple[
        mesobatch.BatchSystem, list[int], list[int]]:
    bs = cluster.batch_system()
    ids = [bs.issueBatchJob(stubborn(tmp_path, f"j{i}"), job()) for i in range(count)]
    assert wait_for(lambda: all(started(tmp_path, f"j{i}") for i in range(count)))
    pids = pids_of(tmp_path)
    assert len(pids) == 3 * count and still_running(pids) == pids
    return bs, ids, pids


def _reported(bs: mesobatch.BatchSystem, count: int) -> list[mesobatch.UpdatedBatchJobInfo]:
    out: list[mesobatch.UpdatedBatchJobInfo] = []
    while len(out) < count and (info := bs.getUpdatedBatchJob(30)) is not None:
        out.append(info)
    return out


def test_executor_killed_with_sigkill_takes_its_jobs_along(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    double = cluster.start()
    bs, ids, pids = _run_stubborn(cluster, tmp_path, 3)
    killed = double.kill_random_executor()
    assert killed is not None
    assert wait_gone(pids, timeout=10) == []
    reported = _reported(bs, 3)
    assert sorted(i.jobID for i in reported) == sorted(ids)
    assert bs.getUpdatedBatchJob(2) is None  # once each


def test_a_lost_agent_takes_its_jobs_along(cluster: Cluster, tmp_path: Path) -> None:
    double = cluster.start(agent_removal_timeout=1.0)
    bs, ids, pids = _run_stubborn(cluster, tmp_path, 2)
    double.lose_agent(0)  # the agent and its executor die; Mesos would kill nothing else
    assert wait_gone(pids, timeout=10) == []
    double.mark_agent_unreachable(0)
    reported = _reported(bs, 2)
    assert sorted(i.jobID for i in reported) == sorted(ids)
    assert bs.getUpdatedBatchJob(2) is None


def test_an_executor_cut_off_from_its_agent_kills_its_jobs_and_exits(
        cluster: Cluster, tmp_path: Path) -> None:
    """The agent process gone, its executor alive (a real agent's crash, or a host cut
    off): after --mesosAgentLossTimeout the executor kills its jobs and exits, long
    before Mesos reports them lost; the agent back, each job is reported once."""
    double = cluster.start()
    bs = cluster.batch_system(mesosAgentLossTimeout=2)
    ids = [bs.issueBatchJob(stubborn(tmp_path, f"j{i}"), job()) for i in range(2)]
    assert wait_for(lambda: all(started(tmp_path, f"j{i}") for i in range(2)))
    pids = pids_of(tmp_path)
    away = threading.Thread(target=double.restart_agent, args=(0, 12.0), daemon=True)
    away.start()
    assert wait_gone(pids, timeout=9) == []
    assert away.is_alive()  # gone while the agent was still away
    away.join(timeout=60)
    reported = _reported(bs, 2)
    assert sorted(i.jobID for i in reported) == sorted(ids)
    assert bs.getUpdatedBatchJob(2) is None
