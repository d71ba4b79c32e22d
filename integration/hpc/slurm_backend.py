"""The Slurm backend: the batch-queue base (base.py) with Slurm's dialect (slurm.py).

What is Slurm's own here is only what the base cannot know: the site policy options
(how memory, disk and GPUs are asked for, partitions, account, QOS, extra sbatch
arguments), and what it reads from the cluster once, at start: ``scontrol show config``
(MaxArraySize; whether there is accounting at all), ``scontrol show partition`` when a
list of partitions is given to choose from, and ``sinfo`` for the largest job any node
can run (checked at issue time, so a job no node can hold fails at once instead of
waiting in the queue for ever).

Every job of a run is submitted under the run's tag as its job name, so the one
status query per poll (``squeue --me --name=TAG``) sees this run's jobs and no other's.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, replace
from typing import Any

from ...scheduler.backend import BackendContext, Post
from ...scheduler.core.jobs import JobSpec, Limits
from ...scheduler.core.resources import MIB, offered_cpus_to_milli
from ...scheduler.options import OptionError, opt, parse_bool, parse_count, parse_str
from .base import BatchQueueBackend
from .commands import CommandError
from .dialect import ClusterNode, Dialect
from .options import BatchQueueOptions
from .packing import jobs_per_pack
from .slurm import (
    ARGS_ENV,
    PartitionChoiceError,
    SlurmArgumentError,
    SlurmDialect,
    SlurmSettings,
    check_extra_args,
    extra_args,
    max_array_size,
    parse_config,
    parse_partitions,
)


def _choice(*allowed: str) -> Any:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return text

    return parse


def parse_name(value: Any) -> str:
    """A Slurm name (partition, account, QOS, cluster): one word."""
    text = parse_str(value).strip()
    if not text or any(c.isspace() or c == "," for c in text):
        raise ValueError("expected one name without spaces or commas")
    return text


def parse_names(value: Any) -> tuple[str, ...]:
    """A comma-separated list of names (or a list)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(parse_name(i) for i in items if str(i).strip())
    if not names:
        raise ValueError("expected one or more comma-separated names")
    return names


def parse_words(value: Any) -> tuple[str, ...]:
    """Arguments split like a shell would (nothing ever runs them in a shell)."""
    if isinstance(value, list | tuple):
        return tuple(parse_str(v) for v in value)
    try:
        return tuple(shlex.split(parse_str(value)))
    except ValueError as e:
        raise ValueError(f"cannot split into arguments: {e}") from None


