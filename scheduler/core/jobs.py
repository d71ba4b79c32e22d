"""Job specifications: what the scheduler knows of one issued job, validated once."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..contract import InsufficientSystemResources
from .resources import Resources, bytes_to_mib, cores_to_milli, format_cores, format_mib

#: Accelerator kinds a job may ask for; anything else can never be satisfied.
KNOWN_ACCELERATOR_KINDS = ("gpu",)

#: Linux's MAX_ARG_STRLEN (32 pages of 4 KiB): the longest single string execve takes,
#: its terminating NUL included. A job's command reaches execve as one argument
#: (``sh -c COMMAND``) and each variable as one ``NAME=VALUE`` string; longer ones fail
#: with E2BIG on the node. Larger pages allow more, so this is the portable bound.
MAX_ARG_STRLEN = 128 * 1024

#: The largest cores, memory or disk a job may ask for before it is nonsense: Mesos
#: scalars are fixed-point int64 with three decimals, and our own arithmetic uses floats
#: for messages. Anything near it could never be offered anyway.
MAX_REQUEST = 2**53


class InvalidJob(ValueError):
    """A job description has a value that makes no sense (negative cores, ...)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """The resource shape of a job: jobs of one shape are interchangeable for matching."""

    preemptible: bool
    resources: Resources

    def priority(self) -> tuple[bool, int, int, int, int]:
        """Toil's order: non-preemptible first, then larger memory, cores, disk."""
        r = self.resources
        return (self.preemptible, -r.mem, -r.cpus, -r.disk, -r.gpus)

    def describe(self) -> str:
        return self.resources.describe() + (", preemptible" if self.preemptible else "")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One issued job. Environments are shared mappings, never copied per job."""

    job_id: int
    command: str
    name: str
    shape: Shape
    cores: float
    memory: int  #: bytes, as requested
    disk: int  #: bytes, as requested
    walltime: float | None
    environment: Mapping[str, str]  #: setEnv values in force at issue time
    job_environment: Mapping[str, str] | None  #: this job's own variables

    @property
    def resources(self) -> Resources:
        return self.shape.resources

    @property
    def preemptible(self) -> bool:
        return self.shape.preemptible


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest request a backend can ever satisfy, and the options that set it."""

    cpus: int | None = None
    mem: int | None = None
    disk: int | None = None
    gpus: int | None = None
    cpus_option: str = "maxCores"
    mem_option: str = "maxMemory"
    disk_option: str = "maxDisk"
    gpus_option: str | None = None
    #: what to do, where a limit is not an option's (the cluster's largest node): said
    #: instead of "raise the limit with --OPTION"
    cpus_hint: str | None = None
    mem_hint: str | None = None
    disk_hint: str | None = None
    gpus_hint: str | None = None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:40] + f"... ({len(text)} characters)"


def _number(value: Any, what: str, limit: float = MAX_REQUEST) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJob(f"invalid {what} {_shown(value)}: expected a number")
    # compared before any conversion: a huge int cannot become a float
    if not (isinstance(value, int) or math.isfinite(value)) or not 0 <= value <= limit:
        raise InvalidJob(f"invalid {what} {_shown(value)}: expected a finite number from 0 "
                         f"to {limit:g}")
    return float(value)


def check_command(command: Any) -> str:
    """A job's command, or InvalidJob: a non-empty string that execve can take (no NUL,
    which would silently cut it short; under MAX_ARG_STRLEN bytes)."""
    if not isinstance(command, str) or not command.strip():
        raise InvalidJob(f"invalid command {_shown(command)}: expected a non-empty string")
    if "\0" in command:
        raise InvalidJob(f"invalid command {_shown(command)}: it holds a NUL character, "
                         "which would cut it short")
    size = len(command.encode("utf-8", "surrogatepass"))
    if size >= MAX_ARG_STRLEN:
        raise InvalidJob(
            f"command of {size} bytes is too long: a command is one argument to the "
            f"shell, and Linux limits one argument to {MAX_ARG_STRLEN - 1} bytes "
            "(MAX_ARG_STRLEN, 128 KiB with its NUL); put a long script in a file and run "
            "that, or ship it with setUserScript")
    return command


