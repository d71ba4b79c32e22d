"""The pure core, driven event by event: no threads, sockets or sleeps."""

from __future__ import annotations

import typing

import pytest

from mesobatch.scheduler.contract import BatchJobExitReason
from mesobatch.scheduler.core.events import (
    Action,
    AgentLost,
    Connected,
    Decline,
    Disconnected,
    Event,
    IgnoreNode,
    JobsSubmitted,
    KillRequested,
    KillTask,
    Launch,
    NodesFiltered,
    OfferRescinded,
    OffersReceived,
    Reconcile,
    Report,
    Revive,
    Suppress,
    TaskStatus,
    Tick,
    UnignoreNode,
)
from mesobatch.scheduler.core.resources import Resources
from mesobatch.scheduler.core.scheduler import CoreConfig, SchedulerCore
from mesobatch.scheduler.core.states import TaskState

from .helpers import GIB, job, of_type, offer

T0 = 1000.0


def core(**kw: object) -> SchedulerCore:
    return SchedulerCore(CoreConfig(**kw))  # type: ignore[arg-type]


def launched(actions: list[Action]) -> list[str]:
    return [t.task_id for a in of_type(actions, Launch) for t in a.tasks]


def finish(c: SchedulerCore, task_id: str, now: float = T0 + 1, code: int = 0,
           state: TaskState | None = None, **kw: object) -> list[Action]:
    st = state or (TaskState.FINISHED if code == 0 else TaskState.FAILED)
    return c.handle(TaskStatus(task_id, st, now, exit_code=code, **kw))  # type: ignore[arg-type]


# ---------------------------------------------------------------- offers and launching


def test_queued_jobs_launch_on_the_next_offer_in_one_launch_per_agent() -> None:
    c = core()
    jobs = [job(1, GIB) for _ in range(3)]
    c.handle(JobsSubmitted(tuple(jobs), T0))
    out = c.handle(OffersReceived((offer(2, 8, agent="a1"), offer(1, 8, agent="a2")), T0))
    launches = of_type(out, Launch)
    assert len(launches) == 2
    assert {a.agent_id: len(a.tasks) for a in launches} == {"a1": 2, "a2": 1}
    assert sorted(launched(out)) == sorted(f"{j.job_id}.0" for j in jobs)
    assert all(c.jobs[j.job_id].state is TaskState.LAUNCHING for j in jobs)


def test_an_offer_with_a_task_count_limit_launches_at_most_that_many() -> None:
    c = core()
    c.handle(JobsSubmitted(tuple(job(0.1, 2**20, 0) for _ in range(10)), T0))
    out = c.handle(OffersReceived((offer(100, 100, agent="q", max_tasks=3),), T0))
    assert len(launched(out)) == 3 and len(c.queue) == 7
    # two offers of one agent together allow the sum of their limits
    out = c.handle(OffersReceived((offer(100, 100, agent="q", max_tasks=2),
                                   offer(100, 100, agent="q", max_tasks=2)), T0))
    assert len(launched(out)) == 4 and len(c.queue) == 3
    # with no limit on one of them, the resources alone decide
    out = c.handle(OffersReceived((offer(100, 100, agent="q", max_tasks=1),
                                   offer(100, 100, agent="q")), T0))
    assert len(launched(out)) == 3 and len(c.queue) == 0


def test_offers_are_held_while_idle_so_a_new_job_launches_at_once() -> None:
    c = core(offer_hold_seconds=3.0)
    o = offer(2, 8)
    out = c.handle(OffersReceived((o,), T0))
    assert not of_type(out, Decline) and not of_type(out, Suppress)
    out = c.handle(JobsSubmitted((job(1, GIB),), T0 + 1))
    (launch,) = of_type(out, Launch)
    assert launch.offer_ids == (o.offer_id,) and len(launch.tasks) == 1


