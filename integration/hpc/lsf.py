"""IBM Spectrum LSF 10.1: pure builders and parsers (no I/O; ``base.py`` runs them).

Submission: ``bsub`` with the job's script file as the command (not on stdin: bsub would
parse ``#BSUB`` lines out of it), ``-J name`` (``-J "name[1-N]"`` for an array; the element
reads ``LSB_JOBINDEX``, first index 1), ``-n`` cores, ``-R "select[...] rusage[mem=M]
span[hosts=1]"``, ``-M`` limit, ``-W`` minutes, ``-q``, ``-P``, ``-gpu "num=N"``, ``-cwd``,
``-o``/``-e`` for LSF's own output (``%J``/``%I`` in the names). Memory numbers are in the
cluster's LSF_UNIT_FOR_LIMITS (``LsfSettings.unit_for_limits``): unset, ``-M`` is in KB and
rusage mem in MB, as lsf.conf's documentation gives.

Status: one ``bjobs -a -json -o "..." -J "*<run tag>*"`` per poll (the run tag is in every job
name; ``-a`` keeps finished jobs for lsb.params' CLEAN_PERIOD). Termination reasons (IBM
"Termination reasons displayed by bacct, bhist, and bjobs"): TERM_MEMLIMIT -> MEMLIMIT,
TERM_RUNLIMIT/TERM_DEADLINE -> MAXJOBDURATION, TERM_OWNER/TERM_FORCE_OWNER/TERM_ADMIN/
TERM_FORCE_ADMIN -> KILLED, host and system failures (TERM_LOAD, TERM_REMOVE_HUNG_JOB,
TERM_ZOMBIE, TERM_ORPHAN_SYSTEM, TERM_RC_RECLAIM, TERM_PREEMPT, TERM_REQUEUE_*, TERM_WINDOW,
TERM_UNKNOWN, TERM_CHKPNT, TERM_OTHER) -> LOST. ``bkill`` cancels.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState
from .dialect import ClusterNode, CommandResult, ErrorKind, NativeStatus, StateTable, Submission

#: the bjobs -o fields one poll asks for
STATUS_FIELDS = "jobid jobindex stat exit_code exit_reason exec_host pend_reason job_name"

UNIT_POWERS = {"KB": 1, "MB": 2, "GB": 3, "TB": 4, "PB": 5, "EB": 6, "ZB": 7}

STATES: StateTable = {
    "PEND": TaskState.STARTING,
    "PSUSP": TaskState.STARTING,
    "WAIT": TaskState.STARTING,
    "RUN": TaskState.RUNNING,
    "USUSP": TaskState.RUNNING,
    "SSUSP": TaskState.RUNNING,
    "PROV": TaskState.STARTING,
    "DONE": TaskState.FINISHED,
    "EXIT": TaskState.FAILED,
    "UNKWN": TaskState.UNKNOWN,
    "ZOMBI": TaskState.LOST,
}

#: termination keyword -> (state, reason)
TERMINATIONS: Mapping[str, tuple[TaskState, BatchJobExitReason]] = {
    "TERM_MEMLIMIT": (TaskState.FAILED, BatchJobExitReason.MEMLIMIT),
    "TERM_SWAP": (TaskState.FAILED, BatchJobExitReason.MEMLIMIT),
    "TERM_RUNLIMIT": (TaskState.FAILED, BatchJobExitReason.MAXJOBDURATION),
    "TERM_DEADLINE": (TaskState.FAILED, BatchJobExitReason.MAXJOBDURATION),
    "TERM_CPULIMIT": (TaskState.FAILED, BatchJobExitReason.MAXJOBDURATION),
    "TERM_OWNER": (TaskState.KILLED, BatchJobExitReason.KILLED),
    "TERM_FORCE_OWNER": (TaskState.KILLED, BatchJobExitReason.KILLED),
    "TERM_ADMIN": (TaskState.KILLED, BatchJobExitReason.KILLED),
    "TERM_FORCE_ADMIN": (TaskState.KILLED, BatchJobExitReason.KILLED),
    "TERM_BUCKET_KILL": (TaskState.KILLED, BatchJobExitReason.KILLED),
    "TERM_EXTERNAL_SIGNAL": (TaskState.KILLED, BatchJobExitReason.KILLED),
    "TERM_LOAD": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_REMOVE_HUNG_JOB": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_ZOMBIE": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_ORPHAN_SYSTEM": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_RC_RECLAIM": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_PREEMPT": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_REQUEUE_ADMIN": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_REQUEUE_OWNER": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_WINDOW": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_UNKNOWN": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_CHKPNT": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_OTHER": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_MC_RECALL": (TaskState.LOST, BatchJobExitReason.LOST),
    "TERM_CWD_NOTEXIST": (TaskState.ERROR, BatchJobExitReason.ERROR),
    "TERM_PRE_EXEC_FAIL": (TaskState.ERROR, BatchJobExitReason.ERROR),
    "TERM_DATA": (TaskState.ERROR, BatchJobExitReason.ERROR),
}

_UNKNOWN_JOB = ("No matching job found", "is not found", "Job has already finished")
_TRANSIENT = ("LSF is down", "Cannot connect to LSF", "not responding", "timed out",
              "Failed in an LSF library call", "Please wait", "mbatchd", "temporarily",
              "try again", "Connection refused")
_PERMANENT = ("No such queue", "Bad argument", "Job not submitted", "not a user of project",
              "Bad resource requirement", "Bad GPU requirement", "Illegal", "No such directory",
              "not authorized", "exceeds")


@dataclass(frozen=True, slots=True)
class LsfSettings:
    """What differs between LSF clusters (a site's lsf.conf, queues and policies)."""

    #: LSF_UNIT_FOR_LIMITS of the cluster; None: unset (-M in KB, rusage mem in MB)
    unit_for_limits: str | None = None
    queue: str | None = None
    project: str | None = None
    #: divide the memory by the cores for rusage (sites where rusage mem is per slot)
    memory_per_slot: bool = False
    #: MAX_JOB_ARRAY_SIZE of lsb.params (1000 by default)
    max_array_size: int = 1000
    query_chunk: int = 1000
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.unit_for_limits is not None and self.unit_for_limits.upper() not in UNIT_POWERS:
            raise ValueError(
                f"LSF_UNIT_FOR_LIMITS={self.unit_for_limits!r}: expected one of "
                f"{', '.join(UNIT_POWERS)}"
            )
        if self.max_array_size < 1:
            raise ValueError(f"max_array_size={self.max_array_size}: expected at least 1")


def _in_unit(n_bytes: int, unit: str) -> int:
    return max(1, math.ceil(n_bytes / int(1024 ** UNIT_POWERS[unit])))


def parse_lsf_conf_unit(text: str) -> str | None:
    """LSF_UNIT_FOR_LIMITS from the text of an lsf.conf (None when it is not set)."""
    for line in text.splitlines():
        m = re.match(r"\s*LSF_UNIT_FOR_LIMITS\s*=\s*\"?(\w+)\"?", line)
        if m:
            return m.group(1).upper()
    return None


class LsfDialect:
    """LSF's builders and parsers (see the module docstring)."""

    name = "lsf"
    array_index_variable = "LSB_JOBINDEX"
    array_first_index = 1
    #: bjobs -a shows finished jobs (DONE/EXIT, exit code, TERM_* reason) for CLEAN_PERIOD
    finished_in_status = True

    def __init__(self, settings: LsfSettings | None = None) -> None:
        self.settings = settings or LsfSettings()
        self.max_array_size = self.settings.max_array_size
        self.query_chunk = self.settings.query_chunk

    # ------------------------------------------------------------------ submit

    def submit_files(self, sub: Submission) -> Mapping[str, str]:
        """Files the base writes before submitting (none: the script is the command)."""
        return {}

    def submit_argv(self, sub: Submission) -> list[str]:
        s = self.settings
        array = sub.array_script is not None
        argv = ["bsub", "-J", f"{sub.name}[1-{sub.size}]" if array else sub.name,
                "-cwd", sub.work_dir,
                "-o", f"{sub.system_output}/%J.%I.out" if array else
                f"{sub.system_output}/%J.out",
                "-e", f"{sub.system_output}/%J.%I.err" if array else
                f"{sub.system_output}/%J.err",
                "-n", str(max(1, math.ceil(sub.cores)))]
        req = []
        if sub.exclude:
            req.append("select[" + " && ".join(f"hname!='{h}'" for h in sub.exclude) + "]")
        if sub.memory:
            per = sub.memory / max(1, math.ceil(sub.cores)) if s.memory_per_slot else sub.memory
            unit = (s.unit_for_limits or "MB").upper()
            req.append(f"rusage[mem={_in_unit(int(per), unit)}]")
        req.append("span[hosts=1]")
        argv += ["-R", " ".join(req)]
        if sub.memory:
            argv += ["-M", str(_in_unit(sub.memory, (s.unit_for_limits or "KB").upper()))]
        if sub.walltime is not None:
            argv += ["-W", str(max(1, math.ceil(sub.walltime / 60)))]
        if sub.gpus:
            argv += ["-gpu", f"num={sub.gpus}"]
        if s.queue:
            argv += ["-q", s.queue]
        if s.project:
            argv += ["-P", s.project]
        argv += list(s.extra_args)
        # bsub's command is run by a shell on the execution host: quoted, a path with
        # spaces or quotes in it stays one word
        argv.append(shlex.quote(sub.array_script if array and sub.array_script
                                else sub.scripts[0]))
        return argv

    def parse_submit(self, sub: Submission, result: CommandResult) -> list[str]:
        m = re.search(r"Job <(\d+)> is submitted", result.stdout)
        if not m:
            raise ValueError(f"bsub printed no job id: {result.stdout.strip()!r}")
        job_id = m.group(1)
        if sub.array_script is None:
            return [job_id]
        return [f"{job_id}[{i}]" for i in range(1, sub.size + 1)]

    # ------------------------------------------------------------------ status

    def status_argv(self, run_tag: str, native_ids: Sequence[str]) -> list[str]:
        return ["bjobs", "-a", "-json", "-o", STATUS_FIELDS, "-J", f"*{run_tag}*"]

    def parse_status(self, result: CommandResult) -> dict[str, NativeStatus]:
        text = result.stdout.strip()
        if not text:
            return {}
        doc = json.loads(text)
        out: dict[str, NativeStatus] = {}
        for record in doc.get("RECORDS", []):
            if "ERROR" in record or "JOBID" not in record:
                continue
            status = self._record(record)
            out[status.native_id] = status
        return out

    def _record(self, r: Mapping[str, Any]) -> NativeStatus:
        index = str(r.get("JOBINDEX") or "0")
        native_id = r["JOBID"] if index in ("0", "") else f"{r['JOBID']}[{index}]"
        stat = str(r.get("STAT", ""))
        state = STATES.get(stat, TaskState.UNKNOWN)
        host = str(r.get("EXEC_HOST") or "").split(":")[0].split("*")[-1] or None
        if not state.terminal:
            pending = str(r.get("PEND_REASON") or "") or None
            if stat == "PSUSP":
                pending = f"held: {pending or 'suspended while pending'}"
            return NativeStatus(native_id, state, node=host, pending_reason=pending,
                                message=f"LSF state {stat}" if state is TaskState.UNKNOWN else "")
        reason_text = str(r.get("EXIT_REASON") or "")
        keyword = reason_text.split(":", maxsplit=1)[0].strip()
        code_text = str(r.get("EXIT_CODE") or "")
        code = int(code_text) if code_text.lstrip("-").isdigit() else None
        if stat == "DONE":
            return NativeStatus(native_id, TaskState.FINISHED, exit_code=0, node=host)
        if stat == "ZOMBI":
            return NativeStatus(native_id, TaskState.LOST, exit_code=code,
                                exit_reason=BatchJobExitReason.LOST, node=host,
                                message="LSF: ZOMBI (killed while its host was unreachable)")
        if keyword in TERMINATIONS:
            state, why = TERMINATIONS[keyword]
            return NativeStatus(native_id, state, exit_code=code, exit_reason=why, node=host,
                                message=f"LSF: {reason_text}")
        return NativeStatus(native_id, TaskState.FAILED, exit_code=code if code is not None
                            else 1, node=host,
                            message=f"LSF: {reason_text}" if reason_text else "")

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        return None  # bjobs -a shows finished jobs for CLEAN_PERIOD; the wrapper's record after

    def parse_accounting(self, result: CommandResult) -> dict[str, NativeStatus]:
        return self.parse_status(result)

    def cancel_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["bkill", *native_ids]

    # ------------------------------------------------------------------ nodes

    def nodes_argv(self) -> list[str] | None:
        return ["lshosts", "-json", "-o", "HOST_NAME ncpus maxmem ngpus server"]

    def parse_nodes(self, result: CommandResult) -> list[ClusterNode]:
        doc = json.loads(result.stdout or "{}")
        nodes = []
        for r in doc.get("RECORDS", []):
            if "ERROR" in r:
                continue
            cores = float(r.get("NCPUS") or 0) if str(r.get("NCPUS", "-")) != "-" else 0.0
            nodes.append(ClusterNode(
                name=str(r["HOST_NAME"]), cores=cores, memory=_lshosts_size(str(r.get("MAXMEM"))),
                gpus=int(r.get("NGPUS") or 0) if str(r.get("NGPUS", "-")).isdigit() else 0,
                state="server" if r.get("SERVER", "Yes") == "Yes" else "client",
                usable=r.get("SERVER", "Yes") == "Yes",
            ))
        return nodes

    # ------------------------------------------------------------------ errors

    def classify(self, result: CommandResult) -> ErrorKind:
        text = f"{result.stdout}\n{result.stderr}"
        if any(s in text for s in _UNKNOWN_JOB):
            return ErrorKind.UNKNOWN_JOB
        if any(s in text for s in _TRANSIENT):
            return ErrorKind.TRANSIENT
        if any(s in text for s in _PERMANENT):
            return ErrorKind.PERMANENT
        return ErrorKind.PERMANENT if result.argv[:1] == ("bsub",) else ErrorKind.TRANSIENT


def _lshosts_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)B?\s*", text or "", re.IGNORECASE)
    if not m:
        return 0
    power = {"": 2, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}[m.group(2).upper()]
    return int(float(m.group(1)) * 1024**power)
