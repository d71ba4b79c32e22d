"""The recorder: follows the core's events and actions for what only they tell (results,
failures, throughput, issue-to-start and run times, offers, errors), and makes
snapshots of it together with the core's live state.

``observe`` is the only call on the scheduling path: one append to a deque, no lock.
The recorder's thread (or a snapshot) takes what was appended and does the work. What
the core itself holds (the queue, running tasks, nodes) is not copied event by event:
a snapshot reads it once (``live``), under the batch system's lock, briefly.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..contract import BatchJobExitReason, JobUsage
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
from ..core.jobs import JobSpec
from ..core.states import TaskState
from ..run_results import far_over
from .metrics import Counts, Metrics
from .snapshot import Failure, Finished, LiveView, Snapshot, Totals

_FINISHED = BatchJobExitReason.FINISHED
_RUNNING = TaskState.RUNNING

#: bytes read from the end of a failed job's log, and lines of it kept
TAIL_BYTES = 4096
TAIL_LINES = 10


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
    cores: float  #: asked
    memory: int  #: bytes asked
    usage: JobUsage | None  #: what it used, as its node measured it

    def used(self) -> dict[str, Any]:
        """What it asked and used, and how far over (the run summary's rule)."""
        usage = self.usage
        return {"cores": self.cores, "memory": self.memory,
                "peak_memory": usage.peak_memory if usage else None,
                "cpu_time": usage.cpu_time if usage else None,
                "over": tuple(far_over(self.cores, self.memory, usage, self.wall_time))}


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
                 max_failures: int = 20, max_finished: int = 20,
                 bucket_seconds: float = 10.0, buckets: int = 60,
                 snapshot_max_age: float = 0.5, drain_interval: float = 0.5) -> None:
        self.backend = backend
        self.workflow_id = workflow_id
        self._counts = Counts()
        self.metrics = Metrics(self.counts)
        self._live = live
        self._log_path = log_path
        self._clock = clock
        self._started_at = clock()
        self._inbox: deque[tuple[Event, Sequence[Action]]] = deque()
        self._lock = threading.Lock()  # the bookkeeping below
        self._snapshot_lock = threading.Lock()  # one snapshot built at a time
        self._open: dict[int, JobSpec] = {}  # issued, not finished or killed
        self._waiting_since: dict[int, float] = {}  # issued, not yet started -> issue time
        self._tasks: dict[str, tuple[int, str]] = {}  # launched -> (job id, node)
        self._succeeded = 0
        self._failed = 0
        self._killed = 0
        self._failures: deque[_Ended] = deque(maxlen=max_failures)
        self._tails: dict[int, tuple[str, ...]] = {}
        self._finished: deque[_Ended] = deque(maxlen=max_finished)  # recent successes
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
            events = self._EVENTS
            task_status = self._task_status
            while inbox:
                event, actions = inbox.popleft()
                kind = type(event)
                if kind is TaskStatus:  # the most frequent, two per job
                    task_status(event)  # type: ignore[arg-type]
                else:
                    handler = events.get(kind)
                    if handler is not None:
                        handler(self, event)
                if actions:
                    self._actions(event, actions)

    # ------------------------------------------------------------------ bookkeeping
    def _actions(self, event: Event, actions: Sequence[Action]) -> None:
        now = event.now
        for action in actions:
            if isinstance(action, Report):
                self._report(action, now)
            elif isinstance(action, Launch):
                node = action.hostname or action.agent_id
                tasks = self._tasks
                for task in action.tasks:
                    tasks[task.task_id] = (task.job.job_id, node)
            elif isinstance(action, Decline):
                self._counts.offers_declined += len(action.offer_ids)

    def _submitted(self, event: JobsSubmitted) -> None:
        jobs = event.jobs
        if len(jobs) == 1:  # issueBatchJob: one at a time
            spec = jobs[0]
            self._open[spec.job_id] = spec
            self._waiting_since[spec.job_id] = event.now
        else:
            self._open.update((spec.job_id, spec) for spec in jobs)
            self._waiting_since.update(dict.fromkeys([spec.job_id for spec in jobs],
                                                     event.now))
        self._counts.issued += len(jobs)

    def _kill(self, event: KillRequested) -> None:
        for job_id in event.job_ids:
            if self._open.pop(job_id, None) is not None:
                self._waiting_since.pop(job_id, None)
                self._killed += 1
                self._finish("killed")

    def _offers(self, event: OffersReceived) -> None:
        self._counts.offers_received += len(event.offers)

    def _disconnected(self, event: Disconnected) -> None:
        self._counts.backend_errors["disconnected"] += 1

    def _task_status(self, event: TaskStatus) -> None:
        if event.state is _RUNNING:
            task = self._tasks.get(event.task_id)
            if task is not None:
                issued = self._waiting_since.pop(task[0], None)
                if issued is not None:
                    wait = event.now - issued
                    self._counts.issue_to_start.observe(wait if wait > 0 else 0.0)
        elif event.state.terminal:
            if event.launch_refused:
                self._counts.backend_errors["launch_refused"] += 1
            task = self._tasks.get(event.task_id)
            # the task of a killed job, or one that never started, is not reported: forget
            # it here (a reported one goes with its report, which names its node)
            if task is not None and (event.never_started or event.id_taken
                                     or task[0] not in self._open):
                del self._tasks[event.task_id]

    _EVENTS: ClassVar[dict[type[Any], Callable[[Recorder, Any], None]]] = {
        JobsSubmitted: _submitted,
        KillRequested: _kill,
        OffersReceived: _offers,
        Disconnected: _disconnected,
    }

    def _finish(self, result: str) -> None:
        finished = self._counts.finished
        finished[result] = finished.get(result, 0) + 1

    def _report(self, report: Report, now: float) -> None:
        # the common case (a success) in as few steps as can be: it runs once per job
        info = report.info
        job_id = info.jobID
        spec = self._open.pop(job_id, None)
        if spec is None:
            return
        self._waiting_since.pop(job_id, None)
        task = self._tasks.pop(info.backing_id, None)  # type: ignore[arg-type]
        wall = info.wallTime or 0.0
        self._counts.run_time.observe(wall if wall > 0 else 0.0)
        usage = info.usage
        node = task[1] if task else (usage.node or "" if usage else "")
        if info.exitReason is _FINISHED and info.exitStatus == 0:
            self._succeeded += 1
            self._finished.append(_Ended(job_id, spec.name, "succeeded", 0, wall, node, now,
                                         "", spec.cores, spec.memory, usage))
        else:
            self._unsuccessful(spec, report, node, wall, now)
        bucket = int(now // self._bucket_seconds)
        buckets = self._buckets
        if buckets and buckets[-1][0] == bucket:
            buckets[-1][1] += 1
        else:
            buckets.append([bucket, 1])

    def _unsuccessful(self, spec: JobSpec, report: Report, node: str, wall: float,
                      now: float) -> None:
        info = report.info
        reason = info.exitReason
        result = reason.name.lower() if reason else "failed"
        self._finish(result)
        if reason is BatchJobExitReason.KILLED:
            self._killed += 1
            return
        if reason is BatchJobExitReason.ERROR:
            self._counts.backend_errors["job_error"] += 1
        self._failed += 1
        if len(self._failures) == self._failures.maxlen:
            self._tails.pop(self._failures[0].job_id, None)
        self._failures.append(_Ended(spec.job_id, spec.name, result, info.exitStatus, wall,
                                     node, now, report.message, spec.cores, spec.memory,
                                     info.usage))

    # ------------------------------------------------------------------ reading
    def counts(self) -> Counts:
        """The metrics' counts now: what was observed, and the core's queue and running
        jobs (from the latest snapshot)."""
        totals = self.snapshot().totals
        with self._lock:
            counts = copy.deepcopy(self._counts)
            if self._succeeded:
                counts.finished["succeeded"] = self._succeeded
        return replace(counts, queued=totals.queued, running=totals.running)

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
        # tasks launched since live was read are not shown yet; jobs reported since then
        # are not shown as running: what is listed is one moment of the core's
        running = tuple(r for r in live.running if r.job_id in self._open)
        failures = []
        for ended in reversed(self._failures):
            path = self._log_path(ended.job_id, ended.name)
            tail = self._tails.get(ended.job_id)
            if tail is None:
                tail = self._tails[ended.job_id] = read_tail(path)
            failures.append(Failure(ended.job_id, ended.name, ended.result, ended.exit_code,
                                    ended.wall_time, ended.node, ended.ended_at,
                                    ended.message, path, tail, **ended.used()))
        finished = tuple(Finished(e.job_id, e.name, e.node, e.wall_time, e.ended_at,
                                  **e.used()) for e in reversed(self._finished))
        totals = Totals(issued=self._counts.issued, queued=live.queued,
                        running=live.running_count, succeeded=self._succeeded,
                        failed=self._failed, killed=self._killed)
        return Snapshot(
            backend=self.backend, workflow_id=self.workflow_id,
            started_at=self._started_at, taken_at=now, totals=totals, queue=live.queue,
            nodes=live.nodes, running=running,
            running_not_shown=max(0, live.running_count - len(running)),
            failures=tuple(failures), throughput=self._throughput(now),
            bucket_seconds=self._bucket_seconds, status_message=live.status_message,
            note=live.note, fatal_error=live.fatal_error, finished=finished)

    def _throughput(self, now: float) -> tuple[float, ...]:
        """Jobs finished per second in each bucket of the window, up to now (the last
        bucket is the current one, not yet full)."""
        size = self._buckets.maxlen or 1
        last = int(now // self._bucket_seconds)
        counts = dict((b, c) for b, c in self._buckets)
        return tuple(counts.get(b, 0) / self._bucket_seconds
                     for b in range(last - size + 1, last + 1))
