"""Test-run wiring shared by every folder.

Every test that uses the one real Slurm cluster goes to the same xdist worker
(``--dist loadgroup`` in tests/run.sh): the cluster has 2 CPUs and a file lock that is
not fair, so two workers taking turns on it starved each other past the 300 s timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

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
