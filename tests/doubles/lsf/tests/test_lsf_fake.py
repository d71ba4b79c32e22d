"""The LSF fake prints what IBM's LSF 10.1 pages show and really runs and limits jobs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psutil

from tests.doubles.hpcfake.store import Store
from tests.doubles.hpcfake.testing import FakeCluster
from tests.waiting import wait_for

FIELDS = "jobid jobindex stat exit_code exit_reason job_name pend_reason max_mem"


def submit(lsf: FakeCluster, *argv: str) -> str:
    res = lsf.run(["bsub", *argv])
    assert res.returncode == 0, res.stderr
    m = re.fullmatch(r"Job <(\d+)> is submitted to (default )?queue <\w+>\.\n", res.stdout)
    assert m, res.stdout
    return m.group(1)


def records(lsf: FakeCluster, *ids: str) -> list[dict[str, Any]]:
    res = lsf.run(["bjobs", "-json", "-o", FIELDS, *ids])
    doc = json.loads(res.stdout)
    assert doc["COMMAND"] == "bjobs" and doc["JOBS"] == len(doc["RECORDS"])
    return list(doc["RECORDS"])


def commands_running(lsf: FakeCluster, job_id: str) -> set[str]:
    """The names of the job's main process and its children."""
    pid = Store(lsf.state_dir).read()["jobs"][job_id].get("pid")
    try:
        main = psutil.Process(int(pid))
        return {p.name() for p in (main, *main.children())}
    except (TypeError, psutil.Error):
        return set()