def check_variable(name: Any, value: Any) -> None:
    """Raise ValueError unless NAME=VALUE can go into a job's environment: strings, a
    non-empty name without '=', no NUL, under MAX_ARG_STRLEN bytes together."""
    if not isinstance(name, str) or not name or "=" in name or "\0" in name:
        raise InvalidJob(f"invalid environment variable name {_shown(name)}: expected a "
                         "non-empty string without '=' or NUL")
    if not isinstance(value, str):
        raise InvalidJob(f"invalid value {_shown(value)} for environment variable {name}: "
                         "expected a string")
    if "\0" in value:
        raise InvalidJob(f"invalid value {_shown(value)} for environment variable {name}: "
                         "it holds a NUL character, which would cut it short")
    size = len(name.encode("utf-8", "surrogatepass")) + 1 + len(
        value.encode("utf-8", "surrogatepass"))
    if size >= MAX_ARG_STRLEN:
        raise InvalidJob(f"environment variable {name} of {size} bytes is too long: Linux "
                         f"limits NAME=VALUE to {MAX_ARG_STRLEN - 1} bytes (MAX_ARG_STRLEN)")


def check_environment(env: Any, what: str = "job_environment") -> dict[str, str]:
    """A copy of a job's own variables, each checked (check_variable)."""
    if not isinstance(env, Mapping):
        raise InvalidJob(f"invalid {what} {_shown(env)}: expected a mapping of variable "
                         "names to string values, or None")
    for name, value in env.items():
        check_variable(name, value)
    return dict(env)


def count_gpus(accelerators: Any, requester: str) -> int:
    """Sum the GPUs a job asks for; an unknown accelerator kind can never be satisfied."""
    total = 0
    if isinstance(accelerators, str | bytes | Mapping) or not isinstance(
            accelerators, Iterable | None):
        raise InvalidJob(f"invalid accelerators {_shown(accelerators)}: expected a list of "
                         "accelerator requests such as [{'kind': 'gpu', 'count': 1}]")
    for acc in accelerators or ():
        kind = acc.get("kind") if isinstance(acc, Mapping) else getattr(acc, "kind", None)
        count = acc.get("count", 1) if isinstance(acc, Mapping) else getattr(acc, "count", 1)
        if kind not in KNOWN_ACCELERATOR_KINDS:
            raise InsufficientSystemResources(
                requester, "accelerators", f"{count} accelerator(s) of kind {kind!r}",
                "accelerators of kind " + ", ".join(repr(k) for k in KNOWN_ACCELERATOR_KINDS),
            )
        n = _number(count, "accelerator count", limit=2**31)
        if n != int(n):
            raise InvalidJob(f"invalid accelerator count {count!r}: expected a whole number")
        total += int(n)
    if total > 2**31:
        raise InvalidJob(f"invalid accelerators: {total} GPUs in all is more than any node has")
    return total


def job_attr(desc: Any, *names: str, default: Any = None) -> Any:
    """Read the first attribute of ``desc`` that exists (ours or Toil's spelling)."""
    for name in names:
        value = getattr(desc, name, None)
        if value is not None:
            return value
    return default


#: Requests already validated, by their raw values (and types: 1 and 1.0 differ), with
#: what the checks made of them, so that the many jobs of one description are not
#: checked again one by one. Only requests of plain ints and floats without
#: accelerators are kept, and only once they passed: bad input always takes the full
#: checks, with their messages.
_REQUESTS: dict[tuple[Any, ...], _Request] = {}
_REQUESTS_MAX = 1024
_PLAIN = (int, float)


class _Request(NamedTuple):
    """A job's validated request: its shape and the figures its JobSpec carries."""

    shape: Shape
    cores: float
    memory: int
    disk: int
    walltime: float | None