def test_held_offers_are_declined_with_a_filter_after_the_hold_then_suppress() -> None:
    c = core(offer_hold_seconds=3.0, decline_refuse_seconds=7.0)
    o = offer()
    c.handle(OffersReceived((o,), T0))
    assert c.handle(Tick(T0 + 2.9)) == []
    out = c.handle(Tick(T0 + 3.0))
    assert of_type(out, Decline) == [Decline((o.offer_id,), 7.0)]
    assert of_type(out, Suppress) == [Suppress()]
    assert c.suppressed


def test_several_offers_of_one_agent_are_combined() -> None:
    c = core()
    o1, o2 = offer(0.5, 1), offer(0.5, 1)
    c.handle(OffersReceived((o1, o2), T0))
    out = c.handle(JobsSubmitted((job(1, GIB),), T0))
    (launch,) = of_type(out, Launch)
    assert set(launch.offer_ids) == {o1.offer_id, o2.offer_id}


def test_a_launch_hands_back_the_held_offers_with_their_native_records() -> None:
    c = core()
    o1, o2 = offer(0.5, 1, native=["entries of o1"]), offer(0.5, 1, native=["of o2"])
    c.handle(OffersReceived((o2, o1), T0))
    (launch,) = of_type(c.handle(JobsSubmitted((job(1, GIB),), T0)), Launch)
    assert launch.offers == tuple(sorted((o1, o2), key=lambda o: o.offer_id))
    assert {o.offer_id: o.native for o in launch.offers} == {
        o1.offer_id: ["entries of o1"], o2.offer_id: ["of o2"]}
    assert c.held == {}  # used: the core holds neither offer nor record any more


def test_offers_of_different_roles_are_not_combined() -> None:
    c = core()
    c.handle(OffersReceived((offer(0.5, 1, role="a"), offer(0.5, 1, role="b")), T0))
    assert of_type(c.handle(JobsSubmitted((job(1, GIB),), T0)), Launch) == []


def test_rescinded_offer_is_forgotten() -> None:
    c = core()
    o = offer()
    c.handle(OffersReceived((o,), T0))
    c.handle(OfferRescinded(o.offer_id, T0))
    assert of_type(c.handle(JobsSubmitted((job(),), T0)), Launch) == []


def test_disconnect_and_reconnect_forget_offers() -> None:
    c = core()
    c.handle(OffersReceived((offer(),), T0))
    c.handle(Disconnected(T0))
    assert c.held == {}
    c.handle(OffersReceived((offer(),), T0))
    c.handle(Connected(T0 + 1))
    assert c.held == {}


def test_executor_overhead_is_taken_once_per_node() -> None:
    c = core()
    overhead = Resources(cpus=0, mem=32)
    c.handle(OffersReceived((offer(2, 2, executor_overhead=overhead),), T0))
    # 2 GiB node, 32 MiB executor: only one 1 GiB job fits beside it, not two
    out = c.handle(JobsSubmitted((job(0.5, GIB, 0), job(0.5, GIB, 0)), T0))
    assert len(launched(out)) == 1


def test_preemptible_nodes_get_preemptible_jobs_first() -> None:
    c = core()
    spot = job(1, GIB, 0, preemptible=True)
    firm = job(1, GIB, 0)
    c.handle(JobsSubmitted((spot, firm), T0))
    out = c.handle(OffersReceived((offer(1, 8, agent="firm"),
                                   offer(1, 8, agent="spot", preemptible=True)), T0))
    placed = {t.job.job_id: a.agent_id for a in of_type(out, Launch) for t in a.tasks}
    assert placed == {spot.job_id: "spot", firm.job_id: "firm"}


def test_non_preemptible_job_never_lands_on_a_preemptible_node() -> None:
    c = core()
    firm = job(1, GIB, 0)
    c.handle(JobsSubmitted((firm,), T0))
    out = c.handle(OffersReceived((offer(4, 8, preemptible=True),), T0))
    assert launched(out) == []


# ---------------------------------------------------------------- suppress / revive


def test_suppress_when_idle_and_revive_when_work_arrives() -> None:
    c = core()
    out = c.handle(Tick(T0))
    assert of_type(out, Suppress) == [Suppress()]
    assert c.handle(Tick(T0 + 1)) == []  # once
    out = c.handle(JobsSubmitted((job(),), T0 + 2))
    assert of_type(out, Revive) == [Revive()] and not c.suppressed


