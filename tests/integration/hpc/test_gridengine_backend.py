"""The gridengine backend end to end on the real Grid Engine (tests/services/gridengine.py):
what each job asks Grid Engine for, exit statuses Grid Engine would act on, error states,
limits, jobs deleted behind mesobatch's back, and the commands a run costs."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mesobatch
from mesobatch import BatchJobExitReason, JobDescription, UpdatedBatchJobInfo
from mesobatch.integration.hpc.gridengine_backend import GridEngineBackend
from mesobatch.scheduler.options import OptionError
from tests.services.gridengine import GridEngine

MIB = 2**20
SMALL = JobDescription(cores=1, memory=64 * MIB, disk=MIB)

Make = Callable[..., mesobatch.BatchSystem]


@pytest.fixture
def make(gridengine: GridEngine, gridengine_env: dict[str, str], tmp_path: Path,
         ) -> Iterator[Make]:
    """make(**options) -> a batch system on the real Grid Engine's light.q."""
    made: list[mesobatch.BatchSystem] = []

    def build(**options: Any) -> mesobatch.BatchSystem:
        settings: dict[str, Any] = {
            "logDir": str(tmp_path / "logs"), "pollInterval": 0.5, "maxPollInterval": 2,
            "killGracePeriod": 1, "maxTotalCores": 8, "gridEngineQueue": gridengine.light_queue,
            "gridEngineArgs": "-l light", "gridEngineMemoryResource": "mem_free",
            "gridEngineMemoryPer": "job", "gridEngineAccountingDelay": 2, **options}
        bs = mesobatch.batch_system("gridengine", **settings)
        made.append(bs)
        return bs

    yield build
    for bs in made:
        bs.shutdown()


def backend(bs: mesobatch.BatchSystem) -> GridEngineBackend:
    b = bs._backend
    assert isinstance(b, GridEngineBackend)
    return b


def collect(bs: mesobatch.BatchSystem, n: int, timeout: float = 90
            ) -> dict[int, UpdatedBatchJobInfo]:
    out: dict[int, UpdatedBatchJobInfo] = {}
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        info = bs.getUpdatedBatchJob(0.5)
        if info is not None:
            assert info.jobID not in out, f"job {info.jobID} reported twice"
            out[info.jobID] = info
    return out


def log_of(tmp_path: Path, job: int) -> str:
    (path,) = (tmp_path / "logs").glob(f"{job}-*.log")
    return path.read_text()


def in_queue(env: dict[str, str], name_part: str) -> list[str]:
    out = subprocess.run(["qstat", "-u", "*"], env=env, capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if name_part in line]


def test_cores_memory_and_queue_reach_grid_engine(make: Make, tmp_path: Path,
                                                  gridengine_env: dict[str, str]) -> None:
    # all.q with h_vmem per slot: 2 cores and 1 GiB are -pe smp 2 and h_vmem=512M a slot,
    # which Grid Engine makes the job's address-space limit (512M x 2 slots)
    bs = make(gridEngineQueue="all.q", gridEngineArgs="", gridEngineMemoryResource="h_vmem",
              gridEngineMemoryPer="slot")
    out = tmp_path / "seen"
    job = bs.issueBatchJob(f'echo "$NSLOTS $QUEUE $PE $(ulimit -v)" > {out}',
                           JobDescription(cores=2, memory=1024 * MIB, disk=MIB))
    assert collect(bs, 1)[job].exitStatus == 0
    assert out.read_text().split() == ["2", "all.q", "smp", str(1024 * 1024)]


def test_exit_statuses_grid_engine_acts_on_are_reported_as_the_command_gave_them(
        make: Make, gridengine_env: dict[str, str]) -> None:
    # a script exiting 99 is requeued by Grid Engine, 100 put into error state: the
    # wrapper records the status and exits 1, so each runs once and ends as it should
    bs = make()
    codes = {bs.issueBatchJob(f"exit {code}", SMALL): code for code in (99, 100, 3, 0)}
    results = collect(bs, len(codes))
    assert {job: results[job].exitStatus for job in codes} == codes
    assert {results[job].exitReason for job in codes if codes[job]} == {
        BatchJobExitReason.FAILED}
    assert in_queue(gridengine_env, backend(bs).run_tag[:10]) == []


