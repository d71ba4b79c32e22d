"""What each batch-queue system contributes: pure builders and parsers, no I/O.

A dialect never runs anything. It turns a ``Submission`` into the argument list of
the system's submit command, reads the submit command's output, builds the one
status query that covers every job of a run, and translates what that query (and
accounting) prints into ``NativeStatus`` records in the one state enum. The base
(``base.py``) runs the commands, retries, polls and reports.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState


@dataclass(frozen=True, slots=True)
class Submission:
    """One job to submit, or one array of ``len(scripts)`` jobs of the same shape.

    The base has written every script already (executable, ``#!/bin/sh``); a script
    sends its own output to the job's log and records its start and exit code.
    For an array, the dialect submits ``array_script``, which runs
    ``scripts[index - array_first_index]`` from the index variable the dialect names
    (``Dialect.array_index_variable``)."""

    name: str  #: job name; carries the run tag, so a status query can select this run
    scripts: tuple[str, ...]  #: one per job
    array_script: str | None  #: the dispatcher for an array (None for one job)
    system_output: str  #: directory for what the batch system itself writes per job
    work_dir: str  #: the job's working directory
    cores: float
    memory: int  #: bytes; 0: ask for none
    disk: int  #: bytes; 0: ask for none
    gpus: int
    walltime: float | None  #: seconds
    preemptible: bool
    exclude: tuple[str, ...] = ()  #: nodes to keep these jobs off (ignoreNode)

    @property
    def size(self) -> int:
        return len(self.scripts)


@dataclass(frozen=True, slots=True)
class NativeStatus:
    """One job as the batch system reports it, translated to the one state enum.

    ``state`` is STARTING while the job waits in the system's queue, RUNNING while it
    runs, or terminal. ``exit_reason`` overrides the reason derived from the state
    (MEMLIMIT, MAXJOBDURATION, LOST, KILLED, ...)."""

    native_id: str
    state: TaskState
    exit_code: int | None = None
    exit_reason: BatchJobExitReason | None = None
    message: str = ""  #: the system's words: reason, hold reason, failure text
    node: str | None = None  #: where it runs or ran
    pending_reason: str | None = None  #: why it waits, in the system's own words
    wall_time: float | None = None  #: seconds it ran, when the system says (accounting)


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """A node of the cluster (sinfo, qhost, bhosts, pbsnodes, condor_status)."""

    name: str
    cores: float
    memory: int  #: bytes
    gpus: int = 0
    state: str = ""  #: the system's words (idle, mixed, drain, ...)
    usable: bool = True  #: up and accepting jobs
    cpu_load: float | None = None  #: 0..1 of all cores, when the system reports it
    memory_free: int | None = None  #: bytes
    partitions: tuple[str, ...] = ()
    address: str = ""  #: IP or address name, when known
    tmp_disk: int = 0  #: bytes of temporary disk for jobs (Slurm's TmpDisk; 0: unknown)


class ErrorKind(enum.Enum):
    """What a failed command means."""

    TRANSIENT = "transient"  #: try again later (timeout, busy controller)
    PERMANENT = "permanent"  #: the request itself is bad: fail its jobs with the message
    UNKNOWN_JOB = "unknown_job"  #: the system does not know (or no longer knows) the job


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command printed (for the pure parsers)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Dialect(Protocol):
    """Pure builders and parsers of one batch-queue system.

    Optional members the base looks for (a dialect without them gets the default):
    ``finished_in_status`` (bool, default False: the status query also shows finished
    jobs, with their exit status and reason, so it serves as accounting);
    ``submit_files(sub) -> {path: text}`` (files to write before the submit command,
    such as a submit description); ``remove_argv(ids, reason) -> argv`` (remove jobs
    held or in error in the queue, saying why; default ``cancel_argv``). Other hooks
    are listed in base.py."""

    #: registry-style name: "slurm", "gridengine", "lsf", "pbs", "htcondor"
    name: str
    #: environment variable holding an array element's index inside the job
    array_index_variable: str
    #: the index of the first element of an array (0 or 1)
    array_first_index: int
    #: most elements one array submission may have (1: no arrays)
    max_array_size: int
    #: most job ids one status or accounting query may name (a status query that names
    #: no ids, such as ``qstat -xml -u USER``, is one call whatever their number)
    query_chunk: int

    def submit_argv(self, sub: Submission) -> list[str]:
        """The submit command for one job or one array."""

    def parse_submit(self, sub: Submission, result: CommandResult) -> list[str]:
        """The native ids of what was submitted, one per script, in order."""

    def status_argv(self, run_tag: str, native_ids: Sequence[str]) -> list[str]:
        """One query for the state of every job of this run still in the queue."""

    def parse_status(self, result: CommandResult) -> dict[str, NativeStatus]:
        """Jobs the queue knows, by native id (finished ones too, if it shows them)."""

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        """A query of final states for jobs gone from the queue; None: no accounting."""

    def parse_accounting(self, result: CommandResult) -> dict[str, NativeStatus]:
        """Final states by native id; jobs accounting does not (yet) know are absent."""

    def cancel_argv(self, native_ids: Sequence[str]) -> list[str]:
        """Kill these jobs."""

    def nodes_argv(self) -> list[str] | None:
        """A query of the cluster's nodes; None if the system has none."""

    def parse_nodes(self, result: CommandResult) -> list[ClusterNode]:
        """The nodes, with their size and state."""

    def classify(self, result: CommandResult) -> ErrorKind:
        """What a command that exited non-zero means."""


#: how a system's native state names map to the one enum: each dialect keeps its own
StateTable = Mapping[str, TaskState]

