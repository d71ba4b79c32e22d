"""The contract suite runs against every backend; each provides a factory here."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

import mesobatch
from tests.services.slurm_fixtures import slurm_cluster, slurm_cluster_noacct  # noqa: F401


class Factory(Protocol):
    """make_bs(cores=2, **options); ``backend`` names the backend (the test's param)."""

    backend: str

    def __call__(self, cores: float = 2, **options: Any) -> mesobatch.BatchSystem: ...


#: a real Slurm with and without accounting: slow (its scheduler starts jobs in seconds)
BACKENDS = ["local", "mesos",
            pytest.param("slurm", marks=pytest.mark.slow),
            pytest.param("slurm_noacct", marks=pytest.mark.slow)]

#: backends that give each job whole cores (a 0.1-core job takes one)
WHOLE_CORES = frozenset({"slurm", "slurm_noacct"})


@pytest.fixture(params=BACKENDS)
def make_bs(request: pytest.FixtureRequest,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Factory]:
    """make_bs(cores=2, **options) -> a batch system whose nodes total ``cores`` cores,
    4 GiB of memory and 10 GiB of disk, jobs limited to the same.

    On Slurm (one node of 2 CPUs) ``cores`` whole cores are ``--maxJobs``: at most that
    many jobs of the run are in the queue at once."""
    made: list[mesobatch.BatchSystem] = []
    doubles: list[Any] = []
    locks: list[Any] = []

    def make(cores: float = 2, **options: Any) -> mesobatch.BatchSystem:
        options.setdefault("killGracePeriod", 1)
        limits = {"maxCores": cores, "maxMemory": "4G", "maxDisk": "10G"}
        if request.param == "local":
            bs = mesobatch.batch_system("local", maxGpus=0, **limits, **options)
        elif request.param in WHOLE_CORES:
            cluster = request.getfixturevalue(
                "slurm_cluster" if request.param == "slurm" else "slurm_cluster_noacct")
            monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
            if not locks:  # one test at a time on the cluster: its 2 CPUs are the test's
                lock_path = cluster.root.with_name(cluster.root.name + ".tests")
                locks.append(open(lock_path, "a"))  # noqa: SIM115 (closed at teardown)
                fcntl.flock(locks[0], fcntl.LOCK_EX)
            options.setdefault("pollInterval", 0.5)
            options.setdefault("maxJobs", max(1, int(cores)))
            bs = mesobatch.batch_system("slurm", **limits, **options)
        else:
            from tests.doubles.mesos import AgentSpec, MesosDouble

            # the executor's 0.01 cpus and 32 MiB come on top of what the jobs may use
            double = MesosDouble(agents=[AgentSpec(resources=f"cpus:{cores + 0.01:g};"
                                                             "mem:4160;disk:10240")]).start()
            doubles.append(double)
            bs = mesobatch.batch_system("mesos", mesosMaster=double.master_address,
                                        **limits, **options)
        made.append(bs)
        return bs

    make.backend = request.param  # type: ignore[attr-defined]
    yield make  # type: ignore[misc]
    for bs in made:
        bs.shutdown()
    for double in doubles:
        double.stop()
    for lock in locks:
        lock.close()  # releases the flock
