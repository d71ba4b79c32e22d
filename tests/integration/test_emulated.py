"""The emulation base: capacity -> offers, the core's actions, batched launches."""

from __future__ import annotations

from collections.abc import Sequence

from mesobatch.integration.emulated import (
    UNBOUNDED,
    Capacity,
    EmulatedBackend,
    EmulatedNode,
)
from mesobatch.scheduler.backend import BackendContext
from mesobatch.scheduler.contract import JobDescription
from mesobatch.scheduler.core.events import (
    Action,
    Decline,
    Event,
    JobsSubmitted,
    KillRequested,
    KillTask,
    Launch,
    Offer,
    OffersReceived,
    Report,
    Revive,
    Suppress,
    TaskLaunch,
    TaskStatus,
)
from mesobatch.scheduler.core.jobs import build_spec
from mesobatch.scheduler.core.resources import Resources
from mesobatch.scheduler.core.scheduler import SchedulerCore
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.options import CommonOptions

TWO_CORES = Resources(cpus=2000, mem=4096, disk=4096)


class Toy(EmulatedBackend):
    """Tasks 'start' at once; the test ends them."""

    name = "toy"
    options_class = CommonOptions

    def __init__(self, *nodes: EmulatedNode) -> None:
        self.posted: list[Event] = []
        super().__init__(CommonOptions(), lambda *e: self.posted.extend(e),
                         BackendContext("wf", "/nonexistent"))
        self.nodes = nodes
        self.batches: list[tuple[str, list[str]]] = []
        self.unstarted: set[str] = set()  # kills of these end at once

    def emulated_nodes(self) -> Sequence[EmulatedNode]:
        return self.nodes

    def launch_tasks(self, node: EmulatedNode, tasks: Sequence[TaskLaunch]) -> list[Event]:
        self.batches.append((node.agent_id, [t.task_id for t in tasks]))
        return [TaskStatus(t.task_id, TaskState.ERROR, 0.0) if t.job.command == "bad"
                else TaskStatus(t.task_id, TaskState.RUNNING, 0.0) for t in tasks]

    def kill_task(self, task_id: str) -> list[Event]:
        if task_id in self.unstarted:
            return [TaskStatus(task_id, TaskState.KILLED, 0.0)]
        return []

    def shutdown(self) -> None:
        pass


def node(agent: str = "n1", resources: Resources | None = TWO_CORES,
         max_tasks: int | None = None) -> EmulatedNode:
    return EmulatedNode(agent, f"host-{agent}", "10.0.0.1", Capacity(resources, max_tasks))


def offers(events: Sequence[Event]) -> list[Offer]:
    return [o for e in events if isinstance(e, OffersReceived) for o in e.offers]


def launch(offer: Offer, *task_ids: str, cores: float = 1, command: str = "true") -> Launch:
    desc = JobDescription(cores=cores, memory=0, disk=0)
    tasks = tuple(TaskLaunch(t, build_spec(i, command, desc, {}, None))
                  for i, t in enumerate(task_ids, start=1))
    return Launch(offer.agent_id, offer.hostname, (offer,), tasks, 1.0)


def test_each_node_offers_its_capacity_once_and_the_rest_after_a_launch() -> None:
    toy = Toy(node("n1"), node("q", None, max_tasks=5))
    first = offers(toy.start())
    assert [(o.agent_id, o.resources, o.max_tasks) for o in first] == [
        ("n1", TWO_CORES, None), ("q", UNBOUNDED, 5)]
    assert offers(toy.execute([])) == []  # nothing more is free
    events = toy.execute([launch(first[0], "1.0")])
    assert toy.batches == [("n1", ["1.0"])]
    (rest,) = offers(events)
    assert rest.resources == Resources(cpus=1000, mem=4096, disk=4096)
    events = toy.execute([launch(first[1], "2.0", "3.0")])
    (rest,) = offers(events)
    assert rest.agent_id == "q" and rest.max_tasks == 3


def test_a_stale_launch_is_lost_before_it_started_and_the_task_cap_holds() -> None:
    toy = Toy(node("q", None, max_tasks=2))
    (offer,) = offers(toy.start())
    events = toy.execute([launch(offer, "1.0", "2.0", "3.0")])
    lost = [e for e in events if isinstance(e, TaskStatus) and e.state is TaskState.LOST]
    assert [(e.task_id, e.never_started) for e in lost] == [("3.0", True)]
    assert toy.batches == [("q", ["1.0", "2.0"])] and offers(events) == []


