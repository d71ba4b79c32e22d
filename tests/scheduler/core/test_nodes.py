"""The node registry (scheduler/core/nodes.py) on its own: what offers and stats teach
it, ignoring, what runs where, and the NodeInfo it gives getNodes."""

from __future__ import annotations

from mesobatch.scheduler.contract import NodeInfo
from mesobatch.scheduler.core.events import NodeLoad
from mesobatch.scheduler.core.nodes import NodeRegistry
from mesobatch.scheduler.core.resources import GIB, MIB, Resources

from .helpers import offer

T0 = 10_000.0


def test_offers_teach_a_node_its_size_address_and_kind() -> None:
    nodes = NodeRegistry()
    node = nodes.observe_offer(offer(2, 4, agent="a1", hostname="n1", ip="10.0.0.1",
                                     preemptible=True), T0)
    assert (node.agent_id, node.hostname, node.ip, node.preemptible) == (
        "a1", "n1", "10.0.0.1", True)
    assert node.largest_offer == Resources(2000, 4096, 10240)
    assert node.last_seen == T0
    # a later, smaller offer does not shrink what we know the node can hold
    nodes.observe_offer(offer(1, 8, agent="a1", hostname="n1", ip="10.0.0.1",
                              unavailable_at=T0 + 50), T0 + 5)
    assert node.largest_offer == Resources(2000, 8192, 10240)
    assert node.unavailable_at == T0 + 50 and not node.preemptible
    assert node.last_seen == T0 + 5 and nodes.nodes == {"a1": node}


def test_stats_alone_make_a_node_and_blank_addresses_keep_known_ones() -> None:
    nodes = NodeRegistry()
    load = NodeLoad(cpu_load=0.25, mem_used=GIB, cores_total=8, mem_total=4 * GIB)
    nodes.observe_load("a9", "n9", "10.0.0.9", load, T0)
    assert nodes.nodes["a9"].load == load and nodes.nodes["a9"].last_seen == T0
    nodes.observe_load("a9", "", "", load, T0 + 1)
    assert (nodes.nodes["a9"].hostname, nodes.nodes["a9"].ip) == ("n9", "10.0.0.9")


def test_a_node_offered_again_after_being_lost_is_back() -> None:
    nodes = NodeRegistry()
    nodes.observe_offer(offer(agent="a1"), T0)
    nodes.task_started("a1", 1, Resources(1000, 512))
    nodes.mark_lost("a1")
    lost = nodes.nodes["a1"]
    assert (lost.lost, lost.running) == (True, {})
    back = nodes.observe_offer(offer(agent="a1"), T0 + 1)
    assert back is lost and not back.lost
    nodes.mark_lost("never-seen")  # nothing to do, no error
    assert "never-seen" not in nodes.nodes


def test_in_use_by_any_address_exactly_while_tasks_run() -> None:
    nodes = NodeRegistry()
    nodes.observe_offer(offer(agent="a1", hostname="n1", ip="10.0.0.1"), T0)
    nodes.task_started("a1", 1, Resources(1000, 512))
    nodes.task_started("a1", 2, Resources(500, 256))
    nodes.task_started("unknown-agent", 3, Resources(1000))  # no such node: ignored
    for address in ("a1", "n1", "10.0.0.1"):
        assert nodes.in_use(address)
    assert [n.agent_id for n in nodes.matching("n1")] == ["a1"]
    nodes.task_ended("a1", 1)
    assert nodes.in_use("n1")
    nodes.task_ended("a1", 2)
    nodes.task_ended(None, 3)  # a task never placed: nothing to do
    assert not nodes.in_use("n1") and not nodes.in_use("10.9.9.9")


def test_ignore_matches_agent_id_hostname_or_ip_until_unignored() -> None:
    nodes = NodeRegistry()
    assert not nodes.is_ignored("a1", "n1", "10.0.0.1")
    for address in ("a1", "n1", "10.0.0.1"):
        nodes.ignore(address)
        assert nodes.is_ignored("a1", "n1", "10.0.0.1")
        assert not nodes.is_ignored("a2", "n2", "10.0.0.2")
        nodes.unignore(address)
        assert not nodes.is_ignored("a1", "n1", "10.0.0.1")
    nodes.unignore("never-ignored")  # not an error


