"""Slurm's dialect: pure builders of sbatch/squeue/sacct/scancel/sinfo/scontrol argument
lists and pure parsers of what they print (Slurm 22.05 and later).

How a run finds its jobs: by job name. Every job of a run is submitted with the job name
``Submission.name``, which must be the run tag itself (``status_argv(run_tag, ...)`` selects
``squeue --me --name=RUN_TAG``, an exact match). ``--me`` makes slurmctld load only this
user's jobs (one RPC, the cheapest query for the controller; with a list of ids squeue
loads every job of every user), and the name narrows the output to this run. No job id is
named in the query, so ids the controller has purged (MinJobAge) cannot make it fail (one
unknown id makes ``squeue --jobs=ID`` exit 1; two make it print nothing, exit 0): a job that
ended is simply absent, and the base asks accounting (``sacct``, in chunks of ids) about it.
squeue may also list ids the base never saw (sbatch refused a job yet slurmctld kept a
FAILED record of it under the run's name): the base ignores ids it did not submit.

Native ids: ``"1234"`` for a single job, ``"1234_7"`` for element 7 of array 1234 (the form
squeue, sacct and scancel all accept).
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState
from .dialect import (
    ClusterNode,
    CommandResult,
    Dialect,
    ErrorKind,
    NativeStatus,
    StateTable,
    Submission,
)

#: environment variable with extra sbatch arguments (split like a shell would, never run)
ARGS_ENV = "MESOBATCH_SLURM_ARGS"

MemoryPolicy = Literal["per-node", "per-cpu", "none"]
DiskPolicy = Literal["tmp", "none"]
GpuPolicy = Literal["gres", "gpus"]

_MIB = 2**20

#: squeue --Format fields; the name is last because it may itself contain "|"
SQUEUE_FIELDS = ("JobArrayID", "State", "Reason", "exit_code", "NodeList", "Name")
SQUEUE_FORMAT = ",".join(f"{f}:|" for f in SQUEUE_FIELDS[:-1]) + f",{SQUEUE_FIELDS[-1]}:"
SACCT_FIELDS = ("JobID", "State", "ExitCode", "Reason", "NodeList")
SACCT_FORMAT = ",".join(SACCT_FIELDS)
#: sinfo --format fields: node, CPUs, memory (MB), gres, state, partition, load, free
#: memory (MB), address, TmpDisk (MB)
SINFO_FIELDS = ("%N", "%c", "%m", "%G", "%T", "%P", "%O", "%e", "%o", "%d")
SINFO_FORMAT = "|".join(SINFO_FIELDS)

#: Slurm job states (squeue %T, sacct State) -> the one enum. Waiting in the queue is
#: STARTING (the base's convention for "submitted, not yet running").
SLURM_STATES: StateTable = {
    "PENDING": TaskState.STARTING,
    "CONFIGURING": TaskState.STARTING,
    "REQUEUED": TaskState.STARTING,  # back in the queue, it will run again
    "REQUEUE_HOLD": TaskState.STARTING,
    "REQUEUE_FED": TaskState.STARTING,
    "RESV_DEL_HOLD": TaskState.STARTING,
    "RUNNING": TaskState.RUNNING,
    "COMPLETING": TaskState.RUNNING,  # ended, processes being cleaned up: final state follows
    "SIGNALING": TaskState.RUNNING,
    "STAGE_OUT": TaskState.RUNNING,
    "RESIZING": TaskState.RUNNING,
    "SUSPENDED": TaskState.RUNNING,  # still holds its node
    "STOPPED": TaskState.RUNNING,
    "COMPLETED": TaskState.FINISHED,
    "FAILED": TaskState.FAILED,
    "SPECIAL_EXIT": TaskState.FAILED,
    "TIMEOUT": TaskState.FAILED,
    "DEADLINE": TaskState.FAILED,
    "OUT_OF_MEMORY": TaskState.FAILED,
    "CANCELLED": TaskState.KILLED,
    "NODE_FAIL": TaskState.LOST,
    "BOOT_FAIL": TaskState.LOST,
    "PREEMPTED": TaskState.LOST,
    "REVOKED": TaskState.LOST,  # a federation sibling ran it elsewhere
}

#: final states whose exit reason is not the one the state implies
_EXIT_REASONS: Mapping[str, BatchJobExitReason] = {
    "TIMEOUT": BatchJobExitReason.MAXJOBDURATION,
    "DEADLINE": BatchJobExitReason.MAXJOBDURATION,
    "OUT_OF_MEMORY": BatchJobExitReason.MEMLIMIT,
    "NODE_FAIL": BatchJobExitReason.LOST,
    "BOOT_FAIL": BatchJobExitReason.LOST,
    "PREEMPTED": BatchJobExitReason.LOST,
    "REVOKED": BatchJobExitReason.LOST,
    "CANCELLED": BatchJobExitReason.KILLED,
}

#: pending reasons after which a job never starts unless someone changes it or the cluster
NEVER_STARTS = frozenset({
    "PartitionTimeLimit", "PartitionNodeLimit", "BadConstraints", "InvalidAccount",
    "InvalidQOS", "DependencyNeverSatisfied", "AssocMaxWallDurationPerJobLimit",
    "QOSMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit", "QOSMaxCpuPerJobLimit",
    "AssocMaxMemPerJobLimit", "QOSMaxMemoryPerJob", "PartitionConfig", "PartitionDown",
    "PartitionInactive", "ReqNodeNotAvail", "JobHeldAdmin",
})


class SlurmArgumentError(ValueError):
    """An extra sbatch argument clashes with what mesobatch sets (the message says which)."""


class PartitionChoiceError(ValueError):
    """No partition of the list can take a job (the message says what each one allows)."""


# ---------------------------------------------------------------------------- settings

@dataclass(frozen=True, slots=True)
class SlurmSettings:
    """Site policy for Slurm submissions (the backend turns these into options)."""

    #: how memory is asked for: --mem (per node), --mem-per-cpu, or not at all (sites
    #: that reject one form, or set memory by partition)
    memory: MemoryPolicy = "per-node"
    #: disk as --tmp (the node's TmpDisk) or not at all (nodes without TmpDisk reject --tmp)
    disk: DiskPolicy = "tmp"
    #: GPUs as --gres=gpu:N or --gpus=N
    gpus: GpuPolicy = "gres"
    partition: str | None = None  #: every job's partition (None: the cluster's default)
    gpu_partition: str | None = None  #: partition for jobs that ask for GPUs
    #: partitions to choose from, in order of preference, by MaxTime and GPUs (overrides
    #: ``partition``; needs the partitions' descriptions)
    partitions: tuple[str, ...] = ()
    account: str | None = None
    qos: str | None = None
    cluster: str | None = None  #: --clusters for every command (multi-cluster sites)
    arrays: bool = True  #: bursts of one shape as one job array
    max_array_size: int | None = None  #: None: the cluster's MaxArraySize
    requeue: bool = False  #: let Slurm requeue jobs on node failure or preemption
    #: ask sacct for final states (False where the cluster has no slurmdbd: see
    #: ``accounting_disabled``; the job wrapper's record is then the only exit status)
    accounting: bool = True
    extra_args: tuple[str, ...] = ()  #: more sbatch arguments (after the environment's)
    query_chunk: int = 500  #: most job ids one sacct or scancel command names

    def __post_init__(self) -> None:
        for name, value, allowed in (("memory", self.memory, ("per-node", "per-cpu", "none")),
                                     ("disk", self.disk, ("tmp", "none")),
                                     ("gpus", self.gpus, ("gres", "gpus"))):
            if value not in allowed:
                raise ValueError(f"Slurm setting {name}={value!r}: expected one of "
                                 + ", ".join(allowed))
        if self.max_array_size is not None and self.max_array_size < 1:
            raise ValueError(f"Slurm setting max_array_size={self.max_array_size}: "
                             "expected 1 (no arrays) or more")
        if self.query_chunk < 1:
            raise ValueError(f"Slurm setting query_chunk={self.query_chunk}: expected >= 1")


@dataclass(frozen=True, slots=True)
class Partition:
    """What ``scontrol show partition`` says of one partition."""

    name: str
    max_time: float | None  #: seconds; None: no limit
    default_time: float | None = None
    default: bool = False
    state: str = "UP"
    gpus: int = 0  #: GPUs in the partition (TRES gres/gpu)
    cpus: int = 0
    nodes: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        return self.state == "UP"


# ---------------------------------------------------------------------------- small parsers

def parse_duration(text: str) -> float | None:
    """Slurm's ``[days-]hours:minutes:seconds`` (and the shorter forms) in seconds;
    None for UNLIMITED/INFINITE."""
    text = text.strip()
    if text.upper() in {"UNLIMITED", "INFINITE", "NONE", ""}:
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        while len(parts) < 3:  # days-hours[:minutes]
            parts.append(0)
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:  # minutes
            parts = [0, parts[0], 0]
        elif len(parts) == 2:  # minutes:seconds
            parts = [0, *parts]
    h, m, s = parts
    return float(((days * 24 + h) * 60 + m) * 60 + s)


def format_time_limit(seconds: float) -> str:
    """``--time`` value: whole minutes, rounded up (Slurm's limits are minutes)."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours}:{mins:02d}:00"


def parse_exit_code(text: str) -> tuple[int, int]:
    """sacct's ``code:signal`` -> (code, signal)."""
    code, _, sig = text.strip().partition(":")
    return int(code or 0), int(sig or 0)


def parse_wait_status(text: str) -> tuple[int, int]:
    """squeue's exit_code (a raw wait status: 1280 is exit 5, 9 is signal 9) -> (code, signal)."""
    status = int(text.strip() or 0)
    return (status >> 8) & 0xFF, status & 0x7F


def expand_job_ids(text: str) -> list[str]:
    """``123`` -> [123]; ``123_4`` -> [123_4]; ``123_[0-2,5%2]`` -> [123_0, 123_1, 123_2, 123_5]."""
    text = text.strip()
    m = re.fullmatch(r"(\d+)_\[([^\]]*)\]", text)
    if not m:
        return [text]
    job, spec = m.groups()
    spec = spec.split("%", 1)[0]
    out: list[str] = []
    for part in spec.split(","):
        if not part:
            continue
        lo, _, rest = part.partition("-")
        hi, _, step = rest.partition(":")
        first, last = int(lo), int(hi or lo)
        out += [f"{job}_{i}" for i in range(first, last + 1, int(step or 1))]
    return out


def _split_outside_parens(text: str, sep: str = ",") -> list[str]:
    items, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [i for i in items if i]


def gres_gpus(gres: str) -> int:
    """GPUs in a gres string: ``gpu:a100:4(S:0-1),mps:100`` -> 4; ``(null)`` -> 0."""
    total = 0
    for item in _split_outside_parens(gres.strip()):
        parts = item.split("(", 1)[0].split(":")
        if parts[0] in {"gpu", "gres/gpu"} and len(parts) > 1 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def parse_key_values(line: str) -> dict[str, str]:
    """``scontrol -o`` output: ``Key=value Key=value ...`` (values may hold '=')."""
    out: dict[str, str] = {}
    key = None
    for token in line.split():
        k, eq, v = token.partition("=")
        if eq and re.fullmatch(r"[A-Za-z][A-Za-z0-9_:/]*", k):
            key = k
            out[key] = v
        elif key is not None:  # a value with spaces (OS=Linux 6.1 ..., Reason=...)
            out[key] += " " + token
    return out


def parse_partitions(result: CommandResult) -> list[Partition]:
    """``scontrol show partition -o`` -> partitions."""
    parts = []
    for line in result.stdout.splitlines():
        kv = parse_key_values(line)
        if "PartitionName" not in kv:
            continue
        tres = dict(item.partition("=")[::2] for item in kv.get("TRES", "").split(",") if item)
        parts.append(Partition(
            name=kv["PartitionName"],
            max_time=parse_duration(kv.get("MaxTime", "UNLIMITED")),
            default_time=parse_duration(kv.get("DefaultTime", "NONE")),
            default=kv.get("Default") == "YES",
            state=kv.get("State", "UP"),
            gpus=int(tres.get("gres/gpu", "0") or 0),
            cpus=int(kv.get("TotalCPUs", "0") or 0),
            nodes=kv.get("Nodes", ""),
            fields=kv,
        ))
    return parts


def parse_config(result: CommandResult) -> dict[str, str]:
    """``scontrol show config`` -> its ``Key = value`` lines."""
    out = {}
    for line in result.stdout.splitlines():
        k, eq, v = line.partition("=")
        if eq and k.strip() and " " not in k.strip():
            out[k.strip()] = v.strip()
    return out


def max_array_size(config: Mapping[str, str]) -> int:
    """Most elements one array may have: MaxArraySize (indices 0..MaxArraySize-1)."""
    return int(config.get("MaxArraySize", "1001"))


def choose_partition(partitions: Sequence[Partition], preferred: Sequence[str],
                     walltime: float | None, gpus: int) -> str:
    """The first partition of ``preferred`` that can take the job.

    It must be up, allow the walltime (a job without one goes where the limit is longest),
    and have GPUs if the job asks for some; a job without GPUs goes to a partition without
    them when one fits (GPU partitions are the fallback)."""
    by_name = {p.name: p for p in partitions}
    unknown = [n for n in preferred if n not in by_name]
    if unknown:
        raise PartitionChoiceError(
            f"unknown Slurm partition(s) {', '.join(unknown)}; the cluster has "
            + ", ".join(sorted(by_name)))
    cands = [by_name[n] for n in preferred if by_name[n].up]
    if gpus:
        cands = [p for p in cands if p.gpus > 0]
    else:
        cands = [p for p in cands if p.gpus == 0] + [p for p in cands if p.gpus > 0]

    def limit(p: Partition) -> float:
        return math.inf if p.max_time is None else p.max_time

    if walltime is not None:
        fits = [p for p in cands if limit(p) >= walltime]
    elif cands:
        longest = max(limit(p) for p in cands)
        fits = [p for p in cands if limit(p) == longest]
    else:
        fits = []
    if fits:
        return fits[0].name
    asked = (f"{walltime:.0f} s" if walltime is not None else "no time limit") + (
        f" and {gpus} GPU(s)" if gpus else "")
    offers = "; ".join(
        f"{n}: MaxTime {'UNLIMITED' if by_name[n].max_time is None else by_name[n].max_time}"
        f" s, {by_name[n].gpus} GPUs, {by_name[n].state}" for n in preferred)
    raise PartitionChoiceError(f"no Slurm partition of {', '.join(preferred)} takes a job "
                               f"asking for {asked} ({offers})")


# ---------------------------------------------------------------------------- extra args

#: sbatch options mesobatch always sets or whose effect would break its bookkeeping
_ALWAYS = {
    "--job-name": "the job name carries the run tag that finds this run's jobs",
    "--array": "mesobatch makes job arrays itself (turn them off with its setting)",
    "--output": "mesobatch sets where Slurm writes each job's output",
    "--error": "mesobatch sets where Slurm writes each job's output",
    "--chdir": "mesobatch sets each job's working directory",
    "--cpus-per-task": "cores come from each job's request",
    "--ntasks": "mesobatch runs one task per job",
    "--nodes": "mesobatch runs each job on one node",
    "--time": "the time limit comes from each job's walltime",
    "--exclude": "mesobatch sets --exclude from ignored nodes",
    "--wrap": "mesobatch submits a script, never --wrap",
    "--wait": "sbatch would block until the job ends",
    "--test-only": "nothing would be submitted",
    "--hold": "held jobs never start",
    "--requeue": "mesobatch sets the requeue policy (its requeue setting)",
    "--no-requeue": "mesobatch sets the requeue policy (its requeue setting)",
    "--clusters": "use mesobatch's cluster setting (every command needs it)",
}
_SHORT = {"-J": "--job-name", "-a": "--array", "-o": "--output", "-e": "--error",
          "-D": "--chdir", "-c": "--cpus-per-task", "-n": "--ntasks", "-N": "--nodes",
          "-t": "--time", "-x": "--exclude", "-W": "--wait", "-H": "--hold",
          "-M": "--clusters", "-p": "--partition", "-A": "--account", "-q": "--qos",
          "-G": "--gpus"}
_MEMORY_ARGS = ("--mem", "--mem-per-cpu", "--mem-per-gpu")
_GPU_ARGS = ("--gpus", "--gpus-per-node", "--gpus-per-task", "--gpus-per-socket")


def _conflicts(settings: SlurmSettings) -> dict[str, str]:
    out = dict(_ALWAYS)
    if settings.memory != "none":
        out |= {a: f"mesobatch sets memory per job (memory policy {settings.memory!r}; "
                   "set it to 'none' to give memory yourself)" for a in _MEMORY_ARGS}
    if settings.disk != "none":
        out["--tmp"] = "mesobatch sets --tmp from each job's disk (disk policy 'tmp')"
    # GPUs come from each job's request either way; other generic resources may be given
    # with --gres when the GPU policy is 'gpus'
    how = "--gres=gpu:N (GPU policy 'gres')" if settings.gpus == "gres" else \
        "--gpus=N (GPU policy 'gpus')"
    out |= {a: f"mesobatch asks for each job's GPUs with {how}" for a in _GPU_ARGS}
    if settings.gpus == "gres":
        out["--gres"] = (f"mesobatch asks for each job's GPUs with {how}; with the GPU policy "
                         "'gpus' --gres is yours")
    if settings.partition or settings.partitions or settings.gpu_partition:
        out["--partition"] = "mesobatch's partition settings choose the partition"
    if settings.account:
        out["--account"] = "mesobatch's account setting is set"
    if settings.qos:
        out["--qos"] = "mesobatch's QOS setting is set"
    return out


def extra_args(settings: SlurmSettings, environ: Mapping[str, str]) -> list[str]:
    """Extra sbatch arguments: ``MESOBATCH_SLURM_ARGS`` (shell-like words), then the setting."""
    try:
        from_env = shlex.split(environ.get(ARGS_ENV, ""))
    except ValueError as exc:
        raise SlurmArgumentError(f"{ARGS_ENV}={environ.get(ARGS_ENV)!r}: {exc}") from None
    return [*from_env, *settings.extra_args]


def check_extra_args(args: Sequence[str], settings: SlurmSettings) -> None:
    """Raise ``SlurmArgumentError`` naming the first argument that clashes with mesobatch.

    Long options may be abbreviated (sbatch accepts unique prefixes): an abbreviation of
    a clashing option clashes too."""
    conflicts = _conflicts(settings)
    for arg in args:
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            hits = [name] if name in conflicts else [
                o for o in conflicts if o.startswith(name) and len(name) > 2]
        elif arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit():
            long = _SHORT.get(arg[:2])
            hits = [long] if long in conflicts else []
        else:
            continue
        if hits:
            opt = hits[0]
            raise SlurmArgumentError(
                f"extra sbatch argument {arg!r} (from the extra-args setting or {ARGS_ENV}) "
                f"clashes with mesobatch: {opt}: {conflicts[opt]}")


# ---------------------------------------------------------------------------- the dialect

@dataclass
class SlurmDialect:
    """Slurm's builders and parsers; see the module docstring for how a run finds its jobs.

    ``partitions`` (from ``parse_partitions``) is needed when ``settings.partitions``
    names a list to choose from; ``config_max_array_size`` is the cluster's MaxArraySize.
    Treat it as immutable: it is built once, when the backend starts."""

    settings: SlurmSettings = field(default_factory=SlurmSettings)
    partitions: tuple[Partition, ...] = ()
    config_max_array_size: int = 1001
    extra: tuple[str, ...] = ()  #: checked extra sbatch arguments (``extra_args``)
    #: most elements one array may have (1 when arrays are off)
    max_array_size: int = field(init=False)
    #: most job ids one sacct or scancel command names
    query_chunk: int = field(init=False)

    name = "slurm"
    array_index_variable = "SLURM_ARRAY_TASK_ID"
    array_first_index = 0
    #: squeue --states=all lists jobs that ended (within MinJobAge) in their final
    #: state: nothing there is stuck in an error state to be removed
    finished_in_status = True

    def __post_init__(self) -> None:
        check_extra_args(self.extra, self.settings)
        s = self.settings
        self.max_array_size = (s.max_array_size or self.config_max_array_size) if s.arrays else 1
        self.query_chunk = s.query_chunk
        if s.partitions:
            # fail now, not at the first job, if a named partition does not exist
            known = {p.name for p in self.partitions}
            missing = [p for p in s.partitions if p not in known]
            if missing:
                raise PartitionChoiceError(
                    f"unknown Slurm partition(s) {', '.join(missing)}; the cluster has "
                    + (", ".join(sorted(known)) or "none described"))

    def _cluster(self) -> list[str]:
        return [f"--clusters={self.settings.cluster}"] if self.settings.cluster else []

    # -- submit ----------------------------------------------------------------------

    def partition_for(self, sub: Submission) -> str | None:
        """The partition a submission goes to (None: the cluster's default)."""
        s = self.settings
        if sub.gpus and s.gpu_partition:
            return s.gpu_partition
        if s.partitions:
            return choose_partition(self.partitions, s.partitions, sub.walltime, sub.gpus)
        return s.partition

    def submit_argv(self, sub: Submission) -> list[str]:
        s = self.settings
        if sub.size < 1:
            raise ValueError(f"submission {sub.name!r} has no scripts")
        if sub.size > 1 and sub.array_script is None:
            raise ValueError(f"submission {sub.name!r} of {sub.size} jobs has no array script")
        if sub.size > self.max_array_size:
            raise ValueError(f"array of {sub.size} jobs is larger than Slurm's limit of "
                             f"{self.max_array_size} (MaxArraySize or the setting)")
        cpus = max(1, math.ceil(sub.cores))
        argv = ["sbatch", "--parsable", *self._cluster(), *self.extra,
                f"--job-name={sub.name}", f"--chdir={sub.work_dir}",
                "--nodes=1", "--ntasks=1", f"--cpus-per-task={cpus}"]
        if sub.size > 1:
            argv += [f"--array=0-{sub.size - 1}",
                     f"--output={sub.system_output}/slurm-%A_%a.out"]
        else:
            argv.append(f"--output={sub.system_output}/slurm-%j.out")
        if sub.memory > 0 and s.memory == "per-node":
            argv.append(f"--mem={math.ceil(sub.memory / _MIB)}M")
        elif sub.memory > 0 and s.memory == "per-cpu":
            argv.append(f"--mem-per-cpu={math.ceil(sub.memory / _MIB / cpus)}M")
        if sub.disk > 0 and s.disk == "tmp":
            argv.append(f"--tmp={math.ceil(sub.disk / _MIB)}M")
        if sub.gpus > 0:
            argv.append(f"--gres=gpu:{sub.gpus}" if s.gpus == "gres" else f"--gpus={sub.gpus}")
        if sub.walltime is not None:
            argv.append(f"--time={format_time_limit(sub.walltime)}")
        partition = self.partition_for(sub)
        if partition:
            argv.append(f"--partition={partition}")
        if s.account:
            argv.append(f"--account={s.account}")
        if s.qos:
            argv.append(f"--qos={s.qos}")
        if sub.exclude:
            argv.append(f"--exclude={','.join(sub.exclude)}")
        argv.append("--requeue" if s.requeue else "--no-requeue")
        argv.append(sub.array_script if sub.size > 1 and sub.array_script else sub.scripts[0])
        return argv

    def parse_submit(self, sub: Submission, result: CommandResult) -> list[str]:
        """``--parsable`` prints ``ID`` or ``ID;CLUSTER``; an array's elements are ID_0..ID_n-1."""
        for line in reversed(result.stdout.splitlines()):
            m = re.fullmatch(r"\s*(\d+)(?:;\S+)?\s*", line)
            if m:
                job = m.group(1)
                if sub.size == 1:
                    return [job]
                return [f"{job}_{i}" for i in range(sub.size)]
        raise ValueError(f"sbatch printed no job id: stdout {result.stdout!r}, "
                         f"stderr {result.stderr!r}")

    # -- status ------------------------------------------------------------------------

    def status_argv(self, run_tag: str, native_ids: Sequence[str]) -> list[str]:
        """``squeue --me --name=RUN_TAG``: this run's jobs, whose job name is the run tag
        (ids unused; see the module docstring).

        ``--states=all`` keeps jobs that ended less than MinJobAge ago (with their exit
        status); ``--array`` prints one line per array element, pending ones too."""
        del native_ids
        return ["squeue", *self._cluster(), "--me", f"--name={run_tag}", "--states=all",
                "--array", "--noheader", f"--Format={SQUEUE_FORMAT}"]

    def parse_status(self, result: CommandResult) -> dict[str, NativeStatus]:
        out: dict[str, NativeStatus] = {}
        for line in result.stdout.splitlines():
            if not line.strip() or line.startswith("CLUSTER:"):
                continue
            fields = line.split("|", len(SQUEUE_FIELDS) - 1)
            if len(fields) < len(SQUEUE_FIELDS) - 1:
                continue  # not one of ours (a warning line)
            ids, state, reason, status, nodes = (f.strip() for f in fields[:5])
            code, sig = parse_wait_status(status) if status.isdigit() else (0, 0)
            if not nodes and status.isdigit():
                # never ran (FAILED BadConstraints: sbatch refused it): a plain exit code
                # (squeue 1, sacct 1:0), not a wait status
                code, sig = int(status), 0
            for native_id in expand_job_ids(ids):
                out[native_id] = _status(native_id, state, reason, code, sig, nodes)
        return out

    # -- accounting ----------------------------------------------------------------------

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        """``sacct`` for up to ``query_chunk`` ids (the base splits longer lists); None when
        the accounting setting is off."""
        if not self.settings.accounting:
            return None
        if not native_ids:
            raise ValueError("accounting query for no jobs")
        # An array cancelled before any element ran is one record under the bare array id,
        # which ``sacct --jobs=ID_k`` does not find: ask for the bare id too.
        arrays = [a for a in dict.fromkeys(i.split("_", 1)[0] for i in native_ids if "_" in i)
                  if a not in native_ids]
        return ["sacct", *self._cluster(), "--noheader", "--parsable2", "--allocations",
                f"--format={SACCT_FORMAT}", f"--jobs={','.join([*native_ids, *arrays])}"]

    def parse_accounting(self, result: CommandResult) -> dict[str, NativeStatus]:
        out: dict[str, NativeStatus] = {}
        for line in result.stdout.splitlines():
            fields = line.split("|")
            if len(fields) != len(SACCT_FIELDS):
                continue
            ids, state, exit_code, reason, nodes = (f.strip() for f in fields)
            try:
                code, sig = parse_exit_code(exit_code)
            except ValueError:
                code, sig = 0, 0
            node = nodes if nodes and nodes != "None assigned" else ""
            for native_id in expand_job_ids(ids):
                # the last line wins: sacct lists a requeued job's records oldest first
                out[native_id] = _status(native_id, state, reason, code, sig, node)
        # An array cancelled before any element started is one record with the bare array
        # id ("235"; see accounting_argv): it stands for every element asked for.
        for asked in _asked_ids(result.argv):
            whole = asked.split("_", 1)[0]
            if asked not in out and "_" in asked and whole in out:
                out[asked] = dataclasses.replace(out[whole], native_id=asked)
        return out

    # -- cancel and nodes ---------------------------------------------------------------

    def cancel_argv(self, native_ids: Sequence[str]) -> list[str]:
        if not native_ids:
            raise ValueError("scancel of no jobs")
        return ["scancel", *self._cluster(), *native_ids]

    def nodes_argv(self) -> list[str] | None:
        """One line per node and partition: ``sinfo --Node``."""
        return ["sinfo", *self._cluster(), "--Node", "--noheader", f"--format={SINFO_FORMAT}"]

    def parse_nodes(self, result: CommandResult) -> list[ClusterNode]:
        nodes: dict[str, ClusterNode] = {}
        for line in result.stdout.splitlines():
            fields = line.split("|")
            if len(fields) != len(SINFO_FIELDS) or line.startswith("CLUSTER:"):
                continue
            name, cpus, mem, gres, state, part, load, free, addr, tmp = (
                f.strip() for f in fields)
            part = part.rstrip("*")
            if name in nodes:
                old = nodes[name]
                if part and part not in old.partitions:
                    nodes[name] = _replace_partitions(old, (*old.partitions, part))
                continue
            cores = float(cpus) if _number(cpus) else 0.0
            nodes[name] = ClusterNode(
                name=name, cores=cores,
                memory=int(float(mem)) * _MIB if _number(mem) else 0,
                gpus=gres_gpus(gres), state=state, usable=_node_usable(state),
                cpu_load=(min(1.0, float(load) / cores) if _number(load) and cores else None),
                memory_free=int(float(free)) * _MIB if _number(free) else None,
                partitions=(part,) if part else (), address=addr if addr != "N/A" else "",
                tmp_disk=int(float(tmp)) * _MIB if _number(tmp) else 0)
        return list(nodes.values())

    def partitions_argv(self) -> list[str]:
        """``scontrol show partition`` in one line per partition (``parse_partitions``)."""
        return ["scontrol", *self._cluster(), "--oneliner", "show", "partition"]

    def config_argv(self) -> list[str]:
        """``scontrol show config`` (``parse_config``; MaxArraySize, MinJobAge, ...)."""
        return ["scontrol", *self._cluster(), "show", "config"]

    # -- errors ------------------------------------------------------------------------

    def classify(self, result: CommandResult) -> ErrorKind:
        return classify(result)


def _asked_ids(argv: Sequence[str]) -> list[str]:
    for arg in argv:
        if arg.startswith("--jobs="):
            return arg.removeprefix("--jobs=").split(",")
    return []


def _replace_partitions(node: ClusterNode, partitions: tuple[str, ...]) -> ClusterNode:
    return dataclasses.replace(node, partitions=partitions)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: sinfo's long states in which a node takes jobs (a suffix flag may follow: "idle~")
_USABLE_NODE_STATES = frozenset({"idle", "mixed", "allocated", "completing", "planned"})


def _node_usable(state: str) -> bool:
    base = state.rstrip("*~#!%$@^-")
    # "*": not responding; drain/down/fail/maint/reserved are not in the usable set
    return base in _USABLE_NODE_STATES and "*" not in state


#: the job's process ended by itself (or by a signal it got from elsewhere)
_OWN_EXIT = frozenset({"COMPLETED", "FAILED", "SPECIAL_EXIT"})
#: Slurm's stand-in signal for an OOM kill (slurm.h SIG_OOM 253: sacct prints 0:125)
_SIG_OOM = 125


def _status(native_id: str, native: str, reason: str, code: int, sig: int,
            nodes: str) -> NativeStatus:
    word = native.split(maxsplit=1)[0] if native.strip() else ""  # "CANCELLED by 1000"
    state = SLURM_STATES.get(word, TaskState.UNKNOWN)
    reason = "" if reason in {"None", "(null)"} else reason
    node = nodes or None
    if state is TaskState.STARTING:
        return NativeStatus(native_id, state, message=reason or native,
                            pending_reason=reason or None)
    if not state.terminal:
        message = native if state is not TaskState.UNKNOWN else f"unknown Slurm state {native!r}"
        return NativeStatus(native_id, state, message=message, node=node)
    exit_code: int | None = None
    if word == "OUT_OF_MEMORY" or sig == _SIG_OOM:
        exit_code = 128 + 9  # the kernel's OOM killer sends SIGKILL
    elif word in _OWN_EXIT:
        # the job's own exit: a signal as 128+n, else its code
        exit_code = 128 + sig if sig else code
    # else Slurm ended it (TIMEOUT, CANCELLED, NODE_FAIL, ...): what squeue and sacct say of
    # the signal differs (TIMEOUT: squeue 15, sacct 0:0), so no exit status is claimed
    message = " ".join(x for x in (native, f"ExitCode={code}:{sig}", reason) if x)
    return NativeStatus(native_id, state, exit_code=exit_code,
                        exit_reason=_EXIT_REASONS.get(word), message=message, node=node)


# ---------------------------------------------------------------------------- classify

_UNKNOWN_JOB = ("Invalid job id specified",)
#: a limit on how many jobs may be queued at once: it clears as jobs end
_SUBMIT_LIMIT = re.compile(r"Max\w*Submit\w*|Grp\w*Submit\w*")
_TRANSIENT = (
    "Socket timed out on send/recv operation", "Unable to contact slurm controller",
    "Resource temporarily unavailable", "temporarily unable to accept job",
    "Job creation temporarily disabled", "Slurm job queue full",
    "Zero Bytes were transmitted or received", "Connection refused", "Connection timed out",
    "Transport endpoint is not connected", "Communication connection failure",
    "Problem talking to the database", "backup controller in standby mode",
)
_PERMANENT = (
    "Invalid partition name specified", "invalid partition specified",
    "Invalid account or account/partition combination specified", "Invalid qos specification",
    "Requested node configuration is not available", "More processors requested than permitted",
    "Requested time limit is invalid", "Memory specification can not be satisfied",
    "Temporary disk specification can not be satisfied",
    "Invalid generic resource (gres) specification", "Invalid feature specification",
    "Invalid node name specified", "unrecognized option", "invalid option",
    "Unable to open file", "Access/permission denied", "not permitted to use this partition",
    "Invalid wckey specification", "Node count specification invalid",
    "Invalid job array specification", "Job violates accounting/QOS policy",
    "Slurm accounting storage is disabled",
)


def classify(result: CommandResult) -> ErrorKind:
    """What a Slurm command that failed means: try again, give up, or the job is unknown.

    A QOS or association limit on queued jobs (``QOSMaxSubmitJobPerUserLimit``, ...) is
    transient; every other policy violation is permanent. Unknown messages are permanent
    (the job fails with the message rather than being retried without end), except a
    command that was killed (negative return code: the base's timeout)."""
    text = f"{result.stderr}\n{result.stdout}"
    if any(p in text for p in _UNKNOWN_JOB):
        return ErrorKind.UNKNOWN_JOB
    if _SUBMIT_LIMIT.search(text) or any(p in text for p in _TRANSIENT):
        return ErrorKind.TRANSIENT
    if any(p in text for p in _PERMANENT):
        return ErrorKind.PERMANENT
    return ErrorKind.TRANSIENT if result.returncode < 0 else ErrorKind.PERMANENT


def accounting_disabled(result: CommandResult) -> bool:
    """``sacct`` says the cluster keeps no accounting (no slurmdbd)."""
    return result.returncode != 0 and "accounting storage is disabled" in result.stderr


def chunks(ids: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    """``ids`` in pieces of at most ``size`` (for sacct and scancel)."""
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


if TYPE_CHECKING:  # the dialect implements the protocol
    _dialect: Dialect = SlurmDialect()
