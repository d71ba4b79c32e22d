"""Test-run wiring shared by every folder.

Every test that uses the one real Slurm cluster goes to the same xdist worker
(``--dist loadgroup`` in tests/run.sh): the cluster has 2 CPUs and a file lock that is
not fair, so two workers taking turns on it starved each other past the 300 s timeout.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator

import pytest

# The agents of the Mesos double run the executor with `python3` from the scheduler's
# PATH (--executorPython's default), as real agents do. Let that be the Python running
# the tests, as in an activated virtualenv: a pytest run by an interpreter of another
# version than the PATH's python3 would otherwise ship calls pickled by value to an
# executor that cannot load them.
_HERE = os.path.dirname(sys.executable)
if os.access(os.path.join(_HERE, "python3"), os.X_OK):
    os.environ["PATH"] = os.pathsep.join([_HERE, os.environ.get("PATH", "")])

_SLURM_FIXTURES = ("slurm_cluster", "slurm_cluster_noacct", "real_slurm", "real_slurm_noacct")
_SLURM_PARAMS = ("slurm", "slurm_noacct")


def _uses_real_slurm(item: pytest.Item) -> bool:
    if any(name in _SLURM_FIXTURES for name in getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(
        isinstance(value, str) and value in _SLURM_PARAMS for value in callspec.params.values())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _uses_real_slurm(item):
            item.add_marker(pytest.mark.xdist_group("slurm"))


@pytest.fixture(autouse=True)
def _mesobatch_logs_reach_caplog() -> Iterator[None]:
    """Toil, run in-process by an earlier test of the same worker, sets every non-Toil
    top-level logger to CRITICAL (``suppress_exotic_logging``); undo it for each test so
    ``caplog`` sees mesobatch's warnings."""
    logger = logging.getLogger("mesobatch")
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.NOTSET)
    logger.disabled = False
    yield
    logger.setLevel(level)
    logger.disabled = disabled
