"""Packing queued jobs into the free resources of one node: a pure function."""

from __future__ import annotations

from .jobs import JobSpec
from .queue import JobQueue
from .resources import Resources


def pack(queue: JobQueue, available: Resources, preemptible_node: bool,
         max_tasks: int | None = None) -> list[JobSpec]:
    """Take from ``queue`` the jobs that fit in ``available``, in priority order, at
    most ``max_tasks`` of them (None: no count limit).

    Shapes are visited highest priority first and each takes as many of its jobs as
    still fit, so one pass over the (few) shapes packs the node. A preemptible node
    takes only preemptible jobs; preemptible jobs may go anywhere.
    """
    chosen: list[JobSpec] = []
    left = available
    for shape, count in queue.shapes():
        if preemptible_node and not shape.preemptible:
            continue
        n = min(count, shape.resources.count_in(left))
        if max_tasks is not None:
            n = min(n, max_tasks - len(chosen))
        if n <= 0:
            continue
        taken = queue.take(shape, n)
        chosen.extend(taken)
        left = left - shape.resources.times(len(taken))
    return chosen
