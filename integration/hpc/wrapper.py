"""The scripts a batch-queue backend submits, and the records they leave: pure text.

Each job runs from a wrapper script of its own. It sends its output to the job's log
file, exports the job's variables (each value quoted, never re-parsed), records that it
started, runs the command as ``/bin/sh -c COMMAND`` (the command is one quoted word, so
the shell parses it exactly once, as on every other backend), and records its exit
status (a signal as 128 + n); a SIGTERM to the wrapper (a cancel) is passed on to the
command, SIGKILL following after the kill grace period. Each record is one short write
by the shell itself (not a temporary file and ``mv``: one process fewer per job), so a
reader sees all of it or an empty file, which it skips until it is written. The records
are the ground truth when the system's accounting is off or slow: ``<records>/<task
id>.started`` holds the node's name, ``<task id>.exit`` the exit status, each then the
node's uptime, which gives the wall time (the files' modification times come from a
coarser clock, a tick late or early). The wrapper reads both with the shell's own
``read``: every process it starts is a cost on each job, and a batch system's throughput
is made of little else.

An array of jobs submits one dispatcher script that runs the wrapper its index names.

A pack (jobs of less than a core, run together in one allocation of the batch system:
packing.py) submits one pack script that starts the wrappers of its jobs at once, each
in a session of its own (``setsid``: a job's kill reaches its whole process group and
no other job's), waits for all of them and exits 0: each job's records say how it
ended. One job of a pack is killed by a marker file, ``<records>/<task id>.kill``, that
a watcher in the pack script looks for every ``KILL_POLL`` seconds (a job whose marker
is there before the pack starts is never started); it sends the job's wrapper SIGTERM,
which passes it on as on a cancel. A SIGTERM to the pack script (the whole allocation
cancelled) is passed on to every job.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

STARTED = ".started"
EXITED = ".exit"
KILL = ".kill"  #: the marker asking a pack to kill one of its jobs
#: seconds between a pack's looks for kill markers (a kill takes at most this, then the
#: job's kill grace period)
KILL_POLL = 0.5
#: a record's second line: the node's uptime, read by the shell itself (no process to
#: start: a job's own cost is what a batch system's throughput is made of here); where
#: there is no /proc/uptime the line is empty and the files' modification times count
CLOCK_TICK = 0.01  #: /proc/uptime's resolution


def job_script(*, title: str, command: str, env: Mapping[str, str], log: str,
               record: str, work_dir: str, reserved_exit_codes: Iterable[int] = (),
               kill_grace: float = 5.0) -> str:
    """The wrapper of one job. ``record`` is the path its records start with. The
    record holds the command's own exit status; the script itself exits 1 instead of
    a status in ``reserved_exit_codes`` (which the batch system would act on).
    ``kill_grace``: seconds between SIGTERM and SIGKILL when the job is cancelled."""
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        f"# mesobatch: {_one_line(title)}",
        "read T0 _ 2>/dev/null </proc/uptime || T0=",
        f"exec >{q(log)} 2>&1 </dev/null",
        f"R={q(record)}",
        # the node's name as uname -n gives it, without starting uname where Linux says it
        "read N 2>/dev/null </proc/sys/kernel/hostname || N=$(uname -n)",
        # each record is one short write (printf is the shell's own): a reader sees all
        # of it, or an empty file, which it skips
        f"printf '%s\\n%s\\n' \"$N\" \"$T0\" >\"$R{STARTED}\"",
        f"cd {q(work_dir)} || {{ echo 1 >\"$R{EXITED}\"; exit 1; }}",
    ]
    # A name the shell cannot hold (``a.b``) is left out: the /bin/sh that runs the
    # command would drop it from its environment anyway, on every backend.
    lines += [f"export {name}={q(value)}" for name, value in env.items()
              if _NAME.fullmatch(name)]
    # On SIGTERM (a cancel) the wrapper stays until its command is gone: it passes the
    # signal on, waits ``kill_grace`` seconds, then kills. Where the wrapper leads its
    # process group (Slurm, Grid Engine, PBS start job scripts so) that is the whole
    # group, itself last; else its command. A wrapper that died at once would orphan
    # a command that ignores SIGTERM out of the batch system's sight (Slurm's
    # proctrack/linuxproc follows parents).
    lines += [
        f"/bin/sh -c {q(command)} &",
        "pid=$!",
        "read _ _ _ _ G _ 2>/dev/null </proc/$$/stat || G=",  # its process group
        'if [ "$G" = "$$" ]; then K=0; else K=$pid; fi',
        "trap 'trap \"\" TERM INT HUP; kill -TERM $K 2>/dev/null; "
        f"sleep {max(0.0, kill_grace):g}; kill -KILL $K 2>/dev/null' TERM INT HUP",
        'while :; do wait "$pid"; rc=$?; kill -0 "$pid" 2>/dev/null || break; done',
        "read T1 _ 2>/dev/null </proc/uptime || T1=",
        f"printf '%s\\n%s\\n' \"$rc\" \"$T1\" >\"$R{EXITED}\"",
    ]
    reserved = sorted(set(reserved_exit_codes))
    if reserved:
        lines.append(f'case "$rc" in {"|".join(map(str, reserved))}) exit 1 ;; esac')
    lines += ['exit "$rc"', ""]
    return "\n".join(lines)


def array_script(*, scripts: Sequence[str], index_variable: str, first_index: int) -> str:
    """The dispatcher of an array: element ``first_index + i`` runs ``scripts[i]``."""
    q = shlex.quote
    var = "${" + index_variable + ":-}"
    lines = ["#!/bin/sh", f"# mesobatch: an array of {len(scripts)} jobs", f'case "{var}" in']
    lines += [f"{first_index + i}) exec {q(path)} ;;" for i, path in enumerate(scripts)]
    lines += [f'*) echo "mesobatch: no job for array index \'{var}\'" >&2; exit 1 ;;',
              "esac", ""]
    return "\n".join(lines)


def pack_script(*, scripts: Sequence[str], records: Sequence[str], signalled: str,
                kill_poll: float = KILL_POLL) -> str:
    """The script of a pack: runs ``scripts`` (job wrappers) together and waits for all.
    ``records[i]`` is the path the records of ``scripts[i]`` start with (its kill marker
    is that + ``KILL``). ``signalled`` is a file the pack creates when it gets SIGTERM
    (the whole pack cancelled or out of time: its jobs' deaths are the pack's)."""
    if len(scripts) != len(records) or not scripts:
        raise ValueError(f"a pack needs one record path per script, and at least one "
                         f"script: {len(scripts)} scripts, {len(records)} record paths")
    q = shlex.quote
    n = len(scripts)
    pids = " ".join(f"$P{i}" for i in range(n))
    lines = ["#!/bin/sh", f"# mesobatch: a pack of {n} jobs, run together",
             # setsid without a fork (this shell leads its group, its children do not):
             # $! is the job wrapper itself, leading a process group of its own
             "if command -v setsid >/dev/null 2>&1; then S=setsid; else S=; fi",
             f"SIG={q(signalled)}", "T=",
             # trapped before any job starts: a TERM that came between a start and the
             # trap would end this shell alone, its jobs' ends never told as the pack's
             f"trap 'trap \"\" TERM INT HUP; T=1; : >\"$SIG\"; kill -TERM {pids} "
             "2>/dev/null' TERM INT HUP"]
    for i, (script, record) in enumerate(zip(scripts, records, strict=True)):
        lines.append(f'P{i}=; [ -n "$T" ] || [ -e {q(record + KILL)} ] || '
                     f"{{ $S {q(script)} & P{i}=$!; }}")
    # the trap may have come between a job's start and its pid's assignment
    lines.append(f'[ -z "$T" ] || kill -TERM {pids} 2>/dev/null')
    # the watcher forgets a job once signalled, or once its exit record is written (its
    # pid may then be reused); it is a subshell, so it has the pids as started, and $$
    # is the pack's shell: it ends with it, even one killed outright
    watch = ['while kill -0 $$ 2>/dev/null; do']
    for i, record in enumerate(records):
        kill, exit_ = q(record + KILL), q(record + EXITED)
        watch.append(f'  if [ -n "$P{i}" ] && [ -e {kill} ]; then '
                     f'[ -e {exit_} ] || kill -TERM "$P{i}" 2>/dev/null; P{i}=; fi')
    watch += [f"  sleep {max(0.01, kill_poll):g}", "done"]
    lines += [
        f'[ -n "{pids.replace(" ", "")}" ] || exit 0',
        "(", *watch, ") </dev/null >/dev/null 2>&1 &",
        "W=$!",
        # a trapped signal ends a wait early: wait again while the job is there
        f"for p in {pids}; do",
        '  while :; do wait "$p"; kill -0 "$p" 2>/dev/null || break; done',
        "done",
        # KILL: a watcher started after the trap ran inherited its ignored TERM
        'kill -KILL "$W" 2>/dev/null',
        "exit 0", ""]
    return "\n".join(lines)


def write_script(path: str, text: str) -> None:
    """Write an executable script (owner-only: it holds the job's variables)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@dataclass(frozen=True, slots=True)
class StartRecord:
    """A job's wrapper started."""

    node: str
    at: float  #: epoch seconds (the record's modification time)
    clock: float | None = None  #: the node's uptime then, seconds


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """A job's command ended with this status (128 + n for a signal)."""

    exit_code: int
    at: float  #: epoch seconds (the record's modification time)
    clock: float | None = None  #: the node's uptime then, seconds


def read_records(directory: str, want_start: set[str], want_exit: set[str]
                 ) -> tuple[dict[str, StartRecord], dict[str, ExitRecord]]:
    """The start records of the tasks in ``want_start`` and the exit records of those
    in ``want_exit`` that exist now (one directory listing; only those files read)."""
    starts: dict[str, StartRecord] = {}
    exits: dict[str, ExitRecord] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return starts, exits
    for entry in entries:
        name = entry.name
        if name.endswith(EXITED) and name[:-len(EXITED)] in want_exit:
            task_id, is_exit = name[:-len(EXITED)], True
        elif name.endswith(STARTED) and name[:-len(STARTED)] in want_start:
            task_id, is_exit = name[:-len(STARTED)], False
        else:
            continue
        try:
            at = entry.stat().st_mtime
            with open(entry.path) as f:
                lines = f.read(256).split("\n")
        except OSError:
            continue
        text = lines[0].strip()
        clock = _seconds(lines[1]) if len(lines) > 1 else None
        if not is_exit:
            if text:  # (empty: being written)
                starts[task_id] = StartRecord(text, at, clock)
            continue
        try:
            exits[task_id] = ExitRecord(int(text), at, clock)
        except ValueError:
            continue  # empty (being written), or not a record we wrote
    return starts, exits


def wall_time(started: StartRecord, exited: ExitRecord) -> float:
    """Seconds from start to exit: by the node's uptime, rounded up to its tick (so a
    job never looks shorter than it was), else by the records' modification times."""
    if started.clock is not None and exited.clock is not None:
        return max(0.0, exited.clock - started.clock) + CLOCK_TICK
    return max(0.0, exited.at - started.at)


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.split())
