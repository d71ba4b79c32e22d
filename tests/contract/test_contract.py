"""The batch-system contract (Toil's generic tests and the bugs we must not repeat).

Every backend passes this suite; conftest.py says how each one is made.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from mesobatch import (
    BatchJobExitReason,
    BatchSystem,
    InsufficientSystemResources,
    JobDescription,
    UpdatedBatchJobInfo,
)
from tests.waiting import wait_for

from .conftest import Factory, overlap_seconds, whole_cores

GIB = 1024**3
SMALL = JobDescription(cores=0.1, memory=16 * 1024**2, disk=16 * 1024**2)


def desc(cores: float = 0.1, memory: int = 16 * 1024**2, **kw: object) -> JobDescription:
    return JobDescription(cores=cores, memory=memory, disk=16 * 1024**2, **kw)  # type: ignore[arg-type]


def collect(bs: BatchSystem, n: int, timeout: float = 120) -> list[UpdatedBatchJobInfo]:
    out: list[UpdatedBatchJobInfo] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        info = bs.getUpdatedBatchJob(1)
        if info is not None:
            out.append(info)
    return out


def test_issue_run_kill_and_report(make_bs: Factory) -> None:
    """Toil's testAvailableCores/testRunJobs: issue, see running, kill, run a short job."""
    bs = make_bs(cores=2)
    assert bs.getIssuedBatchJobIDs() == []
    ids = {bs.issueBatchJob("sleep 1000", desc()) for _ in range(2)}
    assert set(bs.getIssuedBatchJobIDs()) == ids
    assert wait_for(lambda: set(bs.getRunningBatchJobIDs()) == ids, timeout=120)
    running = bs.getRunningBatchJobIDs()
    assert all(seconds >= 0 for seconds in running.values())
    bs.killBatchJobs(list(ids))
    assert bs.getRunningBatchJobIDs() == {}
    assert bs.getIssuedBatchJobIDs() == []
    short = bs.issueBatchJob("sleep 0.1", desc())
    (info,) = collect(bs, 1)
    assert info.jobID == short and info.exitStatus == 0
    assert info.exitReason == BatchJobExitReason.FINISHED
    assert info.wallTime is not None and info.wallTime > 0
    assert bs.getUpdatedBatchJob(0) is None  # killed jobs are never reported
    bs.killBatchJobs([123456789])  # unknown ids are not an error


def test_exit_codes_and_wall_time(make_bs: Factory) -> None:
    bs = make_bs(cores=2)
    ok = bs.issueBatchJob("sleep 0.5", desc())
    bad = bs.issueBatchJob("exit 7", desc())
    results = {r.jobID: r for r in collect(bs, 2)}
    assert results[ok].exitStatus == 0 and results[ok].exitReason == BatchJobExitReason.FINISHED
    wall = results[ok].wallTime
    assert wall is not None and 0.5 <= wall < 30
    assert results[bad].exitStatus == 7 and results[bad].exitReason == BatchJobExitReason.FAILED


def test_set_env_and_job_environment_reach_the_job(make_bs: Factory, tmp_path: Path) -> None:
    bs = make_bs(cores=2)
    os.environ["MESOBATCH_TEST_FROM_OS"] = "from-os"
    try:
        bs.setEnv("MESOBATCH_TEST_FROM_OS")
    finally:
        del os.environ["MESOBATCH_TEST_FROM_OS"]
    bs.setEnv("MESOBATCH_TEST_A", "a value with spaces")
    bs.setEnv("MESOBATCH_TEST_B", "overridden")
    out = tmp_path / "env.txt"
    bs.issueBatchJob(
        f'echo "$MESOBATCH_TEST_FROM_OS|$MESOBATCH_TEST_A|$MESOBATCH_TEST_B" > {out}', desc(),
        job_environment={"MESOBATCH_TEST_B": "per-job"})
    (info,) = collect(bs, 1)
    assert info.exitStatus == 0
    assert out.read_text() == "from-os|a value with spaces|per-job\n"
    with pytest.raises(RuntimeError, match="MESOBATCH_TEST_MISSING"):
        bs.setEnv("MESOBATCH_TEST_MISSING")


def test_set_env_applies_to_jobs_issued_afterwards_only(make_bs: Factory,
                                                       tmp_path: Path) -> None:
    bs = make_bs(cores=1)
    first = bs.issueBatchJob(f'sleep 0.3; echo "[$LATE]" > {tmp_path}/first', desc(1))
    bs.setEnv("LATE", "set")
    bs.issueBatchJob(f'echo "[$LATE]" > {tmp_path}/second', desc(1))
    assert {r.jobID for r in collect(bs, 2)} >= {first}
    assert (tmp_path / "first").read_text() == "[]\n"
    assert (tmp_path / "second").read_text() == "[set]\n"


@pytest.mark.parametrize("request_", [
    {"cores": 2000},
    {"memory": 5000 * GIB},
    {"disk": 12 * GIB},  # 2G over the 10G limit
    {"accelerators": [{"kind": "quantum-annealer", "count": 1}]},
])
def test_oversized_requests_fail_at_issue_time(make_bs: Factory, request_: dict[str, Any]) -> None:
    bs = make_bs(cores=2)
    job = JobDescription(**{"cores": 1, "memory": GIB, "disk": GIB, **request_})
    with pytest.raises(InsufficientSystemResources) as e:
        bs.issueBatchJob("true", job)
    assert str(e.value)  # says which resource and limit
    assert bs.getIssuedBatchJobIDs() == []


