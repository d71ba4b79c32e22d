"""Fixtures for the batch-queue base: a fakeq state directory and batch systems on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .fake import FakeBatchSystem, fake_batch_system

Make = Callable[..., FakeBatchSystem]


@pytest.fixture
def state(tmp_path: Path) -> str:
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


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.02) -> Any:
    """The predicate's first true value, polled until ``timeout``; else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
