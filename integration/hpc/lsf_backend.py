"""The LSF backend: the batch-queue base with LSF's dialect (lsf.py) and its options."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...scheduler.options import opt, parse_bool, parse_str
from .base import BatchQueueBackend
from .dialect import Dialect
from .lsf import UNIT_POWERS, LsfDialect, LsfSettings, parse_lsf_conf_unit
from .options import BatchQueueOptions, parse_positive
from .system import parse_words, refuse_reserved

#: bsub options mesobatch sets for every job
RESERVED = ("-J", "-o", "-e", "-oo", "-eo", "-cwd", "-n", "-M", "-W", "-gpu", "-q", "-P")


def cluster_unit() -> str | None:
    """LSF_UNIT_FOR_LIMITS from $LSF_ENVDIR/lsf.conf (None: not set there)."""
    envdir = os.environ.get("LSF_ENVDIR")
    if not envdir:
        return None
    try:
        with open(os.path.join(envdir, "lsf.conf")) as f:
            return parse_lsf_conf_unit(f.read())
    except OSError:
        return None


def parse_unit(value: object) -> str:
    unit = str(value).strip().upper()
    if unit not in UNIT_POWERS:
        raise ValueError(f"expected one of {', '.join(UNIT_POWERS)}")
    return unit


@dataclass(frozen=True)
class LsfOptions(BatchQueueOptions):
    """Options of the LSF backend."""

    lsf_queue: str | None = opt("lsfQueue", parse=parse_str, metavar="QUEUE",
                                help="bsub -q: the queue (default: the cluster's default)")
    lsf_project: str | None = opt("lsfProject", parse=parse_str, metavar="PROJECT",
                                  help="bsub -P: the project jobs are charged to")
    lsf_unit_for_limits: str | None = opt(
        "lsfUnitForLimits", parse=parse_unit, metavar="UNIT",
        env_aliases=("LSF_UNIT_FOR_LIMITS",), default_factory=cluster_unit,
        help="the cluster's LSF_UNIT_FOR_LIMITS (KB, MB, GB, ...), the unit of -M and "
             "rusage[mem] (default: from $LSF_ENVDIR/lsf.conf; unset: -M in KB, rusage in MB)")
    lsf_memory_per_slot: bool = opt(
        "lsfMemoryPerSlot", parse=parse_bool, default=False, metavar="BOOL",
        help="rusage[mem] is per slot on this cluster: ask for memory / cores")
    lsf_max_array_size: int = opt(
        "lsfMaxArraySize", parse=parse_positive, default=1000, metavar="N",
        help="MAX_JOB_ARRAY_SIZE of the cluster's lsb.params")
    lsf_args: tuple[str, ...] = opt(
        "lsfArgs", parse=parse_words, default=(), metavar="ARGS",
        help="more bsub arguments for every job, e.g. '-R \"select[type==X86_64]\"'")

    def validate(self) -> None:
        super().validate()
        refuse_reserved(self.lsf_args, RESERVED, "lsfArgs")


class LsfBackend(BatchQueueBackend):
    """IBM Spectrum LSF: bsub, one bjobs -json per poll, bkill."""

    name = "lsf"
    options_class = LsfOptions

    def make_dialect(self) -> Dialect:
        o = self.options
        assert isinstance(o, LsfOptions)
        return LsfDialect(LsfSettings(
            unit_for_limits=o.lsf_unit_for_limits, queue=o.lsf_queue, project=o.lsf_project,
            memory_per_slot=o.lsf_memory_per_slot, max_array_size=o.lsf_max_array_size,
            extra_args=o.lsf_args))
