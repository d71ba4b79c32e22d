"""Formats shared by the scheduler and the executor: the only executor module the
scheduler imports. Keep it free of imports from the rest of mesobatch."""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any


def log_file_name(job_id: int, name: str) -> str:
    """The file a job's stdout and stderr go to, interleaved as written (like Slurm's
    default); one file per job halves the file creations on the launch path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "job"
    return f"{job_id}-{safe}.log"


def log_path(log_dir: str, job_id: int, name: str) -> str:
    return os.path.join(log_dir, log_file_name(job_id, name))


# --------------------------------------------------------------------------- task data
# TaskInfo.data carries a TaskPayload as JSON; a terminal TaskStatus.data carries a
# TaskResult; the executor's framework messages carry NodeReport. All JSON objects,
# base64-encoded on the wire like every Mesos bytes field.

PROTOCOL_VERSION = 1


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text)


def _from_dict(cls: type[Any], raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object for {cls.__name__}, got {type(raw).__name__}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass(frozen=True)
class TaskPayload:
    """What the executor needs to run one job (TaskInfo.data)."""

    job_id: int
    name: str
    command: str
    cores: float
    env: dict[str, str] = field(default_factory=dict)  #: setEnv values + the job's own
    walltime: float | None = None
    workflow_id: str = ""
    version: int = PROTOCOL_VERSION

    def encode(self) -> str:
        return b64encode(json.dumps(asdict(self), separators=(",", ":")).encode())

    @classmethod
    def decode(cls, data: str) -> TaskPayload:
        payload: TaskPayload = _from_dict(cls, json.loads(b64decode(data)))
        return payload


@dataclass(frozen=True)
class TaskResult:
    """How a task ended, as the executor measured it (terminal TaskStatus.data)."""

    exit_code: int
    wall_time: float
    signal: int | None = None
    walltime_exceeded: bool = False

    def encode(self) -> str:
        return b64encode(json.dumps(asdict(self), separators=(",", ":")).encode())

    @classmethod
    def decode(cls, data: str) -> TaskResult:
        result: TaskResult = _from_dict(cls, json.loads(b64decode(data)))
        return result


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
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> NodeReport:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("kind") != "node_report":
            raise ValueError("not a node report")
        report: NodeReport = _from_dict(cls, raw)
        return report
