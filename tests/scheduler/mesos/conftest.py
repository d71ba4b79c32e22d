"""A Mesos double and batch systems on it, for the mesos backend's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mesobatch
from tests.doubles.mesos import AgentSpec, MesosDouble

SMALL = mesobatch.JobDescription(cores=0.5, memory=64 * 2**20, disk=64 * 2**20)


def job(cores: float = 0.5, **kw: Any) -> mesobatch.JobDescription:
    kw.setdefault("memory", 64 * 2**20)
    kw.setdefault("disk", 64 * 2**20)
    return mesobatch.JobDescription(cores=cores, **kw)


class Cluster:
    """A double plus the batch systems made on it; everything stops at the end."""

    def __init__(self) -> None:
        self.double: MesosDouble | None = None
        self.systems: list[mesobatch.BatchSystem] = []

    def start(self, agents: list[AgentSpec] | None = None, **double_options: Any) -> MesosDouble:
        self.double = MesosDouble(agents=agents or [AgentSpec()], **double_options).start()
        return self.double

    def batch_system(self, **options: Any) -> mesobatch.BatchSystem:
        assert self.double is not None
        options.setdefault("killGracePeriod", 1)
        bs = mesobatch.batch_system("mesos", mesosMaster=self.double.master_address, **options)
        self.systems.append(bs)
        return bs

    def stop(self) -> None:
        for bs in self.systems:
            bs.shutdown()
        if self.double is not None:
            self.double.stop()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    yield c
    c.stop()


def where(tmp: Path, tag: str, then: str = "true") -> str:
    """A command that records the agent it runs on (the agent tells its executor its id,
    and the executor's environment reaches the task), then runs ``then``."""
    return f'echo "$MESOS_SLAVE_ID" > {tmp}/{tag}.agent; {then}'


def agent_of(tmp: Path, tag: str) -> str:
    return (tmp / f"{tag}.agent").read_text().strip()
