"""Starting a task's process afresh, as a child of this process (a cold start).

``Starter`` is the seam the runner starts tasks through; ``ColdStart`` is the one it
uses by default: posix_spawn (spawn.py) with the program exec'd directly when the
command line needs no shell (command.py), else ``/bin/sh -c``.
"""

from __future__ import annotations

import os
import shlex
from typing import Protocol

from .command import direct_argv, forget
from .process_spec import LaunchError, ProcessSpec
from .spawn import FileAction, spawn

SHELL = "/bin/sh"
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


class Starter(Protocol):
    """How the runner starts a task that no fork server runs.

    ``start`` returns the pid of a child of this process that leads a session (so a
    process group) of its own; the runner watches it, signals its group and reaps it."""

    def resolve(self, spec: ProcessSpec) -> list[str] | None:
        """What ``start`` needs that can be worked out early, in the thread that submits
        the task (the argv to exec without a shell, or None for the shell)."""

    def start(self, spec: ProcessSpec, argv: list[str] | None) -> int:
        """Start ``spec``; its pid. Raises LaunchError if it cannot start."""


#: Joins the cgroup whose cgroup.procs is $0 (writing 0 moves the writer), then execs
#: the task: what it forks is inside from the start. Paths and command are arguments,
#: never part of the script.
_JOIN = 'echo 0 >"$0" || exit 125\nexec "$@"'


def joining(procs: str, argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` inside the cgroup of ``procs`` (one more exec of
    the shell: only for tasks the kernel limits)."""
    return [SHELL, "-c", _JOIN, procs, *argv]


class ColdStart:
    """posix_spawn of a task's command: its own session, stdin from /dev/null, its log
    files opened by the child itself.

    posix_spawn (vfork underneath) costs half of subprocess.Popen in the parent, and
    spawn() lets our other threads run while the child execs. Every descriptor we hold
    is close-on-exec."""

    def resolve(self, spec: ProcessSpec) -> list[str] | None:
        """The argv to exec ``spec`` without a shell, or None (posix_spawn has no chdir,
        so a task with a working directory goes through the shell)."""
        # The first lookup of a program stats the PATH entries: done by the thread that
        # submits, since a spawner thread doing it while the caller issues jobs in a loop
        # (holding the GIL) would wait a switch interval for the GIL after each stat.
        return direct_argv(spec.command, spec.env) if spec.cwd is None else None

    def start(self, spec: ProcessSpec, argv: list[str] | None) -> int:
        """Spawn ``spec`` (``argv`` from resolve()); its pid. Raises LaunchError."""
        command = spec.command
        if spec.cwd is not None:  # posix_spawn has no chdir: let the shell do it
            command = f"cd -- {shlex.quote(spec.cwd)} || exit 127\n{command}"
        actions: list[FileAction] = [("open", 0, os.devnull, os.O_RDONLY, 0)]
        if spec.stdout is not None:
            actions.append(("open", 1, spec.stdout, _LOG_FLAGS, 0o644))
        if spec.stderr is not None:
            actions.append(("dup2", 1, 2) if spec.stderr == spec.stdout
                           else ("open", 2, spec.stderr, _LOG_FLAGS, 0o644))
        try:
            if spec.cgroup is not None:
                return spawn(SHELL, joining(spec.cgroup, argv or [SHELL, "-c", command]),
                             spec.env, actions)
            if argv is not None:
                try:
                    return spawn(argv[0], argv, spec.env, actions)
                except OSError:  # e.g. gone since we looked: the shell says why
                    forget(spec.command, spec.env)
            return spawn(SHELL, [SHELL, "-c", command], spec.env, actions)
        except OSError as e:
            raise LaunchError(e.errno, f"cannot start task {spec.task_id}: {e}") from e
