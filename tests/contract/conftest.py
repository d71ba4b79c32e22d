"""The contract suite runs against every backend; each provides a factory here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mesobatch

Factory = Callable[..., mesobatch.BatchSystem]

BACKENDS = ["local", "mesos", "aws_batch"]


@pytest.fixture(params=BACKENDS)
def make_bs(request: pytest.FixtureRequest,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Factory]:
    """make_bs(cores=2, **options) -> a batch system whose nodes total ``cores`` cores,
    4 GiB of memory and 10 GiB of disk, jobs limited to the same."""
    made: list[mesobatch.BatchSystem] = []
    doubles: list[Any] = []

    def make(cores: float = 2, **options: Any) -> mesobatch.BatchSystem:
        options.setdefault("killGracePeriod", 1)
        limits = {"maxCores": cores, "maxMemory": "4G", "maxDisk": "10G"}
        if request.param == "local":
            bs = mesobatch.batch_system("local", maxGpus=0, **limits, **options)
        elif request.param == "aws_batch":
            from tests.doubles.aws_batch import AwsBatchDouble
            from tests.doubles.aws_batch.queues import add_queue

            # the double's queue is large; the run may use ``cores`` vCPUs of it, and the
            # double stops a job as ECS does (SIGTERM, SIGKILL after a grace period)
            aws = AwsBatchDouble(state_delay=0.02, stop_grace=1.0)
            aws.start()
            doubles.append(aws)
            for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                monkeypatch.setenv(variable, "testing")
            bs = mesobatch.batch_system(
                "aws_batch", awsBatchEndpoint=aws.endpoint_url, awsBatchRegion=aws.region,
                awsBatchQueue=add_queue(aws, "contract"), awsBatchImage="python:3.11-slim",
                awsBatchMaxVcpus=cores, pollInterval=0.1, **limits, **options)
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
