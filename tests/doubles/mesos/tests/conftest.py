"""Fixtures: a running double, the recorded transcripts, a scheduler factory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.mesos import AgentSpec, MesosDouble
from tests.services.zookeeper import ZooKeeper

from .wire_client import Scheduler, default_framework_info

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "mesos-wire"


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.fixture
def double() -> Iterator[MesosDouble]:
    with MesosDouble(
        agents=[AgentSpec(resources="cpus:2;mem:4096;disk:10000")],
        allocation_interval=1.0,
        status_update_retry_base=10.0,
    ) as instance:
        yield instance


# Short timeouts for the fault scenarios (agent ping timeout 1 s instead of 75 s).
FAST: dict[str, Any] = {
    "allocation_interval": 0.2,
    "agent_removal_timeout": 1.0,
    "executor_shutdown_grace_period": 1.0,
    "executor_reregistration_timeout": 1.0,
    "status_update_retry_base": 10.0,
}


@pytest.fixture
def fast_double() -> Iterator[MesosDouble]:
    """Short timeouts for the fault scenarios."""
    with MesosDouble(agents=[AgentSpec(resources="cpus:2;mem:4096;disk:10000")], **FAST) as m:
        yield m


@pytest.fixture
def scheduler_factory() -> Iterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def make(master: str, **info: Any) -> Scheduler:
        scheduler = Scheduler(master, default_framework_info(**info))
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeper]:
    """One real ZooKeeper per test worker; tests use their own paths in it.

    tickTime 200 ms lets sessions be as short as 0.4 s (Mesos uses 10 s; the tests use 2 s).
    """
    with ZooKeeper.standalone(tick_ms=200) as zk:
        yield zk
