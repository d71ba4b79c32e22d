"""Events the core takes and actions it returns: small immutable records, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..contract import BatchJobExitReason, UpdatedBatchJobInfo
from .jobs import JobSpec
from .resources import EMPTY, Resources
from .states import TaskState

# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Offer:
    """Free resources on one node, usable once (a Mesos offer or an emulated one)."""

    offer_id: str
    agent_id: str
    hostname: str
    ip: str
    resources: Resources
    preemptible: bool = False
    #: allocation role; offers are combined in one launch only within one role
    role: str = "*"
    #: epoch seconds when the node's maintenance starts (Mesos unavailability)
    unavailable_at: float | None = None
    #: resources our executor takes on this node before it runs there
    executor_overhead: Resources = EMPTY
    #: at most this many tasks may be launched on it (an emulated job-count limit,
    #: such as a batch queue's --maxJobs); None: as many as fit
    max_tasks: int | None = None
    #: the backend's own record of this offer (e.g. Mesos resource entries), opaque to
    #: the core: kept while the core holds the offer, handed back in Launch, and gone
    #: with the offer otherwise; never compared
    native: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """A node's measured load (from an executor's stats message or local psutil)."""

    cpu_load: float  #: 0..1 fraction of all cores
    mem_used: int  #: bytes
    cores_total: float
    mem_total: int  #: bytes
    tasks_running: int = 0


@dataclass(frozen=True, slots=True)
class JobsSubmitted:
    jobs: tuple[JobSpec, ...]
    now: float


@dataclass(frozen=True, slots=True)
class KillRequested:
    job_ids: tuple[int, ...]
    now: float


@dataclass(frozen=True, slots=True)
class OffersReceived:
    offers: tuple[Offer, ...]
    now: float


@dataclass(frozen=True, slots=True)
class OfferRescinded:
    offer_id: str
    now: float


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A backend's report on one task."""

    task_id: str
    state: TaskState
    now: float
    exit_code: int | None = None
    wall_time: float | None = None
    message: str = ""
    agent_id: str | None = None
    #: overrides the exit reason derived from ``state`` (e.g. MEMLIMIT, MAXJOBDURATION)
    exit_reason: BatchJobExitReason | None = None
    #: the task never ran if it has not reported anything yet (launched on a stale
    #: offer, a launch its agent never got, an id still taken): then its job is queued again
    never_started: bool = False
    #: with never_started: the launch was refused for a reason that would come again (the
    #: task itself is invalid, the agent cannot start our executor), so the job is tried
    #: again only a bounded number of times (CoreConfig.launch_refusals_max)
    launch_refused: bool = False
    #: with never_started: the launch was refused as a whole, together with other tasks,
    #: for the content of one of them: each is launched alone from now on, so that the
    #: bad one is refused on its own (and counted) while the others run
    launch_alone: bool = False
    #: Mesos refused the launch because another task holds its id (an earlier run's):
    #: whatever reported under this id was that task, and this one never ran
    id_taken: bool = False
    #: the task's process never started if the task reported STARTING and not yet
    #: RUNNING: its executor died while it was still starting (Mesos's command executor
    #: reports RUNNING once the process is spawned); queued again then. Without any
    #: update before (ours sends RUNNING only after a short delay) it may have run: LOST
    unless_running: bool = False
    #: what the task used, when its end was measured (bytes; CPU seconds)
    peak_memory: int | None = None
    cpu_time: float | None = None
    memory_at_most: int | None = None  #: bytes, a bound when peak_memory is unknown


@dataclass(frozen=True, slots=True)
class NodeStats:
    agent_id: str
    hostname: str
    ip: str
    load: NodeLoad
    now: float


@dataclass(frozen=True, slots=True)
class AgentLost:
    """A node is gone. With ``tasks_lost`` its unfinished tasks are LOST; without
    (a partition-aware backend) they stay UNREACHABLE until they come back or time out."""

    agent_id: str
    now: float
    tasks_lost: bool = True


@dataclass(frozen=True, slots=True)
class Connected:
    """(Re)connected to the resource manager: old offers are void; reconcile."""

    now: float


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Lost the resource manager: outstanding offers are void."""

    now: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: expire held offers, retry kills and reconciliation."""

    now: float


@dataclass(frozen=True, slots=True)
class NodesFiltered:
    """The node filter's verdicts (agent id, allowed): no new jobs go to rejected nodes.

    Computed outside the core (the filter is the user's code); the core keeps the last
    verdict per node and applies it to every offer until a new one comes."""

    verdicts: tuple[tuple[str, bool], ...]
    now: float


@dataclass(frozen=True, slots=True)
class IgnoreNode:
    address: str
    now: float


@dataclass(frozen=True, slots=True)
class UnignoreNode:
    address: str
    now: float


Event = (
    JobsSubmitted | KillRequested | OffersReceived | OfferRescinded | TaskStatus | NodeStats
    | AgentLost | Connected | Disconnected | Tick | IgnoreNode | UnignoreNode | NodesFiltered
)

# ---------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class TaskLaunch:
    task_id: str
    job: JobSpec


@dataclass(frozen=True, slots=True)
class Launch:
    """Start ``tasks`` on one node using ``offers`` (the held offers, with their native
    records); unused parts are declined."""

    agent_id: str
    hostname: str
    offers: tuple[Offer, ...]
    tasks: tuple[TaskLaunch, ...]
    refuse_seconds: float

    @property
    def offer_ids(self) -> tuple[str, ...]:
        return tuple(o.offer_id for o in self.offers)


@dataclass(frozen=True, slots=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True, slots=True)
class KillTask:
    task_id: str
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class Suppress:
    """Stop sending offers: nothing is queued."""


@dataclass(frozen=True, slots=True)
class Revive:
    """Send offers again now (and forget earlier decline filters)."""


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Ask for the current state of these tasks ((task id, agent id) pairs)."""

    tasks: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class Report:
    """A job's one and only result, with what the backend said of its end."""

    info: UpdatedBatchJobInfo
    message: str = ""


Action = Launch | Decline | KillTask | Suppress | Revive | Reconcile | Report
