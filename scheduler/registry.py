"""Backends by name, imported only when chosen (so optional dependencies stay optional)."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import BatchSystem
    from .backend import Backend


class UnknownBackend(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives and what it needs; nothing is imported to list it."""

    name: str
    target: str  #: "module:Class" of the Backend subclass
    summary: str
    requires_modules: tuple[str, ...] = ()
    requires_commands: tuple[str, ...] = ()
    extra: str | None = None  #: the pip extra that installs its dependencies
    aliases: tuple[str, ...] = field(default=())
    #: a command that succeeds only where the backend can work (its service answers)
    probe: tuple[str, ...] = ()


_REGISTRY: dict[str, BackendEntry] = {}
_CLASSES: dict[str, type[BatchSystem]] = {}


def register_backend(entry: BackendEntry) -> None:
    """Add a backend; a name (or alias) already taken is an error."""
    for name in (entry.name, *entry.aliases):
        if name in _REGISTRY:
            raise ValueError(f"a backend named {name!r} is already registered")
    for name in (entry.name, *entry.aliases):
        _REGISTRY[name] = entry


def backend_names() -> list[str]:
    return sorted({e.name for e in _REGISTRY.values()})


def get_entry(name: str) -> BackendEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownBackend(
            f"unknown backend {name!r}; available: {', '.join(backend_names())}") from None


def availability(name: str) -> tuple[bool, str]:
    """Whether a backend can run here, and if not, why (without importing it)."""
    entry = get_entry(name)
    for module in entry.requires_modules:
        if importlib.util.find_spec(module) is None:
            how = f" (pip install 'mesobatch[{entry.extra}]')" if entry.extra else ""
            return False, f"Python module {module!r} is not installed{how}"
    for command in entry.requires_commands:
        if shutil.which(command) is None:
            return False, f"command {command!r} is not on PATH"
    if entry.probe:
        try:
            done = subprocess.run(entry.probe, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"{' '.join(entry.probe)} failed: {e}"
        if done.returncode != 0:
            said = (done.stdout.strip() or done.stderr.strip()).splitlines()[:1] or [""]
            return False, f"{' '.join(entry.probe)} exited {done.returncode}: {said[0][:200]}"
    return True, "ready"


def load_backend(name: str) -> type[Backend]:
    entry = get_entry(name)
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        ok, why = availability(name)
        raise ImportError(f"backend {name!r} cannot be loaded: {why if not ok else e}") from e
    cls: type[Backend] = getattr(module, attr)
    return cls


def batch_system_class(name: str) -> type[BatchSystem]:
    """The BatchSystem subclass bound to backend ``name`` (what Toil registers)."""
    entry = get_entry(name)
    cls = _CLASSES.get(entry.name)
    if cls is None:
        from .api import BatchSystem  # noqa: PLC0415

        backend = load_backend(entry.name)
        title = "".join(p.capitalize() for p in entry.name.split("_"))
        cls = type(f"{title}BatchSystem", (*backend.batch_system_extras, BatchSystem), {
            "backend_class": backend,
            "__doc__": f"mesobatch batch system on the {entry.name} backend: {entry.summary}",
            "__module__": "mesobatch",
        })
        _CLASSES[entry.name] = cls
    return cls


def batch_system(name: str = "local", **options: Any) -> BatchSystem:
    """A ready batch system on backend ``name``; options as on the command line.

    >>> bs = batch_system("local", maxCores=2, maxMemory="4G")
    """
    return batch_system_class(name)(**options)


register_backend(BackendEntry(
    "local", "mesobatch.integration.local:LocalBackend",
    "this machine, as one emulated agent",
))
register_backend(BackendEntry(
    "mesos", "mesobatch.scheduler.mesos.backend:MesosBackend",
    "an Apache Mesos cluster (v1 HTTP APIs; host:port, http(s):// or zk:// masters)",
))
register_backend(BackendEntry(
    "gridengine", "mesobatch.integration.hpc.gridengine_backend:GridEngineBackend",
    "a Grid Engine cluster (SGE, Son of Grid Engine, UGE): qsub, qstat, qacct, qdel",
    requires_commands=("qsub", "qstat", "qacct", "qdel"),
))
register_backend(BackendEntry(
    "kubernetes", "mesobatch.integration.kubernetes.backend:KubernetesBackend",
    "a Kubernetes cluster: one batch/v1 Job per job, followed by one pod watch",
    requires_modules=("lightkube",), extra="kubernetes",
))
register_backend(BackendEntry(
    "aws_batch", "mesobatch.integration.aws_batch.backend:AwsBatchBackend",
    "AWS Batch job queues (boto3; standard credentials; spot queue for preemptible jobs)",
    requires_modules=("boto3",), extra="aws",
))
register_backend(BackendEntry(
    "lsf", "mesobatch.integration.hpc.lsf_backend:LsfBackend",
    "an IBM Spectrum LSF cluster (bsub, bjobs -json, bkill)",
    requires_commands=("bsub", "bjobs", "bkill"),
))
register_backend(BackendEntry(
    "pbs", "mesobatch.integration.hpc.pbs_backend:PbsBackend",
    "a PBS Professional / OpenPBS cluster (qsub -l select, qstat -F json, qdel)",
    requires_commands=("qsub", "qstat", "qdel", "pbsnodes"),
))
register_backend(BackendEntry(
    "torque", "mesobatch.integration.hpc.pbs_backend:TorqueBackend",
    "a Torque cluster (qsub -l nodes=1:ppn, qstat -x XML, qdel)",
    requires_commands=("qsub", "qstat", "qdel", "pbsnodes"),
))
register_backend(BackendEntry(
    "htcondor", "mesobatch.integration.hpc.htcondor_backend:HTCondorBackend",
    "an HTCondor pool (condor_submit, condor_q/condor_history -json, condor_rm)",
    requires_commands=("condor_submit", "condor_q", "condor_history", "condor_rm"),
))
register_backend(BackendEntry(
    "slurm", "mesobatch.integration.hpc.slurm_backend:SlurmBackend",
    "a Slurm cluster (sbatch, squeue, sacct, scancel; one emulated agent for the queue)",
    requires_commands=("sbatch", "squeue", "scancel", "sinfo", "scontrol"),
    probe=("scontrol", "ping"),
))
