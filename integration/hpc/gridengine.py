"""Grid Engine (Sun/Oracle SGE 6.x, Son of Grid Engine 8.x, Univa/Altair UGE 8.x): pure
builders and parsers.

Facts this follows, measured on Son of Grid Engine 8.1.9 (recordings in
``tests/fixtures/gridengine/``) and from its man pages (qsub(1), qstat(1), qacct(1),
sge_status(5), sge_accounting(5)):

- ``qsub`` gets a script file, never ``-b y`` (which re-parses the command in a shell:
  ``sh -c "exit 3"`` exits 0 that way). ``-terse`` prints ``ID`` or ``ID.1-N:1``.
- ``qstat -xml`` lists running jobs (and each running array task) under ``queue_info``
  and pending ones under ``job_info``; pending array tasks come as ranges
  (``2-5:1``, ``2,4``). A finished job simply disappears.
- ``qacct -j`` takes ONE job id (``-j 1,2`` reads as 1, a second ``-j`` wins) or a name
  pattern; it prints every task of an array job. A job deleted while pending has no
  record; an unknown id is ``error: job id N not found`` with status 1.
- ``failed 37`` ("qmaster enforced h_rt, h_cpu, or h_vmem limit") covers both the wall
  time and the memory limit: which one it was is read from the job's requests
  (``category``) against ``ru_wallclock`` and ``maxvmem``. A job that exceeds ``h_vmem``
  in a single process usually fails inside (``h_vmem`` is also its RLIMIT_AS) with
  ``failed 0``; execd's own kill (``failed 37``) comes when the processes together do.
- A job script that exits 99 is put back in the queue (``Rq``) and runs again; one that
  exits 100 goes into error state (``Eqw``, ``failed 30``): ``reserved_exit_codes``.
- ``Eqw`` is not terminal in Grid Engine (the job waits for ``qmod -cj``); here it is an
  error, whose reason only ``qstat -j ID`` tells (``explain_argv``/``parse_explain``).
"""

from __future__ import annotations

import math
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState
from .dialect import ClusterNode, CommandResult, ErrorKind, NativeStatus, Submission

#: extra qsub arguments for every job, split like a shell would (nothing runs them)
ENVIRONMENT_VARIABLE = "MESOBATCH_GRIDENGINE_ARGS"

FLAVORS = ("sge", "uge")
#: the memory resource a flavor's sites usually make consumable (per slot)
DEFAULT_MEMORY_RESOURCE = {"sge": "h_vmem", "uge": "m_mem_free"}

_RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# sge_types(1) "name": no leading digit, none of these characters
_BAD_NAME_CHARS = set("\n\t\r /:@\\*?")


@dataclass(frozen=True, slots=True)
class GridEngineSettings:
    """How this site's Grid Engine is asked for resources."""

    #: "sge" (Sun/Oracle SGE, Son of Grid Engine, Open Grid Scheduler) or "uge" (Univa/Altair)
    flavor: str = "sge"
    #: parallel environment for jobs of more than one core (allocation_rule $pe_slots)
    parallel_environment: str = "smp"
    #: memory request: h_vmem, mem_free, s_vmem, virtual_free, m_mem_free (UGE), ...;
    #: None: the flavor's usual one
    memory_resource: str | None = None
    #: the memory resource counts per slot (consumable YES): ask for memory / cores
    memory_per_slot: bool = True
    #: a site's disk resource (Grid Engine defines none); None: disk is not requested
    disk_resource: str | None = None
    disk_per_slot: bool = False
    #: a site's GPU resource; None: jobs that need GPUs are refused
    gpu_resource: str | None = "gpu"
    gpu_per_slot: bool = False
    queue: str | None = None  #: -q
    project: str | None = None  #: -P
    extra_args: tuple[str, ...] = ()  #: more qsub arguments (checked for conflicts)
    #: -V: the job gets the submitting environment (as Slurm's sbatch does by default)
    export_environment: bool = True
    #: -w e: qsub refuses a job no queue could ever run, instead of it waiting forever.
    #: Off by default, as in Grid Engine: the check ignores load values, so on sites where
    #: the memory resource is a load value (mem_free not consumable) it refuses every job.
    verify: bool = False
    #: whose jobs the status query lists ("$user": qstat substitutes the caller's name)
    user: str = "$user"
    #: max_aj_tasks of sge_conf(5) (default 75000)
    max_array_size: int = 75000

    def __post_init__(self) -> None:
        if self.flavor not in FLAVORS:
            raise ValueError(f"Grid Engine flavor {self.flavor!r}: allowed are {FLAVORS}")
        for label, value in (("parallel environment", self.parallel_environment),
                             ("memory resource", self.memory_resource),
                             ("disk resource", self.disk_resource),
                             ("GPU resource", self.gpu_resource)):
            if value is not None and not _RESOURCE_NAME.match(value):
                raise ValueError(f"Grid Engine {label} {value!r} is not a valid name")
        if self.max_array_size < 1:
            raise ValueError(f"max_array_size must be at least 1, not {self.max_array_size}")

    @property
    def memory(self) -> str:
        """The memory resource in use."""
        return self.memory_resource or DEFAULT_MEMORY_RESOURCE[self.flavor]


