"""Batch systems for the shipping and function tests: the local backend, and Mesos on
the double. The conftests of tests/deploy and tests/integration offer these fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mesobatch
from tests.doubles.mesos import AgentSpec, MesosDouble

Make = Callable[..., mesobatch.BatchSystem]


class Systems:
    """Doubles and batch systems made by a test; all stopped at its end."""

    def __init__(self) -> None:
        self.doubles: list[MesosDouble] = []
        self.systems: list[mesobatch.BatchSystem] = []

    def local(self, **options: Any) -> mesobatch.BatchSystem:
        options = {"maxCores": 2, "maxMemory": "2G", "maxDisk": "2G", "maxGpus": 0,
                   "killGracePeriod": 1, **options}
        bs = mesobatch.batch_system("local", **options)
        self.systems.append(bs)
        return bs

    def double(self, agents: int = 1, resources: str = "cpus:2;mem:2080;disk:4096"
               ) -> MesosDouble:
        double = MesosDouble(agents=[AgentSpec(resources=resources)
                                     for _ in range(agents)]).start()
        self.doubles.append(double)
        return double

    def mesos(self, double: MesosDouble | None = None, **options: Any) -> mesobatch.BatchSystem:
        double = double or self.double()
        options = {"killGracePeriod": 1, "maxCores": 2, "maxMemory": "2G", "maxDisk": "4G",
                   **options}
        bs = mesobatch.batch_system("mesos", mesosMaster=double.master_address, **options)
        self.systems.append(bs)
        return bs

    def close(self) -> None:
        for bs in self.systems:
            bs.shutdown()
        for double in self.doubles:
            double.stop()


@pytest.fixture
def systems() -> Iterator[Systems]:
    s = Systems()
    yield s
    s.close()


@pytest.fixture(params=["local", "mesos"])
def make_bs(request: pytest.FixtureRequest, systems: Systems) -> Make:
    """make_bs(**options): a batch system on the parametrised backend."""
    if request.param == "local":
        return systems.local
    return systems.mesos