def test_a_job_in_error_state_is_an_error_with_grid_engine_s_reason(
        make: Make, tmp_path: Path, gridengine_env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the jobs' working directory (where the batch system was made) is not there when
    # the job starts, as on a node that lacks it: the job goes into error state (Eqw)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    bs = make()
    monkeypatch.chdir(tmp_path)
    work.rmdir()
    job = bs.issueBatchJob("true", SMALL)
    info = collect(bs, 1)[job]
    assert info.exitReason is BatchJobExitReason.ERROR
    told = log_of(tmp_path, job)
    assert "Eqw" in told and "chdir" in told and str(work) in told, told
    # and it no longer sits in the queue waiting for an administrator
    tag = backend(bs).run_tag[:10]
    deadline = time.monotonic() + 20
    while in_queue(gridengine_env, tag) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert in_queue(gridengine_env, tag) == []


def test_a_job_over_its_walltime_ends_with_maxjobduration(make: Make) -> None:
    bs = make()
    job = bs.issueBatchJob("sleep 60", JobDescription(cores=1, memory=64 * MIB, disk=MIB,
                                                      walltime=2))
    info = collect(bs, 1, timeout=60)[job]
    assert info.exitReason is BatchJobExitReason.MAXJOBDURATION
    assert info.exitStatus != 0


def test_a_job_deleted_behind_mesobatch_s_back_before_it_ran_is_lost(
        make: Make, tmp_path: Path, gridengine_env: dict[str, str]) -> None:
    # held (-h), then deleted with qdel from outside: neither qstat nor qacct knows it
    bs = make(gridEngineArgs="-l light -h", vanishedPolls=3)
    job = bs.issueBatchJob("true", SMALL)
    deadline = time.monotonic() + 30
    while not (held := in_queue(gridengine_env, backend(bs).run_tag[:10])):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    native = held[0].split()[0]
    subprocess.run(["qdel", native], env=gridengine_env, check=True, capture_output=True)
    info = collect(bs, 1, timeout=60)[job]
    assert info.exitReason is BatchJobExitReason.LOST
    told = log_of(tmp_path, job)
    assert f"job {native} vanished: not in the queue, not in accounting" in told, told
    assert "it never started" in told


def test_one_qstat_per_poll_whatever_the_number_of_jobs(make: Make) -> None:
    bs = make(maxTotalCores=20)
    ids = [bs.issueBatchJob("sleep 1", JobDescription(cores=0.1, memory=MIB, disk=MIB))
           for _ in range(40)]
    results = collect(bs, len(ids), timeout=120)
    assert sorted(results) == sorted(ids)
    assert all(r.exitStatus == 0 for r in results.values())
    b = backend(bs)
    counts = dict(b.commands.counts)
    # every job ended with a zero exit record: qacct was never needed; each status
    # query is one qstat whatever the number of jobs; submissions are arrays
    assert counts.get("qacct", 0) == 0
    assert counts["qstat"] == b.polls
    assert counts["qsub"] < len(ids) / 2


def test_bad_grid_engine_options_fail_at_start_naming_them(
        gridengine_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OptionError, match="'-N' conflicts"):
        mesobatch.batch_system("gridengine", gridEngineArgs="-N mine")
    with pytest.raises(OptionError, match="gridEngineMemoryPer"):
        mesobatch.batch_system("gridengine", gridEngineMemoryPer="node")
    with pytest.raises(OptionError, match=r"gridEnginePE.*expected a Grid Engine name"):
        mesobatch.batch_system("gridengine", gridEnginePE="s m p")
    with pytest.raises(OptionError, match="gridEngineMemoryResource"):
        mesobatch.batch_system("gridengine", gridEngineMemoryResource="h_vmem=1G")
    monkeypatch.setenv("MESOBATCH_GRIDENGINE_ARGS", "-l h_rt=10")
    with pytest.raises(OptionError, match="MESOBATCH_GRIDENGINE_ARGS: '-l h_rt=10' conflicts"):
        mesobatch.batch_system("gridengine")
    assert os.environ["MESOBATCH_GRIDENGINE_ARGS"]


def test_accounting_for_many_jobs_is_asked_for_all_at_once(make: Make,
                                                            tmp_path: Path) -> None:
    # ten separate jobs that fail together: accounting is asked (for why) about all of
    # them at once, by the run's tag in their names, not with one qacct each
    bs = make(jobArrays=False, maxTotalCores=10)
    go = tmp_path / "go"
    ids = [bs.issueBatchJob(f"while [ ! -e {go} ]; do sleep 0.1; done; exit 3",
                            JobDescription(cores=0.1, memory=MIB, disk=MIB))
           for _ in range(10)]
    deadline = time.monotonic() + 60
    while len(bs.getRunningBatchJobIDs()) < len(ids):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    go.touch()
    results = collect(bs, len(ids))
    assert {results[j].exitStatus for j in ids} == {3}
    b = backend(bs)
    assert b.commands.counts["qsub"] == len(ids)
    assert 1 <= b.commands.counts["qacct"] < len(ids)
