"""Packs on the real Slurm (tests/services/slurm.py): jobs of less than a core issued
together share one Slurm job sized to their sum, within the node's TmpDisk; a kill inside
a pack kills that job alone; a pack cancelled by someone else reports each job inside
once, KILLED."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import pytest

import mesobatch
from mesobatch import (
    BatchJobExitReason,
    InsufficientSystemResources,
    JobDescription,
    UpdatedBatchJobInfo,
)
from tests.processes import running
from tests.services.slurm import SlurmCluster
from tests.waiting import wait_for

from .test_slurm_backend import cluster, slurm, squeue  # noqa: F401 (a fixture)

MIB = 2**20
TENTH = JobDescription(cores=0.1, memory=16 * MIB, disk=MIB)
QUARTER = JobDescription(cores=0.25, memory=16 * MIB, disk=MIB)


def results(bs: mesobatch.BatchSystem, n: int) -> dict[int, UpdatedBatchJobInfo]:
    """The next ``n`` results, none twice; then nothing more for a second."""
    out: dict[int, UpdatedBatchJobInfo] = {}
    while len(out) < n:
        info = bs.getUpdatedBatchJob(60)
        assert info is not None, f"{len(out)} of {n} results"
        assert info.jobID not in out, f"job {info.jobID} reported twice"
        out[info.jobID] = info
    assert bs.getUpdatedBatchJob(1) is None
    return out


@pytest.mark.slow
def test_small_jobs_share_one_slurm_job_sized_to_their_sum(cluster: SlurmCluster,  # noqa: F811
                                                           tmp_path: Path) -> None:
    go = tmp_path / "go"
    bs = slurm(tmp_path)
    try:
        ids = [bs.issueBatchJob(f"echo $SLURM_JOB_ID >{tmp_path}/slurm{i}; "
                                f"while [ ! -e {go} ]; do sleep 0.1; done; exit {i % 3}",
                                TENTH) for i in range(10)]
        # all ten run at once, in one Slurm job of one CPU and their memory summed
        assert wait_for(lambda: sorted(bs.getRunningBatchJobIDs()) == sorted(ids), timeout=60)
        assert squeue(cluster, "%C:%m:%T", bs) == ["1:160M:RUNNING"]
        go.touch()
        got = results(bs, 10)
        assert {j: r.exitStatus for j, r in got.items()} == {
            j: i % 3 for i, j in enumerate(ids)}
        assert all(r.exitReason is (BatchJobExitReason.FINISHED if r.exitStatus == 0
                                    else BatchJobExitReason.FAILED) for r in got.values())
        assert len({(tmp_path / f"slurm{i}").read_text() for i in range(10)}) == 1
        assert bs._backend.commands.counts["sbatch"] == 1  # type: ignore[attr-defined]
    finally:
        bs.shutdown()
    off = slurm(tmp_path, slurmPack=0)
    try:
        for i in range(3):
            off.issueBatchJob(f"echo $SLURM_JOB_ID >{tmp_path}/off{i}", TENTH)
        results(off, 3)
        # a Slurm job each (the elements of one array)
        assert len({(tmp_path / f"off{i}").read_text() for i in range(3)}) == 3
        assert off._backend.commands.counts["sbatch"] == 1  # type: ignore[attr-defined]
    finally:
        off.shutdown()


@pytest.mark.slow
def test_a_pack_asks_for_no_more_tmp_disk_than_the_node_has(cluster: SlurmCluster,  # noqa: F811
                                                             tmp_path: Path) -> None:
    (mb,) = set(cluster.run(["sinfo", "--noheader", "--format=%d"], check=True).stdout.split())
    tmp_disk = int(mb) * MIB  # the node's TmpDisk (tests/services/slurm.py: half the disk)
    bs = slurm(tmp_path)
    try:
        # one job beyond every node's TmpDisk is refused when issued
        with pytest.raises(InsufficientSystemResources, match="disk") as refused:
            bs.issueBatchJob("true", JobDescription(cores=0.1, memory=16 * MIB,
                                                    disk=tmp_disk + MIB))
        assert "--slurmDisk none" in str(refused.value)
        # two of these fit the node's TmpDisk, three do not: packs of two (four in one
        # pack would ask for 1.6 TmpDisk, which sbatch refuses)
        job = JobDescription(cores=0.1, memory=16 * MIB, disk=tmp_disk * 2 // 5)
        go = tmp_path / "go"
        ids = [bs.issueBatchJob(f"while [ ! -e {go} ]; do sleep 0.1; done", job)
               for _ in range(4)]
        assert wait_for(lambda: sorted(bs.getRunningBatchJobIDs()) == sorted(ids), timeout=60)
        packs = squeue(cluster, "%i:%T", bs)
        assert len(packs) == 2 and all(p.endswith(":RUNNING") for p in packs), packs
        # as one array, never refused (a refused pack is resubmitted unpacked)
        assert bs._backend.commands.counts["sbatch"] == 1  # type: ignore[attr-defined]
        go.touch()
        assert all(r.exitStatus == 0 for r in results(bs, 4).values())
    finally:
        bs.shutdown()


@pytest.mark.slow
def test_a_kill_inside_a_pack_kills_that_job_alone(cluster: SlurmCluster,  # noqa: F811
                                                   tmp_path: Path) -> None:
    go = tmp_path / "go"
    bs = slurm(tmp_path)
    try:
        wait = f"while [ ! -e {go} ]; do sleep 0.1; done"
        doomed, *others = [
            bs.issueBatchJob(f"echo $$ >{tmp_path}/pid; sleep 300 & wait", TENTH),
            bs.issueBatchJob(wait, TENTH), bs.issueBatchJob(wait, TENTH)]
        assert wait_for(lambda: len(bs.getRunningBatchJobIDs()) == 3, timeout=60)
        assert wait_for(lambda: (tmp_path / "pid").exists() and
                        (tmp_path / "pid").read_text().strip())
        pid = int((tmp_path / "pid").read_text())
        bs.killBatchJobs([doomed])
        assert sorted(bs.getRunningBatchJobIDs()) == sorted(others)
        assert wait_for(lambda: not running(pid), timeout=30)
        (pack,) = squeue(cluster, "%i:%T", bs)
        assert pack.endswith(":RUNNING")  # the pack lives on
        assert bs._backend.commands.counts["scancel"] == 0  # type: ignore[attr-defined]
        go.touch()
        got = results(bs, 2)
        assert sorted(got) == sorted(others) and all(r.exitStatus == 0 for r in got.values())
    finally:
        bs.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("accounting", [True, False], ids=["sacct", "noacct"])
def test_a_pack_cancelled_by_someone_else_reports_each_job_once(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        accounting: bool) -> None:
    cluster: SlurmCluster = request.getfixturevalue(  # noqa: F811
        "slurm_cluster" if accounting else "slurm_cluster_noacct")
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    lock = open(cluster.root.with_name(cluster.root.name + ".tests"), "a")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)
    bs = slurm(tmp_path)
    try:
        quick = bs.issueBatchJob("true", QUARTER)
        slow = [bs.issueBatchJob("sleep 300", QUARTER) for _ in range(3)]
        first = bs.getUpdatedBatchJob(60)
        assert first is not None and (first.jobID, first.exitStatus) == (quick, 0)
        assert wait_for(lambda: sorted(bs.getRunningBatchJobIDs()) == sorted(slow), timeout=60)
        (pack,) = squeue(cluster, "%i", bs)
        subprocess.run(["scancel", pack], check=True, env=cluster.environ())
        got = results(bs, 3)
        assert sorted(got) == sorted(slow)
        assert all(r.exitReason is BatchJobExitReason.KILLED for r in got.values()), got
    finally:
        bs.shutdown()
        lock.close()
