"""The status page, /api/status and /metrics of a real local batch system over HTTP, and
`mesobatch status` / `mesobatch run` on the command line."""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import mesobatch
from mesobatch.scheduler.cli import main
from mesobatch.scheduler.status.terminal import URL_ENV, api_url
from tests.waiting import wait_for

JOB = mesobatch.JobDescription(cores=1, memory=2**20, disk=2**20)


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


@pytest.fixture
def bs(tmp_path: Path) -> Iterator[mesobatch.BatchSystem]:
    with mesobatch.batch_system("local", maxCores=2, maxMemory="1G", maxDisk="1G",
                                logDir=str(tmp_path / "logs"), statusPort=0) as b:
        yield b


def status(bs: mesobatch.BatchSystem) -> dict[str, Any]:
    assert bs.status_url is not None
    code, kind, body = get(bs.status_url + "api/status")
    assert (code, kind) == (200, "application/json")
    doc: dict[str, Any] = json.loads(body)
    return doc


def test_page_json_and_metrics_show_a_running_job_and_a_failure(
        bs: mesobatch.BatchSystem) -> None:
    assert bs.status_url is not None and bs.status_url.startswith("http://127.0.0.1:")
    failing = bs.issueBatchJob("echo first; echo 'the last words' >&2; exit 7",
                               mesobatch.JobDescription(cores=1, memory=2**20, disk=2**20,
                                                        name="doomed"))
    assert wait_for(lambda: bs.getUpdatedBatchJob(1)).jobID == failing
    sleeper = bs.issueBatchJob("sleep 30", mesobatch.JobDescription(
        cores=1, memory=2**20, disk=2**20, name="sleeper"))
    huge = bs.issueBatchJob("true", mesobatch.JobDescription(cores=2, memory=2**20,
                                                            disk=2**20))
    # (a local job is said RUNNING once it still runs a moment after its launch)
    doc = wait_for(lambda: (d := status(bs))["running"] and d["queue"]
                   and d["running"][0]["state"] == "running" and d)
    assert [(j["job_id"], j["name"], j["state"]) for j in doc["running"]] == [
        (sleeper, "sleeper", "running")]
    assert doc["running"][0]["node"] == socket.gethostname()
    (queued,) = doc["queue"]
    assert queued["jobs"] == 1 and queued["shape"].startswith("2 cores")
    assert "free up" in queued["why"]
    assert doc["totals"] == {"issued": 3, "queued": 1, "running": 1, "succeeded": 0,
                             "failed": 1, "killed": 0}
    (failure,) = doc["failures"]
    assert (failure["job_id"], failure["exit_code"], failure["result"]) == (failing, 7,
                                                                          "failed")
    assert failure["log_tail"] == ["first", "the last words"]
    assert os.path.isfile(failure["log_path"])
    assert doc["nodes"][0]["jobs"] == 1 and doc["nodes"][0]["cores_total"] == 2

    code, kind, page = get(bs.status_url)
    assert (code, kind) == (200, "text/html; charset=utf-8")
    assert "sleeper" in page and "the last words" in page and 'http-equiv="refresh"' in page

    code, _, text = get(bs.status_url + "metrics")
    assert code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("mesobatch_jobs", (("state", "running"),))] == 1
    assert samples[("mesobatch_jobs", (("state", "queued"),))] == 1
    assert samples[("mesobatch_jobs_finished_total", (("result", "failed"),))] == 1
    assert samples[("mesobatch_jobs_issued_total", ())] == 3
    assert samples[("mesobatch_issue_to_start_seconds_count", ())] == 2
    assert samples[("mesobatch_run_time_seconds_count", ())] == 1
    assert samples[("mesobatch_offers_received_total", ())] >= 1
    bs.killBatchJobs([sleeper, huge])
    assert status_after_kill(bs)["killed"] == 2


