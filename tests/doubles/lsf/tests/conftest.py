"""A fresh LSF fake per test, with quick knobs (terminate interval, -W minutes as seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.hpcfake.testing import FakeCluster
from tests.doubles.lsf import BIN


@pytest.fixture
def lsf(tmp_path: Path) -> Iterator[FakeCluster]:
    cluster = FakeCluster(BIN, "FAKE_LSF_DIR", tmp_path / "lsf", {
        "FAKE_LSF_TERMINATE_INTERVAL": "0.3", "FAKE_LSF_SECONDS_PER_MINUTE": "1",
        "FAKE_LSF_QUEUES": "normal,short", "LSF_UNIT_FOR_LIMITS": "MB",
    })
    (tmp_path / "lsf").mkdir()
    yield cluster
    cluster.stop()
