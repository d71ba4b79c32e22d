"""What each job used, measured by the executor on its agent (the Mesos double runs our
executor for real), and --enforceMemory there."""

from __future__ import annotations

import sys

from mesobatch import BatchJobExitReason, UpdatedBatchJobInfo
from tests.doubles.mesos import AgentSpec
from tests.scheduler.mesos.conftest import Cluster, job

MIB = 2**20


def alloc(mib: int, seconds: float) -> str:
    return (f"{sys.executable} -c 'import time; b = bytearray({mib} * 2**20); "
            f"time.sleep({seconds})'")


def test_the_executor_reports_peak_memory_cpu_time_and_node(cluster: Cluster) -> None:
    cluster.start([AgentSpec(hostname="node-a.example")])
    bs = cluster.batch_system()
    job_id = bs.issueBatchJob(f"{alloc(400, 0)} && {alloc(100, 1.5)}",
                              job(memory=600 * MIB))
    info = bs.getUpdatedBatchJob(60)
    assert info is not None and info.jobID == job_id and info.exitStatus == 0
    assert info.usage is not None
    assert info.usage.peak_memory is not None and info.usage.peak_memory >= 400 * MIB
    assert info.usage.cpu_time is not None and info.usage.cpu_time > 0
    assert info.usage.node == "node-a.example"


def test_a_short_true_job_reports_cpu_time_and_memory(cluster: Cluster) -> None:
    """Over before the executor's first sample and smaller than the executor: CPU time
    from wait4, and the bound on its memory the kernel gives (its peak is hidden)."""
    cluster.start([AgentSpec(hostname="node-b.example")])
    bs = cluster.batch_system()
    bs.issueBatchJob("true", job(memory=64 * MIB))
    info = bs.getUpdatedBatchJob(60)
    assert info is not None and info.exitStatus == 0 and info.usage is not None
    assert info.usage.cpu_time is not None and info.usage.cpu_time >= 0
    if info.usage.peak_memory is None:
        assert info.usage.memory_at_most is not None and info.usage.memory_at_most > MIB
    assert info.usage.node == "node-b.example"


def test_enforce_memory_kills_a_job_over_its_memory_as_memlimit(cluster: Cluster) -> None:
    cluster.start([AgentSpec(resources="cpus:2;mem:2048;disk:1000")])
    bs = cluster.batch_system(enforceMemory=True)
    over = bs.issueBatchJob(alloc(400, 30), job(memory=150 * MIB))
    under = bs.issueBatchJob(alloc(20, 0.5), job(memory=150 * MIB))
    results: dict[int, UpdatedBatchJobInfo] = {}
    while len(results) < 2 and (info := bs.getUpdatedBatchJob(60)) is not None:
        results[info.jobID] = info
    assert results[over].exitReason == BatchJobExitReason.MEMLIMIT
    wall = results[over].wallTime
    assert wall is not None and wall < 20
    assert results[under].exitReason == BatchJobExitReason.FINISHED
