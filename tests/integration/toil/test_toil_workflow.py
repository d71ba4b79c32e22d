"""A real Toil workflow from Toil's command line: 20 jobs of different shapes, a retried
job and a checking follow-on, on ``--batchSystem mesos`` (Mesos double) and
``mesobatch_local``; and the same from a virtualenv, activated or not, on Mesos."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.doubles.mesos import MesosDouble
from tests.services.gridengine import GridEngine
from tests.services.slurm import SlurmCluster

from . import fanout_workflow as wf
from .conftest import REPO, explain, run

TOTAL = sum(i * i for i in range(wf.FANOUT))


def workflow_argv(python: str, tmp_path: Path, batch_system: str,
                  double: MesosDouble | None) -> list[str]:
    (tmp_path / "work").mkdir()
    argv = [python, "-m", "tests.integration.toil.fanout_workflow", str(tmp_path / "jobstore"),
            "--summary", str(tmp_path / "summary.json"), "--batchSystem", batch_system,
            "--retryCount", "1", "--workDir", str(tmp_path / "work"), "--clean", "always",
            "--disableProgress", "--logInfo"]
    if double is not None:
        argv += ["--mesosMaster", double.master_address]
    return argv


def assert_workflow_succeeded(result: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    assert result.returncode == 0, explain(result)
    assert f"total {TOTAL}" in result.stdout, explain(result)
    results = json.loads((tmp_path / "summary.json").read_text())["results"]
    assert sorted(r["i"] for r in results) == list(range(wf.FANOUT))
    steady = [r for r in results if r["i"] != wf.FLAKY]
    assert {r["cores"] for r in steady} == set(wf.CORES)
    assert {r["memory"] for r in steady} == {m * 2**20 for m in wf.MEMORY_MIB}
    assert {r["omp"] for r in results} == {"1"}  # OMP_NUM_THREADS from the job's cores
    # the planned failure happened, Toil saw it and the retry succeeded
    assert (tmp_path / f"job{wf.FLAKY}.attempts").read_text().splitlines() == ["attempt"] * 2
    assert "fails on its first attempt, as planned" in result.stderr, explain(result)
    assert not (tmp_path / "jobstore").exists()  # --clean always: the run ended cleanly


@pytest.mark.slow
@pytest.mark.parametrize("batch_system", ["mesos", "mesobatch_local"])
def test_fanout_workflow(batch_system: str, tmp_path: Path,
                         request: pytest.FixtureRequest) -> None:
    double: MesosDouble | None = None
    if batch_system == "mesos":
        double = request.getfixturevalue("double")
        launched = double.counters()["tasks_launched"]
    result = run(workflow_argv(sys.executable, tmp_path, batch_system, double), cwd=REPO)
    assert_workflow_succeeded(result, tmp_path)
    if double is not None:  # every job went through Mesos: 20 + the retry + root + follow-on
        assert double.counters()["tasks_launched"] - launched >= wf.FANOUT + 3


def accounting_records() -> int:
    """Jobs Grid Engine has finished (one line each in its accounting file)."""
    path = Path("/var/lib/gridengine/default/common/accounting")
    return sum(1 for line in path.read_text().splitlines() if not line.startswith("#"))


@pytest.mark.slow
def test_fanout_workflow_on_grid_engine(tmp_path: Path, gridengine: GridEngine) -> None:
    """The same workflow with --batchSystem mesobatch_gridengine on the real Grid Engine:
    every job is a Grid Engine job (light.q, memory as mem_free per job)."""
    before = accounting_records()
    argv = [
        *workflow_argv(sys.executable, tmp_path, "mesobatch_gridengine", None),
        "--gridEngineQueue", gridengine.light_queue, "--gridEngineArgs=-l light",
        "--gridEngineMemoryResource", "mem_free", "--gridEngineMemoryPer", "job",
        "--gridEngineAccountingDelay", "2",
        "--maxTotalCores", "4", "--pollInterval", "0.5", "--maxPollInterval", "2"]
    result = run(argv, cwd=REPO, env={**os.environ, **gridengine.env})
    assert_workflow_succeeded(result, tmp_path)
    # 20 + the retry + root + follow-on, once Grid Engine has flushed its accounting
    deadline = time.monotonic() + 30
    while accounting_records() - before < wf.FANOUT + 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert accounting_records() - before >= wf.FANOUT + 3


@pytest.mark.slow
def test_fanout_workflow_on_slurm(tmp_path: Path, slurm_cluster: SlurmCluster) -> None:
    """The same workflow with --batchSystem mesobatch_slurm on the real Slurm (with
    accounting): every job is a Slurm job, under the run's tag as its job name."""
    env = {**os.environ, **slurm_cluster.env}
    logs = tmp_path / "logs"  # kept: its .mesobatch-<run tag> folders name this run's jobs
    argv = [*workflow_argv(sys.executable, tmp_path, "mesobatch_slurm", None),
            "--pollInterval", "0.5", "--slurmPartition", "short", "--batchLogsDir", str(logs)]
    # the cluster's 2 CPUs are this test's alone (as in the contract suite), so every
    # mesobatch job that starts meanwhile is this workflow's
    with open(slurm_cluster.root.with_name(slurm_cluster.root.name + ".tests"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        result = run(argv, cwd=REPO, env=env)
        names = slurm_cluster.run(["sacct", "--allusers", "--allocations", "--noheader",
                                   "--parsable2", "--format=JobName,Partition",
                                   f"--starttime={started}"], check=True).stdout.split()
    assert_workflow_succeeded(result, tmp_path)
    tags = {p.name.removeprefix(".mesobatch-") for p in logs.glob(".mesobatch-mb-*")}
    assert tags  # the run's tag, so that other runs' jobs (any user of the cluster) are not ours
    ours = [n for n in names
            if any(n.split("|")[0] == t or n.startswith(f"{t}-") for t in tags)]
    # 20 + the retry + root + follow-on, all in the partition asked for (Toil's own
    # --slurmPartition: both read it; the cluster's default is main)
    assert len(ours) >= wf.FANOUT + 3 and all(n.endswith("|short") for n in ours)


def make_virtualenv(path: Path) -> Path:
    """A virtualenv whose bin/ holds Toil's worker, as `pip install toil` there would
    leave it (Toil itself comes from the system site-packages, or from the virtualenv
    the tests run in: --system-site-packages sees only the base interpreter's)."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(path)], check=True)
    inherit_site_packages(path)
    worker = path / "bin" / "_toil_worker"
    worker.write_text(f"#!{path / 'bin' / 'python'}\nimport sys\nfrom toil.worker import main\n"
                      "sys.exit(main())\n")
    worker.chmod(0o755)
    return path / "bin"


def inherit_site_packages(venv: Path) -> None:
    """Let a virtualenv made from this interpreter import what this one can, when this
    one is a virtualenv itself: its site directories are added (with their .pth files,
    e.g. an editable install's) through a .pth file of the new one's."""
    own = [p for p in site.getsitepackages() if not p.startswith(sys.base_prefix)]
    if not own:
        return
    (site_dir,) = (venv / "lib").glob("python*/site-packages")
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in own)
    (site_dir / "_mesobatch_tests_outer_venv.pth").write_text(lines)


def test_a_nested_virtualenv_imports_what_the_tests_import(tmp_path: Path) -> None:
    bindir = make_virtualenv(tmp_path / "venv")
    result = run([str(bindir / "python"), "-c", "import mesobatch, toil; "
                  "print(mesobatch.__file__)"], cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    import mesobatch

    assert result.stdout.strip() == mesobatch.__file__


@pytest.mark.slow
@pytest.mark.parametrize("activated", [True, False], ids=["activated", "not-activated"])
def test_workflow_from_a_virtualenv_on_mesos(activated: bool, tmp_path: Path,
                                             double: MesosDouble) -> None:
    """Toil starts jobs as the bare command `_toil_worker`, and Mesos agents give
    executors an environment of their own: no extra flag may be needed when the
    agents have the virtualenv at the same path (here: the same machine)."""
    bindir = make_virtualenv(tmp_path / "venv")
    system_path = "/usr/bin:/bin"
    assert shutil.which("_toil_worker", path=system_path) is None  # only the venv has it
    env = {"HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           "PATH": f"{bindir}:{system_path}" if activated else system_path}
    if activated:
        env["VIRTUAL_ENV"] = str(bindir.parent)
    result = run(workflow_argv(str(bindir / "python"), tmp_path, "mesos", double), cwd=REPO,
                 env=env)
    assert_workflow_succeeded(result, tmp_path)


def test_setenv_path_replaces_the_path_jobs_get(tmp_path: Path) -> None:
    """Toil's --setEnv PATH=... wins over the interpreter directory we put first: here
    it hides the virtualenv, and the first job cannot start."""
    bindir = make_virtualenv(tmp_path / "venv")
    env = {"HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    argv = workflow_argv(str(bindir / "python"), tmp_path, "mesobatch_local", None)
    result = run([*argv, "--setEnv", "PATH=/usr/bin:/bin", "--retryCount", "0"], cwd=REPO,
                 env=env)
    assert result.returncode != 0
    assert "exit value 127" in result.stderr, explain(result)  # the shell's "not found"
