"""The `mesobatch` command line, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesobatch.scheduler import cli

ROOT = Path(__file__).resolve().parents[2]


def mesobatch(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MESOBATCH_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "mesobatch", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_runs_the_bundled_example(tmp_path: Path) -> None:
    r = mesobatch("run", str(ROOT / "examples" / "jobs.jsonl"), "--maxCores", "2",
                  "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "succeeded  10" in r.stdout and "failed     0" in r.stdout
    (log_dir,) = (tmp_path / "mesobatch-logs").iterdir()
    hello = next(log_dir.glob("*-hello.log")).read_text()
    assert hello.startswith("hello from ")
    assert next(log_dir.glob("*-count-cores.log")).read_text() == "OMP_NUM_THREADS=2\n"
    assert next(log_dir.glob("*-env.log")).read_text() == "GREETING=hi\n"


def test_failed_jobs_give_a_non_zero_status_and_are_listed(tmp_path: Path) -> None:
    r = mesobatch("run", str(ROOT / "examples" / "failing.jsonl"), "--no-progress",
                  "--logDir", str(tmp_path / "logs"), cwd=tmp_path)
    assert r.returncode == 1
    assert "maxjobduration" in r.stdout and "failed" in r.stdout
    assert (tmp_path / "logs").is_dir()
    err = next((tmp_path / "logs").glob("*-fails.log")).read_text()
    assert err == "this job fails on purpose\n"


def test_plain_command_lines(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# comment\n\necho a > a.txt\necho b > b.txt\n")
    r = mesobatch("run", str(jobs), "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt").read_text() == "a\n" and (tmp_path / "b.txt").read_text() == "b\n"


def test_environment_and_config_file_supply_options(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"command": "true", "cores": 3}\n')
    # 3 cores do not fit the configured 2; the environment raises it to 4
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("maxCores = 2\n")
    r = mesobatch("run", str(jobs), "--config", str(cfg), "--no-progress", cwd=tmp_path)
    assert r.returncode == 2 and "--maxCores" in r.stderr
    r = mesobatch("run", str(jobs), "--config", str(cfg), "--no-progress", cwd=tmp_path,
                  env={"MESOBATCH_MAX_CORES": "4"})
    assert r.returncode == 0, r.stderr
    r = mesobatch("run", str(jobs), "--config", str(cfg), "--no-progress", "--maxCores", "1",
                  cwd=tmp_path, env={"MESOBATCH_MAX_CORES": "4"})
    assert r.returncode == 2 and "jobs.jsonl:1" in r.stderr


@pytest.mark.parametrize(("content", "args", "expected"), [
    (None, [], "cannot read job file"),
    ('{"command": "true"}\n{"command": "true",, }\n', [], "jobs.jsonl:2: malformed JSON"),
    ('{"command": "true"}\n', ["--maxCore", "2"], "unknown option '--maxCore'; did you mean "
                                                  "--maxCores?"),
    ('{"command": "true", "cores": -1}\n', [], "jobs.jsonl:1: invalid cores -1: expected a "
                                               "positive number"),
    ('{"command": "true", "memory": "12Q"}\n', [], "jobs.jsonl:1: invalid memory '12Q': "
                                                   "expected a size such as 512M or 2G"),
    ('{"command": "true"}\n', ["--maxMemory", "12Q"], "invalid value '12Q' for --maxMemory"),
    ('{"command": "true"}\n', ["--maxCores", "-1"], "invalid value '-1' for --maxCores"),
    ('{"command": "true"}\n', ["--cores", "0"], "invalid value '0' for --cores"),
    ('{"command": "true", "cpus": 1}\n', [], "jobs.jsonl:1: unknown key 'cpus'; allowed: "),
    ('{"command": "true", "memory": "100G"}\n', ["--maxMemory", "1G"],
     "jobs.jsonl:1: job 'true' requests 100.0 GiB of memory"),
    ('{"command": "true"}\n', ["--backend", "nope"], "unknown backend 'nope'"),
])
def test_bad_input_gets_one_line_and_no_traceback(tmp_path: Path, content: str | None,
                                                  args: list[str], expected: str) -> None:
    jobs = tmp_path / "jobs.jsonl"
    if content is not None:
        jobs.write_text(content)
    r = mesobatch("run", str(jobs), "--no-progress", *args, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mesobatch: error: ") and expected in lines[0], lines[0]
    assert not (tmp_path / "mesobatch-logs").exists() or content is None


def test_backends_lists_local(tmp_path: Path) -> None:
    r = mesobatch("backends", cwd=tmp_path)
    assert r.returncode == 0 and "local" in r.stdout and "yes" in r.stdout


def test_backends_prints_the_pip_extra_as_written(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # rich would take "[aws]" for markup and print "pip install 'mesobatch'"
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(cli, "availability", lambda name: (
        (False, "Python module 'boto3' is not installed (pip install 'mesobatch[aws]')")
        if name == "aws_batch" else (True, "ready")))
    assert cli._list_backends() == 0
    out = capsys.readouterr().out
    assert "pip install 'mesobatch[aws]'" in out, out


@pytest.mark.parametrize(("backend", "expected"), [
    ("local", ["--maxCores", "--maxMemory", "--logDir", "--killGracePeriod", "--maxGpus",
               "options of the local backend", "(default: 5.0)", "(default: 1G)"]),
    ("mesos", ["--maxCores", "--logDir", "--killGracePeriod", "--mesosMaster", "--mesosRole",
               "--mesosExecutorMemory", "options of the mesos backend"]),
])
def test_run_help_lists_the_backends_options_grouped(tmp_path: Path, backend: str,
                                                     expected: list[str]) -> None:
    r = mesobatch("run", "--backend", backend, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # as wrapped for any terminal width
    for part in expected:
        assert part in text, part
    every = text.index("options of every backend")
    own = text.index(f"options of the {backend} backend")
    assert every < text.index("--killGracePeriod SECONDS after SIGTERM") < own


def test_the_environments_backend_gives_the_help(tmp_path: Path) -> None:
    r = mesobatch("run", "--help", cwd=tmp_path, env={"MESOBATCH_BACKEND": "mesos"})
    assert r.returncode == 0 and "--mesosMaster" in r.stdout


def test_backend_options_may_come_before_the_job_file(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("echo $OMP_NUM_THREADS > out.txt\n")
    r = mesobatch("run", "--maxCores", "2", "--cores", "2", str(jobs), "--no-progress",
                  cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_text() == "2\n"


@pytest.mark.parametrize(("content", "args", "env", "expected"), [
    ('{"command": "true", "gpus": 1}\n', ["--maxGpus", "0"], {},
     "requests 1 GPU, but at most 0 GPUs"),
    ('{"command": "true", "cores": 2}\n', ["--maxCores", "1"], {},
     "requests 2 cores, but at most 1 core can"),
    ('{"command": "true"}\n', ["--maxMemory", "1K"], {},
     "invalid value '1K' for --maxMemory: 1K is less than 1M"),
    ('{"name": "x"}\n', [], {}, 'jobs.jsonl:1: no "command"'),
    ('{"command": "true"}\n', [], {"MESOBATCH_BACKEND": "nosuch"},
     "unknown backend 'nosuch' (from $MESOBATCH_BACKEND); available: "),
])
def test_messages_say_what_is_wrong_in_plain_words(tmp_path: Path, content: str,
                                                   args: list[str], env: dict[str, str],
                                                   expected: str) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(content)
    r = mesobatch("run", str(jobs), "--no-progress", *args, cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert expected in r.stderr, r.stderr


def test_bare_mesobatch_says_what_to_do_on_stderr(tmp_path: Path) -> None:
    r = mesobatch(cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert "usage: mesobatch" in r.stderr and "say which command" in r.stderr


def _start_run(tmp_path: Path, jobs: str, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "jobs.jsonl").write_text(jobs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOBATCH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "mesobatch", "run", "jobs.jsonl", "--no-progress",
         "--logDir", "logs", *args], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_file(path: Path, proc: subprocess.Popen[str]) -> None:
    import time

    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


# a job that ignores SIGTERM: only SIGKILL ends it, after the grace period
STUBBORN = '{"command": "trap \'\' TERM; touch started; sleep 60", "name": "stubborn"}\n'



def test_a_second_interrupt_skips_the_grace_period_and_still_summarises(
        tmp_path: Path) -> None:
    import signal

    proc = _start_run(tmp_path, STUBBORN, "--killGracePeriod", "600")
    _wait_for_file(tmp_path / "started", proc)
    proc.send_signal(signal.SIGINT)
    while "stopping" not in (line := proc.stderr.readline() if proc.stderr else ""):
        assert line, "no 'stopping' line"
    proc.send_signal(signal.SIGINT)  # a grace period of 600 s would outlast the timeout
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: unfinished jobs were killed" in err
    assert "not finished  1" in out


def test_sigterm_stops_the_run_with_status_143(tmp_path: Path) -> None:
    import signal

    proc = _start_run(tmp_path, STUBBORN, "--killGracePeriod", "0.5")
    _wait_for_file(tmp_path / "started", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "not finished  1" in out


def _records(path: Path) -> list[dict[str, object]]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def test_results_file_has_one_line_per_job_and_rerun_failed_runs_only_the_others(
        tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"command": "echo fine", "name": "ok", "memory": "64M"}\n'
                    '{"command": "test -e flag", "name": "flaky", "env": {"A": "1"}}\n'
                    '{"command": "sleep 5", "name": "slow", "walltime": 0.5}\n')
    r = mesobatch("run", "--results", "results.jsonl", str(jobs), "--no-progress",
                  "--logDir", "logs", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    first = _records(tmp_path / "results.jsonl")
    assert [(x["name"], x["state"], x["exit_code"], x["line"]) for x in first] == [
        ("ok", "succeeded", 0, 1), ("flaky", "failed", 1, 2), ("slow", "maxjobduration", 143, 3)]
    for x in first:
        assert set(x) >= {"command", "wall_time", "peak_memory", "cpu_time", "node", "log"}
        assert isinstance(x["wall_time"], float) and isinstance(x["cpu_time"], float)
        assert x["node"] and Path(str(x["log"])).is_file()
    assert first[1]["env"] == {"A": "1"} and first[2]["walltime"] == 0.5
    assert first[0]["memory"] == 64 * 2**20
    (tmp_path / "flag").touch()  # the flaky job succeeds now; the slow one fails again
    r = mesobatch("run", "--rerun-failed", "results.jsonl", "--results", "results.jsonl",
                  "--no-progress", "--logDir", "logs2", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert sorted(p.name.split("-", 1)[1] for p in (tmp_path / "logs2").iterdir()) == [
        "flaky.log", "slow.log"]  # only the two that had not succeeded ran
    again = _records(tmp_path / "results.jsonl")
    assert [(x["name"], x["state"]) for x in again] == [
        ("ok", "succeeded"), ("flaky", "succeeded"), ("slow", "maxjobduration")]
    assert again[0] == first[0]  # carried over as it was
    (tmp_path / "flag").unlink()
    jobs.write_text("")  # the rerun needs only the results file
    r = mesobatch("run", "--rerun-failed", "results.jsonl", "--no-progress", cwd=tmp_path)
    assert r.returncode == 1 and "slow" in r.stdout and "flaky" not in r.stdout


def test_rerun_failed_with_nothing_failed_and_bad_results_files(tmp_path: Path) -> None:
    (tmp_path / "done.jsonl").write_text(
        '{"command": "true", "name": "a", "state": "succeeded", "line": 1}\n')
    r = mesobatch("run", "--rerun-failed", "done.jsonl", cwd=tmp_path)
    assert r.returncode == 0 and "nothing to run again" in r.stderr
    (tmp_path / "bad.jsonl").write_text('{"command": "true"}\n')
    r = mesobatch("run", "--rerun-failed", "bad.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "bad.jsonl:1: not a line of a results file" in r.stderr
    r = mesobatch("run", "--rerun-failed", "done.jsonl", "jobs.txt", cwd=tmp_path)
    assert r.returncode == 2 and "not both" in r.stderr
    r = mesobatch("run", cwd=tmp_path)
    assert r.returncode == 2 and "give a job file" in r.stderr


def test_summary_shows_memory_used_against_asked_and_flags_far_over(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    # pages written and held 2.5 s: a job the fork server starts is measured by sampling its
    # group about every second, so a short or never-written allocation could go unseen
    big = (f"{sys.executable} -c 'import time; b = bytearray(300 * 2**20); "
           "b[::4096] = bytes(len(b[::4096])); time.sleep(2.5)'")
    jobs.write_text(f'{{"command": "{big}", "name": "hungry", "memory": "64M"}}\n'
                    '{"command": "true", "name": "modest", "memory": "512M"}\n')
    r = mesobatch("run", str(jobs), "--no-progress", cwd=tmp_path,
                  env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    hungry = next(line for line in r.stdout.splitlines() if "hungry" in line)
    modest = next(line for line in r.stdout.splitlines() if "modest" in line)
    import re

    ratio = re.search(r"mem (\d+\.\d)x", hungry)
    assert "/64M" in hungry and ratio is not None and float(ratio.group(1)) >= 4.5, hungry
    assert "/512M" in modest and "mem " not in modest


def test_a_short_true_job_shows_its_cpu_time_and_memory_in_summary_and_results(
        tmp_path: Path) -> None:
    """`true` is over before any sample and smaller than the scheduler: its CPU time
    comes from wait4, its memory as the bound the kernel gives (``≤``), never ``?``."""
    (tmp_path / "jobs.txt").write_text("true\n")
    r = mesobatch("run", "jobs.txt", "--no-progress", "--results", "r.jsonl", cwd=tmp_path,
                  env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    (record,) = _records(tmp_path / "r.jsonl")
    assert isinstance(record["cpu_time"], float) and record["cpu_time"] >= 0
    assert record["peak_memory"] is not None or record["memory_at_most"] is not None
    bound = record["memory_at_most"]
    assert record["peak_memory"] is not None or (isinstance(bound, int) and bound > 2**20)
    row = next(line for line in r.stdout.splitlines() if " true " in f" {line} ")
    assert "/512M" in row and "?" not in row and " - " not in row.split("/512M")[1][:8]


def test_enforce_memory_is_a_flag_and_reports_memlimit(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    big = f"{sys.executable} -c 'import time; b = bytearray(300 * 2**20); time.sleep(30)'"
    jobs.write_text(f'{{"command": "{big}", "name": "hungry", "memory": "64M"}}\n')
    r = mesobatch("run", "--enforceMemory", str(jobs), "--no-progress", "--results",
                  "r.jsonl", cwd=tmp_path, env={"COLUMNS": "200"})
    assert r.returncode == 1, r.stderr
    assert "memlimit" in r.stdout
    (record,) = _records(tmp_path / "r.jsonl")
    assert record["state"] == "memlimit" and float(str(record["wall_time"])) < 20
