"""Options every batch-queue backend has; a system's own options subclass these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...scheduler.options import (
    CommonOptions,
    OptionError,
    opt,
    parse_bool,
    parse_cores,
    parse_count,
    parse_seconds,
)


def parse_positive(value: Any) -> int:
    n = parse_count(value)
    if n < 1:
        raise ValueError("expected a whole number >= 1")
    return n


@dataclass(frozen=True)
class BatchQueueOptions(CommonOptions):
    """Options of every batch-queue backend (Slurm, Grid Engine, LSF, PBS, HTCondor)."""

    max_total_cores: float | None = opt(
        "maxTotalCores", parse=parse_cores, metavar="CORES",
        help="most cores the jobs of this run in the batch system ask for at once, queued "
             "or running (default: no limit; --maxJobs still holds)")
    max_jobs: int = opt(
        "maxJobs", parse=parse_count, default=10_000, metavar="N",
        help="most jobs of this run in the batch system at once, queued or running; the "
             "cluster's own scheduler decides their order (0: no limit)")
    poll_interval: float = opt(
        "pollInterval", parse=parse_seconds, default=1.0, metavar="SECONDS",
        help="shortest time between two status queries (one query covers every job of "
             "the run); longer while queries are slow")
    max_poll_interval: float = opt(
        "maxPollInterval", parse=parse_seconds, default=30.0, metavar="SECONDS",
        help="longest time between two status queries")
    vanished_polls: int = opt(
        "vanishedPolls", parse=parse_positive, default=3, metavar="N",
        help="a job seen neither in the queue nor in accounting, and without an exit "
             "record, for this many polls in a row is reported LOST")
    job_arrays: bool = opt(
        "jobArrays", parse=parse_bool, default=True, metavar="BOOL",
        help="submit jobs of one shape issued together as one job array")
    command_timeout: float = opt(
        "batchCommandTimeout", parse=parse_seconds, default=60.0, metavar="SECONDS",
        help="longest a batch system command (submit, status, cancel) may take")
    command_attempts: int = opt(
        "batchCommandAttempts", parse=parse_positive, default=5, metavar="N",
        help="tries of a command that fails for a passing reason (a busy controller, a "
             "timeout), with backoff, before its jobs fail")

    def validate(self) -> None:
        super().validate()
        if self.poll_interval <= 0:
            raise OptionError(f"invalid value {self.poll_interval!r} for --pollInterval: "
                              "expected a number of seconds > 0")
        if self.max_poll_interval < self.poll_interval:
            raise OptionError(
                f"invalid value {self.max_poll_interval!r} for --maxPollInterval: expected "
                f"at least --pollInterval ({self.poll_interval:g})")
        if self.command_timeout <= 0:
            raise OptionError(f"invalid value {self.command_timeout!r} for "
                              "--batchCommandTimeout: expected a number of seconds > 0")