# -- extra arguments ------------------------------------------------------------------------

#: qsub options mesobatch always sets or that change what qsub does, and why
_OWNED_OPTIONS = {
    "-N": "the job name carries the run's tag", "-o": "mesobatch sets the output directory",
    "-e": "mesobatch sets the output directory", "-wd": "mesobatch sets the working directory",
    "-cwd": "mesobatch sets the working directory", "-t": "mesobatch submits arrays itself",
    "-b": "mesobatch submits scripts (-b n)", "-S": "mesobatch's scripts run with /bin/sh",
    "-terse": "mesobatch reads qsub's output", "-pe": "cores come from each job's request",
    "-sync": "qsub would wait for the job", "-now": "qsub would fail if it cannot start now",
    "-@": "an option file mesobatch cannot check",
}
#: resource names (and shortcuts) of sge_complex(5) that mesobatch may request itself
_SHORTCUTS = {"mf": "mem_free", "vf": "virtual_free", "mfree": "m_mem_free", "q": "qname"}


def check_extra_args(settings: GridEngineSettings, args: Sequence[str], source: str) -> None:
    """Raise ValueError if extra qsub arguments clash with what mesobatch sets."""
    owned = dict(_OWNED_OPTIONS)
    if settings.queue is not None:
        owned["-q"] = f"the queue is set ({settings.queue})"
    if settings.project is not None:
        owned["-P"] = f"the project is set ({settings.project})"
    resources = {"h_rt": "walltime comes from each job's request",
                 settings.memory: "memory comes from each job's request"}
    for name in (settings.disk_resource, settings.gpu_resource):
        if name:
            resources[name] = "it comes from each job's request"
    if settings.queue is not None:
        resources["qname"] = f"the queue is set ({settings.queue})"
    for i, arg in enumerate(args):
        if arg in owned:
            raise ValueError(f"{source}: {arg!r} conflicts with what mesobatch sets "
                             f"({owned[arg]}); any other qsub option is allowed")
        if arg == "-l" and i + 1 < len(args):
            for item in args[i + 1].split(","):
                name = item.split("=", 1)[0].strip()
                name = _SHORTCUTS.get(name, name)
                if name in resources:
                    raise ValueError(f"{source}: '-l {item}' conflicts with what mesobatch "
                                     f"sets ({resources[name]}); other resources are allowed")


