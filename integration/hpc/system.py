"""What the LSF, PBS/Torque and HTCondor backends share beyond the base: parsing the
extra arguments a site adds to every submission, and refusing those that would
overwrite what mesobatch sets itself (a clear error at start, not a job that
silently writes its output elsewhere or runs under another name)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from ...scheduler.options import OptionError


def parse_words(value: Any) -> tuple[str, ...]:
    """Extra command-line words: a list, or one string split as a shell would."""
    if isinstance(value, list | tuple):
        if not all(isinstance(w, str) for w in value):
            raise ValueError("expected a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError("expected words such as '-R \"select[type==X86_64]\"'")
    try:
        return tuple(shlex.split(value))
    except ValueError as e:
        raise ValueError(f"cannot split {value!r} into words: {e}") from None


def parse_lines(value: Any) -> tuple[str, ...]:
    """Lines of text: a list, or one string holding one line per line."""
    if isinstance(value, list | tuple):
        lines = [str(v) for v in value]
    elif isinstance(value, str):
        lines = value.splitlines()
    else:
        raise ValueError("expected lines of text")
    return tuple(line.strip() for line in lines if line.strip())


def refuse_reserved(words: Iterable[str], reserved: Iterable[str], option: str) -> None:
    """Raise OptionError if ``words`` set an option mesobatch sets on every submission."""
    taken = set(reserved)
    for word in words:
        flag = word.split("=", 1)[0]
        if flag in taken:
            raise OptionError(
                f"invalid value for --{option}: {flag} is set by mesobatch for every job "
                f"(it sets {', '.join(sorted(taken))}); remove it")
