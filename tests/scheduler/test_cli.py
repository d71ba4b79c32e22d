"""The `mesobatch` command line, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
