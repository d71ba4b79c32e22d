"""The contract suite runs against every backend; each provides a factory here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mesobatch

Factory = Callable[..., mesobatch.BatchSystem]

#: batch-queue backends on the fakes in tests/doubles (lsf, pbs, htcondor)
QUEUE_FAKES = ["lsf", "pbs", "torque", "htcondor"]
BACKENDS = ["local", "mesos", *QUEUE_FAKES]


@pytest.fixture(params=BACKENDS)
def make_bs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Factory]:
    """make_bs(cores=2, **options) -> a batch system whose nodes total ``cores`` cores,
    4 GiB of memory and 10 GiB of disk, jobs limited to the same."""
    made: list[mesobatch.BatchSystem] = []
    doubles: list[Any] = []
    clusters: list[Any] = []

    def make(cores: float = 2, **options: Any) -> mesobatch.BatchSystem:
        options.setdefault("killGracePeriod", 1)
        limits = {"maxCores": cores, "maxMemory": "4G", "maxDisk": "10G"}
        if request.param == "local":
            bs = mesobatch.batch_system("local", maxGpus=0, **limits, **options)
        elif request.param in QUEUE_FAKES:
            from tests.doubles.hpcfake.backends import FAKES

            # A cluster larger than the run: --maxQueuedCores holds this run to
            # ``cores`` (whole cores per job in the queue, fractions counted here).
            fake = FAKES[request.param]
            state = tmp_path_factory.mktemp(request.param)
            for var, value in fake.environment(state).items():
                monkeypatch.setenv(var, value)
            clusters.append(fake.cluster(state))
            options.setdefault("pollInterval", 0.2)
            options.setdefault("maxPollInterval", 1)
            bs = mesobatch.batch_system(request.param, maxQueuedCores=cores,
                                        logDir=str(state / "logs"), **limits, **options)
        else:
            from tests.doubles.mesos import AgentSpec, MesosDouble

            # the executor's 0.01 cpus and 32 MiB come on top of what the jobs may use
            double = MesosDouble(agents=[AgentSpec(resources=f"cpus:{cores + 0.01:g};"
                                                             "mem:4160;disk:10240")]).start()
            doubles.append(double)
            bs = mesobatch.batch_system("mesos", mesosMaster=double.master_address,
                                        **limits, **options)
        made.append(bs)
        return bs

    yield make
    for bs in made:
        bs.shutdown()
    for double in doubles:
        double.stop()
    for cluster in clusters:
        cluster.stop()
