"""Toil on ``--batchSystem mesobatch_aws_batch``, against the AWS Batch double: a workflow
from Toil's command line (Toil's own --awsBatchQueue and --awsBatchRegion reach the
backend), and Toil's own generic batch-system tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.aws_batch import AwsBatchDouble
from tests.doubles.aws_batch.queues import add_queue

from .conftest import REPO, run
from .test_toil_contract import _PluginGenericTests
from .test_toil_workflow import assert_workflow_succeeded, workflow_argv

IMAGE = "python:3.11-slim"  # the double runs commands here; the image only names them
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def start_double() -> AwsBatchDouble:
    # Toil's worker alone is larger than the workflow's smallest requests (32 MiB), which
    # a real container would not survive either: the double's memory watchdog is off here
    # (tests/integration/aws_batch/ checks that OutOfMemoryError is reported as MEMLIMIT).
    double = AwsBatchDouble(state_delay=0.05, stop_grace=1.0, memory_poll_interval=3600)
    double.start()
    add_queue(double, "toil", vcpus=64)
    return double


@pytest.fixture
def aws() -> Iterator[AwsBatchDouble]:
    double = start_double()
    yield double
    double.stop()


@pytest.mark.slow
def test_workflow_on_aws_batch(tmp_path: Path, aws: AwsBatchDouble) -> None:
    argv = [*workflow_argv(sys.executable, tmp_path, "mesobatch_aws_batch", None),
            "--awsBatchRegion", aws.region, "--awsBatchQueue", "toil",
            "--awsBatchImage", IMAGE, "--awsBatchEndpoint", aws.endpoint_url,
            "--awsBatchMaxVcpus", "4", "--pollInterval", "0.2"]
    result = run(argv, cwd=REPO, env={**os.environ, **CREDENTIALS})
    assert_workflow_succeeded(result, tmp_path)
    counts = aws.requests()
    # root, 20 children, the retry and the follow-on: each an AWS Batch job
    assert counts["SubmitJob"] >= 23
    jobs = aws.call(lambda b: list(b.jobs.values()))
    assert all(j.tags["mesobatch-run"] == jobs[0].tags["mesobatch-run"] for j in jobs)
    assert all(j.status in ("SUCCEEDED", "FAILED") for j in jobs)  # nothing left running


class TestAwsBatchWithToilsTests(_PluginGenericTests):
    """--batchSystem mesobatch_aws_batch on a double; the run may use 2 vCPUs."""

    __test__ = True
    toil_name = "mesobatch_aws_batch"
    double: AwsBatchDouble
    saved: dict[str, str | None]

    @classmethod
    def setUpClass(cls) -> None:
        cls.saved = {k: os.environ.get(k) for k in CREDENTIALS}
        os.environ.update(CREDENTIALS)
        cls.double = start_double()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.double.stop()
        for key, value in cls.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _createConfig(self) -> Any:
        config = super()._createConfig()
        config.aws_batch_queue = "toil"  # Toil's own option's dest
        config.aws_batch_region = self.double.region
        config.mesobatch_aws_batch_image = IMAGE
        config.mesobatch_aws_batch_endpoint = self.double.endpoint_url
        config.mesobatch_aws_batch_max_vcpus = 2
        config.mesobatch_poll_interval = 0.1
        return config