def test_draining_when_maintenance_starts_within_the_window() -> None:
    nodes = NodeRegistry()
    soon = nodes.observe_offer(offer(agent="a1", unavailable_at=T0 + 600), T0)
    later = nodes.observe_offer(offer(agent="a2", unavailable_at=T0 + 7200), T0)
    never = nodes.observe_offer(offer(agent="a3"), T0)
    assert nodes.is_draining(soon, T0, 3600)
    assert not nodes.is_draining(later, T0, 3600)
    assert nodes.is_draining(later, T0 + 3600, 3600)
    assert not nodes.is_draining(never, T0, 3600)


def test_recent_offers_keep_the_largest_per_agent_within_the_window() -> None:
    nodes = NodeRegistry()
    nodes.observe_offer(offer(4, 1, agent="a1"), T0)
    nodes.observe_offer(offer(1, 8, agent="a1"), T0 + 1)  # same 10 s bucket
    nodes.observe_offer(offer(2, 2, agent="a2"), T0 + 30)
    recent = dict(nodes.recent_offers(T0 + 30))
    assert recent["a1"] == Resources(4000, 8192, 10240)
    assert recent["a2"] == Resources(2000, 2048, 10240)
    # a minute and a bucket later the first offers have left the window
    assert dict(nodes.recent_offers(T0 + 75)) == {"a2": Resources(2000, 2048, 10240)}
    nodes.observe_offer(offer(1, 1, agent="a1"), T0 + 200)  # old buckets are dropped
    assert list(nodes._recent["a1"]) == [(int((T0 + 200) // 10), Resources(1000, 1024, 10240))]
    assert dict(nodes.recent_offers(T0 + 200))["a1"] == Resources(1000, 1024, 10240)


def test_node_infos_from_measured_load_or_from_offers() -> None:
    nodes = NodeRegistry()
    nodes.observe_offer(offer(4, 8, agent="a1", ip="10.0.0.1"), T0)
    nodes.observe_offer(offer(2, 4, agent="a2", hostname="n2", ip=""), T0)
    nodes.observe_load("a1", "", "", NodeLoad(0.5, 2 * GIB, 16, 64 * GIB, 1), T0 + 1)
    nodes.task_started("a1", 1, Resources(1500, 1024))
    nodes.task_started("a1", 2, Resources(500, 512))
    infos = nodes.node_infos(None, 600, T0 + 2)
    assert infos["10.0.0.1"] == NodeInfo(coresUsed=0.5, memoryUsed=2 / 64, coresTotal=16,
                                         memoryTotal=64 * GIB, requestedCores=2.0,
                                         requestedMemory=1536 * MIB, workers=2)
    # no stats yet: totals are the largest offer, nothing used; keyed by hostname
    assert infos["n2"] == NodeInfo(coresUsed=0.0, memoryUsed=0.0, coresTotal=2.0,
                                   memoryTotal=4 * GIB, requestedCores=0.0,
                                   requestedMemory=0, workers=0)


def test_node_infos_leave_out_lost_stale_and_other_kinds_of_nodes() -> None:
    nodes = NodeRegistry()
    nodes.observe_offer(offer(agent="a1", ip="10.0.0.1"), T0)
    nodes.observe_offer(offer(agent="a2", ip="10.0.0.2", preemptible=True), T0)
    nodes.observe_offer(offer(agent="a3", ip="10.0.0.3"), T0 - 500)
    nodes.observe_offer(offer(agent="a4", ip="10.0.0.4"), T0)
    nodes.mark_lost("a4")
    assert set(nodes.node_infos(None, 300, T0)) == {"10.0.0.1", "10.0.0.2"}
    assert set(nodes.node_infos(True, 300, T0)) == {"10.0.0.2"}
    assert set(nodes.node_infos(False, 300, T0)) == {"10.0.0.1"}
    assert set(nodes.node_infos(None, 600, T0)) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    load = NodeLoad(0.1, 0, 2, 0)  # a report without memory totals: no division by zero
    nodes.observe_load("a1", "", "", load, T0)
    assert nodes.node_infos(None, 300, T0)["10.0.0.1"].memoryUsed == 0.0
