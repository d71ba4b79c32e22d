"""--logDir on Mesos (issue 10 defect 4): each job's output comes back from its agent's
sandbox to the log directory before the job is reported (small logs inside the result,
larger ones through the resource server), capped with the tail kept; getJobLog reads it
by job id; the command line's summary shows a failed job's last lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mesobatch
from mesobatch.executor.protocol import log_file_name
from tests.doubles.mesos import MesosDouble
from tests.scheduler.mesos.conftest import Cluster, job


def _results(bs: mesobatch.BatchSystem, count: int) -> dict[int, mesobatch.UpdatedBatchJobInfo]:
    out: dict[int, mesobatch.UpdatedBatchJobInfo] = {}
    while len(out) < count and (info := bs.getUpdatedBatchJob(30)) is not None:
        out[info.jobID] = info
    return out


def test_job_logs_reach_the_log_directory_before_the_job_is_reported(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.start()
    logs = tmp_path / "logs"
    bs = cluster.batch_system(logDir=str(logs), mesosMaxLogSize="64K")
    small = bs.issueBatchJob("echo out; echo err >&2; exit 3", job(name="small one"))
    silent = bs.issueBatchJob("true", job(name="silent"))
    # 200 KB of numbered lines: over the 64 KiB cap, so only the tail comes back
    big = bs.issueBatchJob("seq 1 40000", job(name="big"))
    results = _results(bs, 3)
    assert sorted(results) == sorted([small, silent, big])
    # each log is there when its job is reported
    assert (logs / log_file_name(small, "small one")).read_text() == "out\nerr\n"
    assert (logs / log_file_name(silent, "silent")).read_bytes() == b""
    text = (logs / log_file_name(big, "big")).read_text()
    assert text.startswith("[mesobatch: the first ")
    assert text.endswith("\n39999\n40000\n")
    assert len(text.encode()) <= 64 * 1024 + 200
    assert bs.getJobLog(small) == "out\nerr\n"
    assert bs.getJobLog(big, lastLines=2) == "39999\n40000"
    assert bs.getJobLog(silent) == ""
    with pytest.raises(ValueError, match="invalid job id"):
        bs.getJobLog("1")  # type: ignore[arg-type]


def test_logs_can_stay_in_the_sandboxes(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start()
    logs = tmp_path / "logs"
    bs = cluster.batch_system(logDir=str(logs), mesosMaxLogSize=0)
    job_id = bs.issueBatchJob("echo hello", job(name="kept"))
    assert _results(bs, 1)
    assert os.listdir(logs) == []
    assert bs.getJobLog(job_id) is None


def test_the_run_summary_shows_a_failed_jobs_last_lines(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j) for j in [
        {"command": "echo fine", "name": "ok", "cores": 0.5, "memory": "64M", "disk": "64M"},
        {"command": "seq 1 20; echo 'it broke' >&2; exit 4", "name": "broken",
         "cores": 0.5, "memory": "64M", "disk": "64M"},
    ]) + "\n")
    logs = tmp_path / "logs"
    with MesosDouble(agents=1) as double:
        done = subprocess.run(
            [sys.executable, "-m", "mesobatch", "run", str(jobs), "--backend", "mesos",
             "--mesosMaster", double.master_address, "--logDir", str(logs),
             "--no-progress"],
            capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "it broke" in done.stdout and "20" in done.stdout
    assert sorted(os.listdir(logs)) == ["1-ok.log", "2-broken.log"]
    assert (logs / "1-ok.log").read_text() == "fine\n"
