"""The contract suite runs against every backend; each provides a factory here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mesobatch

Factory = Callable[..., mesobatch.BatchSystem]

BACKENDS = ["local"]


@pytest.fixture(params=BACKENDS)
def make_bs(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """make_bs(cores=2, **options) -> a batch system whose nodes total ``cores`` cores."""
    made: list[mesobatch.BatchSystem] = []

    def make(cores: float = 2, **options: Any) -> mesobatch.BatchSystem:
        options.setdefault("killGracePeriod", 1)
        if request.param == "local":
            bs = mesobatch.batch_system("local", maxCores=cores, maxMemory="4G",
                                        maxDisk="10G", maxGpus=0, **options)
        else:  # pragma: no cover
            raise AssertionError(request.param)
        made.append(bs)
        return bs

    yield make
    for bs in made:
        bs.shutdown()