def parse_auto_bool(value: Any) -> bool | None:
    """true, false, or auto (None: ask the cluster)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return parse_bool(value)


@dataclass(frozen=True)
class SlurmOptions(BatchQueueOptions):
    """Options of the Slurm backend (on top of every batch-queue backend's)."""

    slurm_partition: str | None = opt(
        "slurmPartition", parse=parse_name, metavar="NAME",
        help="partition of every job (default: the cluster's default partition)")
    slurm_gpu_partition: str | None = opt(
        "slurmGpuPartition", parse=parse_name, metavar="NAME", aliases=("slurmGPUPartition",),
        help="partition of jobs that ask for GPUs")
    slurm_partitions: tuple[str, ...] = opt(
        "slurmPartitions", parse=parse_names, default=(), metavar="A,B,...",
        help="partitions to choose from, in order of preference: each job goes to the first "
             "that is up, allows its walltime (MaxTime) and has GPUs if it asks for some")
    slurm_account: str | None = opt(
        "slurmAccount", parse=parse_name, metavar="NAME", help="--account of every job")
    slurm_qos: str | None = opt(
        "slurmQos", parse=parse_name, metavar="NAME", aliases=("slurmQOS",),
        help="--qos of every job")
    slurm_memory: str = opt(
        "slurmMemory", parse=_choice("per-node", "per-cpu", "none"), default="per-node",
        metavar="POLICY",
        help="how a job's memory is asked for: per-node (--mem), per-cpu (--mem-per-cpu, "
             "divided by its cores), none (not at all: the site's defaults)")
    slurm_disk: str = opt(
        "slurmDisk", parse=_choice("tmp", "none"), default="tmp", metavar="POLICY",
        help="how a job's disk is asked for: tmp (--tmp, the node's TmpDisk) or none")
    slurm_gpus: str = opt(
        "slurmGpus", parse=_choice("gres", "gpus"), default="gres", metavar="POLICY",
        help="how a job's GPUs are asked for: gres (--gres=gpu:N) or gpus (--gpus=N)")
    slurm_extra_args: tuple[str, ...] = opt(
        "slurmExtraArgs", parse=parse_words, default=(), metavar="ARGS",
        help=f"more sbatch arguments for every job, split like a shell would (after those "
             f"of ${ARGS_ENV}); one that clashes with what mesobatch sets is an error at start")
    slurm_cluster: str | None = opt(
        "slurmCluster", parse=parse_name, metavar="NAME",
        help="--clusters for every Slurm command (multi-cluster sites)")
    slurm_max_array_size: int = opt(
        "slurmMaxArraySize", parse=parse_count, default=0, metavar="N",
        help="most jobs in one job array (0: the cluster's MaxArraySize)")
    slurm_requeue: bool = opt(
        "slurmRequeue", parse=parse_bool, default=False, metavar="BOOL",
        help="let Slurm requeue a job after a node failure or preemption (--requeue) "
             "instead of reporting it LOST")
    slurm_pack: int = opt(
        "slurmPack", parse=parse_count, default=32, metavar="N",
        help="run jobs of less than a core issued together as packs of up to N jobs, each "
             "pack one Slurm job (or array element) asking for their summed cores (rounded "
             "up to whole CPUs), memory and disk, whose script runs them at once (Slurm "
             "gives a job whole CPUs: ten 0.1-core jobs then share one CPU instead of taking "
             "ten); 0 or 1: every job a Slurm job of its own")
    slurm_accounting: bool | None = opt(
        "slurmAccounting", parse=parse_auto_bool, default=None, metavar="auto|BOOL",
        help="ask sacct for final states of jobs gone from the queue (auto: when the "
             "cluster keeps accounting); without it the job wrapper's record is the exit "
             "status")

    def validate(self) -> None:
        super().validate()
        if self.slurm_partition and self.slurm_partitions:
            raise OptionError(f"--slurmPartition {self.slurm_partition!r} and "
                              f"--slurmPartitions {','.join(self.slurm_partitions)!r}: "
                              "give one of them")

    def settings(self, accounting: bool, extra: tuple[str, ...] = ()) -> SlurmSettings:
        return SlurmSettings(
            memory=self.slurm_memory,  # type: ignore[arg-type]  # checked by its parser
            disk=self.slurm_disk,  # type: ignore[arg-type]
            gpus=self.slurm_gpus,  # type: ignore[arg-type]
            partition=self.slurm_partition, gpu_partition=self.slurm_gpu_partition,
            partitions=self.slurm_partitions, account=self.slurm_account, qos=self.slurm_qos,
            cluster=self.slurm_cluster, arrays=self.job_arrays,
            max_array_size=self.slurm_max_array_size or None, requeue=self.slurm_requeue,
            accounting=accounting, extra_args=extra)


class SlurmBackend(BatchQueueBackend):
    """Jobs as Slurm batch jobs (sbatch, squeue, sacct, scancel, sinfo, scontrol)."""

    name = "slurm"
    options_class = SlurmOptions
    # the controller's load is what sites complain about: ask squeue only when needed
    quiet_backoff = True

    def __init__(self, options: SlurmOptions, post: Post, context: BackendContext) -> None:
        self._nodes: list[ClusterNode] | None = None
        super().__init__(options, post, context)

    def make_dialect(self) -> Dialect:
        """Check the extra arguments, then read the cluster's configuration (one
        ``scontrol show config``, and ``show partition`` when choosing partitions)."""
        o = self.options
        assert isinstance(o, SlurmOptions)
        try:
            # Toil's own --slurmArgs (TOIL_SLURM_ARGS) too, under Toil
            toil_args = getattr(self.context.engine_config, "slurm_args", None) or ""
            try:
                from_toil = parse_words(toil_args)
            except ValueError as e:
                raise OptionError(f"invalid value {toil_args!r} for Toil's --slurmArgs: "
                                  f"{e}") from None
            mine = (*from_toil, *o.slurm_extra_args)
            extra = tuple(extra_args(o.settings(False, mine), os.environ))
            check_extra_args(extra, o.settings(False))  # clashes are an error now
        except SlurmArgumentError as e:
            raise OptionError(str(e)) from None
        probe = SlurmDialect(SlurmSettings(cluster=o.slurm_cluster))
        self.dialect = probe  # classifies the errors of these first commands
        try:
            config = parse_config(self.commands.run(probe.config_argv()))
            partitions: tuple[Any, ...] = ()
            if o.slurm_partitions:
                partitions = tuple(parse_partitions(self.commands.run(probe.partitions_argv())))
        except CommandError as e:
            raise RuntimeError(f"cannot read Slurm's configuration: {e}") from None
        accounting = o.slurm_accounting
        if accounting is None:
            accounting = config.get("AccountingStorageType", "") not in (
                "", "accounting_storage/none")
        try:
            return SlurmDialect(o.settings(accounting), partitions=partitions,
                                config_max_array_size=max_array_size(config), extra=extra)
        except (PartitionChoiceError, SlurmArgumentError) as e:
            raise OptionError(str(e)) from None

    def job_name(self, spec: JobSpec) -> str:
        # the dialect's status query selects this run by the exact job name
        return self.run_tag

    def limits(self) -> Limits:
        """The options' limits, within the largest node of the cluster (so that a job
        no node can ever hold fails when it is issued, not after waiting for ever)."""
        own = super().limits()
        nodes = self._sizing_nodes()
        if not nodes:
            return own
        o = self.options
        assert isinstance(o, SlurmOptions)
        cores = offered_cpus_to_milli(max(n.cores for n in nodes))
        memory = max(n.memory for n in nodes) // MIB
        disk = max(n.tmp_disk for n in nodes) // MIB  # --tmp asks for a node's TmpDisk
        gpus = max(n.gpus for n in nodes)

        def least(mine: int | None, cluster: int) -> int | None:
            if cluster <= 0:
                return mine
            return cluster if mine is None else min(mine, cluster)

        def bound(mine: int | None, cluster: int) -> bool:  # the node is the limit
            return cluster > 0 and (mine is None or cluster < mine)

        # where a node is the limit, --maxCores/--maxMemory/--maxDisk cannot help: say what can
        node = "no node of the Slurm cluster (sinfo) has more"
        return replace(
            own, cpus=least(own.cpus, cores),
            mem=least(own.mem, memory) if o.slurm_memory != "none" else own.mem,
            disk=least(own.disk, disk) if o.slurm_disk == "tmp" else own.disk,
            gpus=gpus, gpus_option=None,  # no option raises what the nodes have
            cpus_hint=f"{node}, and no option changes that: ask for fewer cores"
            if bound(own.cpus, cores) else None,
            mem_hint=f"{node}: ask for less, or give --slurmMemory none (Slurm's default "
                     "memory per job then applies)"
            if o.slurm_memory != "none" and bound(own.mem, memory) else None,
            disk_hint=f"{node} TmpDisk: ask for less, or give --slurmDisk none (no --tmp "
                      "then: the job gets whatever disk its node has)"
            if o.slurm_disk == "tmp" and bound(own.disk, disk) else None,
            gpus_hint=f"{node}, and no option changes that: ask for fewer GPUs")

    def pack_size(self, spec: JobSpec) -> int:
        """Jobs of this shape in one pack: as many as fill a CPU, at most --slurmPack,
        and no more memory, nor --tmp disk, together than the largest node has (a pack
        asking for more would be refused or wait for ever)."""
        o = self.options
        assert isinstance(o, SlurmOptions)
        nodes = self._sizing_nodes()
        node_memory = (max(n.memory for n in nodes)
                       if nodes and o.slurm_memory != "none" else None)
        node_disk = max(n.tmp_disk for n in nodes) if nodes and o.slurm_disk == "tmp" else None
        return jobs_per_pack(milli_cores=spec.resources.cpus, memory=spec.memory,
                             gpus=spec.resources.gpus, most=o.slurm_pack,
                             node_memory=node_memory or None, disk=spec.disk,
                             node_disk=node_disk or None)

    def _sizing_nodes(self) -> list[ClusterNode]:
        """The nodes whose size bounds a job or a pack: the usable ones, else all."""
        return [n for n in self._cluster_nodes() if n.usable] or self._cluster_nodes()

    def _cluster_nodes(self) -> list[ClusterNode]:
        if self._nodes is None:
            argv = self.dialect.nodes_argv()
            try:
                self._nodes = self.dialect.parse_nodes(self.commands.run(argv)) if argv else []
            except (CommandError, ValueError):
                self._nodes = []  # no limits from the cluster then; sbatch will say
        return self._nodes
