"""The HTCondor backend: the batch-queue base with HTCondor's dialect (htcondor.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...scheduler.options import OptionError, opt, parse_bool
from .base import BatchQueueBackend
from .dialect import Dialect
from .htcondor import HTCondorDialect, HTCondorSettings
from .options import BatchQueueOptions
from .system import parse_lines

#: submit description commands mesobatch writes for every job
RESERVED = ("universe", "executable", "arguments", "initialdir", "output", "error", "log",
            "getenv", "environment", "request_cpus", "request_memory", "request_disk",
            "request_gpus", "allowed_job_duration", "queue")


@dataclass(frozen=True)
class HTCondorOptions(BatchQueueOptions):
    """Options of the HTCondor backend."""

    htcondor_submit_lines: tuple[str, ...] = opt(
        "htcondorSubmitLines", parse=parse_lines, default=(), metavar="LINES",
        help="more submit description lines for every job, one per line, e.g. "
             "'accounting_group = group_x' or 'requirements = (OpSys == \"LINUX\")'")
    htcondor_allowed_job_duration: bool = opt(
        "htcondorAllowedJobDuration", parse=parse_bool, default=True, metavar="BOOL",
        help="a job's wall time becomes allowed_job_duration (HTCondor holds it when "
             "exceeded; mesobatch reports MAXJOBDURATION and removes it)")

    def validate(self) -> None:
        super().validate()
        for line in self.htcondor_submit_lines:
            m = re.match(r"\s*([A-Za-z_+][A-Za-z0-9_.+]*)", line)
            key = m.group(1).lower() if m else ""
            if key in RESERVED or key.startswith("queue"):
                raise OptionError(
                    f"invalid value for --htcondorSubmitLines: {line!r} sets {key}, which "
                    f"mesobatch writes for every job ({', '.join(RESERVED)})")


class HTCondorBackend(BatchQueueBackend):
    """HTCondor: one condor_submit per burst (queue N), one condor_q -json per poll,
    condor_history for jobs gone from the queue, condor_rm."""

    name = "htcondor"
    options_class = HTCondorOptions

    def make_dialect(self) -> Dialect:
        o = self.options
        assert isinstance(o, HTCondorOptions)
        return HTCondorDialect(HTCondorSettings(
            extra_submit_lines=o.htcondor_submit_lines,
            use_allowed_job_duration=o.htcondor_allowed_job_duration))