def test_a_freed_task_revives_while_jobs_wait_at_a_bounded_rate() -> None:
    c = core(revive_min_interval=0.5)
    a, b, d = job(2, GIB), job(2, GIB), job(2, GIB)
    c.handle(JobsSubmitted((a, b, d), T0))
    c.handle(OffersReceived((offer(4, 8),), T0))
    out = finish(c, f"{a.job_id}.0", T0 + 1)
    assert of_type(out, Report) and of_type(out, Revive) == [Revive()]
    # resources freed within the interval wait for it, then go out in one revive
    assert of_type(finish(c, f"{b.job_id}.0", T0 + 1.1), Revive) == []
    assert of_type(c.handle(Tick(T0 + 1.2)), Revive) == []
    assert c.next_deadline() == T0 + 1.5
    assert of_type(c.handle(Tick(T0 + 1.5)), Revive) == [Revive()]
    # nothing new since: no more revives
    c.handle(OffersReceived((offer(0.5, 1),), T0 + 1.7))
    assert of_type(c.handle(Tick(T0 + 3)), Revive) == []


def test_no_revive_on_free_when_disabled() -> None:
    c = core(revive_on_free=False)
    a, b = job(2, GIB), job(2, GIB)
    c.handle(JobsSubmitted((a, b), T0))
    c.handle(OffersReceived((offer(2, 8),), T0))
    assert of_type(finish(c, f"{a.job_id}.0"), Revive) == []


# ---------------------------------------------------------------- results exactly once


def test_each_job_is_reported_once_with_exit_code_and_wall_time() -> None:
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    task = f"{j.job_id}.0"
    c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 1))
    out = finish(c, task, T0 + 3, code=7, wall_time=1.5)
    (report,) = of_type(out, Report)
    assert report.info.jobID == j.job_id and report.info.exitStatus == 7
    assert report.info.exitReason is BatchJobExitReason.FAILED and report.info.wallTime == 1.5
    # a re-sent terminal update and a stale RUNNING after the end change nothing
    assert of_type(finish(c, task, T0 + 4, code=7), Report) == []
    stale = c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 5))
    assert of_type(stale, Report) == []
    assert c.issued() == []


def test_wall_time_from_running_time_when_backend_does_not_measure() -> None:
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    c.handle(TaskStatus(f"{j.job_id}.0", TaskState.RUNNING, T0 + 1))
    (report,) = of_type(finish(c, f"{j.job_id}.0", T0 + 3.5), Report)
    assert report.info.wallTime == 2.5 and report.info.exitStatus == 0


def test_exit_reason_per_state_and_override() -> None:
    c = core()
    jobs = [job() for _ in range(4)]
    c.handle(JobsSubmitted(tuple(jobs), T0))
    c.handle(OffersReceived((offer(8, 16),), T0))
    cases = [(TaskState.LOST, None, BatchJobExitReason.LOST),
             (TaskState.ERROR, None, BatchJobExitReason.ERROR),
             (TaskState.KILLED, None, BatchJobExitReason.KILLED),
             (TaskState.FAILED, BatchJobExitReason.MEMLIMIT, BatchJobExitReason.MEMLIMIT)]
    for j, (state, override, expected) in zip(jobs, cases, strict=True):
        out = c.handle(TaskStatus(f"{j.job_id}.0", state, T0 + 1, exit_reason=override))
        (report,) = of_type(out, Report)
        assert report.info.exitReason is expected
        assert report.info.exitStatus == 255


def test_task_that_never_started_is_requeued_not_reported() -> None:
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    out = c.handle(TaskStatus(f"{j.job_id}.0", TaskState.LOST, T0 + 1, never_started=True))
    assert of_type(out, Report) == [] and j.job_id in c.queue
    out = c.handle(OffersReceived((offer(),), T0 + 2))
    assert launched(out) == [f"{j.job_id}.1"]


