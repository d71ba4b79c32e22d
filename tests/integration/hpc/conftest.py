"""Fixtures for the batch-queue backends: the real Grid Engine and Slurm (started on
first use, shared by pytest workers), recorded command output, and fakeq (tests of the
shared base): its state directory and batch systems on it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesobatch.integration.hpc.dialect import CommandResult
from tests.services.gridengine import gridengine, gridengine_env  # noqa: F401 (fixtures)
from tests.services.slurm_fixtures import (  # noqa: F401 (fixtures)
    slurm_cluster,
    slurm_cluster_noacct,
)

from .fake import FakeBatchSystem, fake_batch_system

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

Make = Callable[..., FakeBatchSystem]


def recording(system: str, name: str) -> tuple[CommandResult, dict[str, str]]:
    """A recorded command (argv, exit status, output) and which job ids were which."""
    folder = FIXTURES / system
    entry = json.loads((folder / "index.json").read_text())["recordings"][name]
    result = CommandResult(argv=tuple(entry["argv"]), returncode=entry["returncode"],
                           stdout=(folder / entry["stdout"]).read_text(),
                           stderr=entry["stderr"])
    return result, dict(entry["jobs"])


@pytest.fixture
def state(tmp_path: Path) -> str:
    """fakeq's state directory."""
    path = tmp_path / "fakeq"
    path.mkdir()
    return str(path)


@pytest.fixture
def make(state: str, tmp_path: Path) -> Iterator[Make]:
    """make(**options) -> a batch system on fakeq (logs in tmp_path/logs)."""
    made: list[FakeBatchSystem] = []

    def build(**options: Any) -> FakeBatchSystem:
        options.setdefault("logDir", str(tmp_path / "logs"))
        bs = fake_batch_system(state, **options)
        made.append(bs)
        return bs

    yield build
    for bs in made:
        bs.shutdown()