def _request_key(desc: Any) -> tuple[Any, ...] | None:
    """The raw request of a plain description (see _REQUESTS), or None."""
    try:
        cores = job_attr(desc, "cores", default=1.0)
        memory = job_attr(desc, "memory", default=0)
        disk = job_attr(desc, "disk", default=0)
        walltime = job_attr(desc, "walltime", default=None)
        preemptible = job_attr(desc, "preemptible", "preemptable", default=False)
        accelerators = job_attr(desc, "accelerators", default=())
    except Exception:  # the full checks say it again, in their order
        return None
    if (type(cores) not in _PLAIN or type(memory) not in _PLAIN or type(disk) not in _PLAIN
            or (walltime is not None and type(walltime) not in _PLAIN)
            or type(preemptible) is not bool
            or type(accelerators) not in (tuple, list) or accelerators):
        return None
    return (type(cores), cores, type(memory), memory, type(disk), disk,
            type(walltime), walltime, preemptible)


def _checked_request(desc: Any, name: str) -> _Request:
    """Every check of a job's request (InvalidJob or InsufficientSystemResources)."""
    cores = _number(job_attr(desc, "cores", default=1.0), "cores")
    memory = _number(job_attr(desc, "memory", default=0), "memory")
    disk = _number(job_attr(desc, "disk", default=0), "disk")
    walltime = job_attr(desc, "walltime", default=None)
    if walltime is not None:
        walltime = _number(walltime, "walltime")
        if walltime == 0:
            walltime = None
    preemptible = bool(job_attr(desc, "preemptible", "preemptable", default=False))
    gpus = count_gpus(job_attr(desc, "accelerators", default=()), f"job {name!r}")
    resources = Resources(
        # every task holds at least a milli-core: Mesos refuses tasks without resources
        cpus=max(1, cores_to_milli(cores)), mem=bytes_to_mib(int(memory)),
        disk=bytes_to_mib(int(disk)), gpus=gpus,
    )
    return _Request(Shape(preemptible, resources), cores, int(memory), int(disk), walltime)


def build_spec(
    job_id: int,
    command: str,
    desc: Any,
    environment: Mapping[str, str],
    job_environment: Mapping[str, str] | None,
) -> JobSpec:
    """Validate a job description (ours or Toil's) and turn it into a JobSpec."""
    check_command(command)
    name = str(job_attr(desc, "name", "jobName", default="") or f"job{job_id}")
    key = _request_key(desc)
    request = _REQUESTS.get(key) if key is not None else None
    if request is None:
        request = _checked_request(desc, name)
        if key is not None:
            if len(_REQUESTS) >= _REQUESTS_MAX:
                _REQUESTS.clear()
            _REQUESTS[key] = request
    if job_environment is not None:
        job_environment = check_environment(job_environment)
    return JobSpec(
        job_id=job_id, command=command, name=name, shape=request.shape, cores=request.cores,
        memory=request.memory, disk=request.disk, walltime=request.walltime,
        environment=environment, job_environment=job_environment,
    )


def _cores(milli: int) -> str:
    return f"{format_cores(milli)} {'core' if milli == 1000 else 'cores'}"


def _gpus(count: int) -> str:
    return f"{count} {'GPU' if count == 1 else 'GPUs'}"


def _who(spec: JobSpec) -> str:
    """The job, as a refusal names it (made only when one is raised)."""
    return f"job {spec.name!r}"


def check_limits(spec: JobSpec, limits: Limits) -> None:
    """Raise InsufficientSystemResources if ``spec`` can never fit under ``limits``."""
    r = spec.resources
    if limits.cpus is not None and r.cpus > limits.cpus:
        raise InsufficientSystemResources(
            _who(spec), "cores", _cores(r.cpus), _cores(limits.cpus), limits.cpus_option,
            limits.cpus_hint)
    if limits.mem is not None and r.mem > limits.mem:
        raise InsufficientSystemResources(
            _who(spec), "memory", f"{format_mib(r.mem)} of memory",
            f"{format_mib(limits.mem)} of memory", limits.mem_option, limits.mem_hint)
    if limits.disk is not None and r.disk > limits.disk:
        raise InsufficientSystemResources(
            _who(spec), "disk", f"{format_mib(r.disk)} of disk",
            f"{format_mib(limits.disk)} of disk", limits.disk_option, limits.disk_hint)
    if limits.gpus is not None and r.gpus > limits.gpus:
        raise InsufficientSystemResources(
            _who(spec), "GPUs", _gpus(r.gpus), _gpus(limits.gpus), limits.gpus_option,
            limits.gpus_hint)
