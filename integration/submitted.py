"""What the backends that hand jobs to another system (a batch queue, AWS Batch) share:
the table of their live jobs, the jobs waiting to be submitted and cancelled, and how
a kill ends a job.

A job is WAITING from the core's launch until a submitter thread takes it, SUBMITTING
while its submission runs, SUBMITTED once the system has it. Killing a WAITING job ends
it at once (it is never sent); a SUBMITTED one is queued for the submitter to cancel;
a SUBMITTING one is cancelled once its submission is answered (``kill`` is set). A job
leaves the table when its end is decided, so the first end decided wins.
"""

from __future__ import annotations

import abc
import enum
import re
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from ..scheduler.backend import BackendContext, Post
from ..scheduler.core.events import Event, TaskLaunch, TaskStatus
from ..scheduler.core.states import TaskState
from .emulated import EmulatedBackend, EmulatedNode


class Phase(enum.Enum):
    WAITING = "waiting"  #: launched by the core, not yet submitted
    SUBMITTING = "submitting"  #: its submission is under way
    SUBMITTED = "submitted"  #: the system has it; the poller watches it


class SubmittedJob(Protocol):
    """What the table needs of a job."""

    task_id: str
    phase: Phase
    kill: bool  #: the core asked to kill it
    cancelling: bool  #: a cancel is queued or under way


J = TypeVar("J", bound=SubmittedJob)


def run_tag(workflow_id: str) -> str:
    """This run's tag, in every job's name: ``mb-`` + the workflow id's start + 4 random
    hex digits (two batch systems of one workflow see only their own jobs)."""
    return f"mb-{re.sub(r'[^A-Za-z0-9]', '', workflow_id)[:8]}-{secrets.token_hex(2)}"


class SubmittingBackend(EmulatedBackend, Generic[J]):
    """An emulated backend whose jobs a submitter thread hands to another system.

    A subclass makes its jobs (``new_job``), names the agent a job ran on
    (``agent_of``), and runs a submitter that takes ``_to_submit`` and ``_to_cancel``
    when ``_work_ready`` is notified."""

    def __init__(self, options: object, post: Post, context: BackendContext) -> None:
        super().__init__(options, post, context)
        self._jobs_lock = threading.Lock()  # the job table; never held while posting
        self._work_ready = threading.Condition(self._jobs_lock)  # wakes the submitter
        self._poll_ready = threading.Condition(self._jobs_lock)  # wakes an idle poller
        self._report_lock = threading.Lock()  # posts in decision order
        self._jobs: dict[str, J] = {}  # task id -> job, until its end is decided
        self._to_submit: list[J] = []
        self._to_cancel: list[J] = []
        self._stopping = False
        self._fatal: str | None = None

    @abc.abstractmethod
    def new_job(self, task: TaskLaunch, node: EmulatedNode) -> J:
        """The table's entry for a task the core launched on ``node``."""

    @abc.abstractmethod
    def agent_of(self, job: J) -> str:
        """The agent id of the emulated node ``job`` runs on."""

    # ------------------------------------------------------------------ EmulatedBackend
    def launch_tasks(self, node: EmulatedNode, tasks: Sequence[TaskLaunch]) -> list[Event]:
        with self._jobs_lock:
            for task in tasks:
                job = self.new_job(task, node)
                self._jobs[task.task_id] = job
                self._to_submit.append(job)
            self._work_ready.notify()
        return []

    def kill_task(self, task_id: str) -> list[Event]:
        with self._jobs_lock:
            job = self._jobs.get(task_id)
            if job is None:
                return []  # its end is decided (and posted, or about to be)
            if job.phase is Phase.WAITING:  # never submitted
                del self._jobs[task_id]
                return [TaskStatus(task_id, TaskState.KILLED, time.time(),
                                   agent_id=self.agent_of(job))]
            job.kill = True
            if job.phase is Phase.SUBMITTED:
                self._queue_cancel(job)
        return []

    def task_alive(self, task_id: str) -> bool:
        with self._jobs_lock:
            return task_id in self._jobs

    def fatal_error(self) -> str | None:
        return self._fatal

    # ------------------------------------------------------------------ for subclasses
    def _queue_cancel(self, job: J) -> None:
        """Have the submitter cancel a submitted job, unless it is already (lock held)."""
        if not job.cancelling:
            job.cancelling = True
            self._to_cancel.append(job)
            self._work_ready.notify()

    def _stop_submitting(self) -> None:
        """At shutdown: every submitted job is queued for cancelling, and the submitter
        told to stop once it has cancelled them."""
        with self._jobs_lock:
            self._stopping = True
            for job in self._jobs.values():
                if job.phase is Phase.SUBMITTED:
                    self._queue_cancel(job)
            self._work_ready.notify_all()

    def _live_and_unsent(self) -> tuple[list[J], int]:
        """The submitted jobs, and how many are not submitted yet (for status notes)."""
        with self._jobs_lock:
            live = [j for j in self._jobs.values() if j.phase is Phase.SUBMITTED]
            return live, len(self._jobs) - len(live)

    def _drop_unsubmitted(self) -> None:
        """At shutdown: what was never submitted never will be."""
        with self._jobs_lock:
            left = [j for j in self._to_submit if j.task_id in self._jobs]
            self._to_submit = []
        now = time.time()
        self._end([(j, TaskStatus(j.task_id, TaskState.KILLED, now, agent_id=self.agent_of(j)))
                   for j in left])

    def _end(self, ended: Sequence[tuple[J, TaskStatus]],
             live: Sequence[TaskStatus] = ()) -> None:
        """Decide these ends (each job's first one wins) and post them with ``live``
        (the statuses of jobs still in the table)."""
        with self._report_lock:
            with self._jobs_lock:
                statuses = [s for s in live if s.task_id in self._jobs]
                decided = [(job, status) for job, status in ended
                           if self._jobs.pop(job.task_id, None) is not None]
                self._decided(decided)
            self._after_decided(decided)
            statuses.extend(status for _, status in decided)
            if statuses:
                self.tasks_ended(statuses)

    def _decided(self, ended: list[tuple[J, TaskStatus]]) -> None:
        """These jobs' ends were just decided (jobs lock held): a subclass's bookkeeping."""

    def _after_decided(self, ended: list[tuple[J, TaskStatus]]) -> None:
        """These jobs' ends were just decided, their statuses not posted yet (report
        lock held, not the jobs lock)."""
