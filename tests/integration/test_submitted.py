"""The job table of the backends that submit elsewhere (integration/submitted.py): kills
in each phase, the first decided end wins, nothing is left behind at shutdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mesobatch.integration.emulated import UNBOUNDED, Capacity, EmulatedNode
from mesobatch.integration.submitted import Phase, SubmittingBackend
from mesobatch.scheduler.backend import BackendContext
from mesobatch.scheduler.contract import JobDescription
from mesobatch.scheduler.core.events import Event, TaskLaunch, TaskStatus
from mesobatch.scheduler.core.jobs import JobSpec, build_spec
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.options import CommonOptions

NODE = EmulatedNode("queue", "queue", "", Capacity(UNBOUNDED, None))


@dataclass(slots=True)
class Job:
    task_id: str
    spec: JobSpec
    phase: Phase = Phase.WAITING
    kill: bool = False
    cancelling: bool = False


class Toy(SubmittingBackend[Job]):
    """No submitter thread: the test moves jobs through their phases."""

    name = "toy"
    options_class = CommonOptions

    def __init__(self) -> None:
        self.posted: list[Event] = []
        super().__init__(CommonOptions(), lambda *e: self.posted.extend(e),
                         BackendContext("wf", "/nonexistent"))

    def emulated_nodes(self) -> Sequence[EmulatedNode]:
        return [NODE]

    def new_job(self, task: TaskLaunch, node: EmulatedNode) -> Job:
        return Job(task.task_id, task.job)

    def agent_of(self, job: Job) -> str:
        return f"toy/{job.task_id}"

    def shutdown(self) -> None:
        pass

    def statuses(self) -> list[tuple[str, TaskState]]:
        return [(e.task_id, e.state) for e in self.posted if isinstance(e, TaskStatus)]


def launched(*task_ids: str) -> Toy:
    toy = Toy()
    toy.start()
    desc = JobDescription(cores=1, memory=0, disk=0)
    toy.launch_tasks(NODE, [TaskLaunch(t, build_spec(i, "true", desc, {}, None))
                            for i, t in enumerate(task_ids, start=1)])
    return toy


def test_a_job_never_submitted_is_killed_at_once_and_never_sent() -> None:
    toy = launched("1.0", "2.0")
    assert [j.task_id for j in toy._to_submit] == ["1.0", "2.0"]
    (killed,) = toy.kill_task("1.0")
    assert isinstance(killed, TaskStatus)
    assert (killed.task_id, killed.state, killed.agent_id) == ("1.0", TaskState.KILLED,
                                                              "toy/1.0")
    assert not toy.task_alive("1.0") and toy.task_alive("2.0")
    toy._stop_submitting()
    toy._drop_unsubmitted()  # what the submitter does when told to stop
    # the killed job was reported by kill_task, not again here
    assert toy.statuses() == [("2.0", TaskState.KILLED)]


def test_a_submitted_job_is_queued_for_cancelling_once() -> None:
    toy = launched("1.0")
    job = toy._jobs["1.0"]
    job.phase = Phase.SUBMITTED
    assert toy.kill_task("1.0") == [] and toy.kill_task("1.0") == []
    assert toy._to_cancel == [job] and job.kill and job.cancelling
    toy._stop_submitting()  # already queued: not twice
    assert toy._to_cancel == [job]


def test_a_job_being_submitted_is_only_marked() -> None:
    toy = launched("1.0")
    job = toy._jobs["1.0"]
    job.phase = Phase.SUBMITTING
    assert toy.kill_task("1.0") == []
    assert job.kill and not job.cancelling and toy._to_cancel == []


def test_the_first_decided_end_wins_and_live_statuses_only_of_live_jobs() -> None:
    toy = launched("1.0", "2.0")
    one, two = toy._jobs["1.0"], toy._jobs["2.0"]
    toy._end([(one, TaskStatus("1.0", TaskState.FINISHED, 1.0))],
             [TaskStatus("2.0", TaskState.RUNNING, 1.0)])
    toy._end([(one, TaskStatus("1.0", TaskState.FAILED, 2.0)),
              (two, TaskStatus("2.0", TaskState.KILLED, 2.0))],
             [TaskStatus("1.0", TaskState.RUNNING, 2.0)])
    assert toy.statuses() == [("2.0", TaskState.RUNNING), ("1.0", TaskState.FINISHED),
                              ("2.0", TaskState.KILLED)]
    assert toy.kill_task("1.0") == [] and not toy._jobs