def test_executor_death_before_running_requeues_after_running_reports() -> None:
    c = core()
    starting, running = job(), job()
    c.handle(JobsSubmitted((starting, running), T0))
    tasks = launched(c.handle(OffersReceived((offer(cpus=4.0),), T0)))
    c.handle(TaskStatus(tasks[0], TaskState.STARTING, T0 + 1))
    c.handle(TaskStatus(tasks[1], TaskState.RUNNING, T0 + 1))
    out = c.handle(TaskStatus(tasks[0], TaskState.LOST, T0 + 2, unless_running=True))
    assert of_type(out, Report) == [] and starting.job_id in c.queue
    (report,) = of_type(c.handle(TaskStatus(tasks[1], TaskState.LOST, T0 + 2,
                                            unless_running=True)), Report)
    assert report.info.jobID == running.job_id
    assert report.info.exitReason is BatchJobExitReason.LOST


def test_executor_death_with_nothing_reported_is_lost_not_requeued() -> None:
    # our executor sends no STARTING and RUNNING only after a short delay: the job may
    # have started, so it is not started again (issue 16)
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    (task,) = launched(c.handle(OffersReceived((offer(),), T0)))
    (report,) = of_type(c.handle(TaskStatus(task, TaskState.LOST, T0 + 0.05,
                                            unless_running=True)), Report)
    assert report.info.jobID == j.job_id
    assert report.info.exitReason is BatchJobExitReason.LOST
    assert j.job_id not in c.queue


def test_unknown_state_is_not_terminal_and_is_reconciled_again() -> None:
    c = core(reconcile_backoff_initial=2.0)
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    task = f"{j.job_id}.0"
    assert of_type(c.handle(TaskStatus(task, TaskState.UNKNOWN, T0 + 1)), Report) == []
    (rec,) = of_type(c.handle(Tick(T0 + 3.1)), Reconcile)
    assert rec.tasks == ((task, "a1"),)


# ---------------------------------------------------------------- kills


def test_killing_a_queued_job_removes_it_without_any_backend_call() -> None:
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    out = c.handle(KillRequested((j.job_id,), T0))
    assert of_type(out, KillTask) == [] and c.issued() == [] and len(c.queue) == 0
    assert launched(c.handle(OffersReceived((offer(),), T0))) == []


def test_killed_running_job_is_never_reported_and_kill_is_retried() -> None:
    c = core(kill_retry_seconds=30)
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    task = f"{j.job_id}.0"
    c.handle(TaskStatus(task, TaskState.RUNNING, T0))
    out = c.handle(KillRequested((j.job_id, 999_999), T0 + 1))
    assert of_type(out, KillTask) == [KillTask(task, "a1")]
    assert c.running(T0 + 1) == {} and c.issued() == []
    assert c.unconfirmed_kills({j.job_id}) == {j.job_id}
    assert of_type(c.handle(Tick(T0 + 31.5)), KillTask) == [KillTask(task, "a1")]
    out = c.handle(TaskStatus(task, TaskState.KILLED, T0 + 32))
    assert of_type(out, Report) == [] and c.unconfirmed_kills({j.job_id}) == set()
    # also when the job finished on its own before the kill reached it
    k = job()
    c.handle(JobsSubmitted((k,), T0 + 40))
    c.handle(OffersReceived((offer(),), T0 + 40))
    c.handle(KillRequested((k.job_id,), T0 + 41))
    assert of_type(finish(c, f"{k.job_id}.0", T0 + 42), Report) == []


# ---------------------------------------------------------------- faults


def test_unreachable_waits_then_is_reported_once_as_partition() -> None:
    c = core(unreachable_timeout=100)
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    task = f"{j.job_id}.0"
    c.handle(TaskStatus(task, TaskState.RUNNING, T0))
    assert c.handle(TaskStatus(task, TaskState.UNREACHABLE, T0 + 1)) == []
    assert c.running(T0 + 2) == {j.job_id: 2}  # believed still running
    assert of_type(c.handle(Tick(T0 + 50)), Report) == []
    out = c.handle(Tick(T0 + 101))
    (report,) = of_type(out, Report)
    assert report.info.exitReason is BatchJobExitReason.PARTITION
    assert KillTask(task, "a1") in out
    # if it comes back later, nothing more is reported
    assert of_type(finish(c, task, T0 + 200), Report) == []


