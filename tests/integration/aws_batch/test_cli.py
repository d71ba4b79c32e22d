"""`mesobatch run --backend aws_batch`, run as a user would, against the AWS Batch double."""

from __future__ import annotations

from pathlib import Path

from tests.doubles.aws_batch import AwsBatchDouble
from tests.scheduler.test_cli import ROOT, mesobatch


def test_run_the_bundled_example_on_aws_batch(tmp_path: Path, aws: AwsBatchDouble) -> None:
    r = mesobatch("run", str(ROOT / "examples" / "jobs.jsonl"), "--backend", "aws_batch",
                  "--awsBatchEndpoint", aws.endpoint_url, "--awsBatchRegion", aws.region,
                  "--awsBatchQueue", "queue", "--awsBatchImage", "debian:bookworm-slim",
                  "--pollInterval", "0.2", "--logDir", str(tmp_path / "logs"),
                  "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "succeeded  10" in r.stdout and "failed     0" in r.stdout
    logs = tmp_path / "logs"
    assert next(logs.glob("*-hello.log")).read_text().startswith("hello from ")
    assert next(logs.glob("*-count-cores.log")).read_text() == "OMP_NUM_THREADS=2\n"
    assert next(logs.glob("*-env.log")).read_text() == "GREETING=hi\n"
    assert aws.requests()["SubmitJob"] == 10
    assert all(s in ("SUCCEEDED", "FAILED") for s in aws.call(
        lambda b: [j.status for j in b.jobs.values()]))
