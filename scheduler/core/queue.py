"""The job queue, grouped by resource shape and kept in Toil's priority order."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from .jobs import JobSpec, Shape


@dataclass(slots=True, eq=False)
class _Lane:
    """The queued jobs of one shape: (push number, job) in FIFO order, and how many of
    them are still queued (entries of removed jobs stay until reached)."""

    shape: Shape
    jobs: deque[tuple[int, JobSpec]] = field(default_factory=deque)
    count: int = 0


class JobQueue:
    """FIFO per shape; shapes ordered by Shape.priority().

    Removal (killing a queued job) is O(1): the job is forgotten at once and its
    deque entry skipped when reached.
    """

    def __init__(self) -> None:
        self._lanes: dict[Shape, _Lane] = {}
        self._order: list[tuple[tuple[bool, int, int, int, int], Shape]] = []
        # job id -> (lane, push number); a deque entry whose push number differs is stale
        self._queued: dict[int, tuple[_Lane, int]] = {}
        self._pushes = 0

    def __len__(self) -> int:
        return len(self._queued)

    def __bool__(self) -> bool:
        return bool(self._queued)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._queued

    def push(self, spec: JobSpec) -> None:
        self._push(spec).jobs.append((self._pushes, spec))

    def push_front(self, spec: JobSpec) -> None:
        """Put a job back at the head of its shape (its launch never happened)."""
        self._push(spec).jobs.appendleft((self._pushes, spec))

    def _push(self, spec: JobSpec) -> _Lane:
        shape = spec.shape
        lane = self._lanes.get(shape)
        if lane is None:
            lane = self._lanes[shape] = _Lane(shape)
            bisect.insort(self._order, (shape.priority(), shape))
        self._pushes += 1
        lane.count += 1
        self._queued[spec.job_id] = (lane, self._pushes)
        return lane

    def remove(self, job_id: int) -> bool:
        entry = self._queued.pop(job_id, None)
        if entry is None:
            return False
        lane = entry[0]
        lane.count -= 1
        if lane.count == 0:
            self._drop(lane)
        return True

    def shapes(self) -> Iterator[tuple[Shape, int]]:
        """Shapes with queued jobs, highest priority first, with their counts."""
        lanes = self._lanes
        for _, shape in list(self._order):
            yield shape, lanes[shape].count

    def take(self, shape: Shape, n: int) -> list[JobSpec]:
        """Pop up to ``n`` jobs of ``shape`` in FIFO order."""
        lane = self._lanes.get(shape)
        if lane is None:
            return []
        q = lane.jobs
        queued = self._queued
        out: list[JobSpec] = []
        while q and len(out) < n:
            seq, spec = q.popleft()
            entry = queued.get(spec.job_id)
            if entry is not None and entry[1] == seq:
                del queued[spec.job_id]
                out.append(spec)
        if out:
            lane.count -= len(out)
            if lane.count == 0:
                self._drop(lane)
        return out

    def _drop(self, lane: _Lane) -> None:
        shape = lane.shape
        del self._lanes[shape]
        i = bisect.bisect_left(self._order, (shape.priority(), shape))
        del self._order[i]
