"""The recorder: follows the core's events and actions, keeps totals, running jobs,
recent failures, throughput and metrics, and makes snapshots of them.

``observe`` is the only call on the scheduling path: one append to a deque, no lock.
The recorder's thread (or a snapshot) takes what was appended and does the work.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..contract import BatchJobExitReason
from ..core.events import (
    Action,
    Decline,
    Disconnected,
    Event,
    JobsSubmitted,
    KillRequested,
    Launch,
    OffersReceived,
    Report,
    TaskStatus,
)
from ..core.states import TaskState
from .metrics import Metrics
from .snapshot import Failure, LiveView, RunningJob, Snapshot, Totals

#: running jobs listed in a snapshot (the longest-running first); the rest are counted
MAX_RUNNING_SHOWN = 200
#: bytes read from the end of a failed job's log, and lines of it kept
TAIL_BYTES = 4096
TAIL_LINES = 10


@dataclass(slots=True)
class _Job:
    job_id: int
    name: str
    cores: float
    memory: int
    issued_at: float
    task_id: str | None = None
    node: str = ""
    launched_at: float | None = None
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class _Ended:
    job_id: int
    name: str
    result: str
    exit_code: int
    wall_time: float
    node: str
    ended_at: float
    message: str


def read_tail(path: str | None, lines: int = TAIL_LINES) -> tuple[str, ...]:
    """The last lines of a log file; nothing if there is none (yet, or on this host)."""
    if path is None:
        return ()
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ()
    text = data.decode("utf-8", "replace").splitlines()
    if size > TAIL_BYTES and text:
        text = text[1:]  # the first line read is likely cut
    return tuple(text[-lines:])


class Recorder:
    """What a status page shows, kept up to date from the core's events."""

    def __init__(self, *, backend: str, workflow_id: str,
                 live: Callable[[], LiveView],
                 log_path: Callable[[int, str], str | None],
                 clock: Callable[[], float] = time.time,
                 max_failures: int = 20, bucket_seconds: float = 10.0, buckets: int = 60,
                 snapshot_max_age: float = 0.5, drain_interval: float = 0.25) -> None:
        self.backend = backend
        self.workflow_id = workflow_id
        self.metrics = Metrics()
        self._live = live
        self._log_path = log_path
        self._clock = clock
        self._started_at = clock()
        self._inbox: deque[tuple[Event, Sequence[Action]]] = deque()
        self._lock = threading.Lock()  # the bookkeeping below
        self._snapshot_lock = threading.Lock()  # one snapshot built at a time
        self._jobs: dict[int, _Job] = {}
        self._by_task: dict[str, _Job] = {}
        self._issued = 0
        self._succeeded = 0
        self._failed = 0
        self._killed = 0
        self._failures: deque[_Ended] = deque(maxlen=max_failures)
        self._tails: dict[int, tuple[str, ...]] = {}
        self._bucket_seconds = bucket_seconds
        self._buckets: deque[list[int]] = deque(maxlen=buckets)  # [bucket index, count]
        self._snapshot_max_age = snapshot_max_age
        self._cached: Snapshot | None = None
        self._drain_interval = drain_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the scheduling path
    def observe(self, event: Event, actions: Sequence[Action]) -> None:
        """An event the core took and the actions it returned (never changed later)."""
        self._inbox.append((event, actions))

    # ------------------------------------------------------------------ its own thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mesobatch-status",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._drain_interval):
            self.drain()

    def drain(self) -> None:
        """Take in everything observed so far."""
        with self._lock:
            inbox = self._inbox
            if not inbox:
                return
            while inbox:
                event, actions = inbox.popleft()
                self._apply(event, actions)
            launched = len(self._by_task)
            self.metrics.jobs.labels("running").set(launched)
            self.metrics.jobs.labels("queued").set(len(self._jobs) - launched)

    # ------------------------------------------------------------------ bookkeeping
    def _apply(self, event: Event, actions: Sequence[Action]) -> None:
        m = self.metrics
        now = event.now
        if isinstance(event, JobsSubmitted):
            for spec in event.jobs:
                self._jobs[spec.job_id] = _Job(spec.job_id, spec.name, spec.cores,
                                               spec.memory, now)
            self._issued += len(event.jobs)
            m.issued.inc(len(event.jobs))
        elif isinstance(event, KillRequested):
            for job_id in event.job_ids:
                job = self._jobs.pop(job_id, None)
                if job is not None:
                    self._unlaunch(job)
                    self._killed += 1
                    m.finished.labels("killed").inc()
        elif isinstance(event, OffersReceived):
            m.offers_received.inc(len(event.offers))
        elif isinstance(event, TaskStatus):
            self._task_status(event)
        elif isinstance(event, Disconnected):
            m.backend_errors.labels("disconnected").inc()
        for action in actions:
            if isinstance(action, Launch):
                for task in action.tasks:
                    job = self._jobs.get(task.job.job_id)
                    if job is not None:
                        self._unlaunch(job)
                        job.task_id = task.task_id
                        job.node = action.hostname or action.agent_id
                        job.launched_at = now
                        self._by_task[task.task_id] = job
            elif isinstance(action, Decline):
                m.offers_declined.inc(len(action.offer_ids))
            elif isinstance(action, Report):
                self._report(action, now)
        if isinstance(event, TaskStatus) and (event.never_started or event.id_taken):
            # queued again, unless relaunched or reported in the same breath
            job = self._by_task.get(event.task_id)
            if job is not None and job.task_id == event.task_id:
                self._unlaunch(job)

    def _task_status(self, event: TaskStatus) -> None:
        if event.launch_refused:
            self.metrics.backend_errors.labels("launch_refused").inc()
        job = self._by_task.get(event.task_id)
        if job is None or job.started_at is not None:
            return
        if event.state is TaskState.RUNNING:
            job.started_at = event.now
            self.metrics.issue_to_start.observe(max(0.0, event.now - job.issued_at))

    def _unlaunch(self, job: _Job) -> None:
        if job.task_id is not None:
            self._by_task.pop(job.task_id, None)
        job.task_id = None
        job.node = ""
        job.launched_at = job.started_at = None

    def _report(self, report: Report, now: float) -> None:
        info = report.info
        job = self._jobs.pop(info.jobID, None)
        if job is None:
            return
        node = job.node
        self._unlaunch(job)
        reason = info.exitReason
        ok = reason is BatchJobExitReason.FINISHED and info.exitStatus == 0
        result = "succeeded" if ok else (reason.name.lower() if reason else "failed")
        self.metrics.finished.labels(result).inc()
        wall = info.wallTime or 0.0
        self.metrics.run_time.observe(max(0.0, wall))
        if reason is BatchJobExitReason.ERROR:
            self.metrics.backend_errors.labels("job_error").inc()
        if ok:
            self._succeeded += 1
        elif reason is BatchJobExitReason.KILLED:
            self._killed += 1
        else:
            self._failed += 1
            if len(self._failures) == self._failures.maxlen:
                self._tails.pop(self._failures[0].job_id, None)
            self._failures.append(_Ended(job.job_id, job.name, result, info.exitStatus, wall,
                                         node, now, report.message))
        bucket = int(now // self._bucket_seconds)
        if self._buckets and self._buckets[-1][0] == bucket:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([bucket, 1])

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> Snapshot:
        """The status now; one taken less than ``snapshot_max_age`` ago is reused, so any
        number of clients cost the scheduler at most one look per interval."""
        with self._snapshot_lock:
            cached = self._cached
            if cached is not None and self._clock() - cached.taken_at < self._snapshot_max_age:
                return cached
            live = self._live()  # the batch system's lock, briefly
            self.drain()
            now = self._clock()
            with self._lock:
                snap = self._build(live, now)
            self._cached = snap
            return snap

    def _build(self, live: LiveView, now: float) -> Snapshot:
        launched = list(self._by_task.values())
        launched.sort(key=lambda j: j.started_at or j.launched_at or now)
        running = tuple(
            RunningJob(j.job_id, j.name, j.node,
                       "running" if j.started_at is not None else "launching",
                       max(0.0, now - (j.started_at or j.launched_at or now)), j.cores,
                       j.memory)
            for j in launched[:MAX_RUNNING_SHOWN])
        failures = []
        for ended in reversed(self._failures):
            path = self._log_path(ended.job_id, ended.name)
            tail = self._tails.get(ended.job_id)
            if tail is None:
                tail = self._tails[ended.job_id] = read_tail(path)
            failures.append(Failure(ended.job_id, ended.name, ended.result, ended.exit_code,
                                    ended.wall_time, ended.node, ended.ended_at,
                                    ended.message, path, tail))
        totals = Totals(issued=self._issued, queued=len(self._jobs) - len(launched),
                        running=len(launched), succeeded=self._succeeded,
                        failed=self._failed, killed=self._killed)
        return Snapshot(
            backend=self.backend, workflow_id=self.workflow_id,
            started_at=self._started_at, taken_at=now, totals=totals, queue=live.queue,
            nodes=live.nodes, running=running,
            running_not_shown=max(0, len(launched) - MAX_RUNNING_SHOWN),
            failures=tuple(failures), throughput=self._throughput(now),
            bucket_seconds=self._bucket_seconds, status_message=live.status_message,
            note=live.note, fatal_error=live.fatal_error)

    def _throughput(self, now: float) -> tuple[float, ...]:
        """Jobs finished per second in each bucket of the window, up to now (the last
        bucket is the current one, not yet full)."""
        size = self._buckets.maxlen or 1
        last = int(now // self._bucket_seconds)
        counts = dict((b, c) for b, c in self._buckets)
        first = last - size + 1
        return tuple(counts.get(b, 0) / self._bucket_seconds for b in range(first, last + 1))
