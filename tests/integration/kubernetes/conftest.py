"""A Kubernetes double and kubernetes-backend batch systems on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mesobatch
from tests.doubles.kubernetes import KubernetesDouble, NodeSpec

BAD_IMAGE = "registry.invalid/no-such-image"
SPOT = {"node.kubernetes.io/lifecycle": "spot"}
SPOT_TAINT = {"key": "spot", "value": "true", "effect": "NoSchedule"}

Make = Callable[..., mesobatch.BatchSystem]


@pytest.fixture
def nodes() -> list[NodeSpec]:
    return [NodeSpec(name="node-a", cpu="2", memory="2Gi", ephemeral_storage="10Gi")]


@pytest.fixture
def double(nodes: list[NodeSpec]) -> Iterator[KubernetesDouble]:
    with KubernetesDouble(nodes=nodes, bad_images=[BAD_IMAGE],
                          image_pull_backoff_delay=0.2) as k:
        yield k


@pytest.fixture
def make(double: KubernetesDouble, tmp_path: Any) -> Iterator[Make]:
    made: list[mesobatch.BatchSystem] = []

    def make_bs(**options: Any) -> mesobatch.BatchSystem:
        options.setdefault("killGracePeriod", 1)
        options.setdefault("logDir", str(tmp_path / "logs"))
        options.setdefault("kubernetesImage", "python:3.12-slim")
        bs = mesobatch.batch_system("kubernetes", kubernetesConfig=str(double.kubeconfig),
                                    **options)
        made.append(bs)
        return bs

    yield make_bs
    for bs in made:
        bs.shutdown()


def job(cores: float = 0.5, memory: int = 64 * 2**20, **kw: Any) -> mesobatch.JobDescription:
    return mesobatch.JobDescription(cores=cores, memory=memory, disk=16 * 2**20, **kw)


def result(bs: mesobatch.BatchSystem, timeout: float = 60) -> mesobatch.UpdatedBatchJobInfo:
    info = bs.getUpdatedBatchJob(timeout)
    assert info is not None, "no job ended in time"
    return info


def pods_of(double: KubernetesDouble, job_id: int) -> list[dict[str, Any]]:
    return [p for p in double.items("pods")
            if (p["metadata"].get("labels") or {}).get("mesobatch.io/job-id") == str(job_id)]
