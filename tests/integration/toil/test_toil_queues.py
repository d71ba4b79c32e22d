"""Toil workflows through the LSF, PBS Pro, Torque and HTCondor backends, each on its
fake (tests/doubles): ``--batchSystem mesobatch_lsf`` and so on, from Toil's command
line, as a user runs theirs; every job goes through the fake's submit command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.doubles.hpcfake.backends import FAKES
from tests.doubles.hpcfake.store import Store

from . import queue_workflow as wf
from .conftest import REPO, explain, run

#: what each system puts in a job's environment (the job ran under it, not elsewhere)
MARKER = {"lsf": "LSB_JOBID", "pbs": "PBS_JOBID", "torque": "PBS_JOBID",
          "htcondor": "_CONDOR_SLOT"}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["lsf", "pbs", "torque", "htcondor"])
def test_toil_workflow_on_a_batch_queue(backend: str, tmp_path: Path) -> None:
    fake = FAKES[backend]
    state = tmp_path / "cluster"
    cluster = fake.cluster(state)
    env = {**os.environ, **fake.environment(state, cores=4)}
    (tmp_path / "work").mkdir()
    argv = [sys.executable, "-m", "tests.integration.toil.queue_workflow",
            str(tmp_path / "jobstore"), "--summary", str(tmp_path / "summary.json"),
            "--batchSystem", f"mesobatch_{backend}", "--retryCount", "1",
            "--workDir", str(tmp_path / "work"), "--clean", "always", "--disableProgress",
            "--logInfo", "--pollInterval", "0.5", "--maxPollInterval", "2",
            "--logDir", str(tmp_path / "logs")]
    try:
        result = run(argv, cwd=REPO, env=env, timeout=600)
        jobs = Store(state).read()["jobs"]
    finally:
        cluster.stop()
    assert result.returncode == 0, explain(result)
    assert f"total {sum(i * i for i in range(wf.FANOUT))}" in result.stdout, explain(result)
    results = json.loads((tmp_path / "summary.json").read_text())["results"]
    assert sorted(r["i"] for r in results) == list(range(wf.FANOUT))
    assert all(MARKER[backend] in r["markers"] for r in results), results
    attempts = (tmp_path / f"job{wf.FLAKY}.attempts").read_text().splitlines()
    assert attempts == ["attempt"] * 2  # failed once, Toil saw it, the retry succeeded
    # root, 4 children, the retry and the follow-on: each one submission to the fake
    assert len(jobs) >= wf.FANOUT + 3, sorted(jobs)
    assert not (tmp_path / "jobstore").exists()  # --clean always: the run ended cleanly
