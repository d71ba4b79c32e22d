"""A fresh HTCondor fake per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.hpcfake.testing import FakeCluster
from tests.doubles.htcondor import BIN


@pytest.fixture
def condor(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "condor").mkdir()
    cluster = FakeCluster(BIN, "FAKE_CONDOR_DIR", tmp_path / "condor",
                          {"FAKE_CONDOR_KILL_DELAY": "0.3"})
    yield cluster
    cluster.stop()
