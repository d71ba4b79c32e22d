"""The contract suite runs against every backend; each provides a factory here."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mesobatch
from tests.services.gridengine import gridengine  # noqa: F401 (fixture)
from tests.services.slurm_fixtures import slurm_cluster, slurm_cluster_noacct  # noqa: F401

Factory = Callable[..., mesobatch.BatchSystem]

#: batch-queue backends on the fakes in tests/doubles (lsf, pbs, htcondor)
QUEUE_FAKES = ["lsf", "pbs", "torque", "htcondor"]
#: the real Grid Engine's suite takes ~2 minutes on 2 workers: marked slow
BACKENDS = ["local", "mesos", pytest.param("gridengine", marks=pytest.mark.slow),
            "kubernetes", "aws_batch", *QUEUE_FAKES,
            # a real Slurm with and without accounting (~2 minutes each): slow
            pytest.param("slurm", marks=pytest.mark.slow),
            pytest.param("slurm_noacct", marks=pytest.mark.slow)]

#: seconds jobs that must run at the same time last, by backend: long enough that all
#: of them have started before the first ends (Grid Engine starts 20 jobs in ~3 s here;
#: the AWS Batch double's jobs pass four states and a poll before they run; a queue
#: fake's runners, one Python process per job, start 20 in ~1.5 s on a busy machine; the
#: Kubernetes double creates 20 Jobs, schedules and starts their pods on one event loop,
#: over 1 s when the machine is busy)
_OVERLAP_SECONDS = {"gridengine": 8.0, "aws_batch": 3.0, "kubernetes": 3.0,
                    **dict.fromkeys(QUEUE_FAKES, 3.0)}


def overlap_seconds(bs: mesobatch.BatchSystem) -> float:
    """How long jobs that must overlap should run on this batch system's backend."""
    return _OVERLAP_SECONDS.get(bs.backend_class.name, 1.0)


def whole_cores(bs: mesobatch.BatchSystem) -> bool:
    """Each job holds whole cores (Slurm's --cpus-per-task): a 0.1-core job takes one."""
    return bs.backend_class.name == "slurm"


