"""The batch-queue base: all a Slurm, Grid Engine, LSF, PBS or HTCondor backend does
that is not the system's own syntax.

A system backend is a subclass that names itself, its options and its ``Dialect``
(pure builders and parsers, dialect.py). The base owns every command (commands.py),
and two threads, so that no command ever runs under the batch system's lock:

- the submitter takes the tasks the core launched, writes a wrapper script per job
  (wrapper.py), submits jobs of one shape issued together as one array (unless arrays
  are off), and cancels killed jobs (a job killed before its submission is never
  submitted; one killed while being submitted is cancelled as soon as its id is known);
  where a subclass packs jobs of less than a core (``pack_size``, packing.py), the
  array's elements are packs, and a job killed inside a pack whose other jobs live on
  is killed by its marker file instead of a cancel;
- the poller asks the queue about every job of the run in ONE status query per poll
  interval (in chunks only beyond the dialect's ``query_chunk``), asks accounting only
  about jobs gone from the queue, reads the wrappers' records in between, and applies
  the rules of tracking.py (records as ground truth, the vanished rule). The interval
  follows how long the query took, between --pollInterval and --maxPollInterval.

What may run at once is an emulated offer of one agent (the queue): a job count,
--maxJobs, and no resource counts, so the cluster's own scheduler (its priorities and
fair share) decides the order and placement; --maxTotalCores, if set, also caps the
cores of the run's jobs in the system at once.

Optional hooks a dialect may have (absent: the plain behaviour):

- ``accounting_queries(run_tag, ids)``: the accounting commands that together cover
  these ids (Grid Engine's ``qacct`` takes one job per call, or a name pattern);
- ``explain_argv(ids)`` / ``parse_explain(result)``: the system's reason for jobs the
  queue shows in an error state (Grid Engine's ``Eqw``); such a job ends ERROR with that
  reason and is removed from the queue, where it would otherwise wait for ever;
- ``reserved_exit_codes``: exit statuses the system takes for itself (Grid Engine
  requeues a job whose script exits 99); the wrapper records the command's own status
  and exits 1 instead.
"""

from __future__ import annotations

import abc
import atexit
import itertools
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, TypeVar

