"""Formats shared by the scheduler and the executor: the only executor module the
scheduler imports. Keep it free of imports from the rest of mesobatch but the JSON codec."""

from __future__ import annotations

import base64
import math
import os
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from ..common.json_codec import decode, encode


def log_file_name(job_id: int, name: str) -> str:
    """The file a job's stdout and stderr go to, interleaved as written (like Slurm's
    default); one file per job halves the file creations on the launch path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "job"
    return f"{job_id}-{safe}.log"


def log_path(log_dir: str, job_id: int, name: str) -> str:
    return os.path.join(log_dir, log_file_name(job_id, name))


#: what a log cut to its tail may carry beyond the cap: the line saying so
LOG_NOTE_ROOM = 200


# --------------------------------------------------------------------------- task data
# TaskInfo.data carries a TaskPayload as JSON; a terminal TaskStatus.data carries a
# TaskResult; the executor's framework messages carry NodeReport. All JSON objects,
# base64-encoded on the wire like every Mesos bytes field.

PROTOCOL_VERSION = 1


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text)


def _conforms(value: Any, hint: Any) -> bool:
    """Is a decoded JSON value of the annotated type (the few types these formats use)?
    Numbers must be finite: JSON from Python may hold NaN and Infinity."""
    if hint is str:  # the plain types first: they are most fields
        return isinstance(value, str)
    if hint is int or hint is float:
        number_types = (int, float) if hint is float else (int,)
        return (isinstance(value, number_types) and not isinstance(value, bool)
                and math.isfinite(value))
    if hint is bool:
        return isinstance(value, bool)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is Union or origin is types.UnionType:
        return any(_conforms(value, a) for a in args)
    if origin is dict:
        if not isinstance(value, dict):
            return False
        if args == (str, str):  # the environment: one pass, no call per entry
            return all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        return all(_conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items())
    raise TypeError(f"no check for {hint!r}")  # pragma: no cover (a new field's type)


_SCHEMAS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _schema(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type hint, required) of each field of dataclass ``cls``, worked out once:
    get_type_hints evaluates the annotations anew at each call (most of a decode)."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = get_type_hints(cls)
        schema = _SCHEMAS[cls] = tuple(
            (f.name, hints[f.name], f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls))
    return schema


def _from_dict(cls: type[Any], raw: Any) -> Any:
    """An instance of dataclass ``cls`` from a decoded JSON object: unknown keys are
    ignored, a missing required key or a value of the wrong type is a ValueError."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object for {cls.__name__}, got {type(raw).__name__}")
    values = {}
    for name, hint, required in _schema(cls):
        if name not in raw:
            if required:
                raise ValueError(f"{cls.__name__} without {name!r}")
            continue
        value = raw[name]
        if not _conforms(value, hint):
            raise ValueError(f"{cls.__name__}.{name} is {_short(value)}: expected "
                             f"{_type_name(hint)}")
        values[name] = value
    return cls(**values)


def _as_dict(obj: Any) -> dict[str, Any]:
    """A flat dataclass's fields as a dict to encode (no deep copy as asdict makes:
    these formats hold no nested dataclasses)."""
    return {name: getattr(obj, name) for name, _, _ in _schema(type(obj))}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + "..."


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("NoneType", "None")


_T = TypeVar("_T", bound="_Base64Json")


class _Base64Json:
    """A dataclass carried as base64 JSON in a Mesos bytes field; unknown keys (from a
    newer scheduler or executor) are ignored."""

    def encode(self) -> str:
        return b64encode(encode(_as_dict(self)))

    @classmethod
    def decode(cls: type[_T], data: str) -> _T:
        """Raises ValueError for anything but a well-formed instance."""
        if not isinstance(data, str):
            raise ValueError(f"expected base64 text, got {type(data).__name__}")
        try:
            raw = decode(b64decode(data))
        except RecursionError:
            raise ValueError("JSON nested too deep") from None
        decoded: _T = _from_dict(cls, raw)
        decoded.check()
        return decoded

    def check(self) -> None:
        """Raise ValueError for values of the right type that still make no sense."""


@dataclass(frozen=True)
class TaskPayload(_Base64Json):
    """What the executor needs to run one job (TaskInfo.data)."""

    job_id: int
    name: str
    command: str
    cores: float
    env: dict[str, str] = field(default_factory=dict)  #: setEnv values + the job's own
    walltime: float | None = None
    workflow_id: str = ""
    version: int = PROTOCOL_VERSION
    #: where the task's shipped resources come from (http(s):// or a shared directory)
    resource_url: str = ""
    #: bearer token for resource_url; per framework, never passed on to the task
    resource_token: str = ""
    #: return the job's output, its last ``log_cap`` bytes at most (0: leave it here)
    log_cap: int = 0

    #: bytes: kill the job once it uses more memory (--enforceMemory); 0: no limit
    memory_limit: int = 0

    def check(self) -> None:
        if not self.command.strip() or "\0" in self.command:
            raise ValueError("the command is empty or holds a NUL character")
        for name, value in self.env.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise ValueError(f"cannot put {_short(name)} into an environment")
        if self.cores < 0 or (self.walltime is not None and self.walltime < 0):
            raise ValueError("cores and walltime must not be negative")