def extra_arguments(settings: GridEngineSettings, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The setting's extra arguments, then those of MESOBATCH_GRIDENGINE_ARGS, checked."""
    check_extra_args(settings, settings.extra_args, "Grid Engine extra arguments")
    try:
        from_env = tuple(shlex.split(environ.get(ENVIRONMENT_VARIABLE, "")))
    except ValueError as e:
        raise ValueError(f"{ENVIRONMENT_VARIABLE} cannot be split into arguments: {e}") from e
    check_extra_args(settings, from_env, ENVIRONMENT_VARIABLE)
    return settings.extra_args + from_env


# -- units ------------------------------------------------------------------------------------

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
          "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_memory(text: str) -> int | None:
    """Bytes from a memory specifier (sge_types(1): ``4G``, ``300M``, ``1.5k``) or from
    qacct/qhost's forms (``385.645MB``, ``23.5G``, ``0.000B``); None if not one."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)B?\s*", text)
    if not m:
        return None
    return round(float(m.group(1)) * _UNITS[m.group(2)])


def parse_time(text: str) -> float | None:
    """Seconds from a time specifier (``90``, ``1:30:00``, ``4s``); None if not one."""
    text = text.strip().removesuffix("s")
    try:
        if ":" in text:
            total = 0.0
            for part in text.split(":"):
                total = total * 60 + (float(part) if part else 0.0)
            return total
        return float(text)
    except ValueError:
        return None


def memory_spec(amount: int) -> str:
    """A memory request in whole MiB, rounded up (Grid Engine's ``M`` is 1024*1024)."""
    return f"{max(1, math.ceil(amount / 1024**2))}M"


# -- task id ranges ---------------------------------------------------------------------------

def expand_tasks(text: str) -> list[int]:
    """Task ids of a qstat task list: ``3``, ``2-5:1``, ``2,4``, ``1-9:2,12``."""
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not m:
            raise ValueError(f"not a Grid Engine task range: {text!r}")
        first = int(m.group(1))
        last = int(m.group(2) or first)
        ids.extend(range(first, last + 1, int(m.group(3) or 1)))
    return ids


def split_id(native_id: str) -> tuple[str, int | None]:
    """``"12"`` -> ("12", None); ``"12.3"`` (an array task) -> ("12", 3)."""
    job, _, task = native_id.partition(".")
    if not job.isdigit() or (task and not task.isdigit()):
        raise ValueError(f"not a Grid Engine job id: {native_id!r} (expected N or N.T)")
    return job, int(task) if task else None


# -- states -----------------------------------------------------------------------------------

#: every letter of a qstat state (sge_status(5)); a state with any other is UNKNOWN
_STATE_LETTERS = set("qwhrtRsSTdEz")


def native_state(state: str) -> tuple[TaskState, str]:
    """A qstat state (``qw``, ``hqw``, ``r``, ``Rr``, ``t``, ``dr``, ``Eqw``, ``s``, ...) in
    the one enum, with a word on what it means where that matters."""
    letters = set(state)
    if not state or not letters <= _STATE_LETTERS:
        return TaskState.UNKNOWN, f"unknown Grid Engine state {state!r}"
    if "E" in letters:
        return TaskState.ERROR, "error state"
    if "d" in letters:
        return TaskState.KILLING, "being deleted"
    if letters & set("sST"):
        return TaskState.RUNNING, "suspended"
    if "r" in letters:
        return TaskState.RUNNING, ""
    if "t" in letters:
        return TaskState.STARTING, "being transferred to its host"
    if "q" in letters or "w" in letters:
        if "h" in letters:
            return TaskState.STARTING, "on hold"
        return TaskState.STARTING, "rescheduled" if "R" in letters else ""
    return TaskState.UNKNOWN, f"unknown Grid Engine state {state!r}"


# -- qacct ------------------------------------------------------------------------------------

#: sge_status(5) "failed" codes: the job never ran (its exit status means nothing)
_NEVER_RAN = frozenset({1, 3, 4, 6, 7, 8, 9, 10, 11, 26, 27, 28, 29, 31, 32, 33, 34, 35, 36,
                        38})
#: the shepherd or its host died, or qmaster does not know the job
_LOST = frozenset({18, 19, 20, 21})
#: the job goes back to the queue: not a final record
_REQUEUED = frozenset({24, 25})


def parse_qacct(text: str) -> list[dict[str, str]]:
    """The records of ``qacct -j`` output, each as field -> value, in file order."""
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("====="):
            current = {}
            records.append(current)
            continue
        if current is None or not line.strip():
            continue
        key, _, value = line.partition(" ")
        current[key] = value.strip()
    return [r for r in records if "jobnumber" in r]


def _requests(category: str) -> dict[str, str]:
    """The ``-l`` requests of a qacct category (``-l h_rt=3,h_vmem=1G -pe smp 2``)."""
    words = category.split()
    found: dict[str, str] = {}
    for i, word in enumerate(words[:-1]):
        if word == "-l":
            for item in words[i + 1].split(","):
                name, _, value = item.partition("=")
                found[name] = value
    return found


def _limit_reason(record: Mapping[str, str]) -> tuple[BatchJobExitReason, str]:
    """Which limit a ``failed 37`` job hit: wall time (h_rt, h_cpu) or memory (h_vmem)."""
    requests = _requests(record.get("category", ""))
    wallclock = parse_time(record.get("ru_wallclock", "")) or 0.0
    maxvmem = parse_memory(record.get("maxvmem", "")) or 0
    h_rt = parse_time(requests.get("h_rt", ""))
    h_vmem = parse_memory(requests.get("h_vmem", ""))
    ran = f"ran {wallclock:g} s, maxvmem {record.get('maxvmem', '?')}"
    # wallclock is whole seconds, and execd notices a passed h_rt within a second or so
    if h_rt is not None and wallclock + 1 >= h_rt:
        return BatchJobExitReason.MAXJOBDURATION, f"h_rt={requests['h_rt']} ({ran})"
    if h_vmem is not None and maxvmem >= h_vmem:
        return BatchJobExitReason.MEMLIMIT, f"h_vmem={requests['h_vmem']} ({ran})"
    if h_vmem is not None and h_rt is None:
        return BatchJobExitReason.MEMLIMIT, f"h_vmem={requests['h_vmem']} ({ran})"
    return BatchJobExitReason.MAXJOBDURATION, ran


def accounting_status(record: Mapping[str, str]) -> NativeStatus | None:
    """One qacct record as a final state; None for a record that is not final (requeued)."""
    job = record["jobnumber"]
    task = record.get("taskid", "undefined")
    native_id = job if task in ("undefined", "") else f"{job}.{task}"
    failed_text = record.get("failed", "0")
    code = failed_text.split(None, 1)[0] if failed_text.strip() else "0"
    failed = int(code) if code.isdigit() else -1
    why = failed_text.partition(":")[2].strip()
    exit_text = record.get("exit_status", "").split()
    exit_status = int(exit_text[0]) if exit_text and exit_text[0].isdigit() else None
    node = record.get("hostname") or None
    if failed in _REQUEUED:
        return None
    if failed == 0:
        if exit_status == 0:
            return NativeStatus(native_id, TaskState.FINISHED, 0, node=node)
        return NativeStatus(native_id, TaskState.FAILED, exit_status,
                            BatchJobExitReason.FAILED, f"exit status {exit_status}", node=node)
    message = f"failed {failed}: {why}" if why else f"failed {failed}"
    if failed == 37:
        reason, detail = _limit_reason(record)
        return NativeStatus(native_id, TaskState.FAILED, exit_status, reason,
                            f"{message}: {detail}", node=node)
    if failed in (17, 100):  # killed by a signal: qdel, or a kill from outside
        return NativeStatus(native_id, TaskState.KILLED, exit_status,
                            BatchJobExitReason.KILLED, message, node=node)
    if failed in _LOST:
        return NativeStatus(native_id, TaskState.LOST, None, BatchJobExitReason.LOST,
                            message, node=node)
    if failed in _NEVER_RAN:
        return NativeStatus(native_id, TaskState.ERROR, None, BatchJobExitReason.ERROR,
                            message, node=node)
    # 12-16 (ran; PE stop, epilog failed), 30 (exited 100), unknown codes: the job ran
    if exit_status == 0 and failed in (12, 13, 14, 15, 16):
        return NativeStatus(native_id, TaskState.FINISHED, 0, message=message, node=node)
    return NativeStatus(native_id, TaskState.FAILED, exit_status, BatchJobExitReason.FAILED,
                        message, node=node)


# -- the dialect ------------------------------------------------------------------------------

class GridEngineDialect:
    """Grid Engine's builders and parsers (the ``Dialect`` protocol), for one site's settings.

    ``environ`` is read once, here, for ``MESOBATCH_GRIDENGINE_ARGS``: a clash with what
    mesobatch sets is a ValueError at start, not at the first submission.
    """

    name = "gridengine"
    array_index_variable = "SGE_TASK_ID"
    array_first_index = 1
    #: accounting takes one job (qacct -j ID) per query; the status query names no ids at
    #: all (qstat -xml lists all of the user's jobs), so one call per poll covers any number
    query_chunk = 1
    #: exit statuses Grid Engine takes for itself: 99 reschedules the job, 100 puts it in
    #: error state. A job's script must not end with these.
    reserved_exit_codes = frozenset({99, 100})
    #: most jobs accounting is asked about one by one in a poll; beyond, by the run's tag
    accounting_by_id = 4

    def __init__(self, settings: GridEngineSettings | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings or GridEngineSettings()
        self.extra_args = extra_arguments(self.settings, environ or {})
        self.max_array_size = self.settings.max_array_size

    # -- submission --

    def submit_argv(self, sub: Submission) -> list[str]:
        """qsub of the script (or array script): cores as ``-pe``, memory, disk, GPUs,
        ``h_rt`` and excluded hosts as one ``-l``. ``preemptible`` has no meaning in Grid
        Engine's requests and is not passed on (a site's queue for it goes in ``queue``)."""
        s = self.settings
        _check_name(sub.name)
        if sub.size < 1:
            raise ValueError("a submission needs at least one script")
        if sub.size > 1 and sub.array_script is None:
            raise ValueError(f"{sub.size} scripts but no array script")
        if sub.size > self.max_array_size:
            raise ValueError(f"an array of {sub.size} exceeds max_array_size "
                             f"{self.max_array_size}")
        argv = ["qsub", "-terse", "-b", "n", "-S", "/bin/sh", "-N", sub.name,
                "-wd", sub.work_dir, "-o", sub.system_output, "-e", sub.system_output]
        if s.export_environment:
            argv.append("-V")
        if s.verify:
            argv += ["-w", "e"]
        slots = max(1, math.ceil(sub.cores))
        if slots > 1:
            argv += ["-pe", s.parallel_environment, str(slots)]
        resources = []
        if sub.memory > 0:
            amount = math.ceil(sub.memory / slots) if s.memory_per_slot else sub.memory
            resources.append(f"{s.memory}={memory_spec(amount)}")
        if sub.disk > 0 and s.disk_resource:
            amount = math.ceil(sub.disk / slots) if s.disk_per_slot else sub.disk
            resources.append(f"{s.disk_resource}={memory_spec(amount)}")
        if sub.gpus > 0:
            if not s.gpu_resource:
                raise ValueError(f"{sub.name}: {sub.gpus} GPUs asked for, but no Grid Engine "
                                 "GPU resource is set")
            amount = math.ceil(sub.gpus / slots) if s.gpu_per_slot else sub.gpus
            resources.append(f"{s.gpu_resource}={amount}")
        if sub.walltime is not None and sub.walltime > 0:
            resources.append(f"h_rt={max(1, math.ceil(sub.walltime))}")
        if sub.exclude:
            resources.append("hostname=" + "&".join(f"!{node}" for node in sub.exclude))
        if resources:
            argv += ["-l", ",".join(resources)]
        if s.queue:
            argv += ["-q", s.queue]
        if s.project:
            argv += ["-P", s.project]
        if sub.array_script is not None:
            argv += ["-t", f"1-{sub.size}"]
        argv += self.extra_args
        argv.append(sub.array_script if sub.array_script is not None else sub.scripts[0])
        return argv

    def parse_submit(self, sub: Submission, result: CommandResult) -> list[str]:
        """``ID`` or ``ID.1-N:1`` (-terse), or the long ``Your job ...`` sentence."""
        out = result.stdout.strip()
        m = (re.search(r"^(\d+)(?:\.(\d+)-(\d+):(\d+))?$", out, re.M)
             or re.search(r"Your job(?:-array)? (\d+)(?:\.(\d+)-(\d+):(\d+))? ", out))
        if result.returncode != 0 or not m:
            raise ValueError(f"qsub printed no job id (exit {result.returncode}): "
                             f"{out or result.stderr.strip()!r}")
        job = m.group(1)
        if sub.array_script is None:
            return [job]
        first, last, step = int(m.group(2) or 0), int(m.group(3) or 0), int(m.group(4) or 0)
        if (first, last, step) != (1, sub.size, 1):
            raise ValueError(f"qsub made array {out!r}, expected tasks 1-{sub.size}")
        return [f"{job}.{task}" for task in range(1, sub.size + 1)]

    # -- status --

    def status_argv(self, run_tag: str, native_ids: Sequence[str]) -> list[str]:
        """``qstat -xml`` of all of the user's jobs: qstat cannot select by id or name in
        this format, so one call covers every job whatever their number."""
        return ["qstat", "-xml", "-u", self.settings.user]

    def parse_status(self, result: CommandResult) -> dict[str, NativeStatus]:
        try:
            root = ET.fromstring(result.stdout)
        except ET.ParseError as e:
            raise ValueError(f"qstat -xml printed no XML ({e}): {result.stdout[:200]!r}") from e
        found: dict[str, NativeStatus] = {}
        for entry in root.iter("job_list"):
            job = (entry.findtext("JB_job_number") or "").strip()
            code = (entry.findtext("state") or "").strip()
            if not job or code == "z":  # a finished job (qstat -s z): accounting tells more
                continue
            tasks = (entry.findtext("tasks") or "").strip()
            queue = (entry.findtext("queue_name") or "").strip()
            node = queue.partition("@")[2] or None
            state, word = native_state(code)
            reason = None
            message = f"{code}: {word}" if word else ""
            pending_reason = None
            if state is TaskState.ERROR:
                reason = BatchJobExitReason.ERROR
                message = f"{code}: the job is in error state (qstat -j {job} says why)"
            elif state is TaskState.STARTING:
                pending_reason = word or "queued"
            ids = [f"{job}.{t}" for t in expand_tasks(tasks)] if tasks else [job]
            for native_id in ids:
                found[native_id] = NativeStatus(native_id, state, exit_reason=reason,
                                                message=message, node=node,
                                                pending_reason=pending_reason)
        return found

    def explain_argv(self, native_ids: Sequence[str]) -> list[str]:
        """``qstat -xml -j`` of these jobs: the reasons of error states and, where the
        scheduler keeps them (schedd_job_info), why jobs wait."""
        jobs = dict.fromkeys(split_id(i)[0] for i in native_ids)
        return ["qstat", "-xml", "-j", ",".join(jobs)]

    def parse_explain(self, result: CommandResult) -> dict[str, str]:
        """Asked id -> Grid Engine's words on it; ids it has nothing on (or that qstat
        does not know) are absent. An error reason is per task (``ID.T``; a job that is no
        array also under ``ID``); the scheduler's reasons are per job, and those it gives
        for all waiting jobs go to each asked job none of whose tasks has started. The ids
        asked are read back from the argv."""
        try:
            root = ET.fromstring(result.stdout)
        except ET.ParseError as e:
            raise ValueError(f"qstat -xml -j printed no XML ({e})") from e
        errors: dict[tuple[str, int], list[str]] = {}
        dispatched: set[str] = set()
        for info in root.iter("djob_info"):
            for element in info.findall("element"):
                job = (element.findtext("JB_job_number") or "").strip()
                for task in element.findall("JB_ja_tasks/ulong_sublist"):
                    dispatched.add(job)
                    number = task.findtext("JAT_task_number")
                    texts = [m.text or "" for m in task.iter("QIM_message")]
                    if number is not None and texts:
                        errors[(job, int(number))] = texts
        per_job: dict[str, list[str]] = {}
        for item in root.findall(".//SME_message_list/element"):
            text = item.findtext("MES_message") or ""
            for value in item.iter("ULNG_value"):
                per_job.setdefault((value.text or "").strip(), []).append(text)
        everyone = [m.text or "" for m in root.findall(".//SME_global_message_list/element/"
                                                         "MES_message")]
        asked = result.argv[result.argv.index("-j") + 1].split(",") \
            if "-j" in result.argv else []
        found: dict[str, str] = {}
        for job in asked:
            tasks = sorted(t for (j, t) in errors if j == job)
            for t in tasks:
                found[f"{job}.{t}"] = "; ".join(errors[(job, t)])
            if tasks == [1]:
                found[job] = found[f"{job}.1"]
            if job in found:
                continue
            words = per_job.get(job, []) + ([] if job in dispatched else everyone)
            if words:
                found[job] = "; ".join(words)
        return found

    # -- accounting --

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str]:
        """``qacct -j ID``: one job (qacct reads a single id; an array job's ids all share
        it, and one call gives all its tasks, ``-t`` narrowing to one)."""
        parts = [split_id(i) for i in native_ids]
        jobs = {job for job, _ in parts}
        if len(jobs) != 1:
            raise ValueError(f"qacct takes one job id per call, not {sorted(jobs)}")
        job = jobs.pop()
        tasks = {task for _, task in parts}
        if len(tasks) == 1 and None not in tasks:
            return ["qacct", "-j", job, "-t", str(tasks.pop())]
        return ["qacct", "-j", job]

    def accounting_queries(self, run_tag: str, native_ids: Sequence[str]) -> list[list[str]]:
        """The ``qacct`` calls that cover these ids: one per job (an array's tasks share
        it: one call, without ``-t`` when more than one of its tasks is asked about); for
        more than ``accounting_by_id`` jobs, one call for every finished job of the run,
        by its tag in their names (each qacct call reads the whole accounting file)."""
        by_job: dict[str, list[str]] = {}
        for native_id in native_ids:
            by_job.setdefault(split_id(native_id)[0], []).append(native_id)
        if len(by_job) > self.accounting_by_id:
            return [self.accounting_by_name_argv(f"{run_tag}-*")]
        return [self.accounting_argv(ids) for ids in by_job.values()]

    def accounting_by_name_argv(self, name_pattern: str) -> list[str]:
        """``qacct -j PATTERN``: every finished job whose name matches (``*`` and ``[...]``
        wildcards), e.g. a whole run by its tag in one call."""
        return ["qacct", "-j", name_pattern]

    def parse_accounting(self, result: CommandResult) -> dict[str, NativeStatus]:
        """Final states; the last record of an id wins (a requeued job has several)."""
        found: dict[str, NativeStatus] = {}
        for record in parse_qacct(result.stdout):
            status = accounting_status(record)
            if status is not None:
                found[status.native_id] = status
            else:  # requeued: an earlier final-looking record no longer holds
                task = record.get("taskid", "undefined")
                key = record["jobnumber"] + ("" if task == "undefined" else f".{task}")
                found.pop(key, None)
        return found

    # -- kill --

    def cancel_argv(self, native_ids: Sequence[str]) -> list[str]:
        for native_id in native_ids:
            split_id(native_id)
        return ["qdel", *native_ids]

    # -- nodes --

    def nodes_argv(self) -> list[str] | None:
        return ["qhost", "-q", "-xml"]

    def parse_nodes(self, result: CommandResult) -> list[ClusterNode]:
        """Hosts of ``qhost -q -xml`` (not the pseudo host ``global``); a host is usable
        when its execd reports load and one of its queue instances takes jobs."""
        try:
            root = ET.fromstring(result.stdout)
        except ET.ParseError as e:
            raise ValueError(f"qhost -xml printed no XML ({e})") from e
        nodes = []
        for host in root.iter("host"):
            name = host.get("name", "")
            if not name or name == "global":
                continue
            values = {v.get("name"): (v.text or "").strip() for v in host.findall("hostvalue")}
            cores = _number(values.get("num_proc"))
            total = parse_memory(values.get("mem_total", "-"))
            used = parse_memory(values.get("mem_used", "-"))
            load = _number(values.get("load_avg"))
            queues, states, takes_jobs = [], [], False
            for queue in host.findall("queue"):
                qname = queue.get("name", "")
                qvalues = {v.get("name"): (v.text or "").strip()
                           for v in queue.findall("queuevalue")}
                state = qvalues.get("state_string", "")
                queues.append(qname)
                if state:
                    states.append(f"{qname}:{state}")
                if not set(state) & _QUEUE_DOWN:
                    takes_jobs = True
            reporting = load is not None
            nodes.append(ClusterNode(
                name=name, cores=cores or 0.0, memory=total or 0,
                state=" ".join(states) or ("ok" if reporting else "not reporting"),
                usable=reporting and takes_jobs,
                cpu_load=load / cores if load is not None and cores else None,
                memory_free=total - used if total is not None and used is not None else None,
                partitions=tuple(queues)))
        return nodes

    # -- errors --

    def classify(self, result: CommandResult) -> ErrorKind:
        text = f"{result.stderr}\n{result.stdout}"
        if any(p.search(text) for p in _TRANSIENT):
            return ErrorKind.TRANSIENT
        if any(p.search(text) for p in _PERMANENT):
            return ErrorKind.PERMANENT
        if any(p.search(text) for p in _UNKNOWN_JOB):
            return ErrorKind.UNKNOWN_JOB
        # an unexplained qsub failure is the request's; a query may work next time
        return ErrorKind.PERMANENT if result.argv[:1] == ("qsub",) else ErrorKind.TRANSIENT


#: queue instance states (qstat(1)) in which it takes no new jobs: unknown, alarm, disabled,
#: Error, suspended, Calendar suspended/disabled, orphaned
_QUEUE_DOWN = set("uaAdDEsSCo")

_TRANSIENT = [re.compile(p, re.I) for p in (
    r"unable to contact qmaster", r"commlib error", r"failed receiving gdi request",
    r"unable to send message to qmaster", r"got select error", r"connection refused",
    r"timeout", r"can't connect", r"qmaster is not alive", r"jobs are allowed per user",
    r"maximum number of jobs", r"temporarily unavailable",
)]
_PERMANENT = [re.compile(p, re.I) for p in (
    r"job rejected", r"unknown queue", r"unknown resource", r"no suitable queues",
    r"is not a valid object name", r"not allowed in objectname", r"unable to run job",
    r"argument to -\w+ option", r"invalid option", r"unknown option",
)]
_UNKNOWN_JOB = [re.compile(p, re.I) for p in (
    r"job \"?\d+(\.\d+)?\"? does not exist", r"job id \d+ not found", r"do not exist",
    r"job-array task \S+ does not exist", r"job-array tasks? \S+ not found",
)]


def _check_name(name: str) -> None:
    bad = sorted(set(name) & _BAD_NAME_CHARS)
    if not name or name[0].isdigit() or bad:
        raise ValueError(f"Grid Engine job name {name!r} is not allowed: it must not be empty, "
                         f"start with a digit, or contain any of {_BAD_NAME_LIST}"
                         f"{f' (it contains {bad})' if bad else ''}")


_BAD_NAME_LIST = "/ : @ \\ * ? or white space"


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "-") else None
    except ValueError:
        return None
