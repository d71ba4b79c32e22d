from mesobatch.scheduler.core.events import IgnoreNode, JobsSubmitted, OffersReceived
from mesobatch.scheduler.core.explain import explain
from mesobatch.scheduler.core.scheduler import SchedulerCore

from .helpers import GIB, job, offer

T0 = 5000.0


def test_nothing_waiting_means_no_message() -> None:
    assert explain(SchedulerCore(), T0) is None
    assert explain(SchedulerCore(), T0, "not connected") == "not connected"


def test_job_too_big_for_any_offer_names_resource_offer_and_agent() -> None:
    c = SchedulerCore()
    c.handle(JobsSubmitted((job(1, 64 * GIB), job(1, 64 * GIB)), T0))
    c.handle(OffersReceived((offer(8, 15.6, agent="agent-x", hostname="big1"),
                             offer(4, 8, agent="agent-y")), T0))
    msg = explain(c, T0 + 1)
    assert msg is not None
    assert "2 jobs waiting, 0 running." in msg
    assert "2 jobs of 1 core, 64.0 GiB memory" in msg
    assert "need 64.0 GiB memory; the largest offer in the last 60 s had 15.6 GiB memory " \
           "on agent agent-x (big1)" in msg


def test_jobs_waiting_for_busy_nodes_and_ignored_nodes() -> None:
    c = SchedulerCore()
    c.handle(OffersReceived((offer(2, 8, ip="10.0.0.1"),
                             offer(2, 8, agent="a2", ip="10.0.0.2")), T0))
    c.handle(JobsSubmitted(tuple(job(2, GIB) for _ in range(3)), T0))
    c.handle(IgnoreNode("10.0.0.2", T0))
    msg = explain(c, T0 + 1)
    assert msg is not None
    assert "waiting for resources to free up on 1 node large enough" in msg
    assert "Ignored nodes (no new jobs): 10.0.0.2." in msg
    assert "1 job waiting" in msg or "2 jobs waiting" in msg


def test_jobs_that_fit_only_ignored_nodes() -> None:
    c = SchedulerCore()
    c.handle(OffersReceived((offer(8, 32, hostname="big"), offer(1, 2, agent="a2")), T0))
    c.handle(IgnoreNode("big", T0))
    c.handle(JobsSubmitted((job(4, GIB),), T0))
    msg = explain(c, T0)
    assert msg is not None and "the only nodes large enough are ignored (big)" in msg


def test_non_preemptible_jobs_with_only_preemptible_nodes() -> None:
    c = SchedulerCore()
    c.handle(OffersReceived((offer(8, 32, preemptible=True),), T0))
    c.handle(JobsSubmitted((job(1, GIB),), T0))
    msg = explain(c, T0)
    assert msg is not None and "only preemptible nodes are known" in msg


def test_no_offers_yet() -> None:
    c = SchedulerCore()
    c.handle(JobsSubmitted((job(),), T0))
    msg = explain(c, T0, "not connected to the Mesos master at m1:5050")
    assert msg is not None
    assert "no node has offered resources yet" in msg and "not connected" in msg


def test_a_job_that_fits_only_without_the_executors_share_says_so() -> None:
    from mesobatch.scheduler.core.resources import Resources

    c = SchedulerCore()
    c.handle(OffersReceived((offer(1, 4, hostname="tiny",
                                   executor_overhead=Resources(cpus=10, mem=32)),), T0))
    c.handle(JobsSubmitted((job(1, GIB),), T0))
    msg = explain(c, T0 + 1)
    assert msg is not None and "waiting for resources to free up" not in msg
    assert "need 1 core; the largest offer in the last 60 s had 0.99 cores for jobs (and " \
           "0.01 cores for the executor) on agent a1 (tiny)" in msg


def test_jobs_that_fit_only_nodes_the_node_filter_rejects() -> None:
    from mesobatch.scheduler.core.events import NodesFiltered

    c = SchedulerCore()
    c.handle(OffersReceived((offer(8, 32, hostname="big"), offer(1, 2, agent="a2")), T0))
    c.handle(NodesFiltered((("a1", False),), T0))
    c.handle(JobsSubmitted((job(4, GIB),), T0))
    msg = explain(c, T0)
    assert msg is not None
    assert "the only nodes large enough are rejected by the node filter (big)" in msg
