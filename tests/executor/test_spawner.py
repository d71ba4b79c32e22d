"""The spawner: queued launches started once each, by whoever comes first."""

from __future__ import annotations

import threading

from mesobatch.executor.spawner import Spawner


class Starts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[int, str]] = []
        self.done = threading.Event()
        self.expect = 0

    def __call__(self, item: int) -> None:
        with self.lock:
            self.items.append((item, threading.current_thread().name))
            if len(self.items) >= self.expect:
                self.done.set()


def test_drain_starts_what_is_queued_in_the_calling_thread_in_order() -> None:
    starts = Starts()
    spawner = Spawner(starts)
    for i in range(3):
        spawner.put(i, wake=False)  # nobody else starts these
    spawner.drain()
    me = threading.current_thread().name
    assert starts.items == [(0, me), (1, me), (2, me)]
    spawner.close(timeout=1)


def test_the_spawner_thread_starts_what_nobody_drains() -> None:
    starts = Starts()
    starts.expect = 1
    spawner = Spawner(starts, name="test-spawner")
    spawner.put(7)
    assert starts.done.wait(10)
    assert starts.items == [(7, "test-spawner")]
    spawner.close(timeout=5)


def test_each_launch_starts_once_when_thread_and_drain_race() -> None:
    starts = Starts()
    starts.expect = 2000
    spawner = Spawner(starts)
    for i in range(2000):
        spawner.put(i)
        if i % 3 == 0:
            spawner.drain()
    spawner.drain()
    assert starts.done.wait(30)
    spawner.close(timeout=5)
    assert sorted(item for item, _ in starts.items) == list(range(2000))


def test_after_close_what_is_queued_is_left_to_drain() -> None:
    starts = Starts()
    spawner = Spawner(starts)
    spawner.close(timeout=1)
    spawner.put(1)  # no spawner thread any more
    assert starts.items == []
    spawner.drain()
    assert starts.items == [(1, threading.current_thread().name)]
