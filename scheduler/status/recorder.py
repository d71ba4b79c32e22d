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
from bisect import bisect_left
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
from ..core.states import TERMINAL, TaskState
from ..run_results import far_over
from .metrics import Counts, Metrics
from .snapshot import Failure, Finished, LiveView, Snapshot, Totals

_FINISHED = BatchJobExitReason.FINISHED
_ERROR = BatchJobExitReason.ERROR
_RUNNING = TaskState.RUNNING
_TERMINAL = TERMINAL
_DONE = TaskState.FINISHED

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
                "memory_at_most": usage.memory_at_most if usage else None,
                "cpu_time": usage.cpu_time if usage else None,
                "over": tuple(far_over(self.cores, self.memory, usage, self.wall_time))}


def _finished(spec: JobSpec, wall: float, node: str, ended_at: float,
              usage: JobUsage | None) -> Finished:
    """A recent success as shown (twenty per snapshot: made directly, no detour)."""
    if usage is None:
        return Finished(spec.job_id, spec.name, node, wall, ended_at, spec.cores, spec.memory,
                        None, None, ())
    return Finished(spec.job_id, spec.name, node, wall, ended_at, spec.cores, spec.memory,
                    usage.peak_memory, usage.cpu_time,
                    tuple(far_over(spec.cores, spec.memory, usage, wall)), usage.memory_at_most)


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
        #: recent successes, as taken in: made into records only when shown
        self._finished: deque[tuple[JobSpec, float, str, float, JobUsage | None]] = deque(
            maxlen=max_finished)
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
            self._drain()

    def _drain(self) -> None:
        # once per event, three or four per job: one loop, its attributes in locals,
        # the common cases inline (a call costs as much as the work it would do)
        inbox = self._inbox
        if not inbox:
            return
        events = self._EVENTS
        open_jobs = self._open
        waiting = self._waiting_since
        tasks = self._tasks
        finished = self._finished
        counts = self._counts
        wait_hist = counts.issue_to_start
        wait_bounds, wait_counts = wait_hist.bounds, wait_hist.counts
        run_hist = counts.run_time
        run_bounds, run_counts = run_hist.bounds, run_hist.counts
        wait_total = run_total = 0.0
        issued = succeeded = 0
        bucket_seconds = self._bucket_seconds
        buckets = self._buckets
        bucket, in_bucket = buckets[-1] if buckets else (None, 0)
        popleft = inbox.popleft
        while inbox:
            event, actions = popleft()
            kind = type(event)
            if type(event) is TaskStatus:  # the most frequent, two per job
                state = event.state
                if state is _RUNNING:
                    task = tasks.get(event.task_id)
                    if task is not None:
                        since = waiting.pop(task[0], None)
                        if since is not None:
                            wait = event.now - since
                            if wait < 0:
                                wait = 0.0
                            wait_counts[bisect_left(wait_bounds, wait)] += 1
                            wait_total += wait
                elif state is _DONE or state in _TERMINAL:
                    if event.launch_refused or event.never_started or event.id_taken:
                        self._task_ended(event)
                    else:  # the common case: its report (in actions) forgets it
                        task = tasks.get(event.task_id)
                        if task is not None and task[0] not in open_jobs:
                            del tasks[event.task_id]
            elif type(event) is JobsSubmitted:
                jobs = event.jobs
                now = event.now
                for spec in jobs:
                    open_jobs[spec.job_id] = spec
                    waiting[spec.job_id] = now
                issued += len(jobs)
            else:
                handler = events.get(kind)
                if handler is not None:
                    handler(self, event)
            if not actions:
                continue
            now = event.now
            for action in actions:
                if type(action) is Report:
                    # a job's end, once per job; a success in as few steps as can be
                    info = action.info
                    job_id = info.jobID
                    ended = open_jobs.pop(job_id, None)
                    if ended is None:
                        continue
                    since = waiting.pop(job_id, None)
                    task = tasks.pop(info.backing_id, None)  # type: ignore[arg-type]
                    wall = info.wallTime or 0.0
                    if wall < 0:
                        wall = 0.0
                    if since is not None and info.exitReason is not _ERROR:
                        # ended before anybody said RUNNING (a short job's terminal
                        # status comes alone): it started its wall time before its end
                        wait = now - wall - since
                        if wait < 0:
                            wait = 0.0
                        wait_counts[bisect_left(wait_bounds, wait)] += 1
                        wait_total += wait
                    run_counts[bisect_left(run_bounds, wall)] += 1
                    run_total += wall
                    usage = info.usage
                    node = task[1] if task else (usage.node or "" if usage else "")
                    if info.exitReason is _FINISHED and info.exitStatus == 0:
                        succeeded += 1
                        finished.append((ended, wall, node, now, usage))
                    else:
                        self._unsuccessful(ended, action, node, wall, now)
                    b = int(now // bucket_seconds)
                    if b == bucket:
                        in_bucket += 1
                    else:
                        if bucket is not None:
                            self._count_bucket(bucket, in_bucket)
                        bucket, in_bucket = b, 1
                elif type(action) is Launch:
                    node = action.hostname or action.agent_id
                    for launched in action.tasks:
                        tasks[launched.task_id] = (launched.job.job_id, node)
                elif type(action) is Decline:
                    counts.offers_declined += len(action.offer_ids)
        if bucket is not None:
            self._count_bucket(bucket, in_bucket)
        wait_hist.total += wait_total
        run_hist.total += run_total
        counts.issued += issued
        self._succeeded += succeeded

    def _count_bucket(self, bucket: int, count: int) -> None:
        """Jobs finished in a throughput bucket: the last one's count, or a new one."""
        buckets = self._buckets
        if buckets and buckets[-1][0] == bucket:
            buckets[-1][1] = count
        else:
            buckets.append([bucket, count])

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

    def _task_ended(self, event: TaskStatus) -> None:
        if event.launch_refused:
            self._counts.backend_errors["launch_refused"] += 1
        task = self._tasks.get(event.task_id)
        # the task of a killed job, or one that never started, is not reported: forget
        # it here (a reported one goes with its report, which names its node)
        if task is not None and (event.never_started or event.id_taken
                                 or task[0] not in self._open):
            del self._tasks[event.task_id]

    _EVENTS: ClassVar[dict[type[Any], Callable[[Recorder, Any], None]]] = {
        KillRequested: _kill,
        OffersReceived: _offers,
        Disconnected: _disconnected,
    }

    def _finish(self, result: str) -> None:
        finished = self._counts.finished
        finished[result] = finished.get(result, 0) + 1

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
        finished = tuple(_finished(spec, wall, node, ended_at, usage)
                         for spec, wall, node, ended_at, usage in reversed(self._finished))
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
