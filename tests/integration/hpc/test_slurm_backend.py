"""The Slurm backend: its options, and what only a real Slurm shows (tests/services/slurm.py).

The contract suite (tests/contract/) runs on ``slurm`` too; these tests cover what is
Slurm's own: arrays, the partition chooser, limits read from the cluster, Slurm's pending
reasons in the status message, jobs cancelled by someone else, ignored nodes, and a bad
partition failing its jobs with Slurm's message.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mesobatch
from mesobatch import (
    BatchJobExitReason,
    InsufficientSystemResources,
    JobDescription,
    UpdatedBatchJobInfo,
)
from mesobatch.scheduler.options import OptionError
from mesobatch.scheduler.registry import availability
from tests.services.slurm import SlurmCluster
from tests.waiting import wait_for

J = JobDescription(cores=1, memory=64 * 2**20, disk=16 * 2**20)


def slurm(tmp_path: Path, **options: Any) -> mesobatch.BatchSystem:
    options.setdefault("pollInterval", 0.3)
    options.setdefault("killGracePeriod", 1)
    return mesobatch.batch_system("slurm", logDir=str(tmp_path / "logs"), **options)


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[SlurmCluster]:
    """The real Slurm with accounting, this test's alone (as in the contract suite)."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    with open(slurm_cluster.root.with_name(slurm_cluster.root.name + ".tests"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield slurm_cluster


def squeue(cluster: SlurmCluster, fmt: str, bs: mesobatch.BatchSystem) -> list[str]:
    """This run's jobs in the queue (other runs, of other tests, may share the user)."""
    tag = bs._backend.run_tag  # type: ignore[attr-defined]
    out = cluster.run(["squeue", "--me", f"--name={tag}", "--noheader", "--array",
                       f"--format={fmt}"], check=True)
    return out.stdout.split()


# ---------------------------------------------------------------- options (no Slurm needed)

@pytest.mark.parametrize(("options", "named"), [
    ({"slurmExtraArgs": "--time=5"}, "--time"),
    ({"slurmExtraArgs": "-J mine"}, "--job-name"),
    ({"slurmExtraArgs": "--mem=1G"}, "--mem"),
    ({"slurmExtraArgs": "--partition=x", "slurmPartition": "main"}, "--partition"),
])
def test_extra_arguments_that_clash_fail_at_start(tmp_path: Path, options: dict[str, str],
                                                  named: str) -> None:
    with pytest.raises(OptionError, match=named):
        slurm(tmp_path, **options)


def test_arguments_from_the_environment_are_checked_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESOBATCH_SLURM_ARGS", "--wrap 'sleep 1'")
    with pytest.raises(OptionError, match=r"--wrap.*MESOBATCH_SLURM_ARGS"):
        slurm(tmp_path)
    monkeypatch.setenv("MESOBATCH_SLURM_ARGS", "--comment 'unclosed")
    with pytest.raises(OptionError, match="MESOBATCH_SLURM_ARGS"):
        slurm(tmp_path)


@pytest.mark.parametrize(("options", "message"), [
    ({"slurmMemory": "per-job"}, "--slurmMemory.*per-node, per-cpu, none"),
    ({"slurmGpus": "cuda"}, "--slurmGpus.*gres, gpus"),
    ({"slurmPartition": "a b"}, "--slurmPartition.*without spaces"),
    ({"slurmPartition": "main", "slurmPartitions": "short,main"}, "give one of them"),
    ({"slurmAccounting": "maybe"}, "--slurmAccounting"),
])
def test_bad_option_values_name_the_option(tmp_path: Path, options: dict[str, str],
                                           message: str) -> None:
    with pytest.raises(OptionError, match=message):
        slurm(tmp_path, **options)


