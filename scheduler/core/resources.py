"""Exact resource arithmetic: integer milli-cores, MiB and whole GPUs.

Floats accumulate error (Toil fitted 19 jobs of 0.1 core into 2.0 cores); integers
do not. Requests round up, offers round down, so a job never gets less than it asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


def cores_to_milli(cores: float) -> int:
    """Round a core request up to whole milli-cores (0.1 -> 100, 0.0001 -> 1)."""
    return math.ceil(round(cores * 1000, 3))


def offered_cpus_to_milli(cpus: float) -> int:
    """Mesos scalars carry three decimals; round an offered amount down."""
    return math.floor(round(cpus * 1000, 3))


def bytes_to_mib(n: int) -> int:
    """Round a byte request up to whole MiB."""
    return -(-int(n) // MIB)


def offered_mb_to_mib(mb: float) -> int:
    """Mesos offers memory and disk in (binary) megabytes; round down."""
    return math.floor(round(mb, 3))


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of each resource the scheduler tracks, in integer units."""

    cpus: int = 0  #: milli-cores
    mem: int = 0  #: MiB
    disk: int = 0  #: MiB
    gpus: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpus + other.cpus, self.mem + other.mem, self.disk + other.disk,
            self.gpus + other.gpus,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpus - other.cpus, self.mem - other.mem, self.disk - other.disk,
            self.gpus - other.gpus,
        )

    def times(self, n: int) -> Resources:
        return Resources(self.cpus * n, self.mem * n, self.disk * n, self.gpus * n)

    def fits_in(self, other: Resources) -> bool:
        return (
            self.cpus <= other.cpus and self.mem <= other.mem
            and self.disk <= other.disk and self.gpus <= other.gpus
        )

    def count_in(self, other: Resources) -> int:
        """How many copies of ``self`` fit in ``other`` (a huge number if self is empty)."""
        n = 1 << 62
        if self.cpus > 0:
            n = min(n, other.cpus // self.cpus)
        if self.mem > 0:
            n = min(n, other.mem // self.mem)
        if self.disk > 0:
            n = min(n, other.disk // self.disk)
        if self.gpus > 0:
            n = min(n, other.gpus // self.gpus)
        return max(n, 0)

    def is_empty(self) -> bool:
        return self.cpus <= 0 and self.mem <= 0 and self.disk <= 0 and self.gpus <= 0

    def max(self, other: Resources) -> Resources:
        # one of them is often the larger in every resource (a node's largest offer,
        # seen again): then it is the answer, and no new object is needed
        if (other.cpus <= self.cpus and other.mem <= self.mem and other.disk <= self.disk
                and other.gpus <= self.gpus):
            return self
        if (self.cpus <= other.cpus and self.mem <= other.mem and self.disk <= other.disk
                and self.gpus <= other.gpus):
            return other
        return Resources(
            max(self.cpus, other.cpus), max(self.mem, other.mem),
            max(self.disk, other.disk), max(self.gpus, other.gpus),
        )

    @property
    def cores(self) -> float:
        return self.cpus / 1000

    def describe(self) -> str:
        """Human words, e.g. '1 core, 2.0 GiB memory, 1.0 GiB disk'."""
        parts = [f"{format_cores(self.cpus)} {'core' if self.cpus == 1000 else 'cores'}",
                 f"{format_mib(self.mem)} memory", f"{format_mib(self.disk)} disk"]
        if self.gpus:
            parts.append(f"{self.gpus} {'GPU' if self.gpus == 1 else 'GPUs'}")
        return ", ".join(parts)


#: no resources at all
EMPTY = Resources()


def format_cores(milli: int) -> str:
    return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli / 1000:g}"


def format_mib(mib: int) -> str:
    if mib >= 1024:
        return f"{mib / 1024:.1f} GiB"
    return f"{mib} MiB"
