"""Packing: jobs of less than a core run together in one allocation of the batch system.

A batch system that gives every job whole CPUs runs one 0.1-core job per CPU; an
offer-emulating scheduler can do what a Mesos agent does, and run ten of them on that
CPU. A pack is such a group: one submission (or one element of an array of packs)
that asks for the sum of its jobs' requests, the cores rounded up to whole CPUs, and
whose script (wrapper.pack_script) runs them all at once. Every job keeps its own
wrapper, log, start and exit records, and is reported on its own.

Pure arithmetic only: how many jobs of one shape go in a pack, and what a pack asks for.
"""

from __future__ import annotations

from dataclasses import dataclass

MILLI = 1000  #: milli-cores in a core


@dataclass(frozen=True, slots=True)
class PackRequest:
    """What one pack asks the batch system for."""

    cpus: int  #: whole CPUs: the jobs' cores summed, rounded up
    memory: int  #: bytes, summed
    disk: int  #: bytes, summed


def jobs_per_pack(*, milli_cores: int, memory: int, gpus: int, most: int,
                  node_memory: int | None = None, disk: int = 0,
                  node_disk: int | None = None) -> int:
    """How many jobs of this shape go in one pack: as many as fill one CPU (their
    cores summed), at most ``most``, and no more memory than ``node_memory`` nor more
    disk than ``node_disk`` (the largest node's, when that is asked for: a pack asks
    for the sum, which no node may have although each job fits). 1: this shape is not
    packed (a core or more, GPUs, packing off)."""
    if most <= 1 or gpus > 0 or milli_cores >= MILLI:
        return 1
    n = min(most, MILLI // max(1, milli_cores))
    if node_memory is not None and memory > 0:
        n = min(n, node_memory // memory)
    if node_disk is not None and disk > 0:
        n = min(n, node_disk // disk)
    return max(1, n)


def pack_request(*, milli_cores: int, memory: int, disk: int, jobs: int) -> PackRequest:
    """What a pack of ``jobs`` jobs of one shape asks for (milli-cores are summed
    exactly: ten 0.1-core jobs are one CPU, not two)."""
    return PackRequest(cpus=max(1, -(-milli_cores * jobs // MILLI)), memory=memory * jobs,
                       disk=disk * jobs)