def _peak_concurrency(bs: BatchSystem, cores: float, n: int, tmp_path: Path,
                      seconds: float) -> int:
    for i in range(n):
        bs.issueBatchJob(
            f"date +%s.%N > {tmp_path}/{i}.start; sleep {seconds}; "
            f"date +%s.%N > {tmp_path}/{i}.end",
            desc(cores))
    results = collect(bs, n, timeout=300)
    assert len(results) == n and all(r.exitStatus == 0 for r in results)
    events = []
    for i in range(n):
        events.append((float((tmp_path / f"{i}.start").read_text()), 1))
        events.append((float((tmp_path / f"{i}.end").read_text()), -1))
    peak = level = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize(("cores", "expected"), [(1, 2), (0.5, 4), (0.3, 6), (0.1, 20)])
def test_peak_concurrency_is_exactly_n_over_c(make_bs: Factory, tmp_path: Path,
                                              cores: float, expected: int) -> None:
    bs = make_bs(cores=2)
    if whole_cores(bs):  # each job holds ceil(c) cores
        expected = int(2 // math.ceil(cores))
    assert _peak_concurrency(bs, cores, expected * 2, tmp_path, overlap_seconds(bs)) == expected


def test_omp_num_threads_follows_cores(make_bs: Factory, tmp_path: Path) -> None:
    bs = make_bs(cores=2)
    for cores in (0.1, 1, 2):
        bs.issueBatchJob(f"echo $OMP_NUM_THREADS > {tmp_path}/{cores}", desc(cores))
    collect(bs, 3)
    assert [(tmp_path / str(c)).read_text().strip() for c in (0.1, 1, 2)] == ["1", "1", "2"]


def test_nothing_left_running_after_shutdown(make_bs: Factory) -> None:
    bs = make_bs(cores=2)
    marker = f"1000.{uuid.uuid4().int % 10**6}"
    bs.issueBatchJob(f"sleep {marker} & sleep {marker} & wait", desc())
    bs.issueBatchJob(f"trap '' TERM; sleep {marker}", desc())

    def live() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline", "status"])
                if (p.info["cmdline"] or [])[:2] == ["sleep", marker]
                and p.info["status"] != psutil.STATUS_ZOMBIE]

    assert wait_for(lambda: len(live()) == 3, timeout=60)
    bs.shutdown()
    assert wait_for(lambda: live() == [], timeout=10)


def test_killing_a_queued_job_removes_it(make_bs: Factory, tmp_path: Path) -> None:
    bs = make_bs(cores=1)
    blocker = bs.issueBatchJob("sleep 2", desc(1))
    queued = bs.issueBatchJob(f"touch {tmp_path}/ran", desc(1))
    bs.killBatchJobs([queued])
    assert queued not in bs.getIssuedBatchJobIDs()
    (info,) = collect(bs, 1)
    assert info.jobID == blocker
    assert bs.getUpdatedBatchJob(1) is None
    assert not (tmp_path / "ran").exists()


def test_kill_returns_in_bounded_time_even_if_the_job_ignores_sigterm(make_bs: Factory) -> None:
    bs = make_bs(cores=1, killGracePeriod=0.5)
    job = bs.issueBatchJob("trap '' TERM; while true; do sleep 0.1; done", desc(1))
    assert wait_for(lambda: job in bs.getRunningBatchJobIDs(), timeout=120)
    started = time.monotonic()
    bs.killBatchJobs([job])
    assert time.monotonic() - started < 10
    assert bs.getRunningBatchJobIDs() == {} and bs.getUpdatedBatchJob(1) is None


def test_exactly_once_under_concurrent_kills(make_bs: Factory) -> None:
    bs = make_bs(cores=2)
    rng = random.Random(7)
    ids = [bs.issueBatchJob(f"sleep {rng.choice([0, 0.05, 0.1, 0.2])}", desc())
           for _ in range(150)]
    killed_by: dict[int, float] = {}  # job -> when a killBatchJobs naming it had returned
    asked: dict[int, float] = {}  # job -> when the getUpdatedBatchJob that returned it began
    seen: list[int] = []
    lock = threading.Lock()

    def killer() -> None:
        for chunk in range(10):
            victims = rng.sample(ids, 6)
            bs.killBatchJobs(victims)
            done = time.monotonic()
            with lock:
                for v in victims:
                    killed_by.setdefault(v, done)
            time.sleep(0.05 * chunk % 0.2)

    t = threading.Thread(target=killer)
    t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        began = time.monotonic()
        info = bs.getUpdatedBatchJob(0.5)
        if info is not None:
            with lock:
                seen.append(info.jobID)
                asked[info.jobID] = began
        elif not t.is_alive() and not bs.getIssuedBatchJobIDs():
            break
    t.join()
    assert len(seen) == len(set(seen)), "a job was reported twice"
    for job_id in ids:
        if job_id in killed_by:
            # once killBatchJobs has returned, the job can no longer be handed out
            assert job_id not in asked or asked[job_id] < killed_by[job_id], job_id
        else:
            assert job_id in asked, f"job {job_id} was never reported"
    assert bs.getIssuedBatchJobIDs() == []


def test_scheduling_status_explains_waiting_jobs(make_bs: Factory) -> None:
    bs = make_bs(cores=1)
    idle = bs.getSchedulingStatusMessage()  # None, or the backend's own state
    assert idle is None or "waiting" not in idle
    blockers = [bs.issueBatchJob("sleep 30", desc(1))]
    waiting = [bs.issueBatchJob("sleep 30", desc(1)) for _ in range(3)]
    assert wait_for(lambda: blockers[0] in bs.getRunningBatchJobIDs(), timeout=120)
    message = bs.getSchedulingStatusMessage()
    assert message is not None
    assert "3 jobs waiting, 1 running" in message and "1 core" in message
    bs.killBatchJobs(blockers + waiting)