def test_availability_asks_the_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    conf = tmp_path / "slurm.conf"  # a controller nobody runs
    conf.write_text("ClusterName=nowhere\nSlurmctldHost=nowhere(127.0.0.1)\n"
                    "SlurmctldPort=17999\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    ok, why = availability("slurm")
    if "not on PATH" in why:
        pytest.skip(why)
    assert not ok and "scontrol ping" in why and "DOWN" in why


# ---------------------------------------------------------------- the real Slurm

def test_available_with_the_test_cluster(cluster: SlurmCluster) -> None:
    assert availability("slurm") == (True, "ready")


def test_a_burst_is_one_array_and_limits_come_from_the_cluster(
        cluster: SlurmCluster, tmp_path: Path) -> None:
    bs = slurm(tmp_path)
    try:
        counts = bs._backend.commands.counts  # type: ignore[attr-defined]
        # the node is the limit, not an option: the message does not suggest one
        with pytest.raises(InsufficientSystemResources, match="core") as refused:
            bs.issueBatchJob("true", JobDescription(cores=3, memory=2**26, disk=2**26))
        assert "no node of the Slurm cluster (sinfo) has more" in str(refused.value)
        assert "--maxCores" not in str(refused.value)
        with pytest.raises(InsufficientSystemResources, match="GPU"):
            bs.issueBatchJob("true", JobDescription(cores=1, memory=2**26, disk=2**26,
                                                    accelerators=[{"kind": "gpu",
                                                                   "count": 1}]))
        ids = {bs.issueBatchJob(f"exit {i}", J) for i in range(6)}
        results: dict[int, UpdatedBatchJobInfo] = {}
        while len(results) < 6:
            info = bs.getUpdatedBatchJob(60)
            assert info is not None
            results[info.jobID] = info
        assert set(results) == ids
        assert sorted(r.exitStatus for r in results.values()) == list(range(6))
        assert counts["sbatch"] == 1  # six jobs of one shape: one array
        assert counts["squeue"] <= 30
    finally:
        bs.shutdown()
    capped = slurm(tmp_path, maxCores=1)  # now the option is the limit: it says so
    try:
        with pytest.raises(InsufficientSystemResources, match="raise the limit with --maxCores"):
            capped.issueBatchJob("true", JobDescription(cores=2, memory=2**26, disk=2**26))
    finally:
        capped.shutdown()
    off = slurm(tmp_path, jobArrays=False)
    try:
        for _ in range(2):
            off.issueBatchJob("true", J)
        assert off.getUpdatedBatchJob(60) is not None and off.getUpdatedBatchJob(60) is not None
        assert off._backend.commands.counts["sbatch"] == 2  # type: ignore[attr-defined]
    finally:
        off.shutdown()


def test_the_partition_chooser_follows_walltimes(cluster: SlurmCluster, tmp_path: Path
                                                 ) -> None:
    """``short`` allows 10 minutes, ``main`` has no limit: preferred in that order."""
    bs = slurm(tmp_path, slurmPartitions="short,main")
    try:
        bs.issueBatchJob("sleep 60", JobDescription(cores=1, memory=2**26, disk=2**26,
                                                    walltime=5 * 60))
        bs.issueBatchJob("sleep 60", JobDescription(cores=1, memory=2**26, disk=2**26,
                                                    walltime=30 * 60))
        assert wait_for(lambda: len(squeue(cluster, "%P:%l", bs)) == 2)
        assert sorted(squeue(cluster, "%P:%l", bs)) == ["main:30:00", "short:5:00"]
    finally:
        bs.shutdown()
    assert wait_for(lambda: squeue(cluster, "%i", bs) == [])


def test_pending_jobs_are_explained_in_slurms_words(cluster: SlurmCluster, tmp_path: Path
                                                    ) -> None:
    """QOS ``onejob``: one running job per user; the second waits for that limit."""
    bs = slurm(tmp_path, slurmQos="onejob")
    try:
        first = bs.issueBatchJob("sleep 60", J)
        bs.issueBatchJob("sleep 60", J)
        assert wait_for(lambda: first in bs.getRunningBatchJobIDs())
        assert wait_for(lambda: "QOSMaxJobsPerUserLimit 1"
                        in (bs.getSchedulingStatusMessage() or ""))
        message = bs.getSchedulingStatusMessage() or ""
        assert "In the slurm queue: 1 pending (QOSMaxJobsPerUserLimit 1), 1 running" in message
    finally:
        bs.shutdown()
    assert wait_for(lambda: squeue(cluster, "%i", bs) == [])


def test_a_bad_partition_fails_its_jobs_with_slurms_message(cluster: SlurmCluster,
                                                            tmp_path: Path) -> None:
    bs = slurm(tmp_path, slurmPartition="nosuchpartition")
    try:
        job = bs.issueBatchJob("true", J)
        info = bs.getUpdatedBatchJob(60)
        assert info is not None and info.jobID == job
        assert info.exitReason == BatchJobExitReason.ERROR
        log = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
        assert "Invalid partition name specified" in log
    finally:
        bs.shutdown()


@pytest.mark.parametrize("accounting", [True, False], ids=["sacct", "noacct"])
def test_nodes_ignored_nodes_and_a_job_cancelled_by_someone_else(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        accounting: bool) -> None:
    """getNodes and nodeInUse from sinfo; scancel by hand is KILLED (from sacct, or from
    squeue's memory of ended jobs without accounting); an ignored node goes in
    --exclude, and a job that can then run nowhere fails with Slurm's message."""
    cluster: SlurmCluster = request.getfixturevalue(
        "slurm_cluster" if accounting else "slurm_cluster_noacct")
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    lock = open(cluster.root.with_name(cluster.root.name + ".tests"), "a")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)
    bs = slurm(tmp_path)
    try:
        nodes = bs.getNodes()
        assert len(nodes) == 1
        (address, info) = next(iter(nodes.items()))
        assert address == "127.0.0.1" and info.coresTotal == 2
        assert not bs.nodeInUse(address)
        job = bs.issueBatchJob("sleep 60", J)
        assert wait_for(lambda: job in bs.getRunningBatchJobIDs())
        assert wait_for(lambda: bs.nodeInUse(address), timeout=10)
        (slurm_id,) = squeue(cluster, "%i", bs)
        subprocess.run(["scancel", slurm_id], check=True, env=cluster.environ())
        info_ = bs.getUpdatedBatchJob(60)
        assert info_ is not None and info_.jobID == job
        assert info_.exitReason == BatchJobExitReason.KILLED

        bs.ignoreNode(address)
        nowhere = bs.issueBatchJob("true", J)
        ended = bs.getUpdatedBatchJob(60)
        assert ended is not None and ended.jobID == nowhere
        assert ended.exitReason == BatchJobExitReason.ERROR
        log = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
        assert "Requested node configuration is not available" in log  # --exclude=vm
    finally:
        bs.shutdown()
        lock.close()


def test_the_command_line_runs_jobs_on_slurm(cluster: SlurmCluster, tmp_path: Path) -> None:
    """``mesobatch run jobs.jsonl --backend slurm --slurmPartition ...`` (the README's)."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(
        f'{{"command": "echo $SLURM_JOB_PARTITION > {tmp_path}/out{i}", "cores": 1}}\n'
        for i in range(3)))
    done = subprocess.run(
        [sys.executable, "-m", "mesobatch", "run", str(jobs), "--backend", "slurm",
         "--slurmPartition", "short", "--pollInterval", "0.3", "--no-progress",
         "--logDir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=120, env=cluster.environ(), cwd=tmp_path,
        check=False)
    assert done.returncode == 0, done.stderr
    assert [(tmp_path / f"out{i}").read_text() for i in range(3)] == ["short\n"] * 3
