"""The recorder over the real pure core: events in, snapshots and metrics out. No
threads, sockets or sleeps (the clock is given)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesobatch.scheduler.contract import BatchJobExitReason
from mesobatch.scheduler.core.events import (
    Action,
    Disconnected,
    Event,
    JobsSubmitted,
    KillRequested,
    Launch,
    OffersReceived,
    TaskStatus,
)
from mesobatch.scheduler.core.scheduler import SchedulerCore
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.status.live import live_view
from mesobatch.scheduler.status.recorder import Recorder
from mesobatch.scheduler.status.snapshot import LiveView
from tests.scheduler.core.helpers import GIB, job, of_type, offer


class Rig:
    """A core and a recorder that sees everything the core does."""

    def __init__(self, log_dir: Path, **options: Any) -> None:
        self.core = SchedulerCore()
        self.now = 1000.0
        self.log_dir = log_dir
        self.recorder = Recorder(
            backend="test", workflow_id="wf", clock=lambda: self.now,
            live=lambda: live_view(self.core, self.now, None, None),
            log_path=lambda job_id, name: str(log_dir / f"{job_id}.log"),
            snapshot_max_age=0, **options)

    def feed(self, event: Event) -> list[Action]:
        actions = self.core.handle(event)
        self.recorder.observe(event, actions)
        return list(actions)

    def metric(self, name: str, **labels: str) -> float:
        value = self.recorder.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value


def test_queue_running_finished_and_failures(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    small = [job(1, GIB, name=f"small{i}") for i in range(3)]
    big = job(16, GIB, name="big")
    rig.feed(JobsSubmitted((*small, big), rig.now))
    snap = rig.recorder.snapshot()
    assert snap.totals.issued == 4 and snap.totals.queued == 4 and snap.totals.running == 0
    assert [q.jobs for q in snap.queue] == [1, 3]  # larger cores first
    assert all("no node has offered" in q.why for q in snap.queue)

    rig.now += 1
    launches = of_type(rig.feed(OffersReceived((offer(2, 8, hostname="n1"),), rig.now)), Launch)
    tasks = [t for launch in launches for t in launch.tasks]
    assert len(tasks) == 2
    rig.now += 2
    rig.feed(TaskStatus(tasks[0].task_id, TaskState.RUNNING, rig.now))
    rig.feed(TaskStatus(tasks[1].task_id, TaskState.RUNNING, rig.now))
    rig.now += 5
    snap = rig.recorder.snapshot()
    assert snap.totals.running == 2 and snap.totals.queued == 2
    assert {r.node for r in snap.running} == {"n1"}
    assert [r.run_time for r in snap.running] == [5.0, 5.0]
    assert [n.name for n in snap.nodes] == ["n1"] and snap.nodes[0].jobs == 2
    big_wait = next(q for q in snap.queue if "16 cores" in q.shape)
    assert "need 16 cores" in big_wait.why
    assert rig.metric("mesobatch_issue_to_start_seconds_count") == 2
    assert rig.metric("mesobatch_issue_to_start_seconds_sum") == 6.0  # 3 s each

    failed = tasks[1].task_id
    (tmp_path / f"{tasks[1].job.job_id}.log").write_text(
        "".join(f"line {i}\n" for i in range(30)))
    rig.feed(TaskStatus(tasks[0].task_id, TaskState.FINISHED, rig.now, exit_code=0,
                        wall_time=5.0))
    rig.feed(TaskStatus(failed, TaskState.FAILED, rig.now, exit_code=3, wall_time=5.0,
                        message="exited with 3"))
    snap = rig.recorder.snapshot()
    assert (snap.totals.succeeded, snap.totals.failed) == (1, 1)
    (failure,) = snap.failures
    assert failure.job_id == tasks[1].job.job_id and failure.exit_code == 3
    assert failure.result == "failed" and failure.node == "n1"
    assert failure.message == "exited with 3"
    assert failure.log_tail == tuple(f"line {i}" for i in range(20, 30))
    assert rig.metric("mesobatch_jobs_finished_total", result="succeeded") == 1
    assert rig.metric("mesobatch_jobs_finished_total", result="failed") == 1
    assert rig.metric("mesobatch_run_time_seconds_count") == 2
    assert rig.metric("mesobatch_offers_received_total") == 1
    assert snap.throughput[-1] == 2 / snap.bucket_seconds


def test_a_job_ending_before_its_running_status_still_counts_its_wait(
        tmp_path: Path) -> None:
    """A short job's terminal status comes alone (no RUNNING before it): it started
    its wall time before its end."""
    rig = Rig(tmp_path)
    rig.feed(JobsSubmitted((job(1, name="quick"),), rig.now))
    rig.now += 1
    (launch,) = of_type(rig.feed(OffersReceived((offer(2, 8),), rig.now)), Launch)
    rig.now += 4
    rig.feed(TaskStatus(launch.tasks[0].task_id, TaskState.FINISHED, rig.now, exit_code=0,
                        wall_time=0.5))
    assert rig.metric("mesobatch_issue_to_start_seconds_count") == 1
    assert rig.metric("mesobatch_issue_to_start_seconds_sum") == 4.5  # issued 5 s before


def test_kills_requeues_and_errors_are_counted_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    a, b, c = job(1, name="a"), job(1, name="b"), job(1, name="c")
    rig.feed(JobsSubmitted((a, b, c), rig.now))
    launches = of_type(rig.feed(OffersReceived((offer(2, 8),), rig.now)), Launch)
    first, second = (t for launch in launches for t in launch.tasks)
    # a launch that never started: the job is queued again, not failed
    rig.feed(TaskStatus(second.task_id, TaskState.ERROR, rig.now, never_started=True,
                        launch_refused=True))
    snap = rig.recorder.snapshot()
    assert snap.totals.running == 1 and snap.totals.queued == 2 and snap.totals.failed == 0
    assert rig.metric("mesobatch_backend_errors_total", kind="launch_refused") == 1
    rig.feed(KillRequested((first.job.job_id, c.job_id), rig.now))
    rig.feed(Disconnected(rig.now))
    snap = rig.recorder.snapshot()
    assert snap.totals.killed == 2 and snap.totals.running == 0 and snap.totals.queued == 1
    assert rig.metric("mesobatch_jobs_finished_total", result="killed") == 2
    assert rig.metric("mesobatch_backend_errors_total", kind="disconnected") == 1
    assert rig.metric("mesobatch_jobs", state="queued") == 1
    assert rig.metric("mesobatch_jobs", state="running") == 0


def test_lost_jobs_are_failures_with_their_reason(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    spec = job(1, name="x")
    rig.feed(JobsSubmitted((spec,), rig.now))
    (launch,) = of_type(rig.feed(OffersReceived((offer(2, 8),), rig.now)), Launch)
    rig.feed(TaskStatus(launch.tasks[0].task_id, TaskState.LOST, rig.now, message="gone"))
    (failure,) = rig.recorder.snapshot().failures
    assert failure.result == BatchJobExitReason.LOST.name.lower()
    assert failure.log_tail == ()  # no log file: nothing, not an error


def test_snapshot_is_reused_within_its_max_age(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    looks = []

    def look() -> LiveView:
        looks.append(1)
        return live_view(rig.core, rig.now, None, None)

    rig.recorder = Recorder(backend="test", workflow_id="wf", clock=lambda: rig.now,
                            live=look,
                            log_path=lambda i, n: None, snapshot_max_age=1.0)
    first = rig.recorder.snapshot()
    rig.now += 0.5
    assert rig.recorder.snapshot() is first and len(looks) == 1
    rig.now += 0.6
    assert rig.recorder.snapshot() is not first and len(looks) == 2


def test_tasks_of_killed_and_relaunched_jobs_are_not_kept(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    a, b = job(1, name="a"), job(1, name="b")
    rig.feed(JobsSubmitted((a, b), rig.now))
    launches = of_type(rig.feed(OffersReceived((offer(2, 8),), rig.now)), Launch)
    first, second = (t for launch in launches for t in launch.tasks)
    rig.feed(KillRequested((first.job.job_id,), rig.now))
    rig.feed(TaskStatus(first.task_id, TaskState.KILLED, rig.now))
    rig.feed(TaskStatus(second.task_id, TaskState.ERROR, rig.now, never_started=True))
    rig.recorder.drain()
    assert rig.recorder._tasks == {}


def test_finished_and_failed_jobs_show_what_they_used_beside_what_they_asked(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    hog, modest, failing = (job(1, GIB, name=n) for n in ("hog", "modest", "failing"))
    rig.feed(JobsSubmitted((hog, modest, failing), rig.now))
    launches = of_type(rig.feed(OffersReceived((offer(4, 8, hostname="n1"),), rig.now)),
                       Launch)
    ids = {t.job.name: t.task_id for launch in launches for t in launch.tasks}
    rig.now += 10
    # 3 GiB of 1 asked, and 2.4 CPU seconds a second of 1 core: both far over
    rig.feed(TaskStatus(ids["hog"], TaskState.FINISHED, rig.now, exit_code=0, wall_time=5.0,
                        peak_memory=3 * GIB, cpu_time=12.0))
    # within what it asked (and not measured at all)
    rig.feed(TaskStatus(ids["modest"], TaskState.FINISHED, rig.now, exit_code=0,
                        wall_time=5.0))
    rig.feed(TaskStatus(ids["failing"], TaskState.FAILED, rig.now, exit_code=1,
                        wall_time=5.0, peak_memory=GIB // 2, cpu_time=1.0))
    snap = rig.recorder.snapshot()
    assert [(f.name, f.node, f.peak_memory, f.cpu_time, f.over) for f in snap.finished] == [
        ("modest", "n1", None, None, ()),  # the most recent first
        ("hog", "n1", 3 * GIB, 12.0, ("mem 3.0x", "cpu 2.4x"))]
    assert all((f.cores, f.memory) == (1, GIB) for f in snap.finished)
    (failure,) = snap.failures
    assert (failure.cores, failure.memory, failure.peak_memory, failure.cpu_time,
            failure.over) == (1, GIB, GIB // 2, 1.0, ())
    doc = snap.to_json()
    assert doc["finished"][1]["over"] == ("mem 3.0x", "cpu 2.4x")
    assert doc["failures"][0]["peak_memory"] == GIB // 2



def test_throughput_and_recent_successes_add_up_over_many_drains(tmp_path: Path) -> None:
    """Jobs that end in one throughput bucket but are taken in by separate drains count
    together; only the last max_finished successes are listed, newest first."""
    rig = Rig(tmp_path, max_finished=3)
    jobs = [job(1, GIB, name=f"j{i}") for i in range(8)]
    rig.feed(JobsSubmitted(tuple(jobs), rig.now))
    launches = of_type(rig.feed(OffersReceived((offer(8, 16, hostname="n1"),), rig.now)),
                       Launch)
    tasks = [t for launch in launches for t in launch.tasks]
    assert len(tasks) == 8
    for i, task in enumerate(tasks):  # six end in the bucket of 1000-1010 s, two after
        rig.now += 12.0 if i == 6 else 0.5
        rig.feed(TaskStatus(task.task_id, TaskState.RUNNING, rig.now))
        rig.feed(TaskStatus(task.task_id, TaskState.FINISHED, rig.now, exit_code=0,
                            wall_time=0.5))
        if i % 2 == 0:
            rig.recorder.drain()
    snap = rig.recorder.snapshot()
    assert snap.bucket_seconds == 10
    assert snap.throughput[-3:] == (0.0, 0.6, 0.2)
    assert [f.name for f in snap.finished] == [t.job.name for t in tasks[:-4:-1]]
    assert [f.node for f in snap.finished] == ["n1"] * 3
    assert snap.totals.succeeded == 8 and rig.recorder._tasks == {}
    assert rig.metric("mesobatch_run_time_seconds_count") == 8
    assert rig.metric("mesobatch_run_time_seconds_sum") == 4.0
    assert rig.metric("mesobatch_jobs_finished_total", result="succeeded") == 8