def test_unreachable_task_that_comes_back_finishes_normally() -> None:
    c = core(unreachable_timeout=100)
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    task = f"{j.job_id}.0"
    c.handle(TaskStatus(task, TaskState.UNREACHABLE, T0 + 1))
    c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 2))
    (report,) = of_type(finish(c, task, T0 + 3), Report)
    assert report.info.exitReason is BatchJobExitReason.FINISHED


def test_agent_lost_loses_its_tasks_once() -> None:
    c = core()
    a, b = job(), job()
    c.handle(JobsSubmitted((a, b), T0))
    c.handle(OffersReceived((offer(1, 4, agent="x"), offer(1, 4, agent="y")), T0))
    out = c.handle(AgentLost("x", T0 + 1))
    reports = of_type(out, Report)
    assert len(reports) == 1 and reports[0].info.exitReason is BatchJobExitReason.LOST
    assert of_type(c.handle(AgentLost("x", T0 + 2)), Report) == []
    assert not c.nodes.in_use("x")


def test_connected_reconciles_live_tasks_with_backoff_until_answered() -> None:
    c = core(reconcile_backoff_initial=1.0, reconcile_backoff_max=4.0)
    a, b = job(), job()
    c.handle(JobsSubmitted((a, b), T0))
    c.handle(OffersReceived((offer(),), T0))
    ta, tb = f"{a.job_id}.0", f"{b.job_id}.0"
    out = c.handle(Connected(T0 + 10))
    implicit, rec = of_type(out, Reconcile)
    assert implicit == Reconcile(())  # every task the master knows, orphans included
    assert set(rec.tasks) == {(ta, "a1"), (tb, "a1")}
    c.handle(TaskStatus(ta, TaskState.RUNNING, T0 + 10.5))
    (rec,) = of_type(c.handle(Tick(T0 + 11)), Reconcile)
    assert rec.tasks == ((tb, "a1"),)
    assert of_type(c.handle(Tick(T0 + 12)), Reconcile) == []  # backoff doubled to 2 s
    assert of_type(c.handle(Tick(T0 + 13)), Reconcile) != []


def test_a_launch_that_nothing_was_heard_of_is_reconciled_until_answered() -> None:
    # a master that failed over after taking the ACCEPT may have lost it without a word
    c = core(launch_reconcile_seconds=30.0, reconcile_backoff_initial=1.0)
    c.handle(Connected(T0))
    a, b = job(), job()
    c.handle(JobsSubmitted((a, b), T0))
    c.handle(OffersReceived((offer(),), T0))
    ta, tb = f"{a.job_id}.0", f"{b.job_id}.0"
    c.handle(TaskStatus(ta, TaskState.RUNNING, T0 + 5))  # heard of: never asked about
    assert of_type(c.handle(Tick(T0 + 29)), Reconcile) == []
    (rec,) = of_type(c.handle(Tick(T0 + 30)), Reconcile)
    assert rec.tasks == ((tb, "a1"),)
    assert of_type(c.handle(Tick(T0 + 31.5)), Reconcile) == []  # backoff doubled to 2 s
    (rec,) = of_type(c.handle(Tick(T0 + 32)), Reconcile)  # no answer: asked again
    assert rec.tasks == ((tb, "a1"),)
    # the answer: Mesos does not know it (never ran): the job is launched again
    c.handle(TaskStatus(tb, TaskState.LOST, T0 + 32.5, never_started=True))
    assert of_type(c.handle(Tick(T0 + 40)), Reconcile) == []
    assert tb not in c.tasks and b.job_id in c.jobs


def test_backends_that_cannot_lose_a_launch_never_reconcile_one() -> None:
    c = core()
    c.handle(Connected(T0))
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    assert of_type(c.handle(Tick(T0 + 600)), Reconcile) == []


