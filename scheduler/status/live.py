"""What the status page reads from the core itself (pure but for the cache of the
queue's explanation; the caller holds the lock)."""

from __future__ import annotations

import heapq

from ..core.explain import explain, shape_reasons
from ..core.nodes import Node, NodeRegistry
from ..core.scheduler import SchedulerCore, TaskRecord
from ..core.states import TaskState
from .snapshot import LiveView, NodeView, RunningJob, ShapeView

#: running jobs listed (the longest-running first); the rest are counted
MAX_RUNNING_SHOWN = 200
#: seconds between two looks at the nodes' load for the page (node stats)
NODE_POLL_SECONDS = 5.0
#: seconds an explanation of the queue is reused while the core took no event (it
#: quotes offers of a recent window, so it ages even when nothing happens)
EXPLAIN_MAX_AGE = 2.0


class Explained:
    """The queue's explanation (why each shape waits; the status message), kept while
    the core's state is the same (no event taken since) and for at most EXPLAIN_MAX_AGE
    seconds: a page refreshed on an idle or steady batch does not work it out again."""

    def __init__(self) -> None:
        self._key: tuple[int, str | None, int] | None = None
        self._value: tuple[tuple[ShapeView, ...], str | None] = ((), None)

    def get(self, core: SchedulerCore, now: float,
            note: str | None) -> tuple[tuple[ShapeView, ...], str | None]:
        key = (core.events_handled, note, int(now // EXPLAIN_MAX_AGE))
        if key != self._key:
            self._value = _explanation(core, now, note)
            self._key = key
        return self._value


def _explanation(core: SchedulerCore, now: float,
                 note: str | None) -> tuple[tuple[ShapeView, ...], str | None]:
    reasons = shape_reasons(core, now)
    return (tuple(ShapeView(shape.describe(), count, why) for shape, count, why in reasons),
            explain(core, now, note, reasons))


def _state(core: SchedulerCore, node: Node, now: float) -> str:
    registry = core.nodes
    if registry.is_ignored(node.agent_id, node.hostname, node.ip):
        return "ignored"
    if node.agent_id in registry.filtered:
        return "filtered"
    if registry.is_draining(node, now, core.config.drain_window_seconds):
        return "draining"
    return "up"


def _since(rec: TaskRecord) -> float:
    return rec.running_since if rec.running_since is not None else rec.state_since


def live_view(core: SchedulerCore, now: float, note: str | None,
              fatal_error: str | None, explained: Explained | None = None) -> LiveView:
    """The queue by shape with why each waits, the nodes with their load, the running
    jobs with their node and run time; the explanation from ``explained`` if given."""
    queue, message = (explained.get(core, now, note) if explained is not None
                      else _explanation(core, now, note))
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
    active = [r for r in core.tasks.values() if r.killed_at is None]
    known = core.nodes.nodes
    running = tuple(
        RunningJob(r.job.job_id, r.job.name,
                   (known[r.agent_id].hostname or r.agent_id) if r.agent_id in known
                   else (r.agent_id or ""),
                   "running" if r.state is TaskState.RUNNING else r.state.name.lower(),
                   max(0.0, now - _since(r)), r.job.cores, r.job.memory)
        for r in heapq.nsmallest(MAX_RUNNING_SHOWN, active, key=_since))
    return LiveView(queue, tuple(nodes), len(core.queue), len(active), running,
                    message, note, fatal_error)