def finished(lsf: FakeCluster, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        recs = records(lsf, job_id)
        return recs[0] if recs[0].get("STAT") in ("DONE", "EXIT") else None
    return wait_for(probe)


def test_submit_messages_and_exit_codes(lsf: FakeCluster, tmp_path: Path) -> None:
    res = lsf.run(["bsub", "-o", str(tmp_path / "out"), "echo hello; exit 3"])
    assert res.stdout == "Job <1> is submitted to default queue <normal>.\n"
    res = lsf.run(["bsub", "-q", "short", "true"])
    assert res.stdout == "Job <2> is submitted to queue <short>.\n"
    res = lsf.run(["bsub", "-q", "nosuch", "true"])
    assert res.returncode == 255
    assert res.stderr == "nosuch: No such queue. Job not submitted.\n"
    first, second = finished(lsf, "1"), finished(lsf, "2")
    assert (first["STAT"], first["EXIT_CODE"], first["EXIT_REASON"]) == ("EXIT", "3", "")
    assert (second["STAT"], second["EXIT_CODE"]) == ("DONE", "")
    assert (tmp_path / "out").read_text() == "hello\n"


def test_unknown_jobs(lsf: FakeCluster) -> None:
    job = submit(lsf, "true")
    finished(lsf, job)
    res = lsf.run(["bjobs", "-json", "-o", "jobid stat", job, "77"])
    assert res.returncode == 0  # one valid id: LSB_BJOBS_CONSISTENT_EXIT_CODE=N
    assert json.loads(res.stdout)["RECORDS"][1] == {"JOBID": "77", "ERROR": "Job <77> is not found"}
    res = lsf.run(["bjobs", "77"])
    assert (res.returncode, res.stderr) == (255, "Job <77> is not found\n")
    res = lsf.run(["bkill", "77"])
    assert (res.returncode, res.stderr) == (255, "Job <77>: No matching job found\n")
    res = lsf.run(["bkill", job])
    assert (res.returncode, res.stderr) == (255, f"Job <{job}>: Job has already finished\n")
    res = lsf.run(["bjobs"])
    assert res.stderr == "No unfinished job found\n"
    (line,) = lsf.run(["bjobs", "-noheader", "-a"]).stdout.splitlines()
    columns = line.split()  # JOBID USER STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME
    assert (columns[0], columns[2], columns[3], columns[6]) == (job, "DONE", "normal", "true")


def test_array_elements_get_their_index(lsf: FakeCluster, tmp_path: Path) -> None:
    job = submit(lsf, "-J", "arr[1-3]", "-o", str(tmp_path / "o.%J.%I"), "echo $LSB_JOBINDEX")
    wait_for(lambda: all(r["STAT"] == "DONE" for r in records(lsf, job)))
    recs = records(lsf, job)
    assert [(r["JOBINDEX"], r["JOB_NAME"]) for r in recs] == [
        ("1", "arr[1]"), ("2", "arr[2]"), ("3", "arr[3]")]
    assert [(tmp_path / f"o.{job}.{i}").read_text() for i in (1, 2, 3)] == ["1\n", "2\n", "3\n"]
    assert records(lsf, f"{job}[2]")[0]["JOBINDEX"] == "2"


def test_bkill_terminates_with_term_owner(lsf: FakeCluster) -> None:
    # SIGTERM follows SIGINT only if the job still runs an interval later: 0.3 s can pass
    # before a starved shell has died of SIGINT; the job ends at SIGINT all the same
    lsf.env["FAKE_LSF_TERMINATE_INTERVAL"] = "60"
    job = submit(lsf, "exec sleep 30")  # the job is sleep itself: it dies of the SIGINT
    # RUN comes as soon as `sh -c` is exec'd; a SIGINT that reaches the shell before it has
    # started the command is lost on the command (LSF, as the fake, then goes on to
    # SIGTERM): kill once the command runs
    wait_for(lambda: "sleep" in commands_running(lsf, job))
    res = lsf.run(["bkill", job])
    assert res.stdout == f"Job <{job}> is being terminated\n"
    rec = finished(lsf, job)
    assert rec["EXIT_REASON"] == "TERM_OWNER: job killed by owner"
    assert rec["EXIT_CODE"] == "130"  # SIGINT first: 128 + 2


def test_memory_and_run_limits(lsf: FakeCluster) -> None:
    hog = submit(lsf, "-M", "30", "python3 -c 'b = bytearray(150 * 2**20); import time; "
                 "time.sleep(30)'")
    slow = submit(lsf, "-W", "1", "sleep 30")
    mem = finished(lsf, hog)
    assert mem["EXIT_REASON"] == "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"
    assert float(mem["MAX_MEM"].split()[0]) > 30
    run = finished(lsf, slow)
    assert run["EXIT_REASON"] == "TERM_RUNLIMIT: job killed after reaching LSF run time limit"
    assert run["EXIT_CODE"] == "140"  # SIGUSR2


def test_unit_for_limits_from_lsf_conf(lsf: FakeCluster, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "lsf.conf").write_text("LSF_UNIT_FOR_LIMITS=GB\n")
    del lsf.env["LSF_UNIT_FOR_LIMITS"]
    lsf.env["LSF_ENVDIR"] = str(conf)
    job = submit(lsf, "-H", "-M", "2", "true")
    res = lsf.run(["bjobs", "-json", "-o", "memlimit stat pend_reason", job])
    rec = json.loads(res.stdout)["RECORDS"][0]
    assert rec == {"MEMLIMIT": "2.0 Gbytes", "STAT": "PSUSP",
                   "PEND_REASON": "The job was suspended by the user while pending"}
    assert lsf.run(["bresume", job]).stdout == f"Job <{job}> is being resumed\n"
    assert finished(lsf, job)["STAT"] == "DONE"


def test_script_on_stdin_with_directives(lsf: FakeCluster, tmp_path: Path) -> None:
    script = f"#!/bin/sh\n#BSUB -J fromstdin\n#BSUB -o {tmp_path}/stdin.out\necho via stdin\n"
    res = lsf.run(["bsub"], input=script)
    job = re.search(r"<(\d+)>", res.stdout).group(1)  # type: ignore[union-attr]
    assert finished(lsf, job)["JOB_NAME"] == "fromstdin"
    assert (tmp_path / "stdin.out").read_text() == "via stdin\n"


def test_clean_period_purges_and_vanish_hook(lsf: FakeCluster) -> None:
    lsf.env["FAKE_LSF_CLEAN_PERIOD"] = "3"  # long enough to see it finished under load
    job = submit(lsf, "true")
    finished(lsf, job)
    wait_for(lambda: lsf.run(["bjobs", job]).returncode == 255)
    running = submit(lsf, "sleep 30")
    wait_for(lambda: records(lsf, running)[0]["STAT"] == "RUN")
    assert lsf.vanish(running) == [running]
    assert records(lsf, running) == [{"JOBID": running, "ERROR": f"Job <{running}> is not found"}]


def test_hosts_and_lsid(lsf: FakeCluster) -> None:
    lines = lsf.run(["bhosts"]).stdout.splitlines()
    assert lines[0].split() == ["HOST_NAME", "STATUS", "JL/U", "MAX", "NJOBS", "RUN", "SSUSP",
                                "USUSP", "RSV"]
    assert lines[1].split()[1] == "ok"
    doc = json.loads(lsf.run(["lshosts", "-json", "-o", "HOST_NAME ncpus maxmem"]).stdout)
    assert set(doc["RECORDS"][0]) == {"HOST_NAME", "NCPUS", "MAXMEM"}
    out = lsf.run(["lsid"]).stdout
    assert out.startswith("IBM Spectrum LSF Standard 10.1")
    assert "My cluster name is cluster1" in out
