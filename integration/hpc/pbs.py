"""OpenPBS / PBS Professional and Torque: pure builders and parsers (``base.py`` runs them).

Submission: ``qsub`` with the job's script file, ``-N name``, resources by dialect
(``-l select=1:ncpus=N:mem=M[:ngpus=G]`` for PBS Pro, ``-l nodes=1:ppn=N[:gpus=G],mem=M``
for Torque), ``-l walltime=HH:MM:SS``, ``-q``, ``-A``, ``-j oe -o <dir>/`` for PBS's own
output; arrays with ``-J 1-N`` (PBS Pro, ``PBS_ARRAY_INDEX``; at least two elements) or
``-t 1-N`` (Torque, ``PBS_ARRAYID``). PBS Pro starts a job in the owner's home directory:
the base's script changes to the working directory itself (Torque gets ``-d`` too).

Status: one ``qstat -f -F json -x -t <ids>`` (PBS Pro; -x adds finished jobs from the job
history) or ``qstat -f -x -t <ids>`` (Torque's XML; completed jobs stay in state C for
keep_completed seconds) per poll. ``Exit_status``: 0 success; 1..255 the script's status
(128+n from the shell when a command died of signal n); > 256 the job's top process died of
signal ``status - 256`` (SIGTERM/SIGKILL: KILLED); negative values are PBS's own
(PBS Professional Reference Guide, Table "Job Exit Codes"; Torque 6 "Job exit status"),
mapped in ``PBSPRO_EXIT_CODES`` and ``TORQUE_EXIT_CODES``. ``qdel`` cancels.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState
from .dialect import ClusterNode, CommandResult, ErrorKind, NativeStatus, StateTable, Submission

_R = BatchJobExitReason
_S = TaskState

#: PBS Pro's negative Exit_status values: name, the guide's words, state, reason
PBSPRO_EXIT_CODES: Mapping[int, tuple[str, str, TaskState, BatchJobExitReason]] = {
    -1: ("JOB_EXEC_FAIL1", "job exec failed, before files, no retry", _S.ERROR, _R.ERROR),
    -2: ("JOB_EXEC_FAIL2", "job exec failed, after files, no retry", _S.ERROR, _R.ERROR),
    -3: ("JOB_EXEC_RETRY", "job execution failed, do retry", _S.LOST, _R.LOST),
    -4: ("JOB_EXEC_INITABT", "job aborted on MoM initialization", _S.LOST, _R.LOST),
    -5: ("JOB_EXEC_INITRST", "job aborted on MoM init, checkpoint, no migrate", _S.LOST,
         _R.LOST),
    -6: ("JOB_EXEC_INITRMG", "job aborted on MoM init, checkpoint, ok migrate", _S.LOST,
         _R.LOST),
    -7: ("JOB_EXEC_BADRESRT", "job restart failed", _S.LOST, _R.LOST),
    -10: ("JOB_EXEC_FAILUID", "invalid UID/GID for job", _S.ERROR, _R.ERROR),
    -11: ("JOB_EXEC_RERUN", "job was rerun", _S.LOST, _R.LOST),
    -12: ("JOB_EXEC_CHKP", "job was checkpointed and killed", _S.KILLED, _R.KILLED),
    -13: ("JOB_EXEC_FAIL_PASSWORD", "job failed due to a bad password", _S.ERROR, _R.ERROR),
    -14: ("JOB_EXEC_RERUN_ON_SIS_FAIL", "job requeued or deleted: communication failure "
          "between the primary execution host and a sister", _S.LOST, _R.LOST),
    -15: ("JOB_EXEC_QUERST", "requeue job for restart from checkpoint", _S.LOST, _R.LOST),
    -16: ("JOB_EXEC_FAILHOOK_RERUN", "job execution failed due to hook rejection; requeued",
          _S.LOST, _R.LOST),
    -17: ("JOB_EXEC_FAILHOOK_DELETE", "job execution failed due to hook rejection; deleted",
          _S.ERROR, _R.ERROR),
    -18: ("JOB_EXEC_HOOK_RERUN", "a hook requested the job be requeued", _S.LOST, _R.LOST),
    -19: ("JOB_EXEC_HOOK_DELETE", "a hook requested the job be deleted", _S.ERROR, _R.ERROR),
    -20: ("JOB_EXEC_RERUN_MS_FAIL", "job requeued: the server could not contact the primary "
          "execution host", _S.LOST, _R.LOST),
    -21: ("JOB_EXEC_FAIL_SECURITY", "security breach in the job's environment", _S.ERROR,
          _R.ERROR),
    -22: ("JOB_EXEC_HOOKERROR", "a hook failed", _S.ERROR, _R.ERROR),
    -23: ("JOB_EXEC_FAIL_KRB5", "Kerberos credentials failed", _S.ERROR, _R.ERROR),
    -24: ("JOB_EXEC_KILL_NCPUS_BURST", "killed: ncpus burst over the limit", _S.FAILED,
          _R.FAILED),
    -25: ("JOB_EXEC_KILL_NCPUS_SUM", "killed: ncpus sum over the limit", _S.FAILED, _R.FAILED),
    -26: ("JOB_EXEC_KILL_VMEM", "killed: vmem over the limit", _S.FAILED, _R.MEMLIMIT),
    -27: ("JOB_EXEC_KILL_MEM", "killed: mem over the limit", _S.FAILED, _R.MEMLIMIT),
    -28: ("JOB_EXEC_KILL_CPUT", "killed: cput over the limit", _S.FAILED, _R.MAXJOBDURATION),
    -29: ("JOB_EXEC_KILL_WALLTIME", "killed: walltime over the limit", _S.FAILED,
          _R.MAXJOBDURATION),
    -30: ("JOB_EXEC_JOINJOB", "job could not join its sister hosts", _S.LOST, _R.LOST),
    -31: ("JOB_EXEC_KILL_HPMEM", "killed: huge-page memory over the limit", _S.FAILED,
          _R.MEMLIMIT),
    -32: ("JOB_EXEC_RERUN_ZOMBIE_JOB", "job rerun: a zombie was found", _S.LOST, _R.LOST),
}

#: Torque 6's negative exit_status values (the list differs from PBS Pro's from -8 on)
TORQUE_EXIT_CODES: Mapping[int, tuple[str, str, TaskState, BatchJobExitReason]] = {
    -1: ("JOB_EXEC_FAIL1", "job execution failed, before files, no retry", _S.ERROR, _R.ERROR),
    -2: ("JOB_EXEC_FAIL2", "job execution failed, after files, no retry", _S.ERROR, _R.ERROR),
    -3: ("JOB_EXEC_RETRY", "job execution failed, do retry", _S.LOST, _R.LOST),
    -4: ("JOB_EXEC_INITABT", "job aborted on MOM initialization", _S.LOST, _R.LOST),
    -5: ("JOB_EXEC_INITRST", "job aborted on MOM init, chkpt, no migrate", _S.LOST, _R.LOST),
    -6: ("JOB_EXEC_INITRMG", "job aborted on MOM init, chkpt, ok migrate", _S.LOST, _R.LOST),
    -7: ("JOB_EXEC_BADRESRT", "job restart failed", _S.LOST, _R.LOST),
    -8: ("JOB_EXEC_CMDFAIL", "exec() of user command failed", _S.ERROR, _R.ERROR),
    -9: ("JOB_EXEC_STDOUTFAIL", "could not create/open stdout stderr files", _S.ERROR,
         _R.ERROR),
    -10: ("JOB_EXEC_OVERLIMIT_MEM", "job exceeded a memory limit", _S.FAILED, _R.MEMLIMIT),
    -11: ("JOB_EXEC_OVERLIMIT_WT", "job exceeded a walltime limit", _S.FAILED,
          _R.MAXJOBDURATION),
    -12: ("JOB_EXEC_OVERLIMIT_CPUT", "job exceeded a CPU time limit", _S.FAILED,
          _R.MAXJOBDURATION),
    -13: ("JOB_EXEC_CGROUP_FAIL", "could not create the job's cgroups", _S.ERROR, _R.ERROR),
    -14: ("JOB_EXEC_PROLOGUE_FAIL", "prologue failed", _S.ERROR, _R.ERROR),
}

PBSPRO_STATES: StateTable = {
    "Q": _S.STARTING, "W": _S.STARTING, "T": _S.STARTING, "H": _S.STARTING, "M": _S.STARTING,
    "R": _S.RUNNING, "E": _S.RUNNING, "S": _S.RUNNING, "U": _S.RUNNING, "B": _S.RUNNING,
}
TORQUE_STATES: StateTable = {
    "Q": _S.STARTING, "W": _S.STARTING, "T": _S.STARTING, "H": _S.STARTING,
    "R": _S.RUNNING, "E": _S.RUNNING, "S": _S.RUNNING,
}
FINAL_STATES = {"F", "X", "C"}

_UNKNOWN_JOB = ("Unknown Job Id", "Job has finished", "nonexistent job id")
_TRANSIENT = ("cannot connect to server", "Connection refused", "End of File", "timed out",
              "Server busy", "pbs_iff", "could not connect", "Premature end of message",
              "Communication failure", "try again")
_PERMANENT = ("Unknown queue", "Unknown resource", "Illegal attribute or resource value",
              "would exceed", "exceeds queue", "not authorized", "Bad UID", "illegal option",
              "Job violates queue", "Invalid", "submit error")


@dataclass(frozen=True, slots=True)
class PbsSettings:
    """What differs between PBS installations."""

    flavor: str = "pbspro"  #: "pbspro" (OpenPBS, PBS Professional) or "torque"
    queue: str | None = None
    account: str | None = None
    #: max_array_size of the server (PBS Pro's default 10000; Torque's max_job_array_size)
    max_array_size: int = 10000
    query_chunk: int = 500
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.flavor not in ("pbspro", "torque"):
            raise ValueError(f"flavor={self.flavor!r}: expected 'pbspro' or 'torque'")
        if self.max_array_size < 1:
            raise ValueError(f"max_array_size={self.max_array_size}: expected at least 1")


def pbs_size(n_bytes: int) -> str:
    """Bytes as a PBS size: whole megabytes when exact, else kilobytes (rounded up)."""
    if n_bytes % 2**20 == 0:
        return f"{n_bytes // 2**20}mb"
    return f"{math.ceil(n_bytes / 1024)}kb"


def walltime(seconds: float) -> str:
    s = max(1, math.ceil(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def parse_pbs_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kmgtp]?)([bw]?)\s*", text.lower())
    if not m:
        return 0
    power = " kmgtp".index(m.group(2) or " ")
    return int(m.group(1)) * int(1024**power) * (8 if m.group(3) == "w" else 1)


class PbsDialect:
    """PBS Pro's or Torque's builders and parsers (see the module docstring)."""

    name = "pbs"
    array_first_index = 1
    #: qstat -x (PBS Pro's job history) and Torque's state C show finished jobs
    finished_in_status = True

    def __init__(self, settings: PbsSettings | None = None) -> None:
        self.settings = settings or PbsSettings()
        self.torque = self.settings.flavor == "torque"
        self.array_index_variable = "PBS_ARRAYID" if self.torque else "PBS_ARRAY_INDEX"
        self.max_array_size = self.settings.max_array_size
        self.query_chunk = self.settings.query_chunk
        self.exit_codes = TORQUE_EXIT_CODES if self.torque else PBSPRO_EXIT_CODES

    # ------------------------------------------------------------------ submit

    def submit_files(self, sub: Submission) -> Mapping[str, str]:
        """Files the base writes before submitting (none: qsub reads the script file)."""
        return {}

    def _is_array(self, sub: Submission) -> bool:
        return sub.array_script is not None and sub.size > 1

    def submit_argv(self, sub: Submission) -> list[str]:
        s = self.settings
        cores = max(1, math.ceil(sub.cores))
        argv = ["qsub", "-N", sub.name, "-j", "oe", "-o", sub.system_output.rstrip("/") + "/"]
        if self.torque:
            nodes = f"nodes=1:ppn={cores}" + (f":gpus={sub.gpus}" if sub.gpus else "")
            argv += ["-l", nodes + (f",mem={pbs_size(sub.memory)}" if sub.memory else "")]
            argv += ["-d", sub.work_dir]
        else:
            select = f"select=1:ncpus={cores}"
            if sub.memory:
                select += f":mem={pbs_size(sub.memory)}"
            if sub.gpus:
                select += f":ngpus={sub.gpus}"
            argv += ["-l", select]
        if sub.walltime is not None:
            argv += ["-l", f"walltime={walltime(sub.walltime)}"]
        if s.queue:
            argv += ["-q", s.queue]
        if s.account:
            argv += ["-A", s.account]
        if self._is_array(sub):
            argv += ["-t" if self.torque else "-J", f"1-{sub.size}"]
        argv += list(s.extra_args)
        argv.append(sub.array_script if self._is_array(sub) and sub.array_script
                    else sub.scripts[0])
        return argv

    def parse_submit(self, sub: Submission, result: CommandResult) -> list[str]:
        line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        m = re.fullmatch(r"(\d+)(\[\])?(\..+)?", line)
        if not m:
            raise ValueError(f"qsub printed no job id: {result.stdout.strip()!r}")
        seq, server = m.group(1), m.group(3) or ""
        if self._is_array(sub):
            return [f"{seq}[{i}]{server}" for i in range(1, sub.size + 1)]
        return [f"{seq}{server}"]

    # ------------------------------------------------------------------ status

    def status_argv(self, run_tag: str, native_ids: Sequence[str]) -> list[str]:
        ids = list(dict.fromkeys(_array_parent(i) for i in native_ids))
        if self.torque:
            return ["qstat", "-f", "-x", "-t", *ids]
        return ["qstat", "-f", "-F", "json", "-x", "-t", *ids]

    def parse_status(self, result: CommandResult) -> dict[str, NativeStatus]:
        """Jobs qstat printed (it prints the known ones even when it exits 153 for others)."""
        text = result.stdout.strip()
        if not text:
            return {}
        records = _torque_records(text) if self.torque else json.loads(text).get("Jobs", {})
        out: dict[str, NativeStatus] = {}
        for job_id, attrs in records.items():
            if "[]" in job_id:
                continue  # the array itself; its subjobs are listed (-t)
            out[job_id] = self._status(job_id, attrs)
        return out

    def _status(self, job_id: str, a: Mapping[str, Any]) -> NativeStatus:
        state_code = str(a.get("job_state", ""))
        host = str(a.get("exec_host") or "").split("/")[0].split("+")[0] or None
        comment = str(a.get("comment") or "")
        if state_code not in FINAL_STATES:
            table = TORQUE_STATES if self.torque else PBSPRO_STATES
            state = table.get(state_code, _S.UNKNOWN)
            pending = None
            if state_code == "H":
                pending = f"held (Hold_Types={a.get('Hold_Types', '?')})" + (
                    f": {comment}" if comment else "")
            elif state is _S.STARTING:
                pending = comment or f"job_state {state_code}"
            return NativeStatus(job_id, state, node=host, pending_reason=pending,
                                message=f"PBS job_state {state_code}" if state is _S.UNKNOWN
                                else "")
        raw = a.get("exit_status" if self.torque else "Exit_status")
        if raw is None or str(raw).strip() == "":
            detail = f": {comment}" if comment else ""
            return NativeStatus(job_id, _S.KILLED, exit_reason=_R.KILLED, node=host,
                                message=f"PBS: deleted before it ran{detail}")
        return self.from_exit_status(job_id, int(str(raw)), host, comment)

    def from_exit_status(self, job_id: str, status: int, host: str | None = None,
                         comment: str = "") -> NativeStatus:
        """A finished job's NativeStatus from its Exit_status."""
        if status == 0:
            return NativeStatus(job_id, _S.FINISHED, exit_code=0, node=host)
        if status < 0:
            name, words, state, why = self.exit_codes.get(
                status, ("JOB_EXEC_?", "PBS could not run the job", _S.ERROR, _R.ERROR))
            return NativeStatus(job_id, state, exit_code=status, exit_reason=why, node=host,
                                message=f"PBS Exit_status {status} ({name}: {words})"
                                + (f"; {comment}" if comment else ""))
        if status > 256:
            signal = status - 256
            killed = signal in (9, 15)
            return NativeStatus(
                job_id, _S.KILLED if killed else _S.FAILED, exit_code=128 + signal,
                exit_reason=_R.KILLED if killed else _R.FAILED, node=host,
                message=f"PBS Exit_status {status}: killed by signal {signal}")
        return NativeStatus(job_id, _S.FAILED, exit_code=status, node=host)

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        return None  # qstat -x (job history) / state C is in the status query already

    def parse_accounting(self, result: CommandResult) -> dict[str, NativeStatus]:
        return self.parse_status(result)

    def cancel_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["qdel", *native_ids]

    # ------------------------------------------------------------------ nodes

    def nodes_argv(self) -> list[str] | None:
        return ["pbsnodes", "-x"] if self.torque else ["pbsnodes", "-av", "-F", "json"]

    def parse_nodes(self, result: CommandResult) -> list[ClusterNode]:
        if self.torque:
            return _torque_nodes(result.stdout)
        doc = json.loads(result.stdout or "{}")
        nodes = []
        for name, info in doc.get("nodes", {}).items():
            avail = info.get("resources_available", {})
            state = str(info.get("state", ""))
            nodes.append(ClusterNode(
                name=name, cores=float(avail.get("ncpus", 0)),
                memory=parse_pbs_size(str(avail.get("mem", "0"))),
                gpus=int(avail.get("ngpus", 0) or 0), state=state,
                usable=not any(w in state for w in ("down", "offline", "unknown", "stale")),
            ))
        return nodes

    # ------------------------------------------------------------------ errors

    def classify(self, result: CommandResult) -> ErrorKind:
        text = f"{result.stdout}\n{result.stderr}"
        if any(s in text for s in _UNKNOWN_JOB) or result.returncode in (153, 35):
            return ErrorKind.UNKNOWN_JOB
        if any(s.lower() in text.lower() for s in _TRANSIENT):
            return ErrorKind.TRANSIENT
        if any(s in text for s in _PERMANENT):
            return ErrorKind.PERMANENT
        return ErrorKind.PERMANENT if result.argv[:1] == ("qsub",) else ErrorKind.TRANSIENT


def _array_parent(native_id: str) -> str:
    return re.sub(r"\[\d+\]", "[]", native_id)


def _torque_records(text: str) -> dict[str, dict[str, Any]]:
    root = ET.fromstring(text)
    out: dict[str, dict[str, Any]] = {}
    for job in root.iter("Job"):
        attrs: dict[str, Any] = {}
        for child in job:
            attrs[child.tag] = {c.tag: c.text for c in child} if len(child) else child.text
        job_id = str(attrs.get("Job_Id", ""))
        if job_id:
            out[job_id] = attrs
    return out


def _torque_nodes(text: str) -> list[ClusterNode]:
    root = ET.fromstring(text) if text.strip() else ET.Element("Data")
    nodes = []
    for n in root.iter("Node"):
        status = dict(
            item.split("=", 1) for item in (n.findtext("status") or "").split(",") if "=" in item
        )
        state = n.findtext("state") or ""
        nodes.append(ClusterNode(
            name=n.findtext("name") or "", cores=float(n.findtext("np") or 0),
            memory=parse_pbs_size(status.get("physmem", "0")),
            gpus=int(n.findtext("gpus") or 0), state=state,
            usable=not any(w in state for w in ("down", "offline", "unknown")),
        ))
    return nodes
