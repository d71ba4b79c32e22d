"""The public data types of the batch-system API, with Toil's names and meanings.

These are what a workflow engine sees: job descriptions in, results and node
information out, and the exceptions the API raises.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: Exit status reported when the backend could not learn the job's real exit code.
EXIT_STATUS_UNAVAILABLE = 255


class BatchJobExitReason(enum.IntEnum):
    """Why a job left the batch system (values as in Toil)."""

    FINISHED = 1  #: the job's process exited with status 0
    FAILED = 2  #: the job's process exited with a non-zero status
    LOST = 3  #: the node or executor running the job went away
    KILLED = 4  #: the job was killed by something other than killBatchJobs
    ERROR = 5  #: the job could not be started (invalid task, launch failure)
    MEMLIMIT = 6  #: the job was killed for exceeding its memory
    MISSING = 7  #: the batch system no longer knows the job
    MAXJOBDURATION = 8  #: the job ran past its wall time
    PARTITION = 9  #: the job ran on a node cut off from the scheduler


class JobUsage(NamedTuple):
    """Where a finished job ran and what it used, as its node measured it (None: not
    known, e.g. a backend that does not measure)."""

    node: str | None = None  #: the hostname of the node it ran on
    #: the peak resident memory of the job's process tree, bytes (the largest process's
    #: peak, or the sum of its processes' sampled at once when memory was enforced)
    peak_memory: int | None = None
    cpu_time: float | None = None  #: user + system CPU seconds of its processes
    #: when peak_memory is None: bytes it used at most (a short job that stayed under
    #: its task runner's own size: the kernel tells only that bound, see the README)
    memory_at_most: int | None = None


class UpdatedBatchJobInfo(NamedTuple):
    """One finished job, returned exactly once by getUpdatedBatchJob."""

    jobID: int
    exitStatus: int = EXIT_STATUS_UNAVAILABLE
    exitReason: BatchJobExitReason | None = None
    wallTime: float | None = None
    backing_id: str | None = None
    #: where it ran and what it used (mesobatch's addition to Toil's fields)
    usage: JobUsage | None = None


class NodeInfo(NamedTuple):
    """What the scheduler knows of one node, for autoscalers.

    ``coresUsed`` and ``memoryUsed`` are load fractions (0..1); memory is bytes.
    """

    coresUsed: float
    memoryUsed: float
    coresTotal: float
    memoryTotal: int
    requestedCores: float
    requestedMemory: int
    workers: int
    #: the batch system's nodeFilter rejects this node: no new jobs go there
    filtered: bool = False


class ExecutorInfo(NamedTuple):
    """A node as ``nodeFilter`` callables see it (the names of Toil's Mesos backend).

    ``nodeAddress`` is the node's IP (its hostname if no IP is known), ``agentId`` its
    Mesos agent id (the node's name on other backends), ``nodeInfo`` what getNodes says of
    it, ``lastSeen`` the epoch seconds of its last offer or load report."""

    nodeAddress: str
    agentId: str
    nodeInfo: NodeInfo | None
    lastSeen: float


class InsufficientSystemResources(Exception):
    """A job asks for more of a resource than this batch system can ever give it."""

    def __init__(
        self,
        requester: str,
        resource: str,
        requested: str,
        available: str,
        option: str | None = None,
        hint: str | None = None,
    ) -> None:
        """``requested`` and ``available`` are phrases with their unit and resource,
        e.g. "64.0 GiB of memory". ``option`` raises the limit; ``hint`` says what to
        do instead where no option does (the cluster's largest node holds it)."""
        self.requester = requester
        self.resource = resource
        self.requested = requested
        self.available = available
        self.option = option
        self.hint = hint
        hint = (f"; {hint}" if hint else f"; raise the limit with --{option}" if option
                else "")
        super().__init__(
            f"{requester} requests {requested}, but at most {available} can be provided"
            f"{hint}"
        )


class AcquisitionTimeoutException(Exception):
    """Resources for a job could not be acquired in time."""

    def __init__(self, resource: str, requested: float, available: float) -> None:
        self.resource = resource
        self.requested = requested
        self.available = available
        super().__init__(
            f"timed out acquiring {requested} of {resource}; {available} available"
        )


class DeadlockException(Exception):
    """The workflow cannot make progress: queued jobs can never be scheduled."""

    def __init__(self, msg: str) -> None:
        super().__init__(f"deadlock: {msg}")


@dataclass(frozen=True)
class JobDescription:
    """A job's command and resource request.

    Any object with the same attributes (for example Toil's JobDescription, which
    names its fields ``jobName`` and ``preemptible``) is accepted wherever this is.
    Memory and disk are bytes; cores may be fractional.
    """

    command: str = ""
    cores: float = 1.0
    memory: int = 2 * 1024**3
    disk: int = 2 * 1024**3
    preemptible: bool = False
    accelerators: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    name: str | None = None
    walltime: float | None = None
