"""The pure scheduling core: events in, actions out. No threads, sockets or clocks.

It owns the queue, the offers it holds, every issued job's task state, and the node
registry. Each job yields exactly one Report, unless it is killed, in which case it
yields none. Time comes in with the events (``now``), so tests drive it directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..contract import (
    EXIT_STATUS_UNAVAILABLE,
    BatchJobExitReason,
    JobUsage,
    UpdatedBatchJobInfo,
)
from .events import (
    Action,
    AgentLost,
    Connected,
    Decline,
    Disconnected,
    Event,
    IgnoreNode,
    JobsSubmitted,
    KillRequested,
    KillTask,
    Launch,
    NodesFiltered,
    NodeStats,
    Offer,
    OfferRescinded,
    OffersReceived,
    Reconcile,
    Report,
    Revive,
    Suppress,
    TaskLaunch,
    TaskStatus,
    Tick,
    UnignoreNode,
)
from .jobs import JobSpec
from .matching import pack
from .nodes import NodeRegistry
from .queue import JobQueue
from .resources import EMPTY
from .states import TaskState

_EXIT_REASONS = {
    TaskState.FINISHED: BatchJobExitReason.FINISHED,
    TaskState.FAILED: BatchJobExitReason.FAILED,
    TaskState.KILLED: BatchJobExitReason.KILLED,
    TaskState.LOST: BatchJobExitReason.LOST,
    TaskState.ERROR: BatchJobExitReason.ERROR,
}


@dataclass(frozen=True)
class CoreConfig:
    """How the core treats offers; each backend picks values that suit its allocator."""

    #: hold offers this long while nothing uses them, so new jobs launch at once
    offer_hold_seconds: float = 3.0
    #: filter sent when declining offers we held and did not use
    decline_refuse_seconds: float = 5.0
    #: filter for offers from ignored or draining nodes (renewed at every re-offer)
    ignored_refuse_seconds: float = 600.0
    #: filter for the unused part of accepted offers
    accept_refuse_seconds: float = 1.0
    #: ask for offers again as soon as a task frees resources while jobs wait
    revive_on_free: bool = True
    #: at most one revive per this many seconds; reasons arising meanwhile wait for it
    revive_min_interval: float = 0.01
    #: maintenance starting within this window makes a node draining
    drain_window_seconds: float = 3600.0
    #: implicit reconciliation of every task, periodically
    reconcile_interval: float = 900.0
    #: explicit reconciliation of unanswered tasks backs off from ... to ...
    reconcile_backoff_initial: float = 2.0
    reconcile_backoff_max: float = 60.0
    #: a launched task with no status at all this long is asked about explicitly (and
    #: again with backoff until answered): a master that fails over after taking an
    #: ACCEPT, or launches on offers a re-subscription voided, can lose it without a
    #: word, and only an explicit reconciliation tells (TASK_GONE/TASK_LOST); inf: never
    #: (a backend that cannot lose a launch)
    launch_reconcile_seconds: float = math.inf
    #: re-send a kill not yet confirmed after this long
    kill_retry_seconds: float = 30.0
    #: report a task unreachable for this long as LOST (PARTITION) and kill it should it
    #: come back; 0: as soon as it is unreachable
    unreachable_timeout: float = 0.0
    #: a job whose launch is refused for its own sake (launch_refused) this many times is
    #: reported as ERROR; launches that failed for transient reasons are retried freely
    launch_refusals_max: int = 3
    #: appended to task ids ("<job>.<attempt>-<tag>"), so that they never repeat across
    #: runs that share a framework id
    run_tag: str = ""


@dataclass(slots=True)
class TaskRecord:
    job: JobSpec
    state: TaskState = TaskState.QUEUED
    task_id: str | None = None
    attempt: int = 0
    agent_id: str | None = None
    running_since: float | None = None
    state_since: float = 0.0
    killed_at: float | None = None
    refusals: int = 0
    alone: bool = False  # launched alone since a launch shared with others was refused


@dataclass(slots=True)
class _Await:
    next_at: float
    backoff: float


class SchedulerCore:
    """Queue, offer matching, task states and nodes, driven by events."""

    def __init__(self, config: CoreConfig | None = None) -> None:
        self.config = config or CoreConfig()
        self.queue = JobQueue()
        self.nodes = NodeRegistry()
        self.jobs: dict[int, TaskRecord] = {}  # every issued job not yet terminal
        self.tasks: dict[str, TaskRecord] = {}  # launched, not yet terminal
        self.held: dict[str, list[tuple[Offer, float]]] = {}  # agent id -> (offer, since)
        self.suppressed = False
        self.connected = True
        #: events taken so far: the core's state changes only with one (a version)
        self.events_handled = 0
        self._revive_sent_at: float | None = None
        self._want_revive = False
        self._awaiting: dict[str, _Await] = {}  # task id -> next reconciliation
        wait = self.config.launch_reconcile_seconds
        self._launch_check: float | None = wait if math.isfinite(wait) else None
        self._next_reconcile: float | None = None
        # live tasks nobody here owns (an earlier run's, or reported and given up) -> when
        # we last asked for their kill
        self._orphans_killed: dict[str, float] = {}

    # ------------------------------------------------------------------ dispatch
    def handle(self, event: Event) -> list[Action]:
        """Take one event; return the actions it calls for, in order."""
        handler = self._HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"unknown event {event!r}")
        self.events_handled += 1
        out: list[Action] = []
        handler(self, event, out)
        self._policy(event.now, out)
        return out

    # ------------------------------------------------------------------ queries
    def running(self, now: float) -> dict[int, float]:
        """Jobs believed running (not killed) -> seconds since they started."""
        out: dict[int, float] = {}
        for rec in self.tasks.values():
            if rec.killed_at is None and rec.running_since is not None and rec.state in (
                TaskState.RUNNING, TaskState.UNREACHABLE, TaskState.KILLING
            ):
                out[rec.job.job_id] = now - rec.running_since
        return out

    def issued(self) -> list[int]:
        return [jid for jid, rec in self.jobs.items() if rec.killed_at is None]

    def unconfirmed_kills(self, job_ids: set[int]) -> set[int]:
        return {j for j in job_ids if j in self.jobs and self.jobs[j].killed_at is not None}

    def next_deadline(self) -> float | None:
        """When a Tick will next have work to do (None: no timed work)."""
        times: list[float] = []
        hold = self.config.offer_hold_seconds
        if math.isfinite(hold):
            times.extend(since + hold for offers in self.held.values() for _, since in offers)
        if self._want_revive and self._revive_sent_at is not None:
            times.append(self._revive_sent_at + self.config.revive_min_interval)
        times.extend(a.next_at for a in self._awaiting.values())
        if self._next_reconcile is not None and self.tasks:
            times.append(self._next_reconcile)
        for rec in self.tasks.values():
            if rec.killed_at is not None:
                times.append(rec.killed_at + self.config.kill_retry_seconds)
            elif rec.state is TaskState.UNREACHABLE:
                times.append(rec.state_since + self.config.unreachable_timeout)
        return min(times) if times else None

    # ------------------------------------------------------------------ handlers
    def _submit(self, event: JobsSubmitted, out: list[Action]) -> None:
        for spec in event.jobs:
            if spec.job_id in self.jobs:
                raise ValueError(f"job id {spec.job_id} was issued twice")
            self.jobs[spec.job_id] = TaskRecord(spec, state_since=event.now)
            self.queue.push(spec)
        self._match_held(event.now, out)
        if self.queue:
            self._want_revive = True

    def _offers(self, event: OffersReceived, out: list[Action]) -> None:
        for offer in event.offers:
            self.nodes.observe_offer(offer, event.now)
            self.held.setdefault(offer.agent_id, []).append((offer, event.now))
        self._decline_unusable(event.now, out)
        self._match_held(event.now, out)

    def _rescind(self, event: OfferRescinded, out: list[Action]) -> None:
        for agent_id, offers in list(self.held.items()):
            kept = [(o, t) for o, t in offers if o.offer_id != event.offer_id]
            if len(kept) != len(offers):
                if kept:
                    self.held[agent_id] = kept
                else:
                    del self.held[agent_id]
                return

    def _kill(self, event: KillRequested, out: list[Action]) -> None:
        for job_id in event.job_ids:
            rec = self.jobs.get(job_id)
            if rec is None or rec.killed_at is not None:
                continue
            if rec.state is TaskState.QUEUED:
                self.queue.remove(job_id)
                del self.jobs[job_id]
                continue
            rec.killed_at = event.now
            assert rec.task_id is not None
            out.append(KillTask(rec.task_id, rec.agent_id))

    def _status(self, event: TaskStatus, out: list[Action]) -> None:
        rec = self.tasks.get(event.task_id)
        if rec is None:
            self._unknown_task(event, out)
            return
        self._awaiting.pop(event.task_id, None)
        state = event.state
        if not state.terminal:
            if state is TaskState.UNKNOWN:
                # the resource manager does not know it (yet): keep asking
                self._await(event.task_id, event.now)
                return
            if state is not rec.state:
                rec.state = state
                rec.state_since = event.now
            if state is TaskState.RUNNING and rec.running_since is None:
                rec.running_since = event.now
            if (state is TaskState.UNREACHABLE and rec.killed_at is None
                    and self.config.unreachable_timeout <= 0):
                self._give_up(event.task_id, rec, event.now, out)
            return
        del self.tasks[event.task_id]
        self.nodes.task_ended(rec.agent_id, rec.job.job_id)
        if self.config.revive_on_free:
            self._want_revive = True
        if rec.killed_at is not None:
            del self.jobs[rec.job.job_id]
            return
        # unless_running: only a task still STARTING surely never ran; our executor says
        # nothing before RUNNING, which it says only of a task still running after a
        # short delay (a job that ends sooner has its terminal update alone), so one
        # with nothing reported may have run: reported LOST, never started twice
        if event.id_taken or (event.never_started and rec.state is TaskState.LAUNCHING) or (
                event.unless_running and rec.state is TaskState.STARTING):
            # The job is untouched (e.g. launched on a stale offer): try again, unless the
            # launch was refused for its own sake too often.
            if event.launch_refused:
                rec.refusals += 1
            if event.launch_alone or event.launch_refused:
                rec.alone = True
            if event.launch_refused and rec.refusals >= self.config.launch_refusals_max:
                self._report(rec, replace(
                    event, exit_reason=BatchJobExitReason.ERROR,
                    message=f"launch refused {rec.refusals} times: {event.message}"), out)
            else:
                rec.state = TaskState.QUEUED
                rec.state_since = event.now
                rec.task_id = None
                rec.agent_id = None
                rec.running_since = None
                rec.attempt += 1
                self.queue.push_front(rec.job)
                self._want_revive = True
        else:
            self._report(rec, event, out)
        self._match_held(event.now, out)

    def _report(self, rec: TaskRecord, event: TaskStatus, out: list[Action]) -> None:
        del self.jobs[rec.job.job_id]
        state = event.state
        exit_code = event.exit_code
        if exit_code is None:
            exit_code = 0 if state is TaskState.FINISHED else EXIT_STATUS_UNAVAILABLE
        wall = event.wall_time
        if wall is None:
            wall = event.now - rec.running_since if rec.running_since is not None else 0.0
        out.append(Report(UpdatedBatchJobInfo(
            jobID=rec.job.job_id,
            exitStatus=exit_code,
            exitReason=event.exit_reason or _EXIT_REASONS[state],
            wallTime=wall,
            backing_id=event.task_id,
            usage=self._usage(rec, event),
        ), event.message))

    def _usage(self, rec: TaskRecord, event: TaskStatus) -> JobUsage | None:
        node = self.nodes.nodes.get(rec.agent_id) if rec.agent_id is not None else None
        hostname = node.hostname if node is not None else rec.agent_id
        if hostname is None and event.peak_memory is None and event.cpu_time is None:
            return None
        return JobUsage(hostname, event.peak_memory, event.cpu_time, event.memory_at_most)

    def _unknown_task(self, event: TaskStatus, out: list[Action]) -> None:
        """An update for a task we do not track: a duplicate, a stale re-send, or an orphan."""
        if event.state.terminal:
            self._orphans_killed.pop(event.task_id, None)
            return
        if event.state in (TaskState.UNKNOWN, TaskState.UNREACHABLE):
            return
        # A live task nobody here owns (left from an earlier run of this framework, one
        # given up as unreachable whose agent came back, or a stale RUNNING re-sent after
        # its end): make sure it does not run on. Said again if it still lives later.
        last = self._orphans_killed.get(event.task_id)
        if last is None or event.now - last >= self.config.kill_retry_seconds:
            self._orphans_killed[event.task_id] = event.now
            out.append(KillTask(event.task_id, event.agent_id))

    def _agent_lost(self, event: AgentLost, out: list[Action]) -> None:
        self.held.pop(event.agent_id, None)
        if not event.tasks_lost:
            node = self.nodes.nodes.get(event.agent_id)
            if node is not None:
                node.lost = True
            return
        for rec in [r for r in self.tasks.values() if r.agent_id == event.agent_id]:
            assert rec.task_id is not None
            self._status(TaskStatus(rec.task_id, TaskState.LOST, event.now,
                                    message="node lost", agent_id=event.agent_id), out)
        self.nodes.mark_lost(event.agent_id)

    def _node_stats(self, event: NodeStats, out: list[Action]) -> None:
        self.nodes.observe_load(event.agent_id, event.hostname, event.ip, event.load,
                                event.now)

    def _nodes_filtered(self, event: NodesFiltered, out: list[Action]) -> None:
        rejected = self.nodes.filtered
        allowed_again = False
        for agent_id, allowed in event.verdicts:
            if allowed:
                if agent_id in rejected:
                    rejected.discard(agent_id)
                    allowed_again = True
            else:
                rejected.add(agent_id)
        self._decline_unusable(event.now, out)
        if allowed_again:
            self._want_revive = True  # its offers were declined: ask for them again

    def _ignore(self, event: IgnoreNode, out: list[Action]) -> None:
        self.nodes.ignore(event.address)
        self._decline_unusable(event.now, out)

    def _unignore(self, event: UnignoreNode, out: list[Action]) -> None:
        self.nodes.unignore(event.address)
        # its offers were declined with a long filter: ask for them again
        self._want_revive = True
        self._revive_sent_at = None

    def _disconnected(self, event: Disconnected, out: list[Action]) -> None:
        self.held.clear()
        self.connected = False
        self._revive_sent_at = None

    def _connected(self, event: Connected, out: list[Action]) -> None:
        now = event.now
        self.held.clear()
        self.connected = True
        self.suppressed = False
        self._revive_sent_at = None
        self._next_reconcile = now + self.config.reconcile_interval
        # Implicit: the master tells us every task it knows of ours, so tasks nobody here
        # owns (left by an earlier run with this framework id) are found and killed.
        out.append(Reconcile(()))
        if self.tasks:
            out.append(Reconcile(tuple((t, r.agent_id) for t, r in self.tasks.items())))
            for task_id in self.tasks:
                self._awaiting[task_id] = _Await(
                    now + self.config.reconcile_backoff_initial,
                    self.config.reconcile_backoff_initial,
                )

    def _await(self, task_id: str, now: float) -> None:
        a = self._awaiting.get(task_id)
        backoff = self.config.reconcile_backoff_initial if a is None else a.backoff
        self._awaiting[task_id] = _Await(now + backoff, backoff)

    def _tick(self, event: Tick, out: list[Action]) -> None:
        self._expire_held(event.now, out)
        self._retry_kills(event.now, out)
        self._give_up_unreachable(event.now, out)
        self._reconcile_due(event.now, out)

    def _expire_held(self, now: float, out: list[Action]) -> None:
        """Held offers nobody used within the hold time go back."""
        hold = self.config.offer_hold_seconds
        expired: list[str] = []
        for agent_id, offers in list(self.held.items()):
            keep = [(o, t) for o, t in offers if now - t < hold]
            expired.extend(o.offer_id for o, t in offers if now - t >= hold)
            if keep:
                self.held[agent_id] = keep
            else:
                del self.held[agent_id]
        if expired:
            out.append(Decline(tuple(expired), self.config.decline_refuse_seconds))

    def _retry_kills(self, now: float, out: list[Action]) -> None:
        """Kills not yet confirmed: say them again."""
        for task_id, rec in self.tasks.items():
            if rec.killed_at is not None and now - rec.killed_at >= self.config.kill_retry_seconds:
                rec.killed_at = now
                out.append(KillTask(task_id, rec.agent_id))

    def _give_up_unreachable(self, now: float, out: list[Action]) -> None:
        """Tasks cut off too long are LOST (PARTITION), and killed should they return."""
        timeout = self.config.unreachable_timeout
        for task_id, rec in list(self.tasks.items()):
            if (rec.state is TaskState.UNREACHABLE and rec.killed_at is None
                    and now - rec.state_since >= timeout):
                self._give_up(task_id, rec, now, out)

    def _give_up(self, task_id: str, rec: TaskRecord, now: float, out: list[Action]) -> None:
        """Report an unreachable task LOST (PARTITION) and forget it. Should its agent come
        back, its next live update makes it an orphan, killed then (_unknown_task)."""
        self._status(TaskStatus(
            task_id, TaskState.LOST, now, agent_id=rec.agent_id,
            message=f"its agent has been unreachable for {now - rec.state_since:.3g} s",
            exit_reason=BatchJobExitReason.PARTITION), out)
        out.append(KillTask(task_id, rec.agent_id))

    def _reconcile_due(self, now: float, out: list[Action]) -> None:
        """Ask again about unanswered tasks (with backoff), and about all periodically."""
        cfg = self.config
        due = [t for t, a in self._awaiting.items() if a.next_at <= now and t in self.tasks]
        for t in [t for t in self._awaiting if t not in self.tasks]:
            del self._awaiting[t]
        if due:
            out.append(Reconcile(tuple((t, self.tasks[t].agent_id) for t in due)))
            for t in due:
                a = self._awaiting[t]
                a.backoff = min(a.backoff * 2, cfg.reconcile_backoff_max)
                a.next_at = now + a.backoff
        if self._next_reconcile is not None and now >= self._next_reconcile:
            self._next_reconcile = now + cfg.reconcile_interval
            if self.tasks:
                out.append(Reconcile(()))

    # ------------------------------------------------------------------ offers
    def _usable(self, agent_id: str, now: float) -> bool:
        node = self.nodes.nodes.get(agent_id)
        if node is None:
            return True
        if self.nodes.is_ignored(agent_id, node.hostname, node.ip):
            return False
        return not self.nodes.is_draining(node, now, self.config.drain_window_seconds)

    def _decline_unusable(self, now: float, out: list[Action]) -> None:
        """Offers from ignored or draining nodes go straight back, with a long filter;
        those of nodes the node filter rejects with the usual one (its verdict may
        change at any time, and is asked again at each offer)."""
        refused: list[str] = []
        filtered: list[str] = []
        for agent_id in list(self.held):
            if not self._usable(agent_id, now):
                refused.extend(o.offer_id for o, _ in self.held.pop(agent_id))
            elif agent_id in self.nodes.filtered:
                filtered.extend(o.offer_id for o, _ in self.held.pop(agent_id))
        if refused:
            out.append(Decline(tuple(refused), self.config.ignored_refuse_seconds))
        if filtered:
            out.append(Decline(tuple(filtered), self.config.decline_refuse_seconds))

    def _match_held(self, now: float, out: list[Action]) -> None:
        if not self.queue or not self.held:
            return
        # preemptible nodes first: they take only preemptible jobs, so those land
        # there before they use up nodes that non-preemptible jobs need
        held = self.held
        agents = (list(held) if len(held) == 1
                  else sorted(held, key=lambda a: not held[a][0][0].preemptible))
        for agent_id in agents:
            if not self.queue:
                break
            offers_held = held[agent_id]
            if len(offers_held) == 1:  # the usual case: one offer, one role
                offer = offers_held[0][0]
                self._launch_on(agent_id, offer.role, [offer], now, out)
                continue
            by_role: dict[str, list[Offer]] = {}
            for offer, _ in offers_held:
                by_role.setdefault(offer.role, []).append(offer)
            for role, offers in by_role.items():
                self._launch_on(agent_id, role, offers, now, out)

    def _launch_on(self, agent_id: str, role: str, offers: list[Offer], now: float,
                   out: list[Action]) -> None:
        if len(offers) == 1:
            total = offers[0].resources
            overhead = EMPTY.max(offers[0].executor_overhead)
            cap = offers[0].max_tasks  # task-count limit of the offers (None: none)
        else:
            total = EMPTY
            overhead = EMPTY
            cap = 0
            for offer in offers:
                total = total + offer.resources
                overhead = overhead.max(offer.executor_overhead)
                cap = None if cap is None or offer.max_tasks is None else cap + offer.max_tasks
        if not overhead.fits_in(total):
            return
        chosen = pack(self.queue, total if overhead is EMPTY else total - overhead,
                      offers[0].preemptible, cap)
        if not chosen:
            return
        jobs = self.jobs
        recs = [jobs[spec.job_id] for spec in chosen]
        if len(chosen) > 1:
            suspect = next((r.job for r in recs if r.alone), None)
            if suspect is not None:
                # a job whose shared launch was refused goes alone: the others wait for
                # the next offer rather than share its fate again
                for spec in reversed(chosen):
                    if spec is not suspect:
                        self.queue.push_front(spec)
                recs = [jobs[suspect.job_id]]
        launches: list[TaskLaunch] = []
        run_tag = self.config.run_tag
        task_started = self.nodes.task_started
        for rec in recs:
            spec = rec.job
            task_id = f"{spec.job_id}.{rec.attempt}"
            if run_tag:
                task_id = f"{task_id}-{run_tag}"
            rec.state = TaskState.LAUNCHING
            rec.state_since = now
            rec.task_id = task_id
            rec.agent_id = agent_id
            self.tasks[task_id] = rec
            if self._launch_check is not None:  # any status ends the wait (_status)
                self._awaiting[task_id] = _Await(now + self._launch_check,
                                                 self.config.reconcile_backoff_initial)
            task_started(agent_id, spec.job_id, spec.resources)
            launches.append(TaskLaunch(task_id, spec))
        held = self.held.get(agent_id, [])
        if len(held) == len(offers):  # offers came from there: all of them are used
            self.held.pop(agent_id, None)
        else:
            used = {o.offer_id for o in offers}
            kept = [(o, t) for o, t in held if o.offer_id not in used]
            if kept:
                self.held[agent_id] = kept
            else:
                self.held.pop(agent_id, None)
        out.append(Launch(agent_id, offers[0].hostname,
                          (offers[0],) if len(offers) == 1
                          else tuple(sorted(offers, key=lambda o: o.offer_id)),
                          tuple(launches), self.config.accept_refuse_seconds))

    def _policy(self, now: float, out: list[Action]) -> None:
        """Suppress when idle; revive when work waits and something new may be offered
        (jobs came, resources were freed, a node was unignored), at a bounded rate.

        Reviving when a task ends gets its resources offered at once instead of at the
        next allocation cycle (Mesos allocates on REVIVE)."""
        if not self.connected:
            return
        if self.queue:
            if self.suppressed:
                self.suppressed = False
                self._emit_revive(now, out)
            elif self._want_revive and (
                self._revive_sent_at is None
                or now - self._revive_sent_at >= self.config.revive_min_interval
            ):
                self._emit_revive(now, out)
        else:
            self._want_revive = False
            if not self.held and not self.suppressed:
                self.suppressed = True
                out.append(Suppress())

    def _emit_revive(self, now: float, out: list[Action]) -> None:
        self._want_revive = False
        self._revive_sent_at = now
        out.append(Revive())

    #: each event type's handler: handler(core, event, actions out)
    _HANDLERS: ClassVar[dict[type[Any], Callable[[SchedulerCore, Any, list[Action]], None]]] = {
        JobsSubmitted: _submit,
        TaskStatus: _status,
        OffersReceived: _offers,
        KillRequested: _kill,
        Tick: _tick,
        OfferRescinded: _rescind,
        NodeStats: _node_stats,
        Connected: _connected,
        Disconnected: _disconnected,
        AgentLost: _agent_lost,
        IgnoreNode: _ignore,
        UnignoreNode: _unignore,
        NodesFiltered: _nodes_filtered,
    }
