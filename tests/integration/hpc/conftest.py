"""Fixtures for the batch-queue backends: the real Grid Engine, recorded command output."""

from __future__ import annotations

import json
from pathlib import Path

from mesobatch.integration.hpc.dialect import CommandResult
from tests.services.gridengine import gridengine, gridengine_env  # noqa: F401 (fixtures)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def recording(system: str, name: str) -> tuple[CommandResult, dict[str, str]]:
    """A recorded command (argv, exit status, output) and which job ids were which."""
    folder = FIXTURES / system
    entry = json.loads((folder / "index.json").read_text())["recordings"][name]
    result = CommandResult(argv=tuple(entry["argv"]), returncode=entry["returncode"],
                           stdout=(folder / entry["stdout"]).read_text(),
                           stderr=entry["stderr"])
    return result, dict(entry["jobs"])
