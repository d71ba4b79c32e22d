"""The PBS fake prints what the PBS Professional and Torque 6 guides show."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.doubles.hpcfake.testing import FakeCluster
from tests.waiting import wait_for


def qsub(cluster: FakeCluster, script: str, *argv: str) -> str:
    res = cluster.run(["qsub", *argv], input=script)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def pro_jobs(cluster: FakeCluster, *ids: str) -> dict[str, Any]:
    res = cluster.run(["qstat", "-f", "-F", "json", "-x", "-t", *ids])
    doc = json.loads(res.stdout)
    assert {"timestamp", "pbs_version", "pbs_server"} <= set(doc)
    jobs: dict[str, Any] = dict(doc.get("Jobs", {}))
    return jobs


def pro_final(cluster: FakeCluster, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        attrs: dict[str, Any] | None = pro_jobs(cluster, job_id).get(job_id)
        return attrs if attrs is not None and attrs["job_state"] in ("F", "X") else None
    return wait_for(probe)


def torque_jobs(cluster: FakeCluster, *ids: str) -> dict[str, dict[str, str]]:
    res = cluster.run(["qstat", "-f", "-x", "-t", *ids])
    if not res.stdout.strip():
        return {}
    root = ET.fromstring(res.stdout)
    return {j.findtext("Job_Id") or "": {c.tag: c.text or "" for c in j} for j in root}


def completed(cluster: FakeCluster, job_id: str) -> dict[str, str]:
    def probe() -> dict[str, str] | None:
        attrs = torque_jobs(cluster, job_id).get(job_id)
        return attrs if attrs is not None and attrs["job_state"] == "C" else None
    return wait_for(probe)


def test_fake_qsub_shadows_grid_engine(pbspro: FakeCluster) -> None:
    assert shutil.which("qsub", path=pbspro.env["PATH"]) == str(Path(pbspro.env["PATH"]
                                                                      .split(":")[0]) / "qsub")


def test_pbspro_submit_status_history(pbspro: FakeCluster) -> None:
    job = qsub(pbspro, "echo hi\nexit 3\n", "-N", "three", "-l", "select=1:ncpus=2:mem=64mb")
    assert job == "1.pbsserver"
    attrs = pro_final(pbspro, job)
    assert attrs["Exit_status"] == 3
    assert attrs["Resource_List"]["select"] == "1:ncpus=2:mem=64mb"
    assert attrs["Job_Name"] == "three"
    res = pbspro.run(["qstat", "-f", "-F", "json", job])
    assert res.returncode == 35
    assert res.stderr == ("qstat: 1.pbsserver Job has finished, use -x or -H to obtain "
                          "historical job information\n")
    res = pbspro.run(["qstat", "-f", "-F", "json", "-x", "42"])
    assert (res.returncode, res.stderr) == (153, "qstat: Unknown Job Id 42.pbsserver\n")
    res = pbspro.run(["qdel", "42.pbsserver"])
    assert (res.returncode, res.stderr) == (153, "qdel: Unknown Job Id 42.pbsserver\n")
    res = pbspro.run(["qsub", "-q", "nope"], input="true\n")
    assert (res.returncode, res.stderr) == (170, "qsub: Unknown queue\n")


def test_pbspro_limits_and_qdel(pbspro: FakeCluster) -> None:
    slow = qsub(pbspro, "sleep 30\n", "-l", "walltime=00:00:01")
    hog = qsub(pbspro, "python3 -c 'b = bytearray(150 * 2**20); import time; time.sleep(30)'\n",
               "-l", "select=1:ncpus=1:mem=30mb")
    victim = qsub(pbspro, "sleep 30\n")
    wait_for(lambda: pro_jobs(pbspro, victim)[victim]["job_state"] == "R")
    assert pbspro.run(["qdel", victim]).returncode == 0
    assert pro_final(pbspro, slow)["Exit_status"] == -29
    assert pro_final(pbspro, hog)["Exit_status"] == -27
    assert pro_final(pbspro, victim)["Exit_status"] == 271
    assert "=>> PBS: job killed: walltime 1 exceeded limit 1" in (
        pbspro.state_dir / "STDIN.e1").read_text()
    assert "=>> PBS: job killed: mem" in (pbspro.state_dir / "STDIN.e2").read_text()


def test_pbspro_arrays_hold_and_vanish(pbspro: FakeCluster, tmp_path: Path) -> None:
    array = qsub(pbspro, "echo $PBS_ARRAY_INDEX\n", "-J", "1-3", "-o", str(tmp_path / "a"),
                 "-j", "oe")
    assert array == "1[].pbsserver"
    wait_for(lambda: pro_jobs(pbspro, array)[array]["job_state"] == "F")
    jobs = pro_jobs(pbspro, array)
    assert [jobs[f"1[{i}].pbsserver"]["job_state"] for i in (1, 2, 3)] == ["X", "X", "X"]
    assert (tmp_path / "a.2").read_text() == "2\n"
    held = qsub(pbspro, "true\n", "-h")
    assert pro_jobs(pbspro, held)[held]["job_state"] == "H"
    assert pbspro.run(["qrls", held]).returncode == 0
    assert pro_final(pbspro, held)["Exit_status"] == 0
    assert pbspro.vanish("2") == ["2"]
    res = pbspro.run(["qstat", "-x", held])
    assert res.returncode == 153


def test_pbspro_history_disabled_and_nodes(pbspro: FakeCluster) -> None:
    pbspro.env["FAKE_PBS_JOB_HISTORY_ENABLE"] = "0"
    job = qsub(pbspro, "true\n")
    wait_for(lambda: pbspro.run(["qstat", "-x", job]).returncode == 153)
    doc = json.loads(pbspro.run(["pbsnodes", "-av", "-F", "json"]).stdout)
    (info,) = doc["nodes"].values()
    assert info["state"] == "free" and info["resources_available"]["ncpus"] >= 1


def test_torque_xml_completed_state_and_exit_codes(torque: FakeCluster) -> None:
    # state C stays until the test has seen it (a short keep_completed can pass between
    # two polls on a loaded machine); then keep_completed 0 must forget the job
    torque.env["FAKE_PBS_KEEP_COMPLETED"] = "3600"
    job = qsub(torque, "exit 4\n", "-l", "nodes=1:ppn=1,mem=64mb")
    slow = qsub(torque, "sleep 30\n", "-l", "walltime=1")
    done = completed(torque, job)
    assert done["exit_status"] == "4"
    timed = completed(torque, slow)
    assert timed["exit_status"] == "-11"
    res = torque.run(["qstat", "-f", "-x", "99"])
    assert (res.returncode, res.stderr) == (153, "qstat: Unknown Job Id Error 99.pbsserver\n")
    torque.env["FAKE_PBS_KEEP_COMPLETED"] = "0"
    wait_for(lambda: torque.run(["qstat", "-f", "-x", job]).returncode == 153)


def test_torque_arrays_use_pbs_arrayid(torque: FakeCluster, tmp_path: Path) -> None:
    array = qsub(torque, "echo $PBS_ARRAYID\n", "-t", "1-2", "-o", str(tmp_path / "t"),
                 "-j", "oe")
    assert array == "1[].pbsserver"
    wait_for(lambda: all(j["job_state"] == "C" for i, j in torque_jobs(torque, array).items()
                         if "[]" not in i) and len(torque_jobs(torque, array)) == 3)
    assert (tmp_path / "t-2").read_text() == "2\n"
    res = torque.run(["qsub", "-J", "1-2"], input="true\n")
    assert res.returncode == 2
