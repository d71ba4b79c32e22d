"""Job files for `mesobatch run`: one shell command per line, or JSON Lines.

Parsing is pure: it returns job lines or raises JobFileError naming the file, the
line number, the bad value and what is allowed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .core.jobs import MAX_REQUEST, InvalidJob, check_command, check_environment
from .options import SIZE_HELP, parse_size

#: keys a JSON job line may have
JSON_KEYS = ("command", "name", "cores", "memory", "disk", "env", "preemptible", "gpus",
             "walltime")


class JobFileError(ValueError):
    """A job file cannot be used; the message names where and why."""


@dataclass(frozen=True)
class JobLine:
    """One job read from a job file (sizes in bytes)."""

    line: int
    command: str
    name: str
    cores: float
    memory: int
    disk: int
    env: Mapping[str, str] = field(default_factory=dict)
    preemptible: bool = False
    gpus: int = 0
    walltime: float | None = None

    @property
    def accelerators(self) -> tuple[dict[str, Any], ...]:
        return ({"kind": "gpu", "count": self.gpus},) if self.gpus else ()

    @property
    def jobName(self) -> str:  # Toil's spelling, so a JobLine is a job description too
        return self.name


@dataclass(frozen=True)
class Defaults:
    cores: float = 1.0
    memory: int = 512 * 1024**2
    disk: int = 512 * 1024**2


def read_job_file(path: str, defaults: Defaults, fmt: str = "auto") -> list[JobLine]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise JobFileError(f"cannot read job file {path!r}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise JobFileError(f"job file {path!r} is not UTF-8 text") from None
    return parse_jobs(text, path, defaults, fmt)


def parse_jobs(text: str, where: str, defaults: Defaults, fmt: str = "auto") -> list[JobLine]:
    """Parse a job file's text; ``fmt`` is "auto", "lines" or "jsonl"."""
    lines = [(i, raw.strip()) for i, raw in enumerate(text.splitlines(), 1)]
    lines = [(i, s) for i, s in lines if s and not s.startswith("#")]
    if fmt == "auto":
        jsonl = where.endswith((".jsonl", ".ndjson")) or bool(lines and lines[0][1][0] == "{")
        fmt = "jsonl" if jsonl else "lines"
    if fmt not in ("lines", "jsonl"):
        raise JobFileError(f"invalid job file format {fmt!r}: expected auto, lines or jsonl")
    jobs = [_json_job(i, s, where, defaults) if fmt == "jsonl" else
            _plain_job(i, s, where, defaults) for i, s in lines]
    if not jobs:
        raise JobFileError(f"job file {where!r} has no jobs (one command per line, or JSON "
                           "Lines with a \"command\" key)")
    return jobs


def _checked_command(command: str, at: str) -> None:
    try:
        check_command(command)
    except InvalidJob as e:
        raise JobFileError(f"{at}: {e}") from None


def _plain_job(line: int, command: str, where: str, d: Defaults) -> JobLine:
    _checked_command(command, f"{where}:{line}")
    name = os.path.basename(command.split(maxsplit=1)[0])
    return JobLine(line, command, name, d.cores, d.memory, d.disk)


def _json_job(line: int, text: str, where: str, d: Defaults) -> JobLine:
    at = f"{where}:{line}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise JobFileError(f"{at}: malformed JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(obj, dict):
        raise JobFileError(f"{at}: expected a JSON object such as "
                           f'{{"command": "echo hi", "cores": 1}}, got {type(obj).__name__}')
    return job_from_object(line, obj, at, d)


def job_from_object(line: int, obj: Mapping[str, Any], at: str, d: Defaults) -> JobLine:
    """A job from a decoded JSON job line (``at`` names it in errors: file:line)."""
    unknown = sorted(set(obj) - set(JSON_KEYS))
    if unknown:
        raise JobFileError(f"{at}: unknown key {unknown[0]!r}; allowed: {', '.join(JSON_KEYS)}")
    if "command" not in obj:
        raise JobFileError(f"{at}: no \"command\": every job needs one, e.g. "
                           '{"command": "echo hi"}')
    command = obj.get("command")
    if not isinstance(command, str) or not command.strip():
        raise JobFileError(f"{at}: invalid command {command!r}: expected a non-empty string")
    _checked_command(command, at)
    cores = obj.get("cores", d.cores)
    if isinstance(cores, bool) or not isinstance(cores, int | float) or not (
            (isinstance(cores, int) or math.isfinite(cores)) and 0 < cores <= MAX_REQUEST):
        raise JobFileError(f"{at}: invalid cores {cores!r}: expected a positive number")
    sizes = {}
    for key in ("memory", "disk"):
        value = obj.get(key, getattr(d, key))
        try:
            sizes[key] = parse_size(value)
        except ValueError:
            raise JobFileError(f"{at}: invalid {key} {value!r}: expected {SIZE_HELP}") from None
    env = obj.get("env", {})
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise JobFileError(f"{at}: invalid env {env!r}: expected an object of strings")
    try:
        check_environment(env)
    except InvalidJob as e:
        raise JobFileError(f"{at}: {e}") from None
    preemptible = obj.get("preemptible", False)
    if not isinstance(preemptible, bool):
        raise JobFileError(f"{at}: invalid preemptible {preemptible!r}: expected true or false")
    gpus = obj.get("gpus", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise JobFileError(f"{at}: invalid gpus {gpus!r}: expected a whole number >= 0")
    walltime = obj.get("walltime")
    if walltime is not None and (isinstance(walltime, bool) or not isinstance(
            walltime, int | float) or walltime <= 0):
        raise JobFileError(f"{at}: invalid walltime {walltime!r}: expected seconds > 0")
    name = obj.get("name") or os.path.basename(command.split()[0])
    if not isinstance(name, str):
        raise JobFileError(f"{at}: invalid name {name!r}: expected a string")
    return JobLine(line, command, name, float(cores), sizes["memory"], sizes["disk"], env,
                   preemptible, gpus, walltime)
