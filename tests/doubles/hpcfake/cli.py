"""Helpers the fakes' command-line programs share."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable

from .store import Store


class CommandError(Exception):
    """A command fails: ``message`` goes to stderr, ``status`` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def store_from_env(variable: str, default_name: str) -> Store:
    """The state directory named by ``variable`` (a per-user temporary one if unset)."""
    path = os.environ.get(variable) or os.path.join(
        tempfile.gettempdir(), f"{default_name}-{os.getuid()}"
    )
    return Store(path)


def run(handler: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run one command; a CommandError becomes its message on stderr and its status."""
    try:
        return handler(argv)
    except CommandError as exc:
        if exc.message:
            sys.stderr.write(exc.message if exc.message.endswith("\n") else exc.message + "\n")
        return exc.status
    except BrokenPipeError:
        return 1


def split_option_args(argv: list[str], with_value: set[str], flags: set[str],
                      usage: str, status: int) -> tuple[dict[str, list[str]], list[str]]:
    """Options (each may repeat) and operands, getopt style: options end at the first
    operand or at ``--``; an unknown option is an error with ``usage``."""
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return opts, argv[i + 1:]
        if not arg.startswith("-") or arg == "-":
            return opts, argv[i:]
        if arg in flags:
            opts.setdefault(arg, []).append("")
        elif arg in with_value:
            if i + 1 >= len(argv):
                raise CommandError(f"{arg}: option requires an argument\n{usage}", status)
            opts.setdefault(arg, []).append(argv[i + 1])
            i += 1
        else:
            attached = next((o for o in with_value if len(o) == 2 and arg.startswith(o)), None)
            if attached is None:
                raise CommandError(f"{arg}: illegal option\n{usage}", status)
            opts.setdefault(attached, []).append(arg[len(attached):])
        i += 1
    return opts, []
