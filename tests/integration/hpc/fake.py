"""A dialect for fakeq.py and a backend on the batch-queue base that uses it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mesobatch.integration.hpc.base import BatchQueueBackend
from mesobatch.integration.hpc.dialect import (
    ClusterNode,
    CommandResult,
    Dialect,
    ErrorKind,
    NativeStatus,
    Submission,
)
from mesobatch.integration.hpc.options import BatchQueueOptions
from mesobatch.integration.hpc.packing import jobs_per_pack
from mesobatch.scheduler.api import BatchSystem
from mesobatch.scheduler.contract import BatchJobExitReason
from mesobatch.scheduler.core.jobs import JobSpec
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.options import opt, parse_bool, parse_count, parse_path, resolve

FAKEQ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakeq.py")

_QUEUE = {"PENDING": TaskState.STARTING, "RUNNING": TaskState.RUNNING}
_FINAL = {
    "COMPLETED": (TaskState.FINISHED, None),
    "FAILED": (TaskState.FAILED, None),
    "CANCELLED": (TaskState.KILLED, None),
    "OUT_OF_MEMORY": (TaskState.FAILED, BatchJobExitReason.MEMLIMIT),
}


class FakeDialect:
    """fakeq's builders and parsers."""

    name = "fakeq"
    array_index_variable = "FAKEQ_TASK_ID"
    array_first_index = 1

    def __init__(self, state: str, *, accounting: bool = True, max_array_size: int = 50,
                 query_chunk: int = 1000, status_names_ids: bool = True) -> None:
        self.state = state
        self.accounting = accounting
        self.status_names_ids = status_names_ids
        self.max_array_size = max_array_size
        self.query_chunk = query_chunk

    def _cmd(self, verb: str, *args: str) -> list[str]:
        return [sys.executable, FAKEQ, self.state, verb, *args]

    def submit_argv(self, sub: Submission) -> list[str]:
        extra = ["--array", str(sub.size)] if sub.array_script else []
        if sub.exclude:
            extra += ["--exclude", ",".join(sub.exclude)]
        return self._cmd("submit", "--name", sub.name, *extra,
                         sub.array_script or sub.scripts[0])

    def parse_submit(self, sub: Submission, result: CommandResult) -> list[str]:
        return result.stdout.split()

    def status_argv(self, run_tag: str, native_ids: Sequence[str]) -> list[str]:
        return self._cmd("status", *(native_ids if self.status_names_ids else ["--all"]))

    def parse_status(self, result: CommandResult) -> dict[str, NativeStatus]:
        out = {}
        for line in filter(None, result.stdout.splitlines()):
            job_id, state, reason, node = line.split()
            out[job_id] = NativeStatus(
                job_id, _QUEUE.get(state, TaskState.UNKNOWN),
                pending_reason=None if reason == "-" else reason,
                node=None if node == "-" else node)
        return out

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        return self._cmd("acct", *native_ids) if self.accounting else None

    def parse_accounting(self, result: CommandResult) -> dict[str, NativeStatus]:
        out = {}
        for line in filter(None, result.stdout.splitlines()):
            job_id, state, code = line.split()
            if state in _FINAL:
                task_state, reason = _FINAL[state]
                out[job_id] = NativeStatus(job_id, task_state,
                                           exit_code=None if code == "-" else int(code),
                                           exit_reason=reason, message=state)
            else:
                out[job_id] = NativeStatus(job_id, _QUEUE.get(state, TaskState.UNKNOWN))
        return out

    def cancel_argv(self, native_ids: Sequence[str]) -> list[str]:
        return self._cmd("cancel", *native_ids)

    def nodes_argv(self) -> list[str] | None:
        return self._cmd("nodes")

    def parse_nodes(self, result: CommandResult) -> list[ClusterNode]:
        out = []
        for line in filter(None, result.stdout.splitlines()):
            name, cores, memory, state = line.split()
            out.append(ClusterNode(name, float(cores), int(memory), state=state,
                                   usable=state != "down"))
        return out

    def classify(self, result: CommandResult) -> ErrorKind:
        if "busy" in result.stderr:
            return ErrorKind.TRANSIENT
        if "Invalid job id" in result.stderr:
            return ErrorKind.UNKNOWN_JOB
        return ErrorKind.PERMANENT


@dataclass(frozen=True)
class FakeOptions(BatchQueueOptions):
    fake_state: str = opt("fakeState", parse=parse_path, help="fakeq's state directory")
    fake_accounting: bool = opt("fakeAccounting", parse=parse_bool, default=True,
                                help="fakeq keeps accounting")
    fake_array_size: int = opt("fakeArraySize", parse=parse_count, default=50,
                               help="fakeq's largest array")
    fake_query_chunk: int = opt("fakeQueryChunk", parse=parse_count, default=1000,
                                help="ids per fakeq status query")
    fake_pack: int = opt("fakePack", parse=parse_count, default=0,
                         help="most jobs of less than a core in one pack (0: no packs)")
    fake_status_all: bool = opt("fakeStatusAll", parse=parse_bool, default=False,
                                help="fakeq's status query names no ids: it lists all jobs")


class FakeBackend(BatchQueueBackend):
    name = "fakeq"
    options_class = FakeOptions

    def make_dialect(self) -> Dialect:
        o = self.options
        assert isinstance(o, FakeOptions)
        return FakeDialect(o.fake_state, accounting=o.fake_accounting,
                           max_array_size=o.fake_array_size, query_chunk=o.fake_query_chunk,
                           status_names_ids=not o.fake_status_all)

    def pack_size(self, spec: JobSpec) -> int:
        o = self.options
        assert isinstance(o, FakeOptions)
        return jobs_per_pack(milli_cores=spec.resources.cpus, memory=spec.memory,
                             gpus=spec.resources.gpus, most=o.fake_pack)


class FakeBatchSystem(BatchSystem):
    backend_class = FakeBackend


def fake_batch_system(state: str, **options: Any) -> FakeBatchSystem:
    """A batch system on fakeq whose state lives in ``state``."""
    options.setdefault("pollInterval", 0.2)
    options.setdefault("maxPollInterval", 1.0)  # fakeq is a slow Python; keep tests short
    options.setdefault("killGracePeriod", 1)
    return FakeBatchSystem(options=resolve(FakeOptions, {"fakeState": state, **options},
                                           environ={}))


def calls(state: str, verb: str | None = None) -> list[list[str]]:
    """The fakeq commands run so far (each as its verb and arguments)."""
    path = os.path.join(state, "calls.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    return [line for line in lines if verb is None or line[0] == verb]