def test_periodic_implicit_reconciliation() -> None:
    c = core(reconcile_interval=60)
    j = job()
    c.handle(Connected(T0))
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    c.handle(TaskStatus(f"{j.job_id}.0", TaskState.RUNNING, T0))
    assert Reconcile(()) in c.handle(Tick(T0 + 61))


def test_orphan_task_is_killed_once() -> None:
    c = core()
    out = c.handle(TaskStatus("77.0", TaskState.RUNNING, T0, agent_id="a9"))
    assert out[:1] == [KillTask("77.0", "a9")]
    assert of_type(c.handle(TaskStatus("77.0", TaskState.RUNNING, T0 + 1)), KillTask) == []


# ---------------------------------------------------------------- nodes


def test_ignored_node_gets_no_work_and_its_offers_go_back_with_a_long_filter() -> None:
    c = core(ignored_refuse_seconds=600)
    c.handle(IgnoreNode("10.0.0.9", T0))
    o = offer(ip="10.0.0.9")
    out = c.handle(OffersReceived((o,), T0))
    assert of_type(out, Decline) == [Decline((o.offer_id,), 600)]
    out = c.handle(JobsSubmitted((job(),), T0))
    assert launched(out) == []
    out = c.handle(UnignoreNode("10.0.0.9", T0 + 1))
    assert of_type(out, Revive) == [Revive()]
    assert launched(c.handle(OffersReceived((offer(ip="10.0.0.9"),), T0 + 2))) != []


def test_ignore_matches_hostname_ip_or_agent_id() -> None:
    for address in ("host-a1", "10.0.0.1", "a1"):
        c = core()
        c.handle(OffersReceived((offer(),), T0))
        out = c.handle(IgnoreNode(address, T0))
        assert of_type(out, Decline), address


def test_draining_node_offers_are_declined() -> None:
    c = core(drain_window_seconds=3600)
    o = offer(unavailable_at=T0 + 600)
    out = c.handle(OffersReceived((o,), T0))
    assert of_type(out, Decline) and c.held == {}
    far = offer(agent="a2", unavailable_at=T0 + 86400)
    assert of_type(c.handle(OffersReceived((far,), T0)), Decline) == []


def test_node_in_use_exactly_while_tasks_run() -> None:
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(ip="10.1.1.1", hostname="n1"),), T0))
    assert c.nodes.in_use("10.1.1.1") and c.nodes.in_use("n1")
    finish(c, f"{j.job_id}.0")
    assert not c.nodes.in_use("10.1.1.1")
    assert not c.nodes.in_use("never-seen")


def test_node_infos_report_requests_and_preemptibility() -> None:
    c = core()
    c.handle(JobsSubmitted((job(1, GIB),), T0))
    c.handle(OffersReceived((offer(4, 8, ip="10.0.0.1"),
                             offer(2, 4, agent="s", ip="10.0.0.2", preemptible=True)), T0))
    infos = c.nodes.node_infos(None, 600, T0 + 1)
    assert set(infos) == {"10.0.0.1", "10.0.0.2"}
    assert infos["10.0.0.1"].requestedCores == 1 and infos["10.0.0.1"].workers == 1
    assert infos["10.0.0.1"].requestedMemory == GIB
    assert set(c.nodes.node_infos(True, 600, T0 + 1)) == {"10.0.0.2"}
    assert c.nodes.node_infos(None, 600, T0 + 1000) == {}  # not seen within the timeout


def test_deadline_tracks_held_offers() -> None:
    c = core(offer_hold_seconds=3)
    assert c.next_deadline() is None
    c.handle(OffersReceived((offer(),), T0))
    assert c.next_deadline() == T0 + 3


def test_every_event_type_has_a_handler() -> None:
    assert set(SchedulerCore._HANDLERS) == set(typing.get_args(Event))


def test_an_event_of_no_known_type_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown event"):
        core().handle(object())  # type: ignore[arg-type]


# ---------------------------------------------------------------- issue 10


