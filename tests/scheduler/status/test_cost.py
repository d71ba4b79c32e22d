"""What keeps a page refresh cheap: the queue's explanation reused while the core is
unchanged, the page and JSON made once per snapshot, the node's load read at most every
few seconds, and the JSON made without dataclasses.asdict's deep copies."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import mesobatch
from mesobatch.scheduler.core.events import JobsSubmitted, OffersReceived
from mesobatch.scheduler.core.scheduler import SchedulerCore
from mesobatch.scheduler.status import live
from mesobatch.scheduler.status.live import EXPLAIN_MAX_AGE, Explained, live_view
from mesobatch.scheduler.status.server import Bodies
from mesobatch.scheduler.status.snapshot import SCHEMA, Finished
from tests.scheduler.core.helpers import GIB, job, offer

from .test_page import snapshot, used_snapshot

T0 = 5000.0


def test_the_explanation_is_reused_until_the_core_takes_an_event_or_it_ages() -> None:
    c = SchedulerCore()
    c.handle(OffersReceived((offer(2, 8),), T0))
    c.handle(JobsSubmitted((job(4, GIB),), T0))
    cache = Explained()
    first = cache.get(c, T0, None)
    assert "1 job waiting" in str(first[1]) and first[0][0].jobs == 1
    assert cache.get(c, T0 + 0.1, None) is first  # nothing happened: not worked out again
    assert cache.get(c, T0 + 0.1, "a note") is not first  # the backend's note changed
    c.handle(JobsSubmitted((job(4, GIB),), T0 + 0.2))
    second = cache.get(c, T0 + 0.2, None)
    assert second[0][0].jobs == 2 and "2 jobs waiting" in str(second[1])
    assert cache.get(c, T0 + 0.2 + EXPLAIN_MAX_AGE, None) is not second  # aged
    cached, fresh = live_view(c, T0 + 0.3, None, None, cache), live_view(c, T0 + 0.3, None, None)
    assert (cached.queue, cached.status_message) == (fresh.queue, fresh.status_message)


def test_the_page_and_the_json_are_made_once_per_snapshot() -> None:
    bodies = Bodies()
    snap, other = snapshot(), snapshot(taken_at=9999.0)
    page = bodies.page(snap)
    assert bodies.page(snap) is page and b"<html" in page
    assert bodies.page(other) is not page and b"<html" in bodies.page(other)
    doc = bodies.json(snap)
    assert bodies.json(snap) is doc and bodies.json(other) is not doc


def test_the_json_is_what_asdict_gave() -> None:
    snap = used_snapshot()
    assert snap.to_json() == {**dataclasses.asdict(snap), "schema": SCHEMA}
    assert isinstance(snap.to_json()["finished"][0], dict)
    assert snap.to_json()["finished"][0]["over"] == ()
    plain = Finished(1, "x", "n", 1.0, 2.0, 1, GIB, None, None, ())
    assert snapshot(finished=(plain,)).to_json()["finished"] == (dataclasses.asdict(plain),)


@pytest.fixture
def bs(tmp_path: Path) -> Iterator[mesobatch.BatchSystem]:
    with mesobatch.batch_system("local", maxCores=2, maxMemory="1G", maxDisk="1G",
                                logDir=str(tmp_path / "logs"), statusPort=0) as b:
        yield b


def test_the_node_load_is_read_at_most_every_few_seconds(
        bs: mesobatch.BatchSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    polls: list[int] = []
    backend = bs._backend
    real = backend.poll_nodes

    def counted() -> list[object]:
        polls.append(1)
        return real()  # type: ignore[return-value]

    monkeypatch.setattr(backend, "poll_nodes", counted)
    recorder = bs._recorder
    assert recorder is not None
    for _ in range(3):
        recorder._cached = None  # each a refresh of the page
        assert recorder.snapshot().nodes  # the node is shown, with its load
    assert len(polls) == 1  # the first refresh's; the next two within NODE_POLL_SECONDS
    monkeypatch.setattr(live, "NODE_POLL_SECONDS", 0.0)
    recorder._cached = None
    recorder.snapshot()
    assert len(polls) == 2