from ...executor.protocol import log_path
from ...executor.runner import build_environment
from ...scheduler.backend import BackendContext, Post
from ...scheduler.contract import NodeInfo
from ...scheduler.core.events import Event, TaskLaunch, TaskStatus
from ...scheduler.core.jobs import JobSpec
from ...scheduler.core.resources import offered_cpus_to_milli
from ...scheduler.core.states import TaskState
from ..emulated import UNBOUNDED, Capacity, EmulatedNode, LimitNames
from ..submitted import Phase, SubmittingBackend, run_tag
from .commands import CommandError, Commands, Retry
from .dialect import CommandResult, Dialect, ErrorKind, NativeStatus, Submission
from .options import BatchQueueOptions
from .packing import pack_request
from .tracking import Evidence, Tracker, Verdict
from .wrapper import (
    EXITED,
    KILL,
    ExitRecord,
    StartRecord,
    array_script,
    job_script,
    pack_script,
    read_records,
    write_script,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: most job ids one cancel command names (every system's cancel takes a list)
CANCEL_CHUNK = 200


@dataclass(slots=True)
class _Job:
    task_id: str
    spec: JobSpec
    phase: Phase = Phase.WAITING
    native_id: str = ""
    tracker: Tracker | None = None
    kill: bool = False  #: the core asked to kill it
    cancelling: bool = False  #: a cancel is queued or running
    reported: TaskState | None = None  #: the last live state posted
    node: str | None = None  #: where it runs: the system's name, else the record's
    native_node: str | None = None  #: where the system says it runs
    packed: bool = False  #: runs in a pack with other jobs (under the pack's native id)
    pack_signalled: str | None = None  #: the file its pack creates when signalled
    pending_reason: str | None = None
    started: StartRecord | None = None
    exited: ExitRecord | None = None


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    size = max(1, size)
    for i in range(0, len(items), size):
        yield items[i:i + size]


class BatchQueueBackend(SubmittingBackend[_Job]):
    """Base of the batch-queue backends. A subclass sets ``name`` and
    ``options_class`` (a BatchQueueOptions subclass) and implements ``make_dialect``;
    it may override ``limits`` (the largest job the cluster can ever run)."""

    options_class: ClassVar[type[BatchQueueOptions]] = BatchQueueOptions
    shared_log_dir = True
    #: the submitter waits this long for more launches, so a burst becomes one array
    submit_linger: ClassVar[float] = 0.02
    #: ... and, while launches keep coming, at most this long (a burst issued in a loop)
    submit_linger_max: ClassVar[float] = 0.5
    #: each status query that learns nothing the records had not told (no job ended
    #: without an exit record, none waits for its failure's reason) doubles the poll
    #: interval, up to --maxPollInterval; one that does resets it. The records report
    #: every job that ends by itself, so the queue is asked mostly about the others.
    quiet_backoff: ClassVar[bool] = False
    #: polls a non-zero exit record waits for accounting to say why (MEMLIMIT, ...)
    reason_grace_polls: ClassVar[int] = 2
    #: the poll interval is this many times the last query's duration (within bounds)
    query_time_factor: ClassVar[float] = 10.0

    @abc.abstractmethod
    def make_dialect(self) -> Dialect:
        """The system's builders and parsers, made from ``self.options``."""

    def __init__(self, options: BatchQueueOptions, post: Post,
                 context: BackendContext) -> None:
        super().__init__(options, post, context)
        self.options: BatchQueueOptions = options
        self._stop = threading.Event()
        # made first, so that make_dialect may ask the cluster (scontrol show config)
        self.commands = Commands(self._classify,
                                 timeout=options.command_timeout,
                                 retry=Retry(options.command_attempts), stop=self._stop)
        self.dialect = self.make_dialect()
        self.run_tag = run_tag(context.workflow_id)
        base = os.path.join(context.log_dir, f".mesobatch-{self.run_tag}")
        self.script_dir = os.path.join(base, "scripts")
        self.record_dir = os.path.join(base, "records")
        self.system_dir = os.path.join(base, "system")
        for d in (self.script_dir, self.record_dir, self.system_dir):
            os.makedirs(d, exist_ok=True)
        self.work_dir = os.getcwd()
        self.agent_id = self.dialect.name
        #: seconds a system may take to write a finished job's accounting: a job gone
        #: from the queue is not LOST before (a subclass sets it from its options)
        self.accounting_delay = 0.0
        #: seconds between status queries now (adapts to how long queries take)
        self.poll_interval = options.poll_interval
        self.polls = 0  #: status queries that answered
        self._exclude: set[str] = set()
        self._node_names: dict[str, str] = {}  # address in getNodes -> the system's name
        self._finished_in_status: bool = getattr(self.dialect, "finished_in_status", False)
        self._arrays = itertools.count(1)
        self._packs: dict[str, list[_Job]] = {}  # a pack's native id -> its jobs
        self._unpackable: set[tuple[object, ...]] = set()  # shapes whose pack was refused
        self._has_accounting: bool | None = None  # known once accounting was needed
        self._query_failures = 0
        self._quiet_polls = 0  # answered queries in a row that told nothing new

        self._submitter = threading.Thread(target=self._submit_loop, daemon=True,
                                           name=f"mesobatch-{self.name}-submit")
        self._poller = threading.Thread(target=self._poll_loop, daemon=True,
                                        name=f"mesobatch-{self.name}-poll")

    limit_names: ClassVar[LimitNames] = LimitNames(cores="maxTotalCores")

    def _classify(self, result: CommandResult) -> ErrorKind:
        return self.dialect.classify(result)

    # ------------------------------------------------------------------ emulation
    def emulated_nodes(self) -> Sequence[EmulatedNode]:
        max_jobs = self.options.max_jobs or None
        total = self.options.max_total_cores
        resources = None if total is None else replace(
            UNBOUNDED, cpus=offered_cpus_to_milli(total))
        return [EmulatedNode(self.agent_id, self.dialect.name, "",
                             Capacity(resources, max_jobs))]

    def start(self) -> list[Event]:
        events = super().start()
        self._submitter.start()
        self._poller.start()
        atexit.register(self._atexit)
        return events

    def new_job(self, task: TaskLaunch, node: EmulatedNode) -> _Job:
        return _Job(task.task_id, task.job)

    def agent_of(self, job: _Job) -> str:
        return self.agent_id

    # ------------------------------------------------------------------ nodes
    def node_infos(self, preemptible: bool | None, timeout: float | None
                   ) -> dict[str, NodeInfo] | None:
        argv = self.dialect.nodes_argv()
        if argv is None or preemptible:  # no node list; nodes are not preemptible
            return {}
        try:
            nodes = self.dialect.parse_nodes(self.commands.run(argv))
        except (CommandError, ValueError) as e:
            log.warning("cannot list the %s nodes: %s", self.name, e)
            return {}
        with self._jobs_lock:
            placed = [(j.node, j.spec) for j in self._jobs.values() if j.node]
        out: dict[str, NodeInfo] = {}
        names: dict[str, str] = {}
        for n in nodes:
            if not n.usable:
                continue
            names[n.address or n.name] = n.name
            ours = [spec for where, spec in placed if _same_node(where, n.name)]
            out[n.address or n.name] = NodeInfo(
                coresUsed=min(1.0, n.cpu_load or 0.0),  # a load may exceed the cores
                memoryUsed=(1 - n.memory_free / n.memory)
                if n.memory_free is not None and n.memory else 0.0,
                coresTotal=n.cores, memoryTotal=n.memory,
                requestedCores=sum(s.cores for s in ours),
                requestedMemory=sum(s.memory for s in ours), workers=len(ours))
        with self._jobs_lock:  # callers name nodes by these keys (an address, maybe)
            self._node_names.update(names)
        return out

    def node_in_use(self, address: str) -> bool | None:
        with self._jobs_lock:
            name = self._node_names.get(address, address)
            return any(j.node and _same_node(j.node, name) for j in self._jobs.values())

    def node_ignored(self, address: str, ignored: bool) -> None:
        with self._jobs_lock:
            name = self._node_names.get(address, address)  # submissions exclude by name
            if ignored:
                self._exclude.add(name)
            else:
                self._exclude.discard(name)

    # ------------------------------------------------------------------ messages
    def status_note(self) -> str | None:
        notes = [super().status_note()]
        live, unsent = self._live_and_unsent()
        pending = Counter(j.pending_reason or "no reason given" for j in live
                          if j.reported is not TaskState.RUNNING)
        running = len(live) - sum(pending.values())
        if pending:
            reasons = ", ".join(f"{reason} {n}" for reason, n in pending.most_common())
            notes.append(f"In the {self.dialect.name} queue: {sum(pending.values())} pending "
                         f"({reasons}), {running} running.")
        if unsent:
            notes.append(f"{unsent} being submitted.")
        if self._fatal:
            notes.append(self._fatal)
        return " ".join(n for n in notes if n) or None

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Cancel what is still in the queue (the batch system killed every job before
        calling this, so the cancels are queued), in bounded time, then stop."""
        self._stop_submitting()
        self._stop.set()  # no more retries or backoff: one attempt each from now on
        bound = 2 * self.options.command_timeout + 5
        if self._submitter.is_alive():
            self._submitter.join(timeout=bound)
        with self._jobs_lock:
            self._poll_ready.notify_all()
        if self._poller.is_alive():
            self._poller.join(timeout=bound)
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        """The interpreter ends without shutdown(): take this run's jobs off the queue."""
        self._stop.set()
        with self._jobs_lock:
            ids = list(dict.fromkeys(j.native_id for j in self._jobs.values()
                                     if j.phase is Phase.SUBMITTED))
        for chunk in chunks(ids, CANCEL_CHUNK):
            try:
                self.commands.run(self.dialect.cancel_argv(chunk), retry=False)
            except CommandError as e:
                log.warning("cannot cancel jobs %s at exit: %s", " ".join(chunk), e)

    # ------------------------------------------------------------------ submitter
    def _submit_loop(self) -> None:
        while True:
            with self._jobs_lock:
                while not (self._to_cancel or self._to_submit or self._stopping):
                    self._work_ready.wait()
                cancels, self._to_cancel = self._to_cancel, []
                stopping = self._stopping
            if cancels:
                self._cancel(cancels)
                continue
            if stopping:
                self._drop_unsubmitted()
                return
            self._linger()  # a burst arriving becomes one batch
            with self._jobs_lock:
                batch = [j for j in self._to_submit if j.task_id in self._jobs]
                self._to_submit = []
                exclude = tuple(sorted(self._exclude))
            for group in self._groups(batch):
                self._submit(group, exclude)
                with self._jobs_lock:
                    cancels, self._to_cancel = self._to_cancel, []
                if cancels:  # kills do not wait for the rest of a long burst
                    self._cancel(cancels)

    def _linger(self) -> None:
        """Wait ``submit_linger``, again while more launches arrived meanwhile, at most
        ``submit_linger_max`` in all."""
        deadline = time.monotonic() + self.submit_linger_max
        while True:
            with self._jobs_lock:
                before = len(self._to_submit)
            if self._stop.wait(min(self.submit_linger, max(0.0, deadline - time.monotonic()))):
                return
            with self._jobs_lock:
                if len(self._to_submit) == before or time.monotonic() >= deadline:
                    return

    def pack_size(self, spec: JobSpec) -> int:
        """How many jobs of this shape may run together in one allocation (a pack);
        1: none (the base's default; a subclass that packs overrides it)."""
        return 1

    def _groups(self, batch: list[_Job]) -> list[list[list[_Job]]]:
        """Submissions: jobs of one shape together (in launch order), in packs of
        ``pack_size`` jobs, the packs in arrays of at most the system's size (each
        pack alone if arrays are off). An element of an array is a pack, or one job."""
        most = self.dialect.max_array_size if self.options.job_arrays else 1
        by_shape: dict[tuple[object, ...], list[_Job]] = {}
        for job in batch:
            by_shape.setdefault(_shape(job.spec), []).append(job)
        out: list[list[list[_Job]]] = []
        for shape, jobs in by_shape.items():
            size = 1 if shape in self._unpackable else self.pack_size(jobs[0].spec)
            packs = [list(p) for p in chunks(jobs, size)]
            out += [list(c) for c in chunks(packs, max(1, most))]
        return out

    def _submit(self, elements: list[list[_Job]], exclude: tuple[str, ...]) -> None:
        with self._jobs_lock:  # those killed meanwhile are gone (and were reported)
            elements = [e for e in ([j for j in p if j.task_id in self._jobs]
                                    for p in elements) if e]
            for element in elements:
                for job in element:
                    job.phase = Phase.SUBMITTING
        if not elements:
            return
        group = [job for element in elements for job in element]
        spec = group[0].spec
        widest = max(len(e) for e in elements)
        # every element asks for what the largest pack needs (an array has one shape)
        need = pack_request(milli_cores=spec.resources.cpus, memory=spec.memory,
                            disk=spec.disk, jobs=widest)
        try:
            scripts = [self._write_element(element) for element in elements]
            dispatcher = None
            if len(elements) > 1:
                dispatcher = os.path.join(self.script_dir, f"array-{next(self._arrays)}.sh")
                write_script(dispatcher, array_script(
                    scripts=scripts, index_variable=self.dialect.array_index_variable,
                    first_index=self.dialect.array_first_index))
            sub = Submission(
                name=self.job_name(spec), scripts=tuple(scripts),
                array_script=dispatcher, system_output=self.system_dir,
                work_dir=self.work_dir,
                cores=spec.cores if widest == 1 else float(need.cpus),
                memory=need.memory, disk=need.disk, gpus=spec.resources.gpus,
                walltime=spec.walltime, preemptible=spec.preemptible, exclude=exclude)
            files = getattr(self.dialect, "submit_files", None)
            for path, text in (files(sub) if files is not None else {}).items():
                with open(path, "w") as f:
                    f.write(text)
            result = self.commands.run(self.dialect.submit_argv(sub))
            ids = self.dialect.parse_submit(sub, result)
            if len(ids) != len(elements):
                raise ValueError(f"{self.dialect.name} gave {len(ids)} job ids for "
                                 f"{len(elements)} submitted: {result.stdout.strip()[:300]!r}")
        except (CommandError, OSError, ValueError) as e:
            if widest > 1 and isinstance(e, CommandError) and e.kind is ErrorKind.PERMANENT:
                # the system refuses what a pack asks for (the summed --tmp beyond the
                # nodes' disk, a QOS limit on CPUs, ...), maybe not what a job does
                log.warning("%s refused a pack of %d jobs (%s); its shape is submitted "
                            "unpacked from now on", self.name, widest, e)
                self._unpackable.add(_shape(spec))
                self._submit([[job] for job in group], exclude)
                return
            now = time.time()
            self._end([(job, TaskStatus(job.task_id, TaskState.ERROR, now,
                                        message=f"cannot submit: {e}",
                                        agent_id=self.agent_id)) for job in group])
            return
        cancels: list[_Job] = []
        with self._jobs_lock:
            for element, native_id in zip(elements, ids, strict=True):
                if len(element) > 1:
                    self._packs[native_id] = element
                for job in element:
                    job.native_id = native_id
                    job.packed = len(element) > 1
                    job.tracker = Tracker(native_id, os.path.join(self.record_dir,
                                                                  job.task_id + EXITED))
                    job.phase = Phase.SUBMITTED
                    if job.kill and job.task_id in self._jobs:
                        job.cancelling = True
                        cancels.append(job)
            self._poll_ready.notify()
        if cancels:
            self._cancel(cancels)

    def job_name(self, spec: JobSpec) -> str:
        """The name a job is submitted under: the run tag (a status query may select
        this run's jobs by it), then the job's own name."""
        return _job_name(self.run_tag, spec.name)

    def _write_element(self, element: list[_Job]) -> str:
        """The script of one submission (or array element): a job's wrapper, or the
        script of a pack that runs its jobs' wrappers together."""
        scripts = [self._write_job(job) for job in element]
        if len(element) == 1:
            return scripts[0]
        path = os.path.join(self.script_dir, f"pack-{element[0].task_id}.sh")
        signalled = os.path.join(self.record_dir, f"pack-{element[0].task_id}.signalled")
        for job in element:
            job.pack_signalled = signalled
        write_script(path, pack_script(
            scripts=scripts, records=[self._record(job) for job in element],
            signalled=signalled))
        return path

    def _record(self, job: _Job) -> str:
        """The path a job's records start with."""
        return os.path.join(self.record_dir, job.task_id)

    def _write_job(self, job: _Job) -> str:
        s = job.spec
        env = build_environment({}, s.environment, s.job_environment, s.cores)
        env.setdefault("MESOBATCH_JOB_ID", str(s.job_id))
        path = os.path.join(self.script_dir, f"{job.task_id}.sh")
        write_script(path, job_script(
            title=f"job {s.job_id} ({s.name}), task {job.task_id}", command=s.command,
            env=env, log=log_path(self.context.log_dir, s.job_id, s.name),
            record=self._record(job), work_dir=self.work_dir,
            reserved_exit_codes=getattr(self.dialect, "reserved_exit_codes", frozenset()),
            kill_grace=self.options.kill_grace_period))
        return path

    def _cancel(self, jobs: list[_Job]) -> None:
        """Cancel submitted jobs; each confirmed one ends KILLED. A cancel that fails
        leaves its job watched (its end still comes) and the core asks again later."""
        marked: list[_Job] = []  # in a pack that goes on: killed by their markers
        whole: dict[str, list[_Job]] = {}  # native id -> the jobs its cancel kills
        with self._jobs_lock:
            for job in jobs:
                if job.task_id not in self._jobs:
                    continue
                if not job.packed:
                    whole.setdefault(job.native_id, []).append(job)
                    continue
                mates = [m for m in self._packs.get(job.native_id, [job])
                         if m.task_id in self._jobs]
                if all(m.kill or self._stopping for m in mates):
                    whole[job.native_id] = mates  # nothing in it lives on: cancel it
                else:
                    marked.append(job)
        done = self._mark_killed(marked)
        for chunk in chunks(list(whole), CANCEL_CHUNK):
            try:
                self.commands.run(self.dialect.cancel_argv(chunk))
            except CommandError as e:
                if e.kind is not ErrorKind.UNKNOWN_JOB:  # unknown: it has ended anyway
                    log.warning("cannot cancel %s: %s", " ".join(chunk), e)
                    with self._jobs_lock:
                        for native_id in chunk:
                            for job in whole[native_id]:
                                job.cancelling = False
                    continue
            done.extend(job for native_id in chunk for job in whole[native_id])
        now = time.time()
        self._end([(j, TaskStatus(j.task_id, TaskState.KILLED, now, agent_id=self.agent_id))
                   for j in done])

    def _mark_killed(self, jobs: list[_Job]) -> list[_Job]:
        """Kill jobs inside packs by their markers (the pack's watcher signals each within
        ``KILL_POLL`` seconds, or never starts it); those marked are returned."""
        done: list[_Job] = []
        for job in jobs:
            try:
                with open(self._record(job) + KILL, "w"):
                    pass
            except OSError as e:
                log.warning("cannot mark %s job %d for killing in its pack %s: %s",
                            self.name, job.spec.job_id, job.native_id, e)
                with self._jobs_lock:
                    job.cancelling = False
                continue
            done.append(job)
        return done

    # ------------------------------------------------------------------ poller
    def _poll_loop(self) -> None:
        scan = max(0.05, min(1.0, self.options.poll_interval / 5))
        next_query = 0.0
        while not self._stop.is_set():
            with self._jobs_lock:
                watched = [j for j in self._jobs.values() if j.phase is Phase.SUBMITTED]
                if not watched:
                    if not self._stop.is_set():  # shutdown() sets it, then notifies
                        self._poll_ready.wait()
                    continue
            query = time.monotonic() >= next_query
            try:
                self._observe(watched, query)
            except Exception:  # a parser's bug must not stop the polling for good
                log.exception("the %s poll failed", self.name)
            if query:
                next_query = time.monotonic() + self.poll_interval
            self._stop.wait(max(0.0, min(scan, next_query - time.monotonic())))

    def _observe(self, watched: list[_Job], query: bool) -> None:
        """One round: records always; the queue (and accounting) if ``query``."""
        self._read_records(watched)
        queued: dict[str, NativeStatus] = {}
        accounted: dict[str, NativeStatus] = {}
        answered = False
        if query:
            unsettled = [j for j in watched if not self._settled_by_record(j)]
            if unsettled:
                answered, queued = self._query_queue(unsettled)
                gone = [j for j in unsettled if j.native_id not in queued]
                ended = [j for j in unsettled if j.native_id in queued
                         and queued[j.native_id].state.terminal]
                if answered and (gone or ended):
                    # those that ended since the records were read need no accounting,
                    # and their records hold the exact exit status and wall time
                    self._read_records(gone + ended)
                    gone = [j for j in gone if not self._settled_by_record(j)]
                if answered and gone and self._has_accounting is not False:
                    accounted = self._query_accounting(gone)
        # a final state in a queue that shows no finished jobs: held or in error there
        stuck = [j for j in watched if (q := queued.get(j.native_id)) is not None
                 and q.state.terminal and not self._finished_in_status]
        if stuck:
            queued.update(self._explain(stuck, queued))
        verdicts: list[tuple[_Job, Verdict]] = []
        now = time.monotonic()
        for job in watched:
            assert job.tracker is not None
            in_queue = queued.get(job.native_id)
            for native in (in_queue, accounted.get(job.native_id)):
                if native is not None and native.node:
                    job.node = job.native_node = native.node
            verdict = job.tracker.judge(
                Evidence(in_queue, answered, accounted.get(job.native_id),
                         self._keeps_accounting(), job.started, job.exited, now,
                         packed=job.packed, pack_signalled=self._pack_signalled(job)),
                vanish_after=self.options.vanished_polls,
                reason_grace=self.reason_grace_polls, accounting_delay=self.accounting_delay)
            if verdict is not None:
                verdicts.append((job, verdict))
        self._apply(verdicts)
        if stuck:
            self._remove(stuck, queued)
        if answered and self.quiet_backoff:
            news = any(v.state.terminal and job.exited is None for job, v in verdicts) or any(
                j.exited is not None and j.exited.exit_code != 0 for j in watched)
            self._quiet_polls = 0 if news else self._quiet_polls + 1
            self.poll_interval = min(self.poll_interval * 2 ** min(self._quiet_polls, 16),
                                     self.options.max_poll_interval)

    def _pack_signalled(self, job: _Job) -> bool:
        """Did the pack of this job, which recorded a failure, get a signal (a cancel, a
        time limit)? Then that failure is the pack's end (the file is looked for only
        for such jobs)."""
        return (job.packed and job.pack_signalled is not None and job.exited is not None
                and job.exited.exit_code != 0 and os.path.exists(job.pack_signalled))

    def _read_records(self, jobs: list[_Job]) -> None:
        starts, exits = read_records(
            self.record_dir, {j.task_id for j in jobs if j.started is None},
            {j.task_id for j in jobs if j.exited is None})
        for job in jobs:
            job.started = job.started or starts.get(job.task_id)
            job.exited = job.exited or exits.get(job.task_id)

    def _keeps_accounting(self) -> bool:
        """Does the system say how finished jobs ended (accounting, or a status query
        that shows finished jobs)?"""
        return self._finished_in_status or self._has_accounting is not False

    def _settled_by_record(self, job: _Job) -> bool:
        """Its exit record decides it without asking the system."""
        return job.exited is not None and (job.exited.exit_code == 0
                                           or not self._keeps_accounting())

    def _query_queue(self, jobs: list[_Job]) -> tuple[bool, dict[str, NativeStatus]]:
        """One status query for these jobs (in chunks only beyond query_chunk)."""
        out: dict[str, NativeStatus] = {}
        began = time.monotonic()
        ids = list(dict.fromkeys(j.native_id for j in jobs))  # a pack's jobs share one
        whole = self.dialect.status_argv(self.run_tag, ids)
        # a query that names no ids (qstat -xml -u USER) covers any number in one call
        split = len(ids) > self.dialect.query_chunk and _names_any(whole, ids)
        try:
            for chunk in chunks(ids, self.dialect.query_chunk) if split else [ids]:
                argv = self.dialect.status_argv(self.run_tag, chunk) if split else whole
                try:
                    result = self.commands.run(argv, retry=False)
                except CommandError as e:
                    if e.kind is not ErrorKind.UNKNOWN_JOB:
                        raise
                    # some (or all) are unknown: what it printed covers the others
                    result = e.result
                out.update(self.dialect.parse_status(result))
        except (CommandError, ValueError) as e:
            self._query_failures += 1
            self.poll_interval = min(self.poll_interval * 2, self.options.max_poll_interval)
            log.warning("the %s status query failed (%d in a row; next in %.3g s): %s",
                        self.name, self._query_failures, self.poll_interval, e)
            permanent = not isinstance(e, CommandError) or e.kind is ErrorKind.PERMANENT
            if permanent and self._query_failures >= self.options.vanished_polls:
                self._fatal = (f"The {self.dialect.name} status query has failed "
                               f"{self._query_failures} times in a row: {e}")
            return False, {}
        took = time.monotonic() - began
        self._query_failures = 0
        self._fatal = None
        self.polls += 1
        self.poll_interval = min(max(self.query_time_factor * took, self.options.poll_interval),
                                 self.options.max_poll_interval)
        return True, out

    def _query_accounting(self, jobs: list[_Job]) -> dict[str, NativeStatus]:
        """Final states of jobs gone from the queue, in chunks of query_chunk."""
        out: dict[str, NativeStatus] = {}
        ids = list(dict.fromkeys(j.native_id for j in jobs))
        asked = set(ids)
        queries = getattr(self.dialect, "accounting_queries", None)
        argvs: Sequence[list[str] | None] = (
            queries(self.run_tag, ids) if queries is not None
            else [self.dialect.accounting_argv(c) for c in chunks(ids, self.dialect.query_chunk)])
        for argv in argvs:
            if argv is None:
                self._has_accounting = False
                return out
            self._has_accounting = True
            try:
                found = self.dialect.parse_accounting(self.commands.run(argv, retry=False))
                # only what was asked: a query may cover more (an array, a name pattern)
                out.update((k, v) for k, v in found.items() if k in asked)
            except CommandError as e:
                if e.kind is not ErrorKind.UNKNOWN_JOB:
                    log.warning("the %s accounting query failed: %s", self.name, e)
            except ValueError as e:
                log.warning("cannot read the %s accounting output: %s", self.name, e)
        return out

    def _explain(self, jobs: list[_Job], queued: dict[str, NativeStatus]
                 ) -> dict[str, NativeStatus]:
        """The system's reasons for jobs its queue shows in a final (error) state, added
        to their messages, if the dialect can ask (one query for all of them)."""
        build = getattr(self.dialect, "explain_argv", None)
        parse = getattr(self.dialect, "parse_explain", None)
        if build is None or parse is None:
            return {}
        try:
            ids = list(dict.fromkeys(j.native_id for j in jobs))
            why: dict[str, str] = parse(self.commands.run(build(ids), retry=False))
        except (CommandError, ValueError) as e:
            log.warning("cannot ask %s why jobs are in error state: %s", self.name, e)
            return {}
        out = {}
        for job in jobs:
            text = why.get(job.native_id)
            if text:
                native = queued[job.native_id]
                out[job.native_id] = replace(
                    native, message=f"{native.message}; {self.dialect.name} says: {text}")
        return out

    def _remove(self, jobs: list[_Job], queued: dict[str, NativeStatus]) -> None:
        """Take jobs whose end is decided, but which the queue still holds (an error
        state or a hold waits for an administrator for ever), off the queue; with the
        reason, where the system keeps one (``remove_argv``)."""
        remove_argv = getattr(self.dialect, "remove_argv", None)
        by_reason: dict[str, list[str]] = {}
        for job in jobs:
            ids = by_reason.setdefault(queued[job.native_id].message, [])
            if job.native_id not in ids:
                ids.append(job.native_id)
        for why, ids in by_reason.items():
            for chunk in chunks(ids, CANCEL_CHUNK):
                argv: list[str] = (remove_argv(chunk, why) if remove_argv is not None
                                   else self.dialect.cancel_argv(chunk))
                try:
                    self.commands.run(argv, retry=False)
                except CommandError as e:
                    if e.kind is not ErrorKind.UNKNOWN_JOB:
                        log.warning("cannot remove %s from the %s queue: %s",
                                    " ".join(chunk), self.name, e)

    def _apply(self, verdicts: list[tuple[_Job, Verdict]]) -> None:
        """Post what changed: live states when they change, ends once."""
        now = time.time()
        ended: list[tuple[_Job, TaskStatus]] = []
        live: list[TaskStatus] = []
        for job, v in verdicts:
            if job.native_node is None and v.node is not None:
                job.node = v.node  # the system's name for it wins over the record's
            if v.state.terminal:
                ended.append((job, TaskStatus(
                    job.task_id, v.state, now, exit_code=v.exit_code, wall_time=v.wall_time,
                    message=v.message, agent_id=self.agent_id, exit_reason=v.exit_reason)))
                continue
            job.pending_reason = v.pending_reason
            if v.state is TaskState.UNKNOWN or v.state is job.reported:
                continue  # an unknown native state says only that the job is there
            job.reported = v.state
            live.append(TaskStatus(job.task_id, v.state, now, message=v.message,
                                   agent_id=self.agent_id))
        self._end(ended, live)

    def _decided(self, ended: list[tuple[_Job, TaskStatus]]) -> None:
        for job, _ in ended:  # a pack none of whose jobs lives on is forgotten
            if job.packed and not any(m.task_id in self._jobs for m in
                                      self._packs.get(job.native_id, ())):
                self._packs.pop(job.native_id, None)

    def _after_decided(self, ended: list[tuple[_Job, TaskStatus]]) -> None:
        for job, status in ended:  # the system's reason (held, limit, node failure)
            if status.message and (status.exit_reason is not None or status.state
                                   in (TaskState.LOST, TaskState.ERROR)):
                self._tell(job, status.message)

    def _tell(self, job: _Job, message: str) -> None:
        """Why a job ended as it did, where its owner looks: the log and its file."""
        s = job.spec
        log.warning("%s job %d (%s): %s", self.name, s.job_id, s.name, message)
        try:
            with open(log_path(self.context.log_dir, s.job_id, s.name), "a") as f:
                f.write(f"mesobatch: {message}\n")
        except OSError:
            pass


def _names_any(argv: Sequence[str], ids: Sequence[str]) -> bool:
    """Does a command name any of these job ids (in an argument of its own or a list)?"""
    words = {w for arg in argv for w in re.split(r"[\s,=]+", arg)}
    return any(i in words for i in ids)


def _shape(s: JobSpec) -> tuple[object, ...]:
    """What jobs of one array (or pack) have in common."""
    return (s.cores, s.memory, s.disk, s.resources.gpus, s.walltime, s.preemptible)


def _job_name(tag: str, name: str) -> str:
    return f"{tag}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"[:64]


def _same_node(a: str, b: str) -> bool:
    """Node names as the system and a caller write them (short or fully qualified)."""
    return a == b or a.split(".", 1)[0] == b.split(".", 1)[0]
