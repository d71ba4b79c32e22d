"""Offers emulated from a capacity model: the base of every backend whose resources are
not Mesos offers (this machine, a batch queue, ...).

Each emulated node has a capacity: what may be in use there at once (cores, memory,
disk, GPUs, and maybe a number of tasks). Whatever is neither running nor offered is
offered at once, when a launch leaves some unused and the moment a task ends, as an
allocator that reacts at once would: there is no allocation delay, so the core holds
offers for ever and never revives on its own. The base carries out the core's actions
(launch, kill, decline, suppress, revive, reconcile) and hands each launch's tasks to
the concrete backend in one batch; the backend reports task ends through
``tasks_ended``, which frees their resources and offers them again before the ends
reach the core.
"""

from __future__ import annotations

import abc
import itertools
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..scheduler.backend import Backend, BackendContext, Post
from ..scheduler.core.events import (
    Action,
    Decline,
    Event,
    KillTask,
    Launch,
    Offer,
    OffersReceived,
    Reconcile,
    Revive,
    Suppress,
    TaskLaunch,
    TaskStatus,
)
from ..scheduler.core.resources import EMPTY, Resources, format_cores, format_mib
from ..scheduler.core.scheduler import CoreConfig
from ..scheduler.core.states import TaskState

#: what a node whose resources are not counted offers (only its task count limits it)
UNBOUNDED = Resources(cpus=1 << 50, mem=1 << 50, disk=1 << 50, gpus=1 << 30)


@dataclass(frozen=True, slots=True)
class Capacity:
    """What may be in use at once on one emulated node."""

    #: cores, memory, disk and GPUs; None: not counted (a batch queue's own
    #: scheduler places jobs; only the number of jobs is limited here)
    resources: Resources | None
    #: tasks at once (a batch queue's --maxJobs); None: as many as the resources allow
    max_tasks: int | None = None


@dataclass(frozen=True, slots=True)
class EmulatedNode:
    """One emulated agent: the offers' node."""

    agent_id: str
    hostname: str
    ip: str
    capacity: Capacity
    preemptible: bool = False


@dataclass(frozen=True, slots=True)
class LimitNames:
    """The options behind each limit, named in the status message."""

    cores: str = "maxCores"
    memory: str = "maxMemory"
    disk: str = "maxDisk"
    gpus: str = "maxGpus"
    tasks: str = "maxJobs"


@dataclass(slots=True)
class _Pool:
    """One node's accounting: free = capacity - running - offered."""

    node: EmulatedNode
    free: Resources
    free_tasks: int | None
    withheld: bool = False  # declined: nothing offered until a revive or a task end
    running: dict[str, Resources] = field(default_factory=dict)


