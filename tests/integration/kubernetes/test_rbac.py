"""The README's Role and ClusterRole for a kubernetes leader allow every request a run
makes: the double has no RBAC, so its request log is checked against the rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.doubles.kubernetes import KubernetesDouble

from .conftest import Make, job, pods_of, result

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_rules() -> list[dict[str, Any]]:
    text = README.read_text()
    (block,) = [m.group(1) for m in re.finditer(r"^```yaml\n(.*?)^```", text, re.M | re.S)
                if "rbac.authorization.k8s.io" in m.group(1)]
    docs = list(yaml.safe_load_all(block))
    assert {d["kind"] for d in docs} == {"Role", "ClusterRole"}
    return [rule for d in docs for rule in d["rules"]]


def allowed(rules: list[dict[str, Any]], verb: str, resource: str) -> bool:
    return any(verb in r["verbs"] and resource in r["resources"] for r in rules)


def test_the_readme_rbac_allows_every_request_of_a_run(make: Make, double: KubernetesDouble
                                                      ) -> None:
    bs = make(kubernetesUnschedulableTimeout=2)
    done = bs.issueBatchJob("echo hi", job())
    assert result(bs).jobID == done  # its log read
    killed = bs.issueBatchJob("sleep 60", job())
    assert double.wait_for(lambda: pods_of(double, killed), 10)
    bs.killBatchJobs([killed])
    bs.getNodes()
    bs.shutdown()
    # a Job that makes no pod: its events are listed
    nobody = make(kubernetesServiceAccount="nobody", kubernetesUnschedulableTimeout=2)
    nobody.issueBatchJob("true", job())
    assert result(nobody).exitReason is not None
    nobody.shutdown()
    made = set(double.requests())
    assert {("create", "jobs"), ("delete", "jobs"), ("get", "pods/log"), ("watch", "pods"),
            ("list", "events"), ("deletecollection", "pods")} <= made
    rules = readme_rules()
    refused = sorted(r for r in made if not allowed(rules, *r))
    assert not refused, f"the README's RBAC does not allow {refused}"