def test_run_tag_makes_task_ids_of_another_run_differ() -> None:
    j = job()
    ids = []
    for tag in ("k3f9a2", "zz0001"):
        c = core(run_tag=tag)
        c.handle(JobsSubmitted((j,), T0))
        ids += launched(c.handle(OffersReceived((offer(),), T0)))
    assert ids == [f"{j.job_id}.0-k3f9a2", f"{j.job_id}.0-zz0001"]


def test_launch_refused_for_a_transient_reason_is_retried_without_bound() -> None:
    c = core(launch_refusals_max=3)
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    task = launched(c.handle(OffersReceived((offer(),), T0)))[0]
    for attempt in range(1, 11):  # e.g. "Task has duplicate ID", stale offers
        out = c.handle(TaskStatus(task, TaskState.ERROR, T0 + attempt, never_started=True,
                                  id_taken=True, message=f"Task has duplicate ID: {task}"))
        assert of_type(out, Report) == [] and j.job_id in c.queue
        (task,) = launched(c.handle(OffersReceived((offer(),), T0 + attempt)))
        assert task == f"{j.job_id}.{attempt}"


def test_launch_refused_for_its_content_fails_after_bounded_tries_with_the_message() -> None:
    c = core(launch_refusals_max=3)
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    task = launched(c.handle(OffersReceived((offer(),), T0)))[0]
    why = "Total resources cpus(allocated: *):100.1 required by task ... more than available"
    reports = []
    for attempt in range(1, 4):
        reports = of_type(c.handle(TaskStatus(
            task, TaskState.ERROR, T0 + attempt, never_started=True, launch_refused=True,
            message=why)), Report)
        if attempt < 3:
            assert reports == [] and j.job_id in c.queue
            (task,) = launched(c.handle(OffersReceived((offer(),), T0 + attempt)))
    (report,) = reports
    assert report.info.jobID == j.job_id
    assert report.info.exitReason is BatchJobExitReason.ERROR
    assert report.info.exitStatus == 255 and why in report.message
    assert "3 times" in report.message
    assert c.issued() == [] and j.job_id not in c.queue


def test_a_launch_refused_as_a_whole_sends_its_tasks_alone_until_the_bad_one_fails() -> None:
    # Mesos refused a whole ACCEPT (HTTP 400) for one task's content: each goes alone
    c = core(launch_refusals_max=2)
    jobs = [job(0.5) for _ in range(3)]
    c.handle(JobsSubmitted(tuple(jobs), T0))
    tasks = launched(c.handle(OffersReceived((offer(),), T0)))
    assert len(tasks) == 3
    for t in tasks:
        c.handle(TaskStatus(t, TaskState.LOST, T0 + 1, never_started=True, launch_alone=True))
    assert all(j.job_id in c.queue for j in jobs)
    (first,) = launched(c.handle(OffersReceived((offer(),), T0 + 2)))  # alone
    bad = int(first.split(".")[0])
    assert first == f"{bad}.1" and len(c.queue) == 2
    reports = of_type(c.handle(TaskStatus(first, TaskState.LOST, T0 + 3, never_started=True,
                                          launch_refused=True, message="bad")), Report)
    assert reports == []
    (again,) = launched(c.handle(OffersReceived((offer(),), T0 + 4)))
    assert again == f"{bad}.2"
    (report,) = of_type(c.handle(TaskStatus(again, TaskState.LOST, T0 + 5, never_started=True,
                                            launch_refused=True, message="bad")), Report)
    assert report.info.jobID == bad
    assert report.info.exitReason is BatchJobExitReason.ERROR
    others = set()
    for n in range(2):  # the good ones, alone too, each runs
        (task,) = launched(c.handle(OffersReceived((offer(),), T0 + 6 + n)))
        others.add(int(task.split(".")[0]))
        (done,) = of_type(finish(c, task, T0 + 6.5 + n), Report)
        assert done.info.exitReason is BatchJobExitReason.FINISHED
    assert others == {j.job_id for j in jobs} - {bad}
    assert c.issued() == []


