"""HTCondor 23: pure builders and parsers (``base.py`` runs them and writes the files).

Submission: one submit description per burst of one shape, written by the base from
``submit_files`` into the run's system output directory, then ``condor_submit <file>``; it
ends in ``queue N`` and gives each job ``$(Process)`` (first 0) as ``MESOBATCH_PROCESS`` in its
environment. ``request_cpus`` / ``request_memory`` (MB) / ``request_disk`` (KB) /
``request_gpus``, ``allowed_job_duration`` for the wall time, ``getenv = true``, and the
custom attribute ``+MesobatchRun = "<job name>"`` (the name carries the run tag).

Status: one ``condor_q -json -constraint 'regexp("<tag>", MesobatchRun)'`` per poll; jobs gone
from the queue are looked up with ``condor_history -json`` constrained to their ids. A held
job (JobStatus 5) is an error the user sees, with its HoldReason and HoldReasonCode (code 34,
memory over the limit, and 46/47, allowed duration exceeded, become MEMLIMIT and
MAXJOBDURATION); it stays in the queue until the base removes it. ``condor_rm`` cancels.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...scheduler.contract import BatchJobExitReason
from ...scheduler.core.states import TaskState
from .dialect import ClusterNode, CommandResult, ErrorKind, NativeStatus, StateTable, Submission

ATTRIBUTES = ("ClusterId,ProcId,JobStatus,ExitCode,ExitBySignal,ExitSignal,HoldReason,"
              "HoldReasonCode,HoldReasonSubCode,RemoteHost,LastRemoteHost,RemoveReason")

#: JobStatus -> state, for the non-final ones (HTCondor manual, "ClassAd Job Attributes")
STATES: StateTable = {
    "1": TaskState.STARTING,  # Idle
    "2": TaskState.RUNNING,  # Running
    "6": TaskState.RUNNING,  # Transferring Output
    "7": TaskState.RUNNING,  # Suspended
}
HOLD_MEMORY = {34}  #: JobOutOfResources
HOLD_DURATION = {46, 47}  #: JobDurationExceeded, JobExecuteExceeded

_UNKNOWN_JOB = ("not found", "Couldn't find/remove")
_TRANSIENT = ("Failed to connect", "Can't find address", "Couldn't contact", "timed out",
              "Failed to fetch ads", "SECMAN", "Connection refused", "try again",
              "Failed to end classad message")
_PERMANENT = ("ERROR", "Parse error", "is not a valid", "not supported")


@dataclass(frozen=True, slots=True)
class HTCondorSettings:
    """What differs between HTCondor pools."""

    #: extra submit description lines (requirements, accounting_group, ...)
    extra_submit_lines: tuple[str, ...] = ()
    #: the custom job attribute carrying the run's name
    run_attribute: str = "MesobatchRun"
    #: express the wall time as allowed_job_duration (held with code 46 when exceeded)
    use_allowed_job_duration: bool = True
    max_array_size: int = 10000
    query_chunk: int = 500

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.run_attribute):
            raise ValueError(f"run_attribute={self.run_attribute!r}: expected a ClassAd "
                             "attribute name (letters, digits, _)")
        for line in self.extra_submit_lines:
            if re.match(r"\s*queue\b", line, re.IGNORECASE) or "\n" in line:
                raise ValueError(f"extra_submit_lines: {line!r} may not be a queue statement "
                                 "or hold a newline")


def _classad_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _submit_value(text: str) -> str:
    if "\n" in text or "$(" in text:
        raise ValueError(f"{text!r}: a submit description value may not hold a newline or $(")
    return text


class HTCondorDialect:
    """HTCondor's builders and parsers (see the module docstring)."""

    name = "htcondor"
    array_index_variable = "MESOBATCH_PROCESS"
    array_first_index = 0

    def __init__(self, settings: HTCondorSettings | None = None) -> None:
        self.settings = settings or HTCondorSettings()
        self.max_array_size = self.settings.max_array_size
        self.query_chunk = self.settings.query_chunk

    # ------------------------------------------------------------------ submit

    def submit_path(self, sub: Submission) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sub.name)
        return f"{sub.system_output.rstrip('/')}/{safe}.sub"

    def submit_description(self, sub: Submission) -> str:
        s = self.settings
        array = sub.array_script is not None
        out = _submit_value(sub.system_output.rstrip("/"))
        executable = sub.array_script if array and sub.array_script else sub.scripts[0]
        lines = [
            "universe = vanilla",
            f"executable = {_submit_value(executable)}",
            f"initialdir = {_submit_value(sub.work_dir)}",
            f"output = {out}/$(Cluster).$(Process).out",
            f"error = {out}/$(Cluster).$(Process).err",
            f"log = {out}/$(Cluster).log",
            "getenv = true",
            f'environment = "{self.array_index_variable}=$(Process)"',
            f"request_cpus = {max(1, math.ceil(sub.cores))}",
        ]
        if sub.memory:  # none asked: the pool's default request applies
            lines.append(f"request_memory = {max(1, math.ceil(sub.memory / 2**20))}")
        if sub.disk:
            lines.append(f"request_disk = {math.ceil(sub.disk / 1024)}")
        if sub.gpus:
            lines.append(f"request_gpus = {sub.gpus}")
        if sub.walltime is not None and s.use_allowed_job_duration:
            lines.append(f"allowed_job_duration = {max(1, math.ceil(sub.walltime))}")
        if sub.exclude:
            lines.append("requirements = " + " && ".join(
                f"(Machine != {_classad_string(h)})" for h in sub.exclude))
        lines.append(f"+{s.run_attribute} = {_classad_string(sub.name)}")
        lines.extend(s.extra_submit_lines)
        lines.append(f"queue {sub.size}")
        return "\n".join(lines) + "\n"

    def submit_files(self, sub: Submission) -> Mapping[str, str]:
        """The submit description the base writes before running ``submit_argv``."""
        return {self.submit_path(sub): self.submit_description(sub)}

    def submit_argv(self, sub: Submission) -> list[str]:
        return ["condor_submit", self.submit_path(sub)]

    def parse_submit(self, sub: Submission, result: CommandResult) -> list[str]:
        m = re.search(r"(\d+) job\(s\) submitted to cluster (\d+)\.", result.stdout)
        if m:
            count, cluster = int(m.group(1)), m.group(2)
        else:
            t = re.search(r"(\d+)\.(\d+) - \1\.(\d+)", result.stdout)
            if not t:
                raise ValueError(f"condor_submit printed no cluster: {result.stdout.strip()!r}")
            cluster, count = t.group(1), int(t.group(3)) - int(t.group(2)) + 1
        if count != sub.size:
            raise ValueError(f"condor_submit queued {count} jobs, expected {sub.size}")
        return [f"{cluster}.{i}" for i in range(count)]

    # ------------------------------------------------------------------ status

    def status_argv(self, run_tag: str, native_ids: Sequence[str]) -> list[str]:
        pattern = re.escape(run_tag)
        return ["condor_q", "-json", "-constraint",
                f"regexp({_classad_string(pattern)}, {self.settings.run_attribute})",
                "-attributes", ATTRIBUTES]

    def parse_status(self, result: CommandResult) -> dict[str, NativeStatus]:
        text = result.stdout.strip()
        if not text:
            return {}  # condor_q -json prints nothing when no job matches
        out: dict[str, NativeStatus] = {}
        for ad in json.loads(text):
            status = self._status(ad)
            out[status.native_id] = status
        return out

    def _status(self, ad: Mapping[str, Any]) -> NativeStatus:
        native_id = f"{ad['ClusterId']}.{ad['ProcId']}"
        code = str(ad.get("JobStatus", ""))
        host_ad = ad.get("RemoteHost") or ad.get("LastRemoteHost") or ""
        host = str(host_ad).split("@")[-1] or None
        if code in STATES:
            return NativeStatus(native_id, STATES[code], node=host,
                                pending_reason="Idle" if code == "1" else None)
        if code == "5":
            hold = int(ad.get("HoldReasonCode") or 0)
            message = (f"held: {ad.get('HoldReason', '')} (HoldReasonCode {hold}, "
                       f"HoldReasonSubCode {ad.get('HoldReasonSubCode', 0)})")
            # a held job waits for a person for ever: it ends here (the base removes it)
            if hold in HOLD_MEMORY:
                return NativeStatus(native_id, TaskState.FAILED,
                                    exit_reason=BatchJobExitReason.MEMLIMIT, node=host,
                                    message=message)
            if hold in HOLD_DURATION:
                return NativeStatus(native_id, TaskState.FAILED,
                                    exit_reason=BatchJobExitReason.MAXJOBDURATION, node=host,
                                    message=message)
            return NativeStatus(native_id, TaskState.ERROR, exit_reason=BatchJobExitReason.ERROR,
                                node=host, message=message)
        if code == "3":
            return NativeStatus(native_id, TaskState.KILLED, exit_reason=BatchJobExitReason.KILLED,
                                node=host, message=f"removed: {ad.get('RemoveReason', '')}")
        if code == "4":
            if ad.get("ExitBySignal"):
                signal = int(ad.get("ExitSignal") or 0)
                return NativeStatus(native_id, TaskState.FAILED, exit_code=128 + signal,
                                    node=host, message=f"died of signal {signal}")
            exit_code = int(ad.get("ExitCode") or 0)
            return NativeStatus(native_id, TaskState.FINISHED if exit_code == 0
                                else TaskState.FAILED, exit_code=exit_code, node=host)
        return NativeStatus(native_id, TaskState.UNKNOWN, node=host,
                            message=f"HTCondor JobStatus {code}")

    def accounting_argv(self, native_ids: Sequence[str]) -> list[str] | None:
        clusters: dict[str, list[str]] = {}
        for native_id in native_ids:
            cluster, _, proc = native_id.partition(".")
            clusters.setdefault(cluster, []).append(proc)
        constraint = " || ".join(
            f"(ClusterId == {c} && ({' || '.join(f'ProcId == {p}' for p in procs)}))"
            for c, procs in clusters.items())
        return ["condor_history", "-json", "-constraint", constraint, "-attributes", ATTRIBUTES,
                "-limit", str(len(native_ids))]

    def parse_accounting(self, result: CommandResult) -> dict[str, NativeStatus]:
        return self.parse_status(result)

    def cancel_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["condor_rm", *native_ids]

    def remove_argv(self, native_ids: Sequence[str], reason: str) -> list[str]:
        """Remove held jobs, keeping why in their RemoveReason."""
        return ["condor_rm", "-reason", f"mesobatch: {reason}"[:500], *native_ids]

    # ------------------------------------------------------------------ nodes

    def nodes_argv(self) -> list[str] | None:
        return ["condor_status", "-json"]

    def parse_nodes(self, result: CommandResult) -> list[ClusterNode]:
        text = result.stdout.strip()
        machines: dict[str, dict[str, Any]] = {}
        for ad in json.loads(text) if text else []:
            name = str(ad.get("Machine") or str(ad.get("Name", "")).split("@")[-1])
            m = machines.setdefault(name, {"cores": 0.0, "memory": 0, "gpus": 0, "state": "",
                                           "load": None, "address": ""})
            partitionable = ad.get("SlotType") == "Partitionable"
            m["cores"] += float(ad.get("TotalSlotCpus") if partitionable else ad.get("Cpus", 0))
            m["memory"] += int(ad.get("TotalSlotMemory") if partitionable
                               else ad.get("Memory", 0)) * 2**20
            m["gpus"] += int(ad.get("TotalGPUs") if partitionable else ad.get("GPUs", 0) or 0)
            m["state"] = str(ad.get("State", ""))
            m["address"] = str(ad.get("MyAddress", "")).strip("<>").split(":")[0]
            if ad.get("LoadAvg") is not None:
                m["load"] = float(ad["LoadAvg"])
        return [ClusterNode(name=n, cores=m["cores"], memory=m["memory"], gpus=m["gpus"],
                            state=m["state"], usable=m["state"] not in ("Owner", "Drained"),
                            cpu_load=m["load"], address=m["address"])
                for n, m in machines.items()]

    # ------------------------------------------------------------------ errors

    def classify(self, result: CommandResult) -> ErrorKind:
        text = f"{result.stdout}\n{result.stderr}"
        if result.argv[:1] in (("condor_rm",), ("condor_hold",)) and any(
                s in text for s in _UNKNOWN_JOB):
            return ErrorKind.UNKNOWN_JOB
        if any(s in text for s in _TRANSIENT):
            return ErrorKind.TRANSIENT
        if any(s in text for s in _PERMANENT):
            return ErrorKind.PERMANENT
        return ErrorKind.PERMANENT if result.argv[:1] == ("condor_submit",) \
            else ErrorKind.TRANSIENT
