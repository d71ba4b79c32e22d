"""The HTCondor fake speaks condor_submit's language and prints condor_q's JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.doubles.hpcfake.testing import FakeCluster
from tests.doubles.htcondor.classad import compile_expr, matches
from tests.waiting import wait_for


def script(tmp_path: Path, body: str, name: str = "job.sh") -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def submit(condor: FakeCluster, description: str) -> str:
    res = condor.run(["condor_submit"], input=description)
    assert res.returncode == 0, res.stderr
    return res.stdout


def ads(condor: FakeCluster, command: str, *argv: str) -> list[dict[str, Any]]:
    out = condor.run([command, "-json", *argv]).stdout
    return json.loads(out) if out.strip() else []


def test_queue_n_and_exit_codes(condor: FakeCluster, tmp_path: Path) -> None:
    exe = script(tmp_path, 'echo "proc $1"; exit $1')
    out = submit(condor, f"executable = {exe}\narguments = $(Process)\n"
                         f"output = {tmp_path}/o.$(Cluster).$(Process)\n"
                         '+MesobatchRun = "run-a"\nrequest_memory = 64\nqueue 3\n')
    assert out == "Submitting job(s)...\n3 job(s) submitted to cluster 1.\n"
    wait_for(lambda: not ads(condor, "condor_q"))
    hist = ads(condor, "condor_history", "-constraint", 'MesobatchRun == "run-a"',
               "-attributes", "ClusterId,ProcId,JobStatus,ExitCode,ExitBySignal")
    assert sorted((a["ProcId"], a["JobStatus"], a["ExitCode"]) for a in hist) == [
        (0, 4, 0), (1, 4, 1), (2, 4, 2)]
    assert (tmp_path / "o.1.2").read_text() == "proc 2\n"
    assert condor.run(["condor_submit", "-terse"],
                      input=f"executable = {exe}\nqueue 2\n").stdout == "2.0 - 2.1\n"


def test_errors(condor: FakeCluster, tmp_path: Path) -> None:
    res = condor.run(["condor_submit"], input="executable = /nonexistent\nqueue\n")
    assert res.returncode == 1 and "ERROR: Executable file /nonexistent does not exist" in \
        res.stderr
    res = condor.run(["condor_rm", "7.0"])
    assert (res.returncode, res.stderr) == (1, "Job 7.0 not found\n")
    res = condor.run(["condor_rm", "7"])
    assert (res.returncode, res.stderr) == (1, "Couldn't find/remove all jobs in cluster 7\n")
    assert condor.run(["condor_q", "-json", "7.0"]).stdout == ""


def test_condor_rm_hold_release(condor: FakeCluster, tmp_path: Path) -> None:
    exe = script(tmp_path, "sleep 30")
    submit(condor, f"executable = {exe}\nqueue 2\n")
    wait_for(lambda: [a["JobStatus"] for a in ads(condor, "condor_q")] == [2, 2])
    assert condor.run(["condor_rm", "1.0"]).stdout == "Job 1.0 marked for removal\n"
    assert condor.run(["condor_hold", "1.1"]).stdout == "Job 1.1 held\n"
    removed = wait_for(lambda: ads(condor, "condor_history", "1.0"))
    assert removed[0]["JobStatus"] == 3
    held = wait_for(lambda: [a for a in ads(condor, "condor_q", "1.1") if a["JobStatus"] == 5])
    assert held[0]["HoldReasonCode"] == 1
    assert held[0]["HoldReason"].startswith("via condor_hold (by user ")
    assert condor.run(["condor_release", "1.1"]).stdout == "Job 1.1 released\n"
    wait_for(lambda: [a["NumJobStarts"] for a in ads(condor, "condor_q", "1.1")] == [2])


def test_memory_and_duration_holds(condor: FakeCluster, tmp_path: Path) -> None:
    hog = script(tmp_path, "exec python3 -c 'b = bytearray(150 * 2**20); import time; "
                 "time.sleep(30)'", "hog.sh")
    slow = script(tmp_path, "sleep 30", "slow.sh")
    submit(condor, f"executable = {hog}\nrequest_memory = 30\nqueue\n")
    submit(condor, f"executable = {slow}\nallowed_job_duration = 1\nqueue\n")
    mem = wait_for(lambda: [a for a in ads(condor, "condor_q", "1.0") if a["JobStatus"] == 5])
    assert mem[0]["HoldReasonCode"] == 34
    assert "Job has gone over cgroup memory limit of 30 megabytes" in mem[0]["HoldReason"]
    dur = wait_for(lambda: [a for a in ads(condor, "condor_q", "2.0") if a["JobStatus"] == 5])
    assert dur[0]["HoldReasonCode"] == 46


def test_submitted_on_hold_vanish_and_status(condor: FakeCluster, tmp_path: Path) -> None:
    exe = script(tmp_path, "true")
    submit(condor, f"executable = {exe}\nhold = true\nqueue\n")
    (ad,) = ads(condor, "condor_q")
    assert (ad["JobStatus"], ad["HoldReasonCode"]) == (5, 15)
    assert condor.vanish("1.0") == ["1.0"]
    assert ads(condor, "condor_q") == [] and ads(condor, "condor_history") == []
    (slot,) = ads(condor, "condor_status")
    assert slot["SlotType"] == "Partitionable" and slot["TotalCpus"] >= 1


def test_classad_subset() -> None:
    ad = {"MesobatchRun": "run-1", "ClusterId": 4, "ProcId": 2}
    assert matches(compile_expr('mesobatchrun == "RUN-1"'), ad)
    assert not matches(compile_expr('MesobatchRun =?= "RUN-1"'), ad)
    assert matches(compile_expr('regexp("run\\\\-1", MesobatchRun)'), ad)
    assert matches(compile_expr("ClusterId == 4 && (ProcId == 1 || ProcId == 2)"), ad)
    assert not matches(compile_expr("Missing == 3"), ad)
    assert not matches(compile_expr("!(Missing == 3)"), ad)  # undefined is not true
