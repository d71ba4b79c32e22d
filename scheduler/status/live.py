"""What the status page reads from the core itself (pure; the caller holds the lock)."""

from __future__ import annotations

from ..core.explain import explain, shape_reasons
from ..core.nodes import Node, NodeRegistry
from ..core.scheduler import SchedulerCore
from .snapshot import LiveView, NodeView, ShapeView


def _state(core: SchedulerCore, node: Node, now: float) -> str:
    registry = core.nodes
    if registry.is_ignored(node.agent_id, node.hostname, node.ip):
        return "ignored"
    if node.agent_id in registry.filtered:
        return "filtered"
    if registry.is_draining(node, now, core.config.drain_window_seconds):
        return "draining"
    return "up"


def live_view(core: SchedulerCore, now: float, note: str | None,
              fatal_error: str | None) -> LiveView:
    """The queue by shape with why each waits, the nodes with their load."""
    queue = tuple(ShapeView(shape.describe(), count, why)
                  for shape, count, why in shape_reasons(core, now))
    nodes = []
    for node in core.nodes.nodes.values():
        if node.lost:
            continue
        info = NodeRegistry.info(node)
        nodes.append(NodeView(
            name=node.hostname or node.agent_id, state=_state(core, node, now),
            cores_total=info.coresTotal, cpu_load=info.coresUsed,
            memory_total=int(info.memoryTotal), memory_used=info.memoryUsed,
            cores_requested=info.requestedCores, jobs=info.workers))
    nodes.sort(key=lambda n: n.name)
    return LiveView(queue, tuple(nodes), explain(core, now, note), note, fatal_error)