def test_refusal_of_a_task_that_reported_is_reported_not_requeued() -> None:
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    (task,) = launched(c.handle(OffersReceived((offer(),), T0)))
    c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 1))
    (report,) = of_type(c.handle(TaskStatus(task, TaskState.ERROR, T0 + 2,
                                             never_started=True)), Report)
    assert report.info.exitReason is BatchJobExitReason.ERROR


def test_default_reports_an_unreachable_task_at_once_and_kills_it_when_it_returns() -> None:
    c = core(kill_retry_seconds=30)  # default unreachable_timeout: 0
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    c.handle(OffersReceived((offer(),), T0))
    task = f"{j.job_id}.0"
    c.handle(TaskStatus(task, TaskState.RUNNING, T0))
    out = c.handle(TaskStatus(task, TaskState.UNREACHABLE, T0 + 75, agent_id="a1"))
    (report,) = of_type(out, Report)
    assert report.info.exitReason is BatchJobExitReason.PARTITION
    assert KillTask(task, "a1") in out and c.issued() == []
    # the master answers kills of unreachable tasks with TASK_UNREACHABLE: nothing to do
    assert c.handle(TaskStatus(task, TaskState.UNREACHABLE, T0 + 76, agent_id="a1")) == []
    # the agent comes back with the task running: killed, never reported again
    out = c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 300, agent_id="a1"))
    assert out[:1] == [KillTask(task, "a1")] and of_type(out, Report) == []
    assert of_type(c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 301)), KillTask) == []
    # still alive later (the kill got lost): asked again
    out = c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 340, agent_id="a1"))
    assert of_type(out, KillTask) == [KillTask(task, "a1")]
    assert of_type(c.handle(TaskStatus(task, TaskState.KILLED, T0 + 341)), Report) == []
    assert of_type(finish(c, task, T0 + 342), Report) == []


def test_node_filter_verdicts_decline_rejected_nodes_and_revive_when_allowed() -> None:
    c = core(decline_refuse_seconds=5, ignored_refuse_seconds=600)
    c.handle(NodesFiltered((("a1", False),), T0))
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    bad, good = offer(agent="a1"), offer(agent="a2")
    out = c.handle(OffersReceived((bad, good), T0))
    assert Decline((bad.offer_id,), 5) in out  # asked again at its next offer
    (launch,) = of_type(out, Launch)
    assert launch.agent_id == "a2"
    k = job()
    c.handle(JobsSubmitted((k,), T0 + 1))
    out = c.handle(NodesFiltered((("a1", True),), T0 + 2))
    assert of_type(out, Revive) != [] and c.nodes.filtered == set()
    assert of_type(c.handle(OffersReceived((offer(agent="a1"),), T0 + 3)), Launch) != []


def test_node_filter_rejecting_a_held_offer_declines_it() -> None:
    c = core(decline_refuse_seconds=5)
    held = offer(agent="a1")
    c.handle(OffersReceived((held,), T0))
    out = c.handle(NodesFiltered((("a1", False),), T0 + 1))
    assert of_type(out, Decline) == [Decline((held.offer_id,), 5)]


def test_updates_of_the_task_that_holds_our_id_do_not_make_our_refused_launch_a_result(
        ) -> None:
    c = core()
    j = job()
    c.handle(JobsSubmitted((j,), T0))
    (task,) = launched(c.handle(OffersReceived((offer(),), T0)))
    # an earlier run's live task with the same id answers reconciliation first ...
    c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 1))
    # ... then Mesos refuses our launch: ours never ran, whatever said RUNNING
    out = c.handle(TaskStatus(task, TaskState.ERROR, T0 + 2, never_started=True,
                              id_taken=True, message=f"Task has duplicate ID: {task}"))
    assert of_type(out, Report) == [] and j.job_id in c.queue
    assert c.running(T0 + 2) == {}
    # the other task's later updates make it an orphan, killed
    out = c.handle(TaskStatus(task, TaskState.RUNNING, T0 + 3, agent_id="a1"))
    assert of_type(out, KillTask) == [KillTask(task, "a1")]
    (again,) = launched(c.handle(OffersReceived((offer(),), T0 + 4)))
    assert again == f"{j.job_id}.1"