@pytest.fixture(params=BACKENDS)
def make_bs(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """make_bs(cores=2, **options) -> a batch system whose nodes total ``cores`` cores,
    4 GiB of memory and 10 GiB of disk, jobs limited to the same."""
    made: list[mesobatch.BatchSystem] = []
    doubles: list[Any] = []
    locks: list[Any] = []

    def make(cores: float = 2, **options: Any) -> mesobatch.BatchSystem:
        options.setdefault("killGracePeriod", 1)
        limits = {"maxCores": cores, "maxMemory": "4G", "maxDisk": "10G"}
        if request.param == "local":
            bs = mesobatch.batch_system("local", maxGpus=0, **limits, **options)
        elif request.param == "kubernetes":
            from tests.doubles.kubernetes import KubernetesDouble, NodeSpec

            # one node of that size; the pretend kubelet runs pods as local processes
            k8s = KubernetesDouble(nodes=[NodeSpec(cpu=f"{cores:g}", memory="4Gi",
                                                   ephemeral_storage="10Gi")])
            k8s.start()
            doubles.append(k8s)
            bs = mesobatch.batch_system("kubernetes", kubernetesConfig=str(k8s.kubeconfig),
                                        kubernetesImage="python:3.12-slim", **limits,
                                        **options)
        elif request.param == "gridengine":
            bs = _gridengine(request, cores, limits, options)
        elif request.param == "aws_batch":
            bs = _aws_batch(request, cores, doubles, limits, options)
        elif request.param in ("slurm", "slurm_noacct"):
            bs = _slurm(request, cores, locks, limits, options)
        elif request.param in QUEUE_FAKES:
            bs = _queue_fake(request, cores, limits, options)
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

    yield make
    for bs in made:
        bs.shutdown()
    for double in doubles:
        double.stop()
    for lock in locks:
        lock.close()  # releases the flock


def _gridengine(request: pytest.FixtureRequest, cores: float, limits: dict[str, Any],
                options: dict[str, Any]) -> mesobatch.BatchSystem:
    """The real Grid Engine's light.q (32 slots; mesobatch keeps ``cores`` in use at once);
    memory as mem_free per job, which no job is killed for (h_vmem is RLIMIT_AS)."""
    ge = request.getfixturevalue("gridengine")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for key in ("SGE_ROOT", "SGE_CELL", "PATH"):
        monkeypatch.setenv(key, ge.env[key])
    options.setdefault("pollInterval", 0.5)
    options.setdefault("maxPollInterval", 2)
    return mesobatch.batch_system(
        "gridengine", maxTotalCores=cores, gridEngineQueue=ge.light_queue,
        gridEngineArgs="-l light", gridEngineMemoryResource="mem_free",
        gridEngineMemoryPer="job", gridEngineAccountingDelay=2, **limits, **options)


def _aws_batch(request: pytest.FixtureRequest, cores: float, doubles: list[Any],
               limits: dict[str, Any], options: dict[str, Any]) -> mesobatch.BatchSystem:
    """The AWS Batch double: a large queue, of which the run may use ``cores`` vCPUs; the
    double stops a job as ECS does (SIGTERM, SIGKILL after a grace period)."""
    from tests.doubles.aws_batch import AwsBatchDouble
    from tests.doubles.aws_batch.queues import add_queue

    aws = AwsBatchDouble(state_delay=0.02, stop_grace=1.0)
    aws.start()
    doubles.append(aws)
    monkeypatch = request.getfixturevalue("monkeypatch")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    options.setdefault("pollInterval", 0.1)
    return mesobatch.batch_system(
        "aws_batch", awsBatchEndpoint=aws.endpoint_url, awsBatchRegion=aws.region,
        awsBatchQueue=add_queue(aws, "contract"), awsBatchImage="python:3.11-slim",
        awsBatchMaxVcpus=cores, **limits, **options)


def _slurm(request: pytest.FixtureRequest, cores: float, locks: list[Any],
           limits: dict[str, Any], options: dict[str, Any]) -> mesobatch.BatchSystem:
    """The real Slurm (one node of 2 CPUs), with or without accounting. ``cores`` whole
    cores are --maxJobs (at most that many of the run's jobs in the queue), and one test at
    a time has the cluster (a file lock across pytest workers): its CPUs are the test's."""
    accounting = request.param == "slurm"
    cluster = request.getfixturevalue("slurm_cluster" if accounting else "slurm_cluster_noacct")
    request.getfixturevalue("monkeypatch").setenv("SLURM_CONF", str(cluster.conf))
    if not locks:
        lock_path = cluster.root.with_name(cluster.root.name + ".tests")
        locks.append(open(lock_path, "a"))  # noqa: SIM115 (closed at teardown)
        fcntl.flock(locks[0], fcntl.LOCK_EX)
    options.setdefault("pollInterval", 0.5)
    options.setdefault("maxJobs", max(1, int(cores)))
    return mesobatch.batch_system("slurm", **limits, **options)


def _queue_fake(request: pytest.FixtureRequest, cores: float, limits: dict[str, Any],
                options: dict[str, Any]) -> mesobatch.BatchSystem:
    """LSF, PBS Pro, Torque or HTCondor on its fake (tests/doubles), on a host of 64
    cores; --maxTotalCores holds the run to ``cores`` (each job asks the queue for
    whole cores; fractions are counted here)."""
    from tests.doubles.hpcfake.backends import FAKES

    fake = FAKES[request.param]
    state = request.getfixturevalue("tmp_path_factory").mktemp(request.param)
    monkeypatch = request.getfixturevalue("monkeypatch")
    for var, value in fake.environment(state).items():
        monkeypatch.setenv(var, value)
    cluster = fake.cluster(state)
    request.addfinalizer(cluster.stop)  # whatever the test left running
    options.setdefault("pollInterval", 0.2)
    options.setdefault("maxPollInterval", 1)
    return mesobatch.batch_system(request.param, maxTotalCores=cores,
                                  logDir=str(state / "logs"), **limits, **options)
