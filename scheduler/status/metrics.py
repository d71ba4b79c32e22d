"""Prometheus metrics of one batch system, in a registry of its own (not the process's
global one, so that two batch systems in one process never mix their figures)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

#: seconds, from sub-second local jobs to day-long cluster jobs
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)
_RUN_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class Metrics:
    """The metrics the recorder keeps up to date."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Gauge("mesobatch_jobs", "Jobs issued and not finished, by state",
                          ["state"], registry=r)
        self.issued = Counter("mesobatch_jobs_issued", "Jobs issued", registry=r)
        self.finished = Counter("mesobatch_jobs_finished",
                                "Jobs finished, by result (succeeded, failed, killed, lost, "
                                "error, memlimit, ...)", ["result"], registry=r)
        self.issue_to_start = Histogram(
            "mesobatch_issue_to_start_seconds", "Seconds from a job's issue to its start",
            buckets=_WAIT_BUCKETS, registry=r)
        self.run_time = Histogram("mesobatch_run_time_seconds",
                                  "Wall-clock seconds a finished job ran",
                                  buckets=_RUN_BUCKETS, registry=r)
        self.offers_received = Counter("mesobatch_offers_received", "Offers received",
                                       registry=r)
        self.offers_declined = Counter("mesobatch_offers_declined", "Offers declined",
                                       registry=r)
        self.backend_errors = Counter(
            "mesobatch_backend_errors",
            "Backend errors, by kind: launch_refused (a launch the resource manager "
            "refused), job_error (a job the backend could not run), disconnected (the "
            "connection to the resource manager was lost)", ["kind"], registry=r)
        for state in ("queued", "running"):
            self.jobs.labels(state).set(0)
        for kind in ("launch_refused", "job_error", "disconnected"):
            self.backend_errors.labels(kind)

    def exposition(self) -> bytes:
        """The text format, for /metrics."""
        return generate_latest(self.registry)
