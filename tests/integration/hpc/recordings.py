"""Slurm output recorded from the real programs (tests/fixtures/slurm/, see its README)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from mesobatch.integration.hpc.dialect import CommandResult

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"


@dataclass(frozen=True)
class Recording:
    name: str
    meta: dict[str, list[str]]  #: header keys (argv, returncode, note, source, ...)
    result: CommandResult

    @property
    def recorded(self) -> bool:
        """Taken from the real program (not written from the documentation)."""
        return "source" not in self.meta

    @property
    def notes(self) -> str:
        return "\n".join(self.meta.get("note", []))


def load(name: str) -> Recording:
    text = (FIXTURES / f"{name}.txt").read_text()
    head, _, rest = text.partition("--- stdout\n")
    stdout, _, stderr = rest.partition("--- stderr\n")
    meta: dict[str, list[str]] = {}
    for line in head.splitlines():
        key, _, value = line.removeprefix("# ").partition(": ")
        meta.setdefault(key, []).append(value)
    argv = tuple(shlex.split(meta["argv"][0]))
    rc = int(meta["returncode"][0])
    return Recording(name, meta, CommandResult(argv, rc, stdout, stderr))


def names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.txt"))
