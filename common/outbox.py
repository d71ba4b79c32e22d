"""Calls waiting for their sender thread, taken out in batches.

queue.Queue wakes its consumer through a Condition, which allocates a lock for every
wait and notifies on every put. Here a put costs an append, and wakes the sender only
when it sleeps; a sender that finds calls waiting takes all of them (up to a batch) and
writes them at once, so under load it is woken rarely.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    """Items in order for one consumer thread; close() ends it once they are taken."""

    def __init__(self, linger: float = 0.0) -> None:
        #: with a batch not full, wait this long for more before taking it (calls that
        #: may go late: fewer wake-ups, fuller batches)
        self.linger = linger
        self._items: deque[T] = deque()
        self._wake = threading.Lock()
        self._wake.acquire()  # held while nothing is to be done; put() releases it
        self._sleeping = False
        self._closed = False

    def put(self, item: T) -> None:
        self._items.append(item)
        if self._sleeping:
            self._signal()

    def close(self) -> None:
        """The consumer takes what is left, then gets None."""
        self._closed = True
        self._signal()

    def _signal(self) -> None:
        self._sleeping = False
        with contextlib.suppress(RuntimeError):  # already released: the consumer is awake
            self._wake.release()

    def take(self, most: int) -> list[T] | None:
        """Up to ``most`` items, waiting for the first; None once closed and empty."""
        items = self._items
        while not items:
            if self._closed:
                return None
            # Say we sleep, then look again: a put() between the two either sees the
            # flag (and wakes us) or its item is seen here (GIL order).
            self._sleeping = True
            if items or self._closed:
                self._sleeping = False
                continue
            self._wake.acquire()
        if self.linger and len(items) < most and not self._closed:
            time.sleep(self.linger)  # put() does not wake us meanwhile: we do not sleep
        n = min(most, len(items))
        return [items.popleft() for _ in range(n)]

    def take_waiting(self) -> list[T]:
        """Every item waiting, without waiting for any."""
        items = self._items
        return [items.popleft() for _ in range(len(items))]

    def __len__(self) -> int:
        return len(self._items)
