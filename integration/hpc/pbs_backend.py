"""The PBS Pro / OpenPBS and Torque backends: the batch-queue base with the PBS dialect
(pbs.py) in either flavour, and their options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...scheduler.options import opt, parse_bool, parse_str
from .base import BatchQueueBackend
from .dialect import Dialect
from .options import BatchQueueOptions, parse_positive
from .pbs import PbsDialect, PbsSettings
from .system import parse_words, refuse_reserved

#: qsub options mesobatch sets for every job
RESERVED = ("-N", "-o", "-e", "-j", "-J", "-t", "-d", "-q", "-A")


@dataclass(frozen=True)
class PbsOptions(BatchQueueOptions):
    """Options of the PBS Pro and Torque backends."""

    pbs_queue: str | None = opt("pbsQueue", parse=parse_str, metavar="QUEUE",
                                help="qsub -q: the queue (default: the server's default)")
    pbs_account: str | None = opt("pbsAccount", parse=parse_str, metavar="ACCOUNT",
                                  help="qsub -A: the account jobs are charged to")
    pbs_copy_environment: bool = opt(
        "pbsCopyEnvironment", parse=parse_bool, default=True, metavar="BOOL",
        help="qsub -V: jobs see the submitting environment (PATH, virtualenv), as on "
             "LSF and HTCondor; a job's own variables are set by its script either way")
    pbs_max_array_size: int = opt(
        "pbsMaxArraySize", parse=parse_positive, default=10000, metavar="N",
        help="the server's max_array_size (Torque: max_job_array_size)")
    pbs_args: tuple[str, ...] = opt(
        "pbsArgs", parse=parse_words, default=(), metavar="ARGS",
        help="more qsub arguments for every job, e.g. '-l place=excl'")

    def validate(self) -> None:
        super().validate()
        refuse_reserved(self.pbs_args, RESERVED, "pbsArgs")


class PbsBackend(BatchQueueBackend):
    """PBS Professional / OpenPBS: qsub -l select=..., one qstat -f -F json -x per poll."""

    name = "pbs"
    options_class = PbsOptions
    flavor: ClassVar[str] = "pbspro"

    def make_dialect(self) -> Dialect:
        o = self.options
        assert isinstance(o, PbsOptions)
        extra = ("-V",) if o.pbs_copy_environment else ()
        return PbsDialect(PbsSettings(
            flavor=self.flavor, queue=o.pbs_queue, account=o.pbs_account,
            max_array_size=o.pbs_max_array_size, extra_args=extra + o.pbs_args))


class TorqueBackend(PbsBackend):
    """Torque: qsub -l nodes=1:ppn=..., one qstat -f -x (XML) per poll."""

    name = "torque"
    flavor = "torque"
