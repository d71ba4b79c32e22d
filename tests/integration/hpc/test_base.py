"""The batch-queue base end to end, on fakeq (a tiny queue whose jobs really run)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from mesobatch import BatchJobExitReason, JobDescription, UpdatedBatchJobInfo
from tests.waiting import wait_for

from .conftest import Make
from .fake import FAKEQ, FakeBackend, FakeBatchSystem, calls

J = JobDescription(cores=1, memory=64 * 2**20, disk=2**20)


def collect(bs: FakeBatchSystem, n: int, *wanted: int, timeout: float = 60
            ) -> dict[int, UpdatedBatchJobInfo]:
    """The next ``n`` results, none twice (and ``wanted`` among them)."""
    out: dict[int, UpdatedBatchJobInfo] = {}
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        info = bs.getUpdatedBatchJob(0.5)
        if info is not None:
            assert info.jobID not in out, f"job {info.jobID} reported twice"
            out[info.jobID] = info
    assert set(wanted) <= set(out)
    return out


def test_jobs_run_through_the_wrapper_with_their_environment_and_logs(
        make: Make, state: str, tmp_path: Path) -> None:
    bs = make()
    bs.setEnv("GREETING", "hello world")
    ok = bs.issueBatchJob("""printf '%s|%s|%s\\n' "$GREETING" "$OWN" '$NOT_EXPANDED'""",
                          JobDescription(cores=1, memory=2**20, disk=2**20, name="say hi"),
                          job_environment={"OWN": "it's \"quoted\" $x", "odd.name": "v"})
    bad = bs.issueBatchJob("echo failing >&2; exit 7", J)
    results = collect(bs, 2)
    assert results[ok].exitStatus == 0 and results[ok].exitReason is BatchJobExitReason.FINISHED
    assert results[bad].exitStatus == 7 and results[bad].exitReason is BatchJobExitReason.FAILED
    logs = tmp_path / "logs"
    assert (logs / f"{ok}-say_hi.log").read_text() == \
        "hello world|it's \"quoted\" $x|$NOT_EXPANDED\n"
    assert (logs / f"{bad}-job{bad}.log").read_text() == "failing\n"
    assert bs.getUpdatedBatchJob(0.5) is None and bs.getIssuedBatchJobIDs() == []


def test_a_burst_of_one_shape_is_one_array_and_arrays_can_be_turned_off(
        make: Make, state: str) -> None:
    bs = make(fakeArraySize=8)
    small = JobDescription(cores=0.1, memory=2**20, disk=2**20)
    ids = bs.issue_many([(f"exit {i % 3}", small, None) for i in range(20)]
                        + [("true", J, None)])
    results = collect(bs, 21)
    assert {j: results[j].exitStatus for j in ids} == {
        j: (i % 3 if i < 20 else 0) for i, j in enumerate(ids)}
    sizes = sorted(int(c[c.index("--array") + 1]) if "--array" in c else 1
                   for c in calls(state, "submit"))
    assert sizes == [1, 4, 8, 8]  # 20 in arrays of at most 8, the other shape alone
    bs.shutdown()
    before = len(calls(state, "submit"))
    bs = make(jobArrays=False)
    collect(bs, len(bs.issue_many([("true", small, None)] * 5)))
    assert len(calls(state, "submit")) - before == 5


def test_one_status_query_per_poll_for_all_jobs_in_chunks_beyond_the_limit(
        make: Make, state: str, tmp_path: Path) -> None:
    bs = make(pollInterval=0.3, maxPollInterval=0.6, fakeQueryChunk=4)
    backend = bs._backend
    assert isinstance(backend, FakeBackend)
    # the jobs run until the test has seen two polls (not for a time a loaded machine outlasts)
    gate = tmp_path / "go"
    ids = bs.issue_many([(f"while [ ! -e '{gate}' ]; do sleep 0.05; done", J, None)] * 10)
    wait_for(lambda: backend.polls >= 2)
    gate.touch()
    collect(bs, 10, *ids)
    bs.shutdown()  # no query under way while we count
    queries = [q[1:] for q in calls(state, "status")]
    polls = backend.polls
    # each poll asks about every live job, 10 at most, in chunks of at most 4
    assert polls >= 2 and polls <= len(queries) <= 3 * polls
    assert all(1 <= len(q) <= 4 for q in queries)
    assert sorted(job for q in queries[:3] for job in q) == sorted(native_ids(state))
    # finished by their exit records: no accounting query was needed
    assert calls(state, "acct") == []


def test_a_status_query_that_names_no_ids_is_one_call_whatever_the_chunk_size(
        make: Make, state: str) -> None:
    bs = make(maxPollInterval=0.6, fakeQueryChunk=1, fakeStatusAll=True)
    collect(bs, 6, *bs.issue_many([("sleep 3", J, None)] * 6))
    bs.shutdown()  # no query under way while we count
    backend = bs._backend
    assert isinstance(backend, FakeBackend) and backend.polls >= 2
    assert calls(state, "status") == [["status", "--all"]] * backend.polls


def test_exit_records_decide_when_there_is_no_accounting(make: Make, state: str) -> None:
    bs = make(fakeAccounting=False)
    ids = [bs.issueBatchJob(f"sleep 0.{i + 5}; exit {i}", J) for i in range(4)]
    results = collect(bs, 4)
    assert [results[j].exitStatus for j in ids] == [0, 1, 2, 3]
    assert [results[j].exitReason for j in ids] == [BatchJobExitReason.FINISHED] + [
        BatchJobExitReason.FAILED] * 3
    # the wall time is the command's, from the records' times
    assert all(0.4 < (results[j].wallTime or 0) < 5 for j in ids)
    assert calls(state, "acct") == []


def test_accounting_says_why_a_job_failed(make: Make, state: str) -> None:
    bs = make()
    job = bs.issueBatchJob('touch "$FAKEQ_STATE/$FAKEQ_JOB_ID.oom"; exit 137', J)
    (info,) = collect(bs, 1).values()
    assert info.jobID == job and info.exitStatus == 137
    assert info.exitReason is BatchJobExitReason.MEMLIMIT
    assert calls(state, "acct")


def test_a_vanished_job_is_lost_with_a_clear_message(make: Make, state: str,
                                                    tmp_path: Path) -> None:
    bs = make(vanishedPolls=3)
    job = bs.issueBatchJob("sleep 100", J)
    assert wait_for(lambda: job in bs.getRunningBatchJobIDs())
    fakeq(state, "vanish", *native_ids(state))  # killed by -9: no exit record either
    (info,) = collect(bs, 1).values()
    assert info.jobID == job and info.exitReason is BatchJobExitReason.LOST
    log = (tmp_path / "logs" / f"{job}-job{job}.log").read_text()
    assert "vanished: not in the queue, not in accounting, and no exit status recorded" \
        in log and "after 3 polls; it started on " in log


def test_transient_failures_are_retried_and_permanent_ones_fail_the_job(
        make: Make, state: str, tmp_path: Path) -> None:
    faults(state, "submit transient", "submit transient", "status transient")
    bs = make()
    first = bs.issueBatchJob("sleep 0.5", J)
    assert collect(bs, 1)[first].exitStatus == 0
    assert len(calls(state, "submit")) == 3
    faults(state, "submit permanent")
    second = bs.issueBatchJob("true", J)
    info = collect(bs, 1)[second]
    assert info.exitReason is BatchJobExitReason.ERROR
    assert "invalid partition specified" in \
        (tmp_path / "logs" / f"{second}-job{second}.log").read_text()


def test_a_job_killed_before_its_submission_is_never_submitted(make: Make, state: str) -> None:
    hold(state)
    faults(state, "submit slow 1.5")
    bs = make()
    first = bs.issueBatchJob("true", J)
    assert wait_for(lambda: calls(state, "submit"))  # its submit command runs (slowly)
    second = bs.issueBatchJob("true", J)
    started = time.monotonic()
    bs.killBatchJobs([first, second])  # one mid-submission, one not yet submitted
    assert time.monotonic() - started < 10
    assert bs.getIssuedBatchJobIDs() == []
    assert len(calls(state, "submit")) == 1
    assert [c[1:] for c in calls(state, "cancel")] == [native_ids(state)]
    fakeq(state, "release")
    assert bs.getUpdatedBatchJob(1) is None


def test_killing_a_running_job_cancels_it_in_bounded_time(make: Make, state: str) -> None:
    bs = make()
    marker = f"1000.{os.getpid()}{time.monotonic_ns() % 10**6}"
    job = bs.issueBatchJob(f"sleep {marker}", J)
    assert wait_for(lambda: job in bs.getRunningBatchJobIDs())
    assert wait_for(lambda: _sleeping(marker))
    started = time.monotonic()
    bs.killBatchJobs([job])
    assert time.monotonic() - started < 10
    assert bs.getRunningBatchJobIDs() == {} and bs.getUpdatedBatchJob(1) is None
    assert wait_for(lambda: not _sleeping(marker), timeout=10)


def test_max_jobs_bounds_what_is_in_the_queue_and_the_message_says_so(
        make: Make, state: str) -> None:
    hold(state)
    bs = make(maxJobs=3)
    ids = bs.issue_many([("true", J, None)] * 7)
    assert wait_for(lambda: len(native_ids(state)) == 3)
    message = wait_for(lambda: (m := bs.getSchedulingStatusMessage()) and "Held" in m and m)
    assert "4 jobs waiting" in message
    assert "Limit reached: 3 of 3 jobs at once (--maxJobs)" in message
    assert "In the fakeq queue: 3 pending (Held 3), 0 running" in message
    fakeq(state, "release")
    results = collect(bs, 7)
    assert sorted(results) == sorted(ids) and len(native_ids(state)) == 7


def test_nodes_come_from_the_cluster_and_ignored_nodes_are_excluded(
        make: Make, state: str) -> None:
    bs = make()
    nodes = bs.getNodes()
    assert sorted(nodes) == ["node1", "node2"]  # node3 is down
    assert nodes["node1"].coresTotal == 4 and nodes["node1"].memoryTotal == 8 * 2**30
    job = bs.issueBatchJob("sleep 100", J)
    assert wait_for(lambda: bs.nodeInUse("node1"))
    assert not bs.nodeInUse("node2")
    assert bs.getNodes()["node1"].workers == 1
    bs.ignoreNode("node2")
    later = bs.issueBatchJob("true", J)
    assert collect(bs, 1)[later].exitStatus == 0
    last = calls(state, "submit")[-1]
    assert last[last.index("--exclude") + 1] == "node2"
    bs.unignoreNode("node2")
    collect(bs, 1, bs.issueBatchJob("true", J))
    assert "--exclude" not in calls(state, "submit")[-1]
    bs.killBatchJobs([job])


def test_shutdown_cancels_what_is_queued(make: Make, state: str) -> None:
    hold(state)
    bs = make()
    bs.issue_many([("true", J, None)] * 3)
    assert wait_for(lambda: "3 pending" in (bs.getSchedulingStatusMessage() or ""))
    bs.shutdown()
    cancelled = {job for c in calls(state, "cancel") for job in c[1:]}
    assert cancelled == set(native_ids(state))


def test_each_job_is_reported_once_and_killed_ones_never_under_concurrent_kills(
        make: Make, state: str) -> None:
    bs = make()
    rng = random.Random(11)
    ids = bs.issue_many([(f"sleep {rng.choice([0, 0.1, 0.3])}", J, None)
                         for _ in range(40)])
    killed: dict[int, float] = {}
    lock = threading.Lock()

    def killer() -> None:
        for _ in range(5):
            victims = rng.sample(ids, 4)
            bs.killBatchJobs(victims)
            done = time.monotonic()
            with lock:
                for v in victims:
                    killed.setdefault(v, done)
            time.sleep(0.1)

    t = threading.Thread(target=killer)
    t.start()
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        began = time.monotonic()
        info = bs.getUpdatedBatchJob(0.5)
        if info is not None:
            assert info.jobID not in seen, "a job was reported twice"
            seen[info.jobID] = began
        elif not t.is_alive() and not bs.getIssuedBatchJobIDs():
            break
    t.join()
    for job in ids:
        if job in killed:
            assert job not in seen or seen[job] < killed[job]
        else:
            assert job in seen, f"job {job} was never reported"


# ---------------------------------------------------------------- helpers


def fakeq(state: str, verb: str, *args: str) -> None:
    subprocess.run([sys.executable, FAKEQ, state, verb, *args], check=True)


def faults(state: str, *lines: str) -> None:
    with open(os.path.join(state, "faults"), "a") as f:
        f.write("".join(line + "\n" for line in lines))


def hold(state: str) -> None:
    open(os.path.join(state, "hold"), "w").close()


def native_ids(state: str) -> list[str]:
    """Jobs fakeq was given, in submission order."""
    return sorted((n[:-4] for n in os.listdir(state) if n.endswith(".job")),
                  key=lambda i: [int(p) for p in i.split("_")])


def _sleeping(marker: str) -> bool:
    return any((p.info["cmdline"] or [])[:2] == ["sleep", marker]
               and p.info["status"] != psutil.STATUS_ZOMBIE
               for p in psutil.process_iter(["cmdline", "status"]))