class EmulatedBackend(Backend):
    """A backend that emulates offers from a capacity model.

    A subclass provides ``emulated_nodes`` (the capacity model), ``launch_tasks`` and
    ``kill_task`` (called with the batch system's lock held: hand slow work to a
    thread), and reports each task's end through ``tasks_ended``; optionally
    ``task_alive`` for reconciliation.
    """

    #: option names for the status message's "which limit holds"
    limit_names: ClassVar[LimitNames] = LimitNames()

    def __init__(self, options: object, post: Post, context: BackendContext) -> None:
        super().__init__(options, post, context)
        self._state = threading.Lock()  # guards the accounting below; never held in hooks
        self._pools: dict[str, _Pool] = {}
        self._offered: dict[str, tuple[str, Resources, int]] = {}  # id -> (agent, res, tasks)
        self._where: dict[str, str] = {}  # task id -> agent id, while it holds resources
        self._suppressed = False
        self._offer_ids = itertools.count(1)

    # ------------------------------------------------------------------ to provide
    @abc.abstractmethod
    def emulated_nodes(self) -> Sequence[EmulatedNode]:
        """The nodes and what each may run at once (asked once, by start())."""

    @abc.abstractmethod
    def launch_tasks(self, node: EmulatedNode, tasks: Sequence[TaskLaunch]) -> list[Event]:
        """Start these tasks, whose resources are reserved. Lock held: must not block.
        Returns the events known at once (RUNNING, say, or a terminal status for a task
        that cannot start); later ones go through ``tasks_ended`` or ``post``."""

    @abc.abstractmethod
    def kill_task(self, task_id: str) -> list[Event]:
        """Kill a task. Lock held: must not block. Returns its terminal status if it
        ended at once (it had not started yet); otherwise its end comes through
        ``tasks_ended`` when it is confirmed."""

    def task_alive(self, task_id: str) -> bool:
        """For reconciliation: does the task still run (or wait to)?"""
        with self._state:
            return task_id in self._where

    # ------------------------------------------------------------------ to call
    def tasks_ended(self, statuses: Sequence[TaskStatus]) -> None:
        """Tasks reached these states (terminal ones end): their resources are offered
        again first, then the statuses go to the core. From the backend's own threads,
        never with the batch system's lock held."""
        with self._state:
            offers = self._offer_all(unwithhold=True) if self._release(statuses) else []
        # The freed resources first: the core can launch the next task from this
        # thread before it does the bookkeeping of the ended one.
        if offers:
            self.post(*offers)
        self.post(*statuses)

    # ------------------------------------------------------------------ Backend
    def core_config(self) -> CoreConfig:
        # This allocator re-offers at once: hold offers for ever and never revive on
        # free; a decline only happens for an ignored node.
        return CoreConfig(offer_hold_seconds=float("inf"), revive_on_free=False)

    def start(self) -> list[Event]:
        with self._state:
            for node in self.emulated_nodes():
                if node.agent_id in self._pools:
                    raise ValueError(f"two emulated nodes are named {node.agent_id!r}")
                cap = node.capacity
                self._pools[node.agent_id] = _Pool(
                    node, UNBOUNDED if cap.resources is None else cap.resources,
                    cap.max_tasks)
            return self._offer_all()

    def execute(self, actions: Sequence[Action]) -> list[Event]:
        events: list[Event] = []
        for action in actions:
            if isinstance(action, Launch):
                events.extend(self._launch(action))
            elif isinstance(action, KillTask):
                ended = self.kill_task(action.task_id)
                with self._state:
                    self._release(ended)
                events.extend(ended)
            elif isinstance(action, Decline):
                with self._state:
                    for agent_id in self._return_offers(action.offer_ids):
                        self._pools[agent_id].withheld = True
            elif isinstance(action, Suppress):
                with self._state:
                    self._suppressed = True
            elif isinstance(action, Revive):
                with self._state:
                    self._suppressed = False
                    for pool in self._pools.values():
                        pool.withheld = False
            elif isinstance(action, Reconcile):
                now = time.time()
                events.extend(
                    TaskStatus(task_id, TaskState.RUNNING if self.task_alive(task_id)
                               else TaskState.UNKNOWN, now)
                    for task_id, _ in action.tasks)
        with self._state:
            events.extend(self._offer_all())
        return events

    def status_note(self) -> str | None:
        """Which limit holds: a node's task count at its limit, else its fullest
        resource (only while something runs)."""
        names = self.limit_names
        notes: list[str] = []
        with self._state:
            for pool in self._pools.values():
                if not pool.running:
                    continue
                cap = pool.node.capacity
                where = f" on {pool.node.hostname}" if len(self._pools) > 1 else ""
                n = len(pool.running)
                if cap.max_tasks is not None and n >= cap.max_tasks:
                    notes.append(f"Limit reached{where}: {n} of {cap.max_tasks} jobs at once "
                                 f"(--{names.tasks}).")
                    continue
                if cap.resources is None:
                    continue
                used = Resources()
                for res in pool.running.values():
                    used = used + res
                notes.append(f"Most used{where}: " + _fullest(used, cap.resources, names)
                             + ".")
        return " ".join(notes) or None

    # ------------------------------------------------------------------ internals
    def _launch(self, action: Launch) -> list[Event]:
        events: list[Event] = []
        accepted: list[TaskLaunch] = []
        now = time.time()
        with self._state:
            self._return_offers([o.offer_id for o in action.offers])
            pool = self._pools[action.agent_id]
            for task in action.tasks:
                res = task.job.resources
                if not res.fits_in(pool.free) or pool.free_tasks == 0:
                    # a stale offer: the core queues the job again
                    events.append(TaskStatus(task.task_id, TaskState.LOST, now,
                                             message="offer no longer valid",
                                             never_started=True))
                    continue
                pool.free = pool.free - res
                if pool.free_tasks is not None:
                    pool.free_tasks -= 1
                pool.running[task.task_id] = res
                self._where[task.task_id] = action.agent_id
                accepted.append(task)
        if accepted:
            started = self.launch_tasks(pool.node, accepted)
            if started:
                with self._state:
                    self._release(started)
                events.extend(started)
        return events

    def _return_offers(self, offer_ids: Iterable[str]) -> set[str]:
        """Offers back into their pools' free resources (state lock held)."""
        agents: set[str] = set()
        for oid in offer_ids:
            entry = self._offered.pop(oid, None)
            if entry is None:
                continue
            agent_id, res, tasks = entry
            pool = self._pools[agent_id]
            pool.free = pool.free + res
            if pool.free_tasks is not None:
                pool.free_tasks += tasks
            agents.add(agent_id)
        return agents

    def _release(self, events: Iterable[Event]) -> bool:
        """Free the resources of tasks that ended (state lock held)."""
        released = False
        for ev in events:
            if not isinstance(ev, TaskStatus) or not ev.state.terminal:
                continue
            agent_id = self._where.pop(ev.task_id, None)
            if agent_id is None:
                continue
            pool = self._pools[agent_id]
            pool.free = pool.free + pool.running.pop(ev.task_id)
            if pool.free_tasks is not None:
                pool.free_tasks += 1
            released = True
        return released

    def _offer_all(self, unwithhold: bool = False) -> list[Event]:
        """Offer what is free on every node (state lock held)."""
        if self._suppressed:
            return []
        offers: list[Offer] = []
        for agent_id, pool in self._pools.items():
            if unwithhold:
                pool.withheld = False
            if pool.withheld or pool.free.cpus <= 0 or pool.free_tasks == 0:
                continue
            node = pool.node
            oid = f"{agent_id}-{next(self._offer_ids)}"
            tasks = pool.free_tasks
            self._offered[oid] = (agent_id, pool.free, tasks or 0)
            offers.append(Offer(oid, agent_id, node.hostname, node.ip, pool.free,
                                preemptible=node.preemptible, max_tasks=tasks))
            pool.free = EMPTY
            if pool.free_tasks is not None:
                pool.free_tasks = 0
        return [OffersReceived(tuple(offers), time.time())] if offers else []


def _fullest(used: Resources, capacity: Resources, names: LimitNames) -> str:
    """The resource most used relative to its capacity, in words."""
    dims = [
        (used.cpus, capacity.cpus,
         f"{format_cores(used.cpus)} of {format_cores(capacity.cpus)} cores", names.cores),
        (used.mem, capacity.mem,
         f"{format_mib(used.mem)} of {format_mib(capacity.mem)} memory", names.memory),
        (used.disk, capacity.disk,
         f"{format_mib(used.disk)} of {format_mib(capacity.disk)} disk", names.disk),
        (used.gpus, capacity.gpus, f"{used.gpus} of {capacity.gpus} GPUs", names.gpus),
    ]
    top = max(dims, key=lambda d: d[0] / d[1] if d[1] > 0 else -1.0)
    return f"{top[2]} (--{top[3]})"
