"""Fixtures: a running Kubernetes double and a lightkube client configured from its kubeconfig."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import Client, KubeConfig

from tests.doubles.kubernetes import KubernetesDouble, NodeSpec

BAD_IMAGE = "registry.invalid/no-such-image"


@pytest.fixture
def double() -> Iterator[KubernetesDouble]:
    nodes = [
        NodeSpec(name="node-a", cpu="2", memory="2Gi"),
        NodeSpec(name="node-b", cpu="2", memory="2Gi"),
        NodeSpec(name="spot-c", cpu="4", memory="4Gi", gpu=1,
                 labels={"node.kubernetes.io/lifecycle": "spot"},
                 taints=[{"key": "spot", "value": "true", "effect": "NoSchedule"}]),
    ]
    with KubernetesDouble(nodes=nodes, job_backoff_base=0.2, bad_images=[BAD_IMAGE]) as k:
        yield k


@pytest.fixture
def client(double: KubernetesDouble) -> Client:
    return Client(KubeConfig.from_file(str(double.kubeconfig)), field_manager="tests")


def job_manifest(name: str, script: str, *, labels: dict[str, str] | None = None,
                 backoff_limit: int = 0, resources: dict[str, Any] | None = None,
                 image: str = "python:3.11-slim", **spec: Any) -> dict[str, Any]:
    """A batch/v1 Job whose one container runs ``python -c script``."""
    container: dict[str, Any] = {"name": "main", "image": image,
                                 "command": [sys.executable, "-c", script]}
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    pod_spec.update(spec.pop("pod", {}))
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"backoffLimit": backoff_limit,
                 "template": {"metadata": {"labels": labels or {}}, "spec": pod_spec}, **spec},
    }