def test_ends_free_resources_which_are_offered_before_the_ends_are_posted() -> None:
    toy = Toy(node("n1"))
    (offer,) = offers(toy.start())
    toy.execute([launch(offer, "1.0", "2.0")])
    toy.tasks_ended([TaskStatus("1.0", TaskState.FINISHED, 0.0)])
    assert isinstance(toy.posted[0], OffersReceived)
    assert toy.posted[0].offers[0].resources.cpus == 1000
    assert toy.posted[1:] == [TaskStatus("1.0", TaskState.FINISHED, 0.0)]
    # a status that ends nothing frees nothing
    toy.posted.clear()
    toy.tasks_ended([TaskStatus("2.0", TaskState.RUNNING, 0.0)])
    assert [type(e) for e in toy.posted] == [TaskStatus]


def test_failed_starts_and_immediate_kills_free_their_resources_at_once() -> None:
    toy = Toy(node("n1"))
    (offer,) = offers(toy.start())
    events = toy.execute([launch(offer, "1.0", command="bad")])
    (again,) = offers(events)
    assert again.resources == TWO_CORES
    toy.unstarted.add("2.0")
    toy.execute([launch(again, "2.0", cores=2)])
    events = toy.execute([KillTask("2.0", "n1")])
    assert TaskStatus("2.0", TaskState.KILLED, 0.0) in events
    assert offers(events)[0].resources == TWO_CORES


def test_decline_withholds_until_a_revive_or_an_end_and_suppress_until_revive() -> None:
    toy = Toy(node("n1"))
    (offer,) = offers(toy.start())
    assert offers(toy.execute([Decline((offer.offer_id,), 600)])) == []
    assert offers(toy.execute([])) == []
    (offer,) = offers(toy.execute([Revive()]))
    (rest,) = offers(toy.execute([launch(offer, "1.0")]))
    assert offers(toy.execute([Suppress(), Decline((rest.offer_id,), 1)])) == []
    toy.posted.clear()
    toy.tasks_ended([TaskStatus("1.0", TaskState.FINISHED, 0.0)])
    assert offers(toy.posted) == []  # suppressed
    (offer,) = offers(toy.execute([Revive()]))
    assert offer.resources == TWO_CORES


def test_the_status_note_names_the_limit_that_holds() -> None:
    toy = Toy(node("n1"))
    (offer,) = offers(toy.start())
    assert toy.status_note() is None
    toy.execute([launch(offer, "1.0", cores=1.5)])
    assert toy.status_note() == "Most used: 1.5 of 2 cores (--maxCores)."
    capped = Toy(node("q", None, max_tasks=2))
    (offer,) = offers(capped.start())
    (offer,) = offers(capped.execute([launch(offer, "1.0")]))
    assert capped.status_note() is None  # resources are not counted, and 1 < 2
    capped.execute([launch(offer, "2.0")])
    assert capped.status_note() == "Limit reached: 2 of 2 jobs at once (--maxJobs)."


def test_driven_by_the_core_at_most_max_tasks_run_and_every_job_reports_once() -> None:
    toy = Toy(node("q", None, max_tasks=3))
    core = SchedulerCore(toy.core_config())
    reports: list[int] = []

    def feed(events: Sequence[Event]) -> None:
        pending = list(events)
        while pending:
            actions: list[Action] = core.handle(pending.pop(0))
            reports.extend(a.info.jobID for a in actions if isinstance(a, Report))
            pending.extend(toy.execute([a for a in actions if not isinstance(a, Report)]))

    feed(toy.start())
    specs = tuple(build_spec(i, "true", JobDescription(cores=1), {}, None)
                  for i in range(1, 11))
    feed([JobsSubmitted(specs, 0.0)])
    feed([KillRequested((10,), 0.0)])  # still queued: just dropped
    while len(reports) < 9:
        running = [t for _, batch in toy.batches for t in batch if t in core.tasks]
        assert 0 < len(running) <= 3
        toy.posted.clear()
        toy.tasks_ended([TaskStatus(running[0], TaskState.FINISHED, 0.0)])
        feed(toy.posted)
    assert sorted(reports) == list(range(1, 10))
    assert not core.tasks and not core.queue
