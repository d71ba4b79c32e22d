"""Toil on ``--batchSystem mesobatch_kubernetes``, against the Kubernetes double: a workflow
from Toil's command line (its jobs are Jobs and pods; nothing of the run is left in the
namespace afterwards), and Toil's own generic batch-system tests."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.kubernetes import KubernetesDouble, NodeSpec

from . import kubernetes_workflow as wf
from .conftest import REPO, explain, run
from .test_toil_contract import _PluginGenericTests

IMAGE = "python:3.12-slim"  # the double runs commands here; the image only names them


def start_double() -> KubernetesDouble:
    double = KubernetesDouble(nodes=[NodeSpec(name="node-a", cpu="2", memory="8Gi")])
    double.start()
    return double


@pytest.fixture
def k8s() -> Iterator[KubernetesDouble]:
    double = start_double()
    yield double
    double.stop()


@pytest.mark.slow
def test_workflow_on_kubernetes(tmp_path: Path, k8s: KubernetesDouble) -> None:
    (tmp_path / "work").mkdir()
    result = run([sys.executable, "-m", "tests.integration.toil.kubernetes_workflow",
                  str(tmp_path / "jobstore"), "--summary", str(tmp_path / "summary.json"),
                  "--batchSystem", "mesobatch_kubernetes", "--kubernetesConfig",
                  str(k8s.kubeconfig), "--kubernetesImage", IMAGE, "--retryCount", "1",
                  "--workDir", str(tmp_path / "work"), "--clean", "always",
                  "--disableProgress", "--logInfo"], cwd=REPO)
    assert result.returncode == 0, explain(result)
    assert f"total {sum(i * i for i in range(wf.FANOUT))}" in result.stdout, explain(result)
    results = json.loads((tmp_path / "summary.json").read_text())["results"]
    assert all(r["pod"].startswith("mb-") for r in results)  # each ran in a pod of the run
    assert (tmp_path / f"job{wf.FLAKY}.attempts").read_text().splitlines() == ["attempt"] * 2
    # root, 6 children, the retry and the follow-on: each a Job with its pod
    assert k8s.request_count("create", "jobs") >= wf.FANOUT + 3
    assert k8s.items("jobs") == [] and k8s.items("pods") == []


class TestKubernetesWithToilsTests(_PluginGenericTests):
    """--batchSystem mesobatch_kubernetes on a double with one node of 2 cores."""

    __test__ = True
    toil_name = "mesobatch_kubernetes"
    double: KubernetesDouble

    @classmethod
    def setUpClass(cls) -> None:
        cls.double = start_double()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.double.stop()

    def _createConfig(self) -> Any:
        config = super()._createConfig()
        config.mesobatch_kubernetes_config = str(self.double.kubeconfig)
        config.mesobatch_kubernetes_image = IMAGE
        return config
