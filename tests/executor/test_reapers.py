"""Reaper threads: children watched through pidfds, each end handled once, in batches."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from mesobatch.executor.reapers import Reapers
from mesobatch.executor.spawn import spawn

PATH = {"PATH": os.environ["PATH"]}


def start(*argv: str) -> int:
    return spawn(f"/bin/{argv[0]}", list(argv), PATH, [("open", 0, os.devnull, os.O_RDONLY, 0)])


def reap(pid: int) -> str:
    """``pid:exit code``, or ``pid:early`` if it has not ended (a stale readiness)."""
    if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return f"{pid}:early"
    return f"{pid}:{os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}"


def reaped(pid: int) -> list[str]:
    return [reap(pid)]


class Batches:
    """What report() got, batch by batch, with the thread each came from."""

    def __init__(self) -> None:
        self.batches: queue.Queue[tuple[str, list[str]]] = queue.Queue()
        self.on_batch: Callable[[list[str]], None] = lambda batch: None

    def __call__(self, batch: list[str]) -> None:
        self.batches.put((threading.current_thread().name, batch))
        self.on_batch(batch)

    def items(self, n: int, timeout: float = 30) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            got.extend(self.batches.get(timeout=max(0.01, deadline - time.monotonic()))[1])
        return got


@pytest.fixture
def batches() -> Batches:
    return Batches()


@pytest.fixture
def two(batches: Batches) -> Iterator[Reapers[str]]:
    reapers: Reapers[str] = Reapers(2, batches)
    yield reapers
    reapers.stop()


def test_each_end_is_handled_once_by_the_reaper_watching_it(
        two: Reapers[str], batches: Batches) -> None:
    pids = [start("sh", "-c", f"exit {i}") for i in range(5)]
    for pid in pids:
        two.watch_child(pid, partial(reaped, pid))
    got = batches.items(5)
    assert sorted(got) == sorted(f"{pid}:{i}" for i, pid in enumerate(pids))
    assert two.watching() == [0, 0]


def test_a_child_goes_to_the_reaper_watching_fewest_and_the_next_one_stays_there(
        two: Reapers[str], batches: Batches) -> None:
    long = start("sleep", "30")
    two.watch_child(long, lambda: [reap(long)])
    assert two.watching() == [1, 0]
    second = start("sleep", "30")
    two.watch_child(second, lambda: [reap(second)])
    assert two.watching() == [1, 1]
    follow: list[int] = []

    def on_batch(batch: list[str]) -> None:  # from the end's reaper, as a callback would
        if not follow:
            follow.append(start("true"))
            two.watch_child(follow[0], lambda: [reap(follow[0])])

    batches.on_batch = on_batch
    os.kill(second, 15)
    assert batches.batches.get(timeout=10) == ("mesobatch-reaper-1", [f"{second}:-15"])
    assert batches.batches.get(timeout=10) == ("mesobatch-reaper-1", [f"{follow[0]}:0"])
    os.kill(long, 15)
    assert batches.batches.get(timeout=10) == ("mesobatch-reaper", [f"{long}:-15"])


def test_reused_descriptor_numbers_are_never_taken_for_a_running_child(
        two: Reapers[str], batches: Batches) -> None:
    # Children started from the reapers' report and, at once, from this thread: each
    # pidfd is closed while other children are being spawned (holding copies of it).
    total = 400
    follow_ups = iter(range(total // 2))

    def on_batch(batch: list[str]) -> None:
        for _ in batch:
            if next(follow_ups, None) is not None:
                pid = start("true")
                two.watch_child(pid, partial(reaped, pid))

    batches.on_batch = on_batch
    for _ in range(total // 2):
        pid = start("true")
        two.watch_child(pid, partial(reaped, pid))
    got = batches.items(total, timeout=60)
    assert len(set(got)) == total
    assert all(item.endswith(":0") for item in got)


def test_posted_items_and_other_descriptors_go_through_the_first_reaper(
        two: Reapers[str], batches: Batches) -> None:
    two.post(["posted"])
    assert batches.batches.get(timeout=10) == ("mesobatch-reaper", ["posted"])
    r, w = os.pipe()
    try:
        two.watch(r, lambda: [os.read(r, 100).decode()])
        os.write(w, b"data")
        assert batches.batches.get(timeout=10) == ("mesobatch-reaper", ["data"])
        two.unwatch(r)
        os.write(w, b"unwatched")
        two.post(["after"])  # a turn that would see the pipe, were it still watched
        assert batches.batches.get(timeout=10) == ("mesobatch-reaper", ["after"])
    finally:
        os.close(r)
        os.close(w)


def test_the_first_reaper_wakes_for_the_next_deadline(batches: Batches) -> None:
    due = time.monotonic() + 0.2
    reached = threading.Event()

    def timeout() -> float:
        return -1.0 if reached.is_set() else max(0.0, due - time.monotonic())

    def after_turn(first: bool) -> None:
        if first and time.monotonic() >= due:
            reached.set()

    reapers: Reapers[str] = Reapers(2, batches, timeout=timeout, after_turn=after_turn)
    try:
        assert reached.wait(10)
    finally:
        reapers.stop()


def test_stop_reports_what_came_with_it_and_twice_is_harmless(batches: Batches) -> None:
    reapers: Reapers[str] = Reapers(2, batches)
    reapers.post(["last"])
    reapers.stop()
    assert batches.items(1, timeout=1) == ["last"]
    reapers.stop()
    reapers.wake()
    reapers.post(["too late"])
    assert all(r.thread is not None and not r.thread.is_alive() for r in reapers._reapers)
