"""The interface between the scheduling core and a resource manager.

Every backend looks like a Mesos cluster to the core: it produces offers (real ones,
or emulated from a capacity model), carries out the core's actions, and reports task
states back as events. Mesos gives native offers; the local machine, Slurm, LSF, Grid
Engine, Kubernetes and AWS Batch emulate them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .contract import NodeInfo
from .core.events import Action, Event
from .core.jobs import Limits
from .core.resources import MIB, offered_cpus_to_milli
from .core.scheduler import CoreConfig
from .options import CommonOptions

#: How a backend hands events to the core (thread-safe; never call it from execute()).
Post = Callable[..., None]


@dataclass(frozen=True)
class BackendContext:
    """What the batch system tells its backend beyond the options."""

    workflow_id: str
    #: directory for job logs (the logDir option, or a temporary one)
    log_dir: str
    #: extra attributes from a workflow engine's configuration (e.g. Toil's Config)
    engine_config: Any = None
    #: the status page's address, when one is served (Mesos links to it: webui_url)
    status_url: str | None = None


class Backend(abc.ABC):
    """An offer-emulating adapter. Its methods are called with the batch system's lock
    held, in order; events it learns on its own threads go through ``post``."""

    #: registry name, e.g. "local"
    name: ClassVar[str]
    #: the options dataclass this backend takes
    options_class: ClassVar[type[CommonOptions]]
    #: nodes remove the per-workflow work directory after their last job
    cleans_workers: ClassVar[bool] = False
    #: classes mixed into this backend's batch-system class, for names its users expect
    #: (e.g. Toil's MesosBatchSystem's)
    batch_system_extras: ClassVar[tuple[type, ...]] = ()
    #: jobs run on other machines that read the log directory (a batch queue): a log
    #: directory made for the run goes in the current directory, not in /dev/shm
    shared_log_dir: ClassVar[bool] = False

    def __init__(self, options: Any, post: Post, context: BackendContext) -> None:
        self.options = options
        self.post = post
        self.context = context

    def core_config(self) -> CoreConfig:
        """How the core should treat this backend's offers."""
        return CoreConfig()

    def limits(self) -> Limits:
        """The largest job this backend can ever run (checked at issue time)."""
        o = self.options
        return Limits(
            cpus=None if o.max_cores is None else offered_cpus_to_milli(o.max_cores),
            mem=None if o.max_memory is None else o.max_memory // MIB,
            disk=None if o.max_disk is None else o.max_disk // MIB,
        )

    @abc.abstractmethod
    def start(self) -> list[Event]:
        """Begin; return the first events (e.g. the first offers)."""

    @abc.abstractmethod
    def execute(self, actions: Sequence[Action]) -> list[Event]:
        """Carry out actions; return events they cause at once (e.g. a re-offer)."""

    def flush(self) -> None:  # noqa: B027 (optional hook; most backends defer nothing)
        """Finish, without the batch system's lock, what execute() deferred (the local
        backend starts processes here). Called after events the backend posted were
        dispatched, by the posting thread, once the lock is released; a backend must
        not rely on it being called."""

    def poll_nodes(self) -> list[Event]:
        """Fresh node statistics, when asked for nodes (getNodes)."""
        return []

    def status_note(self) -> str | None:
        """A sentence about the backend's own state for getSchedulingStatusMessage."""
        return None

    # A backend whose nodes are real cluster nodes rather than the agents of its offers
    # (a batch queue offers one emulated agent for the whole cluster) answers the node
    # questions itself; the defaults leave them to the core's registry of offered nodes.

    def node_infos(self, preemptible: bool | None, timeout: float | None
                   ) -> dict[str, NodeInfo] | None:
        """getNodes from the cluster; None: the core's registry. Called WITHOUT the
        batch system's lock (it may run a command)."""
        return None

    def node_in_use(self, address: str) -> bool | None:
        """nodeInUse from the cluster; None: the core's registry. Lock held."""
        return None

    def node_ignored(self, address: str, ignored: bool) -> None:  # noqa: B027 (optional)
        """ignoreNode (``ignored``) or unignoreNode: the core is told as well (its status
        message lists ignored nodes); a backend with real nodes keeps its own set too,
        e.g. to keep new submissions off them. Lock held; must not block."""

    def kill_now(self) -> None:  # noqa: B027 (optional: kills keep their grace elsewhere)
        """Kill the tasks being killed at once, and later ones without grace. Lock held;
        must not block."""

    def fatal_error(self) -> str | None:
        """Why this backend can never run a job again (refused credentials, ...), if so."""
        return None

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop everything this backend started; nothing may be left running."""
