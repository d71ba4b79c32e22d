"""The job queue, grouped by resource shape and kept in Toil's priority order."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator

from .jobs import JobSpec, Shape


class JobQueue:
    """FIFO per shape; shapes ordered by Shape.priority().

    Removal (killing a queued job) is O(1): the job is forgotten at once and its
    deque entry skipped when reached.
    """

    def __init__(self) -> None:
        self._by_shape: dict[Shape, deque[tuple[int, JobSpec]]] = {}
        self._counts: dict[Shape, int] = {}
        self._order: list[tuple[tuple[bool, int, int, int, int], Shape]] = []
        # job id -> (shape, push number); a deque entry whose push number differs is stale
        self._queued: dict[int, tuple[Shape, int]] = {}
        self._pushes = 0

    def __len__(self) -> int:
        return len(self._queued)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._queued

    def push(self, spec: JobSpec) -> None:
        shape = spec.shape
        q = self._by_shape.get(shape)
        if q is None:
            q = self._by_shape[shape] = deque()
            self._counts[shape] = 0
            bisect.insort(self._order, (shape.priority(), shape))
        self._pushes += 1
        q.append((self._pushes, spec))
        self._counts[shape] += 1
        self._queued[spec.job_id] = (shape, self._pushes)

    def push_front(self, spec: JobSpec) -> None:
        """Put a job back at the head of its shape (its launch never happened)."""
        self.push(spec)
        q = self._by_shape[spec.shape]
        q.rotate(1)

    def remove(self, job_id: int) -> bool:
        entry = self._queued.pop(job_id, None)
        if entry is None:
            return False
        shape = entry[0]
        self._counts[shape] -= 1
        if self._counts[shape] == 0:
            self._drop_shape(shape)
        return True

    def shapes(self) -> Iterator[tuple[Shape, int]]:
        """Shapes with queued jobs, highest priority first, with their counts."""
        for _, shape in list(self._order):
            yield shape, self._counts[shape]

    def take(self, shape: Shape, n: int) -> list[JobSpec]:
        """Pop up to ``n`` jobs of ``shape`` in FIFO order."""
        q = self._by_shape.get(shape)
        out: list[JobSpec] = []
        while q and len(out) < n:
            seq, spec = q.popleft()
            entry = self._queued.get(spec.job_id)
            if entry is not None and entry[1] == seq:
                del self._queued[spec.job_id]
                out.append(spec)
        if out:
            self._counts[shape] -= len(out)
            if self._counts[shape] == 0:
                self._drop_shape(shape)
        return out

    def _drop_shape(self, shape: Shape) -> None:
        del self._by_shape[shape]
        del self._counts[shape]
        i = bisect.bisect_left(self._order, (shape.priority(), shape))
        del self._order[i]
