"""`mesobatch run --backend kubernetes`, run as a user would, against the Kubernetes double."""

from __future__ import annotations

from pathlib import Path

from tests.doubles.kubernetes import KubernetesDouble
from tests.scheduler.test_cli import ROOT, mesobatch


def test_run_the_bundled_example_on_kubernetes(tmp_path: Path, double: KubernetesDouble
                                               ) -> None:
    r = mesobatch("run", str(ROOT / "examples" / "jobs.jsonl"), "--backend", "kubernetes",
                  "--kubernetesConfig", str(double.kubeconfig), "--kubernetesImage",
                  "debian:bookworm-slim", "--logDir", str(tmp_path / "logs"), "--no-progress",
                  cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "succeeded  10" in r.stdout and "failed     0" in r.stdout
    logs = tmp_path / "logs"
    assert next(logs.glob("*-hello.log")).read_text().startswith("hello from ")
    assert next(logs.glob("*-count-cores.log")).read_text() == "OMP_NUM_THREADS=2\n"
    assert next(logs.glob("*-env.log")).read_text() == "GREETING=hi\n"
    assert double.request_count("create", "jobs") == 10
    assert double.items("jobs") == [] and double.items("pods") == []
