"""Prometheus metrics of one batch system, through prometheus_client's collector
interface: the recorder keeps plain counts (an increment costs what an integer add
costs, on a thread that shares the interpreter with the scheduler), and they become
metric families only when /metrics is read. Each batch system has a registry of its
own (not the process's global one), so two in one process never mix their figures."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Counts", "Histogram", "Metrics"]

#: seconds, from sub-second local jobs to day-long cluster jobs
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)
RUN_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
BACKEND_ERROR_KINDS = ("launch_refused", "job_error", "disconnected")


@dataclass(slots=True)
class Histogram:
    """Observations counted into buckets (upper bounds, inclusive, as Prometheus's)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative = 0
        buckets = []
        for bound, count in zip((*map(str, map(float, self.bounds)), "+Inf"), self.counts,
                                strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets,
                                     sum_value=self.total)


@dataclass(slots=True)
class Counts:
    """Everything /metrics says, as the recorder keeps it."""

    queued: int = 0
    running: int = 0
    issued: int = 0
    finished: dict[str, int] = field(default_factory=dict)  #: result -> jobs
    offers_received: int = 0
    offers_declined: int = 0
    backend_errors: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(BACKEND_ERROR_KINDS, 0))
    issue_to_start: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))
    run_time: Histogram = field(default_factory=lambda: Histogram(RUN_BUCKETS))


def families(c: Counts) -> Iterator[Metric]:
    """The metric families of ``c`` (pure)."""
    jobs = GaugeMetricFamily("mesobatch_jobs", "Jobs issued and not finished, by state",
                             labels=["state"])
    jobs.add_metric(["queued"], c.queued)
    jobs.add_metric(["running"], c.running)
    yield jobs
    yield CounterMetricFamily("mesobatch_jobs_issued", "Jobs issued", value=c.issued)
    finished = CounterMetricFamily(
        "mesobatch_jobs_finished", "Jobs finished, by result (succeeded, failed, killed, "
        "lost, error, memlimit, ...)", labels=["result"])
    for result, n in sorted(c.finished.items()):
        finished.add_metric([result], n)
    yield finished
    yield c.issue_to_start.family("mesobatch_issue_to_start_seconds",
                                  "Seconds from a job's issue to its start")
    yield c.run_time.family("mesobatch_run_time_seconds",
                            "Wall-clock seconds a finished job ran")
    yield CounterMetricFamily("mesobatch_offers_received", "Offers received",
                              value=c.offers_received)
    yield CounterMetricFamily("mesobatch_offers_declined", "Offers declined",
                              value=c.offers_declined)
    errors = CounterMetricFamily(
        "mesobatch_backend_errors", "Backend errors, by kind: launch_refused (a launch the "
        "resource manager refused), job_error (a job the backend could not run), "
        "disconnected (the connection to the resource manager was lost)", labels=["kind"])
    for kind, n in sorted(c.backend_errors.items()):
        errors.add_metric([kind], n)
    yield errors


class _Collector:
    def __init__(self, read: Callable[[], Counts]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        return families(self._read())


class Metrics:
    """A registry that reads the recorder's counts at each scrape."""

    def __init__(self, read: Callable[[], Counts]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(read))

    def exposition(self) -> bytes:
        """The text format, for /metrics."""
        return generate_latest(self.registry)
