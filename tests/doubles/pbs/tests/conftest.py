"""A fresh PBS fake per test, as PBS Pro or as Torque."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.hpcfake.testing import FakeCluster
from tests.doubles.pbs import BIN


def _cluster(tmp_path: Path, flavor: str) -> FakeCluster:
    (tmp_path / flavor).mkdir()
    return FakeCluster(BIN, "FAKE_PBS_DIR", tmp_path / flavor, {
        "FAKE_PBS_FLAVOR": flavor, "FAKE_PBS_SERVER": "pbsserver", "FAKE_PBS_KILL_DELAY": "0.3",
    })


@pytest.fixture
def pbspro(tmp_path: Path) -> Iterator[FakeCluster]:
    cluster = _cluster(tmp_path, "pbspro")
    yield cluster
    cluster.stop()


@pytest.fixture
def torque(tmp_path: Path) -> Iterator[FakeCluster]:
    cluster = _cluster(tmp_path, "torque")
    yield cluster
    cluster.stop()
