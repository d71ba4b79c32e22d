"""Every example of the README runs as written: those that need only this machine run
here; each of the others is named below with the test that runs its like (a Mesos
cluster, ZooKeeper, Toil), so that a new example cannot go untried unnoticed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


class Block(NamedTuple):
    line: int
    lang: str
    text: str

    @property
    def first(self) -> str:
        return self.text.splitlines()[0]


def blocks() -> list[Block]:
    text = README.read_text()
    return [Block(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)]


#: examples run elsewhere (first line's start -> why, and which test runs its like)
ELSEWHERE = {
    "tests/run.sh": "the test command itself (CI runs it: .ci/run)",
    "mesobatch run JOBS [--backend local]": "a synopsis, not a command",
    "mesobatch run jobs.jsonl --backend mesos --mesosMaster mesos-master":
        "needs a Mesos master (tests/scheduler/mesos/ against the Mesos double)",
    'bs = mesobatch.batch_system("mesos", mesosMaster="10.0.0.2:5050"':
        "needs a Mesos master (tests/scheduler/mesos/conftest.py makes the same)",
    "mesobatch run jobs.jsonl --backend mesos --mesosMaster zk://":
        "needs ZooKeeper and Mesos masters (tests/scheduler/mesos/test_zk_*.py)",
    "mesos-agent --master=zk://": "a Mesos agent's flags (deploy/agent/mesos-agent.service)",
    'bs = mesobatch.batch_system("mesos", mesosMaster="zk://':
        "needs a Mesos cluster (tests/deploy/ ships user scripts through the double)",
    "python3 -m venv ~/toil": "installs Toil (tests/run.sh installs the same)",
    "python my_workflow.py file:/shared/jobstore":
        "Toil workflows (tests/integration/toil/ runs them on the double and locally)",
    "mesobatch run jobs.txt --backend gridengine":
        "needs Grid Engine (tests/integration/hpc/ runs jobs on a real one)",
    "mesobatch run jobs.jsonl --backend slurm":
        "needs Slurm (tests/integration/hpc/test_slurm_backend.py runs the same on a real one)",
    "mesobatch run jobs.jsonl --backend kubernetes":
        "needs a Kubernetes cluster (tests/integration/kubernetes/ against the double)",
    "$ mesobatch status": "a sample of its output (tests/scheduler/status/ run the command)",
    "apiVersion: rbac.authorization.k8s.io/v1":
        "RBAC of a real cluster (tests/integration/kubernetes/test_rbac.py checks that it "
        "allows every request a run makes of the Kubernetes double)",
    "mesobatch run jobs.jsonl --backend aws_batch":
        "needs AWS (tests/integration/aws_batch/ against the double, and moto's server)",
    "caller ──issueBatchJob──▶": "a diagram",
    "common/       shared by both sides": "a folder listing",
}


def _elsewhere(block: Block) -> str | None:
    return next((why for start, why in ELSEWHERE.items() if block.first.startswith(start)),
                None)


def runnable() -> list[Block]:
    return [b for b in blocks() if _elsewhere(b) is None]


def test_every_example_is_run_here_or_named_as_run_elsewhere() -> None:
    unknown_langs = [b for b in runnable() if b.lang not in ("python", "sh")]
    assert not unknown_langs, (
        "README examples that this test cannot run (```python and ```sh blocks run here): "
        f"{[(b.line, b.first) for b in unknown_langs]}; make each runnable on this machine, "
        "or add its first line to ELSEWHERE in tests/test_readme.py with the test that "
        "runs its like")
    stale = [start for start in ELSEWHERE
             if not any(b.first.startswith(start) for b in blocks())]
    assert not stale, f"no README example starts so any more: {stale}"
    assert len(runnable()) >= 3


def _workspace(tmp_path: Path) -> Path:
    """A copy of the checkout's examples and a `mesobatch` command of this code."""
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "mesobatch"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m mesobatch "$@"\n')
    shim.chmod(0o755)
    return work


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOBATCH_")}
    env["PATH"] = f"{tmp_path / 'bin'}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def _is_install(block: Block) -> bool:
    return "pip install" in block.text


@pytest.mark.parametrize("block", [b for b in runnable() if not _is_install(b)],
                         ids=lambda b: f"line{b.line}")
def test_example_runs_as_written(block: Block, tmp_path: Path) -> None:
    work = _workspace(tmp_path)
    argv = ([sys.executable, "-c", block.text] if block.lang == "python"
            else ["bash", "-euo", "pipefail", "-c", block.text])
    r = subprocess.run(argv, cwd=work, env=_env(tmp_path), capture_output=True, text=True,
                       timeout=240, check=False)
    assert r.returncode in _expected_status(block), (
        f"README line {block.line}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    assert "Traceback" not in r.stderr, r.stderr[-3000:]


def _expected_status(block: Block) -> tuple[int, ...]:
    """A shell example may end in a run whose jobs fail on purpose (exit status 1)."""
    return (0, 1) if "failing.jsonl" in block.text else (0,)


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in runnable() if _is_install(b)],
                         ids=lambda b: f"line{b.line}")
def test_install_example_runs_as_written(block: Block, tmp_path: Path) -> None:
    """The quick start, in a copy of the checkout: a virtualenv, an install, a run."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", "mesobatch-logs", "__pycache__", ".mypy_cache", ".ruff_cache"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MESOBATCH_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text], cwd=src, env=env,
                       capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "succeeded  10" in r.stdout, r.stdout