def test_finished_and_failed_jobs_show_what_they_used_of_what_they_asked(
        bs: mesobatch.BatchSystem) -> None:
    # Held at once, above this process's own peak (the spawner's): a job's wait4 peak is
    # trusted only above it, and a long-lived test worker's peak can pass 64 MiB.
    held = max(64 * 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 + 32 * 2**20)
    use = f"{sys.executable} -c 'b = bytearray({held}); b[::4096] = bytes(len(b[::4096]))"
    # of 1 MiB asked: far over, flagged by the summary's rule
    hog = bs.issueBatchJob(use + "'", mesobatch.JobDescription(
        cores=1, memory=2**20, disk=2**20, name="hog"))
    # of 1 GiB asked: within, but failed
    failing = bs.issueBatchJob(use + "; raise SystemExit(3)'", mesobatch.JobDescription(
        cores=1, memory=2**30, disk=2**20, name="quick"))
    doc = wait_for(lambda: (d := status(bs))["finished"] and d["failures"] and d)
    (done,) = doc["finished"]
    assert (done["job_id"], done["name"], done["cores"], done["memory"]) == (hog, "hog", 1,
                                                                           2**20)
    assert done["peak_memory"] >= held and done["cpu_time"] > 0
    assert done["node"] == socket.gethostname()
    assert [note.split()[0] for note in done["over"]] == ["mem"]
    (failure,) = doc["failures"]
    assert failure["job_id"] == failing and failure["memory"] == 2**30
    assert held <= failure["peak_memory"] < 2**30
    assert failure["over"] == []
    assert bs.status_url is not None
    _, _, page = get(bs.status_url)
    assert '<span class="over">over: mem ' in page


def status_after_kill(bs: mesobatch.BatchSystem) -> dict[str, Any]:
    totals: dict[str, Any] = wait_for(lambda: (t := status(bs)["totals"])["killed"] == 2
                                      and t) or status(bs)["totals"]
    return totals


def test_unknown_paths_are_404_and_the_server_stops_with_the_batch_system(
        tmp_path: Path) -> None:
    with mesobatch.batch_system("local", maxCores=1, statusPort=0) as b:
        url = b.status_url
        assert url is not None
        code, _, body = get(url + "nosuch")
        assert code == 404 and "/api/status" in body
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


def test_off_by_default_in_the_api_and_bad_ports_are_named() -> None:
    with mesobatch.batch_system("local", maxCores=1) as b:
        assert b.status_url is None
    with mesobatch.batch_system("local", maxCores=1, statusPort="off") as b:
        assert b.status_url is None
    with pytest.raises(mesobatch.OptionError, match=r"--statusPort.*1 to 65535.*off"):
        mesobatch.batch_system("local", maxCores=1, statusPort=70000)


def test_a_taken_port_is_a_clear_error_and_leaves_nothing_behind() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve the status page on "
                                          f"127.0.0.1:{port}"):
            mesobatch.batch_system("local", maxCores=1, statusPort=port)


def test_status_command_shows_the_batch_like_squeue(
        bs: mesobatch.BatchSystem, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    job = bs.issueBatchJob("sleep 30", mesobatch.JobDescription(
        cores=1, memory=2**20, disk=2**20, name="longrun"))
    wait_for(lambda: [j["state"] for j in status(bs)["running"]] == ["running"])
    assert bs.status_url is not None
    assert main(["status", bs.status_url]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if "JOBID" in line)
    assert header.split() == ["JOBID", "NAME", "ST", "TIME", "CPUS", "MEM", "NODE"]
    row = next(line for line in lines if "longrun" in line).split()
    assert row[:3] == [str(job), "longrun", "R"] and row[-1] == socket.gethostname()
    monkeypatch.setenv(URL_ENV, bs.status_url)
    assert main(["status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [j["job_id"] for j in doc["running"]] == [job]


def test_status_command_errors_name_the_url(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["status", f"127.0.0.1:{port}"]) == 1
    assert f"cannot read http://127.0.0.1:{port}/api/status" in capsys.readouterr().err
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert main(["status"]) == 1
    assert "no running `mesobatch run` found" in capsys.readouterr().err


def test_api_url_takes_the_page_address_in_any_form() -> None:
    assert api_url("http://h:1/") == "http://h:1/api/status"
    assert api_url("h:1") == "http://h:1/api/status"
    assert api_url("http://h:1/api/status") == "http://h:1/api/status"


def test_run_serves_the_page_on_a_free_port_and_status_finds_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    # the job itself asks `mesobatch status` (no URL) about the run it belongs to
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nfrom mesobatch.scheduler.cli import main\n"
                     "sys.exit(main(['status', '--json']))\n")
    jobs = tmp_path / "jobs.txt"
    out = tmp_path / "seen.json"
    jobs.write_text(f"{sys.executable} {probe} > {out}\n")
    env_path = os.pathsep.join([str(Path(mesobatch.__file__).parents[1]),
                                os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", env_path)
    code = main(["run", str(jobs), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "status page: http://127.0.0.1:" in err
    doc = json.loads(out.read_text())
    assert doc["totals"]["running"] == 1 and doc["running"][0]["name"] == os.path.basename(
        sys.executable)
    assert not list((tmp_path / f"mesobatch-{os.getuid()}").glob("*.url"))  # cleaned up
