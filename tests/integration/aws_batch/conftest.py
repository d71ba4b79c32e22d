"""The aws_batch backend against the AWS Batch double: a double with an on-demand queue
(``queue``, 4 vCPUs) and a spot queue (``spot``, 4 vCPUs), and a factory of batch systems
pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mesobatch
from tests.doubles.aws_batch import AwsBatchDouble
from tests.doubles.aws_batch.queues import add_queue

Make = Callable[..., mesobatch.BatchSystem]


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's standard chain finds these (and never asks an instance metadata service)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def aws() -> Iterator[AwsBatchDouble]:
    with AwsBatchDouble(state_delay=0.02, minimum_timeout=1, stop_grace=0.5,
                        memory_poll_interval=0.05) as double:
        add_queue(double, "queue", vcpus=4)
        add_queue(double, "spot", vcpus=4, spot=True)
        yield double


@pytest.fixture
def make(aws: AwsBatchDouble, tmp_path: Any) -> Iterator[Make]:
    """make(**options) -> a batch system on the double's ``queue`` (options override)."""
    made: list[mesobatch.BatchSystem] = []

    def factory(**options: Any) -> mesobatch.BatchSystem:
        settings: dict[str, Any] = {
            "awsBatchEndpoint": aws.endpoint_url, "awsBatchRegion": aws.region,
            "awsBatchQueue": "queue", "awsBatchImage": "python:3.11-slim",
            "pollInterval": 0.1, "logDir": str(tmp_path / "logs"), "killGracePeriod": 1,
            **options}
        bs = mesobatch.batch_system("aws_batch", **{k: v for k, v in settings.items()
                                                     if v is not None})
        made.append(bs)
        return bs

    yield factory
    for bs in made:
        bs.shutdown()


def small(**kw: Any) -> mesobatch.JobDescription:
    return mesobatch.JobDescription(**{"cores": 1, "memory": 64 * 2**20, "disk": 2**20, **kw})
