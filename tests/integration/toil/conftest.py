"""Toil against mesobatch: a Mesos double, and Toil's command line in fresh processes.

Toil finds the plugin the way a user's Toil does (it imports the installed top-level
module ``toil_batch_system_mesobatch``); nothing here imports the plugin for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

# Toil's test classes ask for this fixture (Toil's own conftest provides it)
from toil.test.conftest import rootpath  # noqa: F401

from tests.doubles.mesos import AgentSpec, MesosDouble
from tests.services.gridengine import gridengine  # noqa: F401 (fixture)
from tests.services.slurm_fixtures import slurm_cluster  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent

#: one agent of the size Toil's generic tests assume (numCores = 2), plus the 0.01 cpus
#: mesobatch's executor reserves
AGENT = "cpus:2.01;mem:4096;disk:10000"


def pytest_configure(config: pytest.Config) -> None:
    # Toil's test module marks its other classes with these when it is imported
    for mark in ("aws_batch", "aws_s3", "fetchable_appliance", "gridengine", "htcondor",
                 "kubernetes", "lsf", "mesos", "online", "slurm", "torque"):
        config.addinivalue_line("markers", f"{mark}: used by Toil's own tests")


def start_double(resources: str = AGENT) -> MesosDouble:
    return MesosDouble(agents=[AgentSpec(resources=resources)]).start()


@pytest.fixture(scope="module")
def double() -> Iterator[MesosDouble]:
    d = start_double()
    yield d
    d.stop()


def run(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
        timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a command to its end and keep its output for the assertion message."""
    return subprocess.run(list(argv), cwd=cwd, env=dict(env if env is not None else os.environ),
                          capture_output=True, text=True, timeout=timeout, check=False)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
            f"--- stderr\n{result.stderr[-8000:]}")


def toil_bin(name: str) -> str:
    """A console script of the Toil this interpreter runs."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name
