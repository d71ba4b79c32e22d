"""Executor processes: spawn in a sandbox and their own session, watch exits, destroy.

Containers are destroyed as Mesos 1.11's posix launcher does it (``SubprocessLauncher::destroy``
in src/slave/containerizer/mesos/launcher.cpp: ``os::killtree(pid, SIGKILL, groups=true,
sessions=true)``, stout's os/posix/killtree.hpp): the process tree as it is at that moment, with
every process group and session met on the way. When the executor has already exited, only what
is left in the group or session it led is found; job processes it started in sessions of their
own have been re-parented by then and survive, exactly as on a real agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .wire import JsonDict


def spawn(command: JsonDict, env: dict[str, str], directory: Path) -> subprocess.Popen[bytes]:
    """``/bin/sh -c value`` when shell (default), else exec value with arguments as argv."""
    with open(directory / "stdout", "ab") as out, open(directory / "stderr", "ab") as err:
        if command.get("shell", True):
            argv = ["/bin/sh", "-c", command.get("value", "")]
            executable = None
        else:
            argv = list(command.get("arguments") or [command.get("value", "")])
            executable = command.get("value")
        return subprocess.Popen(
            argv,
            executable=executable,
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )


def raw_wait_status(returncode: int) -> int:
    """Rebuild waitpid()'s raw status: exit(7) -> 1792, killed by signal 9 -> 9."""
    return -returncode if returncode < 0 else returncode << 8


def watch_exit(process: subprocess.Popen[bytes], on_exit: Callable[[int], None]) -> None:
    """Call ``on_exit(raw_status)`` on the running loop when the process ends."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        _watch_with_thread(process, on_exit, loop)
        return

    def readable() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        on_exit(raw_wait_status(process.wait()))

    loop.add_reader(fd, readable)


def _watch_with_thread(
    process: subprocess.Popen[bytes],
    on_exit: Callable[[int], None],
    loop: asyncio.AbstractEventLoop,
) -> None:
    def wait() -> None:
        status = raw_wait_status(process.wait())
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(on_exit, status)

    threading.Thread(target=wait, daemon=True, name=f"wait-{process.pid}").start()


@dataclass(frozen=True)
class ProcessEntry:
    """One line of the process table: ``/proc/<pid>/stat`` fields 1, 4, 5, 6."""

    pid: int
    parent: int
    group: int
    session: int


def processes() -> dict[int, ProcessEntry]:
    """The process table (like stout's ``os::processes``)."""
    table: dict[int, ProcessEntry] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue  # gone meanwhile
        fields = data[data.rfind(b")") + 2 :].split()
        table[int(name)] = ProcessEntry(int(name), int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def process_tree(pid: int) -> list[JsonDict]:
    """What ``destroy(pid)`` would signal now (pid, parent, group, session of each process),
    without signalling anything."""
    table = processes()
    return [
        {"pid": p, "parent": e.parent, "group": e.group, "session": e.session}
        for p in sorted(_tree(pid, stop=False, root_exited=False))
        if (e := table.get(p)) is not None
    ]


def executor_process(pid: int, shell: bool) -> int:
    """The executor in a container whose root is ``pid``: under ``/bin/sh -c`` (which does not
    exec the last command) the shell's newest child, the foreground command; else ``pid``."""
    if not shell:
        return pid
    try:
        with open(f"/proc/{pid}/comm") as handle:
            if handle.read().strip() not in ("sh", "dash", "bash"):
                return pid  # the shell exec'ed the executor
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(child) for child in handle.read().split()]
    except OSError:
        return pid
    started = {child: _start_time(child) for child in children}
    return max(children, key=lambda child: (started[child], child)) if children else pid


def _start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return -1
    return int(data[data.rfind(b")") + 2 :].split()[19])


def destroy(pid: int, sig: int = signal.SIGKILL, *, root_exited: bool = False) -> list[int]:
    """``os::killtree(pid, sig, groups=true, sessions=true)``: stop the tree, signal, continue.

    ``root_exited``: the root was reaped, so a process now holding ``pid`` is someone else's
    (the kernel reuses a pid only once no group or session bears it); start from the group and
    session the root led. Returns the pids signalled (empty when nothing of it is left).
    """
    visited = _tree(pid, stop=True, root_exited=root_exited)
    for member in visited:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, sig)
    for member in visited:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGCONT)
    return sorted(visited)


def _tree(pid: int, *, stop: bool, root_exited: bool) -> set[int]:
    """killtree's traversal, a round at a time: stop the new members, re-read the table once,
    and follow children, groups and sessions until nothing new turns up."""
    table = processes()
    root = None if root_exited else table.get(pid)
    # Never "up the tree": our own group and session, and the root's parent's, are not followed.
    excluded_groups = {os.getpgrp()}
    excluded_sessions = {os.getsid(0)}
    if root is not None:
        frontier = {pid}
        parent = table.get(root.parent)
        if parent is not None:
            excluded_groups.add(parent.group)
            excluded_sessions.add(parent.session)
    else:
        # The root has exited: start from what is left of the group or session it led.
        frontier = {p.pid for p in table.values() if pid in (p.group, p.session)}
    own = os.getpid()
    visited: set[int] = set()
    groups: set[int] = set()
    sessions: set[int] = set()
    while frontier:
        frontier.discard(own)
        if stop:
            # Stopped, a member cannot fork a child that would escape to init while we look.
            for member in frontier:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member, signal.SIGSTOP)
            table = processes()
        members = {m for m in frontier if m in table}
        visited |= members
        for member in members:
            entry = table[member]
            if entry.group not in excluded_groups:
                groups.add(entry.group)
            if entry.session not in excluded_sessions:
                sessions.add(entry.session)
        frontier = {
            e.pid
            for e in table.values()
            if e.pid not in visited
            and (e.parent in visited or e.group in groups or e.session in sessions)
        }
    return visited
