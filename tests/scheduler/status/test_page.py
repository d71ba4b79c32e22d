"""The HTML page and the sparkline are pure functions of a snapshot."""

from __future__ import annotations

import re

from rich.console import Console

from mesobatch.scheduler.status.page import render_page, sparkline
from mesobatch.scheduler.status.snapshot import (
    Failure,
    Finished,
    NodeView,
    RunningJob,
    ShapeView,
    Snapshot,
    Totals,
)
from mesobatch.scheduler.status.terminal import render

GIB = 2**30


def snapshot(**kw: object) -> Snapshot:
    base = dict(
        backend="local", workflow_id="wf1", started_at=0.0, taken_at=3725.0,
        totals=Totals(issued=9, queued=4, running=1, succeeded=3, failed=1),
        queue=(ShapeView("2 cores, 1.0 GiB memory", 4, "waiting for resources."),),
        nodes=(NodeView("n1", "up", 8, 0.5, 2**34, 0.25, 2, 1),),
        running=(RunningJob(5, "<script>x</script>", "n1", "running", 125.0, 1, 2**30),),
        running_not_shown=0,
        failures=(Failure(3, "bad", "failed", 2, 1.0, "n1", 3700.0, "", "/l/3.log",
                          ("Traceback", "ValueError: <&>")),),
        throughput=(0.0, 1.0, 2.0), bucket_seconds=10.0, status_message=None,
        note="Most used: 1 of 2 cores.", fatal_error=None)
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_page_shows_each_part_and_escapes_what_jobs_say() -> None:
    page = render_page(snapshot())
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    assert "ValueError: &lt;&amp;&gt;" in page and "/l/3.log" in page
    assert "waiting for resources." in page and "2 min 05 s" in page
    assert "up 1 h 02 min" in page and "Most used: 1 of 2 cores." in page
    assert 'name="viewport"' in page and 'http-equiv="refresh"' in page
    for section in ("totals", "throughput", "queue", "running", "nodes", "failures"):
        assert f'<section id="{section}">' in page
    assert "The backend cannot run jobs" not in page
    assert "The backend cannot run jobs" in render_page(snapshot(fatal_error="refused"))


def test_empty_batch_says_so() -> None:
    page = render_page(snapshot(queue=(), nodes=(), running=(), failures=(),
                                throughput=()))
    for words in ("Nothing waits.", "No node seen yet.", "No job runs.", "No job failed.",
                  "No job finished yet."):
        assert words in page


def test_sparkline_scales_to_its_largest_value() -> None:
    svg = sparkline((0.0, 5.0, 10.0), width=100, height=40)
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    xy = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    assert xy == [(0.0, 39.0), (50.0, 20.0), (100.0, 1.0)]
    assert sparkline(()) == ""


def used_snapshot() -> Snapshot:
    return snapshot(
        failures=(Failure(3, "bad", "memlimit", 137, 4.0, "n1", 3700.0, "", None, (),
                          cores=1, memory=GIB, peak_memory=3 * GIB, cpu_time=2.5,
                          over=("mem 3.0x",)),),
        finished=(Finished(7, "fine", "n2", 65.0, 3720.0, 2, 2 * GIB, GIB, 90.5, ()),
                  Finished(6, "unmeasured", "n2", 1.0, 3710.0, 1, GIB, None, None, ()),
                  Finished(5, "tiny", "n2", 0.0, 3705.0, 1, GIB, None, 0.001, (),
                           memory_at_most=30 * 2**20)))


def test_page_shows_used_beside_asked_and_flags_far_over() -> None:
    page = render_page(used_snapshot())
    assert '<section id="finished">' in page
    failures = page[page.index('<section id="failures">'):page.index('<section id="finished">')]
    finished = page[page.index('<section id="finished">'):]
    assert "3.0 GiB of 1.0 GiB &middot; 2.5 s cpu" in failures
    assert '<span class="over">over: mem 3.0x</span>' in failures
    assert "1.0 GiB of 2.0 GiB &middot; 90.5 s cpu" in finished
    assert "? of 1.0 GiB &middot; ? cpu" in finished  # not measured: said so, not 0
    assert "&le; 30 MiB of 1.0 GiB &middot; 0.0 s cpu" in finished  # only a bound
    assert 'class="over"' not in finished


def test_terminal_view_shows_used_beside_asked_and_the_flag() -> None:
    console = Console(record=True, width=200)
    render(used_snapshot().to_json(), console)
    rows = [line.split() for line in console.export_text().splitlines()]
    failed = next(r for r in rows if r[:1] == ["3"])
    assert failed[:5] == ["3", "bad", "memlimit", "137", "n1"]
    assert failed[5:9] == ["3.0G/1.0G", "2.5", "mem", "3.0x"]
    header = next(r for r in rows if r[:1] == ["DONE"])
    assert header == ["DONE", "NAME", "NODE", "TIME", "MAXRSS/ASKED", "CPU", "S", "OVER"]
    assert next(r for r in rows if r[:1] == ["7"]) == [
        "7", "fine", "n2", "1:05", "1.0G/2.0G", "90.5"]
    assert next(r for r in rows if r[:1] == ["6"]) == [
        "6", "unmeasured", "n2", "0:01", "?/1.0G", "?"]
    assert next(r for r in rows if r[:2] == ["5", "tiny"]) == [
        "5", "tiny", "n2", "0:00", "≤30M/1.0G", "0.0"]