@dataclass(frozen=True)
class TaskResult(_Base64Json):
    """How a task ended, as the executor measured it (terminal TaskStatus.data)."""

    exit_code: int
    wall_time: float
    signal: int | None = None
    walltime_exceeded: bool = False
    #: the job's log file name (log_file_name) and its size in bytes, when it is returned
    log_file: str = ""
    log_size: int | None = None
    #: a small log itself (base64), when it comes with the result; a larger one was sent
    #: to the resource server (PUT /logs/) before this result
    log: str | None = None
    #: what the job used (None: not measured): the peak resident memory of its process
    #: tree in bytes, and the CPU time (user + system) of its processes in seconds
    peak_memory: int | None = None
    cpu_time: float | None = None
    #: killed for using more memory than it asked (--enforceMemory)
    memory_exceeded: bool = False
    #: when peak_memory is None: bytes the job used at most (its peak is hidden under
    #: the executor's own, see runner._child_ended)
    memory_at_most: int | None = None


@dataclass(frozen=True)
class NodeReport:
    """An executor's periodic report on its node (a framework message)."""

    hostname: str
    ip: str
    cpu_load: float  #: 0..1 of all cores
    mem_used: int  #: bytes
    cores_total: float
    mem_total: int  #: bytes
    tasks_running: int
    kind: str = "node_report"

    def encode(self) -> bytes:
        return encode(_as_dict(self))

    @classmethod
    def decode(cls, data: bytes) -> NodeReport:
        try:
            raw = decode(data)
        except RecursionError:
            raise ValueError("JSON nested too deep") from None
        if not isinstance(raw, dict) or raw.get("kind") != "node_report":
            raise ValueError("not a node report")
        report: NodeReport = _from_dict(cls, raw)
        return report


# --------------------------------------------------------------------------- shipped code
# A job names the resources it needs in its environment, so that the request reaches the
# node through every backend: MESOBATCH_SHIP (the job's own) and MESOBATCH_SHIP_<WHAT>
# (set for all jobs, e.g. the user's script), each a comma-separated list of
# ``kind:sha256:size``. The node fetches them (verified by hash) before the task starts.

SHIP_ENV = "MESOBATCH_SHIP"
SHIP_ENV_PREFIX = "MESOBATCH_SHIP_"
#: where a function job's outcome goes (a hex id the scheduler chose)
RESULT_ID_ENV = "MESOBATCH_RESULT_ID"
#: Toil's own shipped resources (setUserScript with a Toil Resource): the node gives
#: such jobs a JTRES_ROOT in the workflow's work directory
TOIL_RESOURCE_PREFIX = "JTRES_"

#: fn: a pickled call; obj: a pickled object a call refers to; pkg: a zip put on sys.path
RESOURCE_KINDS = ("fn", "obj", "pkg")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_RESULT_ID = re.compile(r"[0-9a-f]{32}")


def is_sha256(text: str) -> bool:
    return _SHA256.fullmatch(text) is not None


def is_result_id(text: str) -> bool:
    return _RESULT_ID.fullmatch(text) is not None


@dataclass(frozen=True, order=True)
class ResourceRef:
    """One shipped blob a task needs, named by its content."""

    kind: str
    sha256: str
    size: int

    def format(self) -> str:
        return f"{self.kind}:{self.sha256}:{self.size}"

    @classmethod
    def parse(cls, text: str) -> ResourceRef:
        kind, _, rest = text.strip().partition(":")
        digest, _, size = rest.partition(":")
        if kind not in RESOURCE_KINDS or not is_sha256(digest) or not size.isdigit():
            raise ValueError(f"not a resource reference (kind:sha256:size): {text!r}")
        return cls(kind, digest, int(size))


def ships(env: Mapping[str, str]) -> bool:
    """Does the node have to prepare this job: shipped resources, an outcome to return,
    or Toil's resources?"""
    return any(name in (SHIP_ENV, RESULT_ID_ENV)
               or name.startswith((SHIP_ENV_PREFIX, TOIL_RESOURCE_PREFIX)) for name in env)


def format_refs(refs: Iterable[ResourceRef]) -> str:
    return ",".join(r.format() for r in refs)


def shipped_refs(env: Mapping[str, str]) -> list[ResourceRef]:
    """Every resource the job's environment asks for, each once, packages first."""
    found: set[ResourceRef] = set()
    for name, value in env.items():
        if (name == SHIP_ENV or name.startswith(SHIP_ENV_PREFIX)) and value:
            found.update(ResourceRef.parse(part) for part in value.split(",") if part)
    order = {"pkg": 0, "obj": 1, "fn": 2}
    return sorted(found, key=lambda r: (order[r.kind], r.sha256))


def result_id(env: Mapping[str, str]) -> str | None:
    """The id a function job's outcome is stored under, if it is one."""
    value = env.get(RESULT_ID_ENV)
    if not value:
        return None
    if not is_result_id(value):
        raise ValueError(f"{RESULT_ID_ENV} is not a 32-digit hex id: {value!r}")
    return value
