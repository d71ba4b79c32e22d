"""Fixtures: the real Slurm clusters (started on first use, shared by pytest workers)."""

from tests.services.slurm_fixtures import slurm_cluster, slurm_cluster_noacct

__all__ = ["slurm_cluster", "slurm_cluster_noacct"]
