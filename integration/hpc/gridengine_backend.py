"""The Grid Engine backend: the batch-queue base with Grid Engine's dialect.

Everything that is Grid Engine's own syntax lives in ``gridengine.py`` (pure builders and
parsers); this module only turns the command-line options into that dialect's settings.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...scheduler.backend import BackendContext, Post
from ...scheduler.options import OptionError, opt, parse_bool, parse_seconds, parse_str
from .base import BatchQueueBackend
from .dialect import Dialect
from .gridengine import FLAVORS, GridEngineDialect, GridEngineSettings, extra_arguments
from .options import BatchQueueOptions

MEMORY_PER = ("slot", "job")


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = parse_str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


def _name(value: Any) -> str | None:
    """A queue list or project; empty or "none": not set."""
    text = parse_str(value).strip()
    return None if text.lower() in ("", "none") else text


def _resource(value: Any) -> str | None:
    """A resource or parallel environment name (sge_types(1)); empty or "none": not set."""
    text = _name(value)
    if text is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text):
        raise ValueError("expected a Grid Engine name: letters, digits, '_', '.', '-', not "
                         "starting with a digit")
    return text


def _pe(value: Any) -> str:
    text = _resource(value)
    if text is None:
        raise ValueError("expected the name of a parallel environment, such as smp")
    return text


def _arguments(value: Any) -> tuple[str, ...]:
    """Extra qsub arguments: a string split as a shell would (nothing runs it), or a list."""
    if isinstance(value, list | tuple):
        return tuple(parse_str(v) for v in value)
    try:
        return tuple(shlex.split(parse_str(value)))
    except ValueError as e:
        raise ValueError(f"cannot be split into arguments ({e})") from None


@dataclass(frozen=True)
class GridEngineOptions(BatchQueueOptions):
    """Options of the Grid Engine backend (on top of every batch queue's). The fields
    carry the system's name: in Toil's one Config every backend's options live side by
    side, keyed by field name."""

    gridengine_flavor: str = opt(
        "gridEngineFlavor", parse=_choice(FLAVORS), default="sge", metavar="|".join(FLAVORS),
        help="sge: Sun/Oracle SGE, Son of Grid Engine, Open Grid Scheduler; uge: Univa/Altair "
             "Grid Engine (decides the default memory resource)")
    gridengine_pe: str = opt(
        "gridEnginePE", parse=_pe, default="smp", metavar="NAME",
        env_aliases=("TOIL_GRIDENGINE_PE",),
        help="parallel environment of jobs of more than one core (-pe NAME CORES); it should "
             "have allocation_rule $pe_slots, so all of a job's cores are on one host")
    gridengine_memory_resource: str | None = opt(
        "gridEngineMemoryResource", parse=_resource, metavar="NAME",
        help="resource that asks for memory: h_vmem, mem_free, s_vmem, virtual_free, "
             "m_mem_free, ... (default: h_vmem for sge, m_mem_free for uge)")
    gridengine_memory_per: str = opt(
        "gridEngineMemoryPer", parse=_choice(MEMORY_PER), default="slot",
        metavar="|".join(MEMORY_PER),
        help="slot: the memory resource counts per slot (consumable YES; a job asks for its "
             "memory divided by its cores); job: per job (consumable JOB)")
    gridengine_disk_resource: str | None = opt(
        "gridEngineDiskResource", parse=_resource, metavar="NAME",
        help="the site's resource for local disk, asked for per job (default: disk is not "
             "requested; Grid Engine defines no such resource)")
    gridengine_gpu_resource: str | None = opt(
        "gridEngineGpuResource", parse=_resource, default="gpu", metavar="NAME",
        help="the site's resource for GPUs, asked for per job ('none': jobs that need GPUs "
             "are refused at submission)")
    gridengine_queue: str | None = opt(
        "gridEngineQueue", parse=_name, metavar="QUEUE",
        help="queue(s) for every job (-q), e.g. all.q or 'short.q,long.q'")
    gridengine_project: str | None = opt(
        "gridEngineProject", parse=_name, metavar="PROJECT",
        help="project of every job (-P)")
    gridengine_args: tuple[str, ...] = opt(
        "gridEngineArgs", parse=_arguments, default=(), metavar="ARGS",
        env_aliases=("TOIL_GRIDENGINE_ARGS",),
        help="more qsub arguments for every job, split as a shell would (nothing runs them); "
             "those of $MESOBATCH_GRIDENGINE_ARGS come after them. Options mesobatch sets "
             "itself (-N, -o, -e, -wd, -pe, -t, -b, h_rt, the memory resource, ...) are "
             "refused")
    gridengine_accounting_delay: float = opt(
        "gridEngineAccountingDelay", parse=parse_seconds, default=15.0, metavar="SECONDS",
        help="how long Grid Engine may take to write a finished job's accounting (its "
             "reporting_params flush_time, 15 s by default): a job gone from qstat without "
             "an exit record is not reported LOST before qacct had this long to know it")
    gridengine_verify: bool = opt(
        "gridEngineVerify", parse=parse_bool, default=False, metavar="BOOL",
        help="qsub -w e: refuse a job no queue could ever run instead of letting it wait "
             "for ever (Grid Engine's check ignores load values: leave it off where the "
             "memory resource is one)")

    def settings(self) -> GridEngineSettings:
        """The dialect's settings (ValueError if Grid Engine would refuse a name)."""
        return GridEngineSettings(
            flavor=self.gridengine_flavor, parallel_environment=self.gridengine_pe,
            memory_resource=self.gridengine_memory_resource,
            memory_per_slot=self.gridengine_memory_per == "slot",
            disk_resource=self.gridengine_disk_resource,
            gpu_resource=self.gridengine_gpu_resource, queue=self.gridengine_queue,
            project=self.gridengine_project, extra_args=self.gridengine_args,
            verify=self.gridengine_verify)

    def validate(self) -> None:
        super().validate()
        try:
            extra_arguments(self.settings(), os.environ)
        except ValueError as e:
            raise OptionError(f"invalid Grid Engine options: {e}") from None


class GridEngineBackend(BatchQueueBackend):
    """Jobs as Grid Engine jobs (``qsub`` of a script file), watched with one
    ``qstat -xml`` per poll, their ends from ``qacct`` and the wrapper's records."""

    name = "gridengine"
    options_class = GridEngineOptions

    def __init__(self, options: GridEngineOptions, post: Post, context: BackendContext
                 ) -> None:
        super().__init__(options, post, context)
        self.accounting_delay = options.gridengine_accounting_delay

    def make_dialect(self) -> Dialect:
        o = self.options
        assert isinstance(o, GridEngineOptions)
        return GridEngineDialect(o.settings(), os.environ)
