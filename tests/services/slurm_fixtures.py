"""pytest fixtures for the real Slurm of ``tests.services.slurm``.

A conftest that needs them imports them (``from tests.services.slurm_fixtures import
slurm_cluster, slurm_cluster_noacct``). Each pytest process (xdist worker) registers as a
user of the cluster; the last one to finish stops it if pytest started it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .slurm import SlurmCluster, unavailable_reason


def _session(accounting: bool) -> Iterator[SlurmCluster]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster.default(accounting)
    cluster.acquire()
    try:
        yield cluster
    finally:
        cluster.release()


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """The real Slurm with accounting (slurmdbd; sacct works)."""
    yield from _session(True)


@pytest.fixture(scope="session")
def slurm_cluster_noacct() -> Iterator[SlurmCluster]:
    """The real Slurm without accounting (sacct fails: the wrapper's record is all there is)."""
    yield from _session(False)
