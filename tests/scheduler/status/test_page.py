"""The HTML page and the sparkline are pure functions of a snapshot."""

from __future__ import annotations

import re

from mesobatch.scheduler.status.page import render_page, sparkline
from mesobatch.scheduler.status.snapshot import (
    Failure,
    NodeView,
    RunningJob,
    ShapeView,
    Snapshot,
    Totals,
)


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
    for words in ("Nothing waits.", "No node seen yet.", "No job runs.", "No job failed."):
        assert words in page


def test_sparkline_scales_to_its_largest_value() -> None:
    svg = sparkline((0.0, 5.0, 10.0), width=100, height=40)
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    xy = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    assert xy == [(0.0, 39.0), (50.0, 20.0), (100.0, 1.0)]
    assert sparkline(()) == ""
