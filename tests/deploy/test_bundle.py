"""The executor bundle: built reproducibly, run by a Python without mesobatch."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mesobatch
from mesobatch import FunctionExecutor
from mesobatch.deploy import bundle

from .conftest import Systems

ROOT = Path(__file__).resolve().parents[2]
#: the environment of runs by the bare Python: no PYTHONPATH leading to a checkout
BARE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment: no mesobatch, no cloudpickle, no psutil."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    for module in ("mesobatch", "cloudpickle", "psutil"):
        found = subprocess.run([str(python), "-c", f"import {module}"], check=False,
                               capture_output=True, cwd="/", timeout=60, env=BARE_ENV)
        assert found.returncode != 0, f"{module} should not be importable in {venv}"
    return python


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mesobatch deploy bundle`, as a user would run it."""
    out = tmp_path_factory.mktemp("bundle") / "mesobatch-executor.pyz"
    done = subprocess.run([sys.executable, "-m", "mesobatch", "deploy", "bundle", "-o",
                           str(out)], check=False, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert f"sha256:{bundle.build().sha256}" in done.stdout
    return out


def test_the_bundle_is_reproducible_and_self_contained(built: Path) -> None:
    assert built.read_bytes() == bundle.build().data  # same code, same bytes, same hash
    names = zipfile.ZipFile(built).namelist()
    assert "__main__.py" in names and "mesobatch/executor/driver.py" in names
    assert "mesobatch/common/transport.py" in names  # the executor's HTTP client
    assert "cloudpickle/__init__.py" in names
    assert not [n for n in names if n.startswith(("mesobatch/scheduler", "psutil"))]


def _imported_from(bundle_path: Path, module: str) -> str:
    """Where a Python with nothing installed loads ``module`` from in this bundle."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(bundle_path)!r}); "
         f"import {module} as m; print(m.__file__)"],
        check=True, capture_output=True, text=True, timeout=60, env=BARE_ENV, cwd="/")
    return done.stdout.strip()


def test_each_module_comes_with_the_bytecode_an_executor_loads(built: Path) -> None:
    names = set(zipfile.ZipFile(built).namelist())
    sources = {n for n in names if n.endswith(".py")}
    assert sources and {n + "c" for n in sources} <= names
    # loaded from the .pyc: no module is compiled when an executor starts
    assert _imported_from(built, "mesobatch.executor.driver").endswith(
        "mesobatch/executor/driver.pyc")


def test_bytecode_of_another_python_version_is_ignored(built: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pyz"
    with zipfile.ZipFile(built) as old, zipfile.ZipFile(other, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith(".pyc"):  # as a Python of another version made it
                data = b"\x00\x00\r\n" + data[4:]
            new.writestr(info, data)
    assert _imported_from(other, "mesobatch.executor.driver").endswith(
        "mesobatch/executor/driver.py")


def test_the_bundle_runs_from_a_bare_venv_against_mesos(
        systems: Systems, bare_python: Path, built: Path, tmp_path: Path) -> None:
    double = systems.double(agents=2, resources="cpus:1.01;mem:1056;disk:2048")
    bs = systems.mesos(double, executorDeploy="bundle", executorBundle=str(built),
                       executorPython=str(bare_python), maxCores=1, maxMemory="1G")
    marker = tmp_path / "ran"
    job = bs.issueBatchJob(f"echo shell > {marker}", mesobatch.JobDescription(
        cores=1, memory=2**26, disk=2**26))
    info = bs.getUpdatedBatchJob(60)
    assert info is not None and info.jobID == job and info.exitStatus == 0
    assert marker.read_text() == "shell\n"
    secret = 41

    def where_am_i() -> tuple[str, str, str, int]:
        import cloudpickle

        import mesobatch as there
        return sys.prefix, cloudpickle.__file__ or "", there.__file__ or "", secret + 1

    with FunctionExecutor(bs) as ex:
        calls = [ex.submit(where_am_i) for _ in range(4)]
        for prefix, pickle_file, package_file, value in (c.result(timeout=60) for c in calls):
            assert prefix == str(bare_python.parent.parent)  # the venv's Python
            assert ".pyz/cloudpickle/" in pickle_file  # from the bundle
            assert ".pyz/mesobatch/" in package_file
            assert value == 42
    fetched = double.fetch_stats()["fetches"]
    (uri,) = fetched
    assert uri.endswith(f"/public/{bundle.build().sha256}/mesobatch-executor.pyz")
    assert 1 <= fetched[uri] <= 2  # once per agent that ran something
    # check-agent, as an operator would run it on the agent
    check = subprocess.run([str(bare_python), str(built), "check-agent", "--scheduler",
                            bs.resource_service().location, "--work-dir", str(tmp_path)],
                           check=False, capture_output=True, text=True, timeout=60, cwd="/",
                           env=BARE_ENV)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok    scheduler" in check.stdout and "node stats  from /proc" in check.stdout


def test_check_agent_says_what_is_wrong(bare_python: Path, built: Path) -> None:
    check = subprocess.run([str(bare_python), str(built), "check-agent", "--scheduler",
                            "http://127.0.0.1:9", "--work-dir", "/proc/forbidden"],
                           check=False, capture_output=True, text=True, timeout=60, cwd="/",
                           env=BARE_ENV)
    assert check.returncode == 1
    assert "FAIL  sandbox" in check.stdout and "FAIL  scheduler" in check.stdout
    assert "cannot run" in check.stdout


def test_with_a_fixed_port_the_agent_caches_the_bundle(systems: Systems) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    double = systems.double()
    bs = systems.mesos(double, resourceAddress=f"127.0.0.1:{port}")
    desc = mesobatch.JobDescription(cores=1, memory=2**26, disk=2**26)
    bs.issueBatchJob("true", desc)
    info = bs.getUpdatedBatchJob(60)
    assert info is not None and info.exitStatus == 0
    (executor,) = double.executor_pids()
    double.kill_executor(executor.split("/", 1)[1])  # the next job needs a new executor
    for _ in range(3):  # a job launched before the scheduler hears of the loss is lost
        bs.issueBatchJob("true", desc)
        info = bs.getUpdatedBatchJob(60)
        assert info is not None
        if info.exitReason is not mesobatch.BatchJobExitReason.LOST:
            break
    assert info.exitStatus == 0
    stats = double.fetch_stats()
    uri = f"http://127.0.0.1:{port}/public/{bundle.build().sha256}/mesobatch-executor.pyz"
    assert stats["fetches"] == {uri: 1}  # downloaded once; later executors: the cache
    assert stats["cache_hits"][uri] >= 1


def test_check_agent_from_the_mesobatch_command(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mesobatch", "deploy", "check-agent",
                           "--work-dir", str(tmp_path)], check=False, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "this agent can run the mesobatch executor bundle" in done.stdout
