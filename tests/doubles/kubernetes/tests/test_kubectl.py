"""kubectl against the double: its discovery, JSON shapes, watch-based ``wait``, logs, label
selection and cascading deletes, through the kubeconfig the double writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.doubles.kubernetes import KubernetesDouble

from .conftest import job_manifest

KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed "
                                "(tests/run.sh installs Debian's kubernetes-client)")


def kubectl(double: KubernetesDouble, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KUBECONFIG": str(double.kubeconfig),
           "HOME": str(double.work_dir)}
    result = subprocess.run([KUBECTL, *args], env=env, input=stdin, capture_output=True,
                            text=True, timeout=60, check=False)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def as_json(double: KubernetesDouble, *args: str) -> Any:
    return json.loads(kubectl(double, *args, "-o", "json").stdout)


def test_discovery_nodes_and_version(double: KubernetesDouble) -> None:
    nodes = as_json(double, "get", "nodes")
    assert nodes["kind"] == "List" or nodes["kind"] == "NodeList"
    by_name = {n["metadata"]["name"]: n for n in nodes["items"]}
    assert set(by_name) == {"node-a", "node-b", "spot-c"}
    assert by_name["spot-c"]["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    version = json.loads(kubectl(double, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.32.0"
    names = kubectl(double, "get", "nodes", "-l", "node.kubernetes.io/lifecycle!=spot",
                    "-o", "name").stdout.split()
    assert names == ["node/node-a", "node/node-b"]


def test_job_lifecycle_wait_logs_and_foreground_delete(double: KubernetesDouble) -> None:
    manifest = job_manifest("kjob", "print('from kubectl')", labels={"run": "k"})
    created = kubectl(double, "create", "--validate=false", "-f", "-",
                      stdin=json.dumps(manifest))
    assert created.stdout.strip() == "job.batch/kjob created"
    kubectl(double, "wait", "--for=condition=complete", "job/kjob", "--timeout=30s")
    assert kubectl(double, "logs", "job/kjob").stdout == "from kubectl\n"
    phase = kubectl(double, "get", "pods", "-l", "run=k", "-o",
                    "jsonpath={.items[0].status.containerStatuses[0].state.terminated.reason}")
    assert phase.stdout == "Completed"
    job = as_json(double, "get", "job", "kjob")
    assert [c["type"] for c in job["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    deleted = kubectl(double, "delete", "job", "kjob", "--cascade=foreground")
    assert deleted.stdout.strip() == 'job.batch "kjob" deleted'
    assert as_json(double, "get", "pods,jobs", "-l", "run=k")["items"] == []


def test_failed_job_and_events_by_field_selector(double: KubernetesDouble) -> None:
    kubectl(double, "create", "--validate=false", "-f", "-",
            stdin=json.dumps(job_manifest("kfail", "import sys; sys.exit(7)")))
    kubectl(double, "wait", "--for=condition=failed", "job/kfail", "--timeout=30s")
    pod = as_json(double, "get", "pods", "-l", "job-name=kfail")["items"][0]
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (7, "Error")
    events = as_json(double, "get", "events", "--field-selector",
                     f"involvedObject.name={pod['metadata']['name']}")["items"]
    assert {"Scheduled", "Started"} <= {e["reason"] for e in events}
    described = kubectl(double, "describe", "job", "kfail").stdout
    assert "BackoffLimitExceeded" in described


def test_label_delete_and_cordon(double: KubernetesDouble) -> None:
    for index in range(2):
        kubectl(double, "create", "--validate=false", "-f", "-", stdin=json.dumps(
            job_manifest(f"kd{index}", "import time; time.sleep(60)", labels={"run": "kd"})))
    double.wait_for(lambda: len(double.process_ids()) == 2)
    kubectl(double, "delete", "jobs", "-l", "run=kd", "--wait=true")
    double.wait_for(lambda: not double.items("pods") and not double.process_ids(), 20)
    kubectl(double, "cordon", "node-a")
    node = as_json(double, "get", "node", "node-a")
    assert node["spec"]["unschedulable"] is True
