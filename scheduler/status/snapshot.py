"""One moment of a batch system's status: immutable records, and their JSON form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: the JSON document's version; a reader refuses another major one
SCHEMA = 1


@dataclass(frozen=True, slots=True)
class ShapeView:
    """Queued jobs of one resource shape, and why they wait."""

    shape: str
    jobs: int
    why: str


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    state: str  #: up, ignored, filtered, draining
    cores_total: float
    cpu_load: float  #: measured, 0..1 of all cores (0 when not measured)
    memory_total: int  #: bytes
    memory_used: float  #: measured, 0..1 (0 when not measured)
    cores_requested: float  #: by our jobs running there
    jobs: int


@dataclass(frozen=True, slots=True)
class RunningJob:
    job_id: int
    name: str
    node: str
    state: str  #: launching or running
    run_time: float  #: seconds since it started (or since launch, while launching)
    cores: float
    memory: int  #: bytes requested


@dataclass(frozen=True, slots=True)
class Failure:
    job_id: int
    name: str
    result: str  #: failed, lost, error, memlimit, ... (the exit reason)
    exit_code: int
    wall_time: float
    node: str
    ended_at: float  #: epoch seconds
    message: str
    log_path: str | None
    log_tail: tuple[str, ...]
    cores: float = 0.0  #: asked
    memory: int = 0  #: bytes asked
    peak_memory: int | None = None  #: bytes used at most (None: not measured)
    cpu_time: float | None = None  #: CPU seconds used (None: not measured)
    memory_at_most: int | None = None  #: when peak_memory is None: a bound on it
    #: how far it went over what it asked ("mem 3.1x"), by the run summary's rule
    over: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finished:
    """A job that succeeded lately, with what it used beside what it asked."""

    job_id: int
    name: str
    node: str
    wall_time: float
    ended_at: float  #: epoch seconds
    cores: float  #: asked
    memory: int  #: bytes asked
    peak_memory: int | None  #: bytes used at most (None: not measured)
    cpu_time: float | None  #: CPU seconds used (None: not measured)
    over: tuple[str, ...]  #: as in Failure
    memory_at_most: int | None = None  #: as in Failure


@dataclass(frozen=True, slots=True)
class Totals:
    issued: int = 0
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    backend: str
    workflow_id: str
    started_at: float  #: epoch seconds the batch system started
    taken_at: float
    totals: Totals
    queue: tuple[ShapeView, ...]
    nodes: tuple[NodeView, ...]
    running: tuple[RunningJob, ...]
    #: running jobs not listed in ``running`` (the list is cut for large clusters)
    running_not_shown: int
    failures: tuple[Failure, ...]  #: the most recent first
    #: jobs finished per second in each bucket, oldest first, the current bucket last
    throughput: tuple[float, ...]
    bucket_seconds: float
    #: getSchedulingStatusMessage: why jobs wait, and the backend's note
    status_message: str | None
    #: the backend's own note on its state (part of status_message), if any
    note: str | None
    fatal_error: str | None
    finished: tuple[Finished, ...] = ()  #: recent successes, the most recent first

    def to_json(self) -> dict[str, Any]:
        """The /api/status document (what dataclasses.asdict gives, without its deep
        copies: everything here is immutable already)."""
        out: dict[str, Any] = _plain(self)
        out["schema"] = SCHEMA
        return out


@dataclass(frozen=True, slots=True)
class LiveView:
    """What the recorder cannot learn from events alone, read from the core under the
    batch system's lock (at most once per snapshot): why shapes wait, the nodes."""

    queue: tuple[ShapeView, ...]
    nodes: tuple[NodeView, ...]
    #: jobs waiting in the queue, and launched ones not killed (running or starting)
    queued: int
    running_count: int
    #: the longest-running of them (at most MAX_RUNNING_SHOWN)
    running: tuple[RunningJob, ...]
    status_message: str | None
    note: str | None
    fatal_error: str | None


_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _plain(obj: Any) -> Any:
    """A snapshot's dataclasses as dicts, recursively; tuples of them as tuples of
    dicts; anything else as it is."""
    cls = type(obj)
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(obj):
            if cls is tuple and obj and dataclasses.is_dataclass(obj[0]):
                return tuple(_plain(x) for x in obj)
            return obj
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(obj))
    return {name: _plain(getattr(obj, name)) for name in names}
