"""Running a batch system's commands: argument lists only, never a shell.

Every command of every batch-queue backend goes through ``Commands.run``: it runs the
argument list with a timeout, and a failure raises ``CommandError`` carrying the
command, its exit status, stdout and stderr, and what the failure means (the
dialect's ``classify``). Transient failures are tried again with backoff; the others
are raised at once.
"""

from __future__ import annotations

import collections
import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .dialect import CommandResult, ErrorKind

#: exit status reported for a command that could not be started or timed out
NOT_RUN = -1


class CommandError(Exception):
    """A command failed: what ran, how it ended, what it printed, what that means."""

    def __init__(self, result: CommandResult, kind: ErrorKind, why: str = "") -> None:
        self.result = result
        self.kind = kind
        self.why = why or (f"exited with status {result.returncode}"
                           if result.returncode != NOT_RUN else "did not run")
        text = (result.stderr.strip() or result.stdout.strip())[:2000]
        super().__init__(f"{shlex.join(result.argv)} {self.why}" + (f": {text}" if text
                                                                     else ""))

    @property
    def argv(self) -> tuple[str, ...]:
        return self.result.argv

    @property
    def returncode(self) -> int:
        return self.result.returncode

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr


def run_command(argv: Sequence[str], *, timeout: float) -> CommandResult:
    """Run ``argv`` (no shell, stdin from /dev/null) and return what it printed.

    Raises CommandError: TRANSIENT if it timed out, PERMANENT if it cannot be started
    (not installed, not executable); a non-zero exit is returned, for the caller to
    classify."""
    args = tuple(str(a) for a in argv)
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False, text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else ""
        raise CommandError(CommandResult(args, NOT_RUN, out, err), ErrorKind.TRANSIENT,
                           f"timed out after {timeout:g} s") from None
    except OSError as e:
        raise CommandError(CommandResult(args, NOT_RUN, "", str(e)), ErrorKind.PERMANENT,
                           "cannot be run") from None
    return CommandResult(args, done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Retry:
    """How transient failures are tried again: ``attempts`` in all, waiting
    ``initial`` seconds, then twice as long each time, at most ``longest``."""

    attempts: int = 5
    initial: float = 0.5
    longest: float = 30.0

    def delays(self) -> list[float]:
        return [min(self.initial * 2 ** i, self.longest) for i in range(self.attempts - 1)]


class Commands:
    """The one way a batch-queue backend runs commands; counts what it ran."""

    def __init__(self, classify: Callable[[CommandResult], ErrorKind], *, timeout: float,
                 retry: Retry, stop: threading.Event | None = None) -> None:
        self.classify = classify
        self.timeout = timeout
        self.retry = retry
        self.stop = stop or threading.Event()
        self._count_lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()  # by program name

    def run(self, argv: Sequence[str], *, retry: bool = True) -> CommandResult:
        """Run ``argv``; a non-zero exit raises CommandError with the dialect's meaning.
        TRANSIENT failures are tried again with backoff (unless ``retry`` is False or
        the backend is stopping); the last one is raised."""
        delays = self.retry.delays() if retry else []
        while True:
            with self._count_lock:
                self.counts[str(argv[0]).rsplit("/", 1)[-1]] += 1
            try:
                result = run_command(argv, timeout=self.timeout)
                if result.returncode == 0:
                    return result
                raise CommandError(result, self._kind(result))
            except CommandError as e:
                if e.kind is not ErrorKind.TRANSIENT or not delays or self.stop.is_set():
                    raise
                if self.stop.wait(delays.pop(0)):
                    raise

    @property
    def total(self) -> int:
        """Commands run so far."""
        with self._count_lock:
            return sum(self.counts.values())

    def _kind(self, result: CommandResult) -> ErrorKind:
        try:
            return self.classify(result)
        except Exception:  # a parser must not turn a failed command into a crash
            return ErrorKind.PERMANENT

