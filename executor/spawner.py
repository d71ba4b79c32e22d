"""Launches queued to be started soon, and the spawner thread that starts them when
nobody else does.

Whoever comes first starts a queued launch: a thread that drains the queue (a reaper
right after the exit callback that queued it: waking another thread would cost a
thread switch on the way from one task's end to the next one's start), or the spawner
thread, started on first need.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Spawner(Generic[T]):
    """A queue of launches; ``start`` is called once for each, in some thread."""

    def __init__(self, start: Callable[[T], None], name: str = "mesobatch-spawner") -> None:
        self._start = start
        self._name = name
        self._ready = threading.Condition(threading.Lock())
        self._queue: deque[T] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False

    def put(self, item: T, *, wake: bool = True) -> None:
        """Queue ``item``; with ``wake`` the spawner thread starts it unless drain()
        comes first, else it waits for drain()."""
        with self._ready:
            self._queue.append(item)
            if not wake:
                return
            self._ready.notify()
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._loop, name=self._name,
                                                daemon=True)
                self._thread.start()

    def drain(self) -> None:
        """Start what is queued, in this thread, now."""
        while True:
            with self._ready:
                if not self._queue:
                    return
                item = self._queue.popleft()
            self._start(item)

    def close(self, timeout: float) -> None:
        """Stop the spawner thread once the queue is empty (waiting up to ``timeout``
        seconds); what is queued later is left to drain()."""
        with self._ready:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=max(0.0, timeout))

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    if self._closed:
                        return
                    self._ready.wait()
                item = self._queue.popleft()
            self._start(item)
