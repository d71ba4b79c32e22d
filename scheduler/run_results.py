"""`mesobatch run` results for machines (--results, --rerun-failed) and the judgement of
what each job used against what it asked for. Pure: records in, records or text out;
the command line does the reading and writing.

A results file has one JSON object per job of the batch: the job as a JSON job line
would give it (command, name, cores, memory, disk, and env, gpus, preemptible, walltime
where set), so that --rerun-failed can run it again, and how it went: state, exit_code,
wall_time, peak_memory, cpu_time, memory_at_most (a bound where the peak is unknown),
node, log, and line (its line in the job file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .contract import BatchJobExitReason, JobUsage, UpdatedBatchJobInfo
from .jobfile import JSON_KEYS, Defaults, JobFileError, JobLine, job_from_object

SUCCEEDED = "succeeded"
#: a job that never finished: the run was interrupted (it was killed, or never started)
UNFINISHED = "unfinished"

#: a job that used this many times what it asked for is flagged in the summary
FAR_OVER = 1.5
#: shorter jobs are not judged on CPU time: starting a process costs more than they run
MIN_WALL_FOR_CPU = 1.0


def state_of(info: UpdatedBatchJobInfo | None) -> str:
    """succeeded, unfinished, or the exit reason in lower case (failed, memlimit, ...)."""
    if info is None:
        return UNFINISHED
    if info.exitReason == BatchJobExitReason.FINISHED and info.exitStatus == 0:
        return SUCCEEDED
    return info.exitReason.name.lower() if info.exitReason is not None else "failed"


def job_fields(job: JobLine) -> dict[str, Any]:
    """The job as a JSON job line gives it (read back by rerun_jobs)."""
    out: dict[str, Any] = {"command": job.command, "name": job.name, "cores": job.cores,
                           "memory": job.memory, "disk": job.disk}
    if job.env:
        out["env"] = dict(job.env)
    if job.gpus:
        out["gpus"] = job.gpus
    if job.preemptible:
        out["preemptible"] = True
    if job.walltime is not None:
        out["walltime"] = job.walltime
    return out


def result_record(job: JobLine, info: UpdatedBatchJobInfo | None,
                  log: str | None) -> dict[str, Any]:
    """One line of the results file."""
    usage = info.usage if info is not None else None
    return {
        **job_fields(job),
        "state": state_of(info),
        "exit_code": info.exitStatus if info is not None else None,
        "wall_time": round(info.wallTime, 3) if info is not None and info.wallTime is not None
        else None,
        "peak_memory": usage.peak_memory if usage is not None else None,
        "cpu_time": usage.cpu_time if usage is not None else None,
        "memory_at_most": usage.memory_at_most if usage is not None else None,
        "node": usage.node if usage is not None else None,
        "log": log,
        "line": job.line,
    }


def format_records(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(", ", ": ")) + "\n" for r in records)


@dataclass(frozen=True)
class Rerun:
    """What --rerun-failed takes from a results file."""

    jobs: list[JobLine]  #: the jobs that did not succeed, to run again
    kept: list[dict[str, Any]]  #: the records of those that did, carried over


def rerun_jobs(text: str, where: str) -> Rerun:
    """The jobs of a results file that did not succeed; errors name the file and line."""
    jobs: list[JobLine] = []
    kept: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        at = f"{where}:{number}"
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            raise JobFileError(f"{at}: malformed JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(record, dict) or not isinstance(record.get("state"), str):
            raise JobFileError(f"{at}: not a line of a results file (mesobatch run "
                               "--results): expected a JSON object with a \"state\"")
        if record["state"] == SUCCEEDED:
            kept.append(record)
            continue
        line = record.get("line")
        job = job_from_object(line if isinstance(line, int) else number,
                              {k: v for k, v in record.items() if k in JSON_KEYS}, at,
                              Defaults())
        jobs.append(job)
    return Rerun(jobs, kept)


def merged(kept: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The earlier successes and the new outcomes, in job-file order."""
    def line(record: dict[str, Any]) -> int:
        value = record.get("line")
        return value if isinstance(value, int) else 0

    return sorted([*kept, *new], key=line)


def write_atomically(path: str, text: str) -> None:
    """Readers never see half a file: a temporary file beside it, renamed over it."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- used vs asked


def over_use(job: JobLine, info: UpdatedBatchJobInfo) -> list[str]:
    """How far a job went over what it asked for, in words for the summary: "mem 3.1x",
    "cpu 2.0x" (CPU time per second of wall time against its cores)."""
    return far_over(job.cores, job.memory, info.usage, info.wallTime)


def far_over(cores: float, memory: int, usage: JobUsage | None,
             wall_time: float | None) -> list[str]:
    """``over_use`` for what any job asked (cores, memory in bytes): the one rule the
    summary and the status page flag by."""
    if usage is None:
        return []
    notes = []
    if usage.peak_memory is not None and memory > 0 and (
            usage.peak_memory > FAR_OVER * memory):
        notes.append(f"mem {usage.peak_memory / memory:.1f}x")
    wall = wall_time or 0.0
    if usage.cpu_time is not None and wall >= MIN_WALL_FOR_CPU and cores > 0:
        ratio = usage.cpu_time / (wall * cores)
        if ratio > FAR_OVER:
            notes.append(f"cpu {ratio:.1f}x")
    return notes


def format_used(usage: JobUsage | None) -> str:
    """The peak memory, or ``≤`` the bound on it, or ``-``."""
    if usage is not None and usage.peak_memory is None and usage.memory_at_most is not None:
        return "≤" + format_bytes(usage.memory_at_most)
    return format_bytes(usage.peak_memory if usage is not None else None)


def format_bytes(n: int | None) -> str:
    """1536 -> 1.5K; binary units as in the job files."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "" or value >= 10 else f"{value:.1f}{unit}"
        value /= 1024
    return f"{n}"  # pragma: no cover (the loop returns)
