"""The public BatchSystem (scheduler/api.py) over a recording backend: events go to the
core, actions come out in order, results are reported exactly once, kills wait for the
backend, and shutdown leaves nothing behind. No processes, no Mesos double."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mesobatch.scheduler.api import BatchSystem, NodeType
from mesobatch.scheduler.backend import Backend, BackendContext, Post
from mesobatch.scheduler.contract import (
    BatchJobExitReason,
    ExecutorInfo,
    InsufficientSystemResources,
    JobDescription,
    JobUsage,
    UpdatedBatchJobInfo,
)
from mesobatch.scheduler.core.events import (
    Action,
    Decline,
    Event,
    KillTask,
    Launch,
    NodeLoad,
    NodeStats,
    Offer,
    OffersReceived,
    Revive,
    TaskStatus,
)
from mesobatch.scheduler.core.jobs import InvalidJob
from mesobatch.scheduler.core.resources import GIB, MIB, Resources
from mesobatch.scheduler.core.scheduler import CoreConfig
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.options import CommonOptions
from tests.waiting import wait_for

SMALL = JobDescription(cores=1, memory=64 * MIB, disk=64 * MIB)


class Recorder(Backend):
    """Records every action; the test plays the cluster by posting events."""

    name = "recorder"
    options_class = CommonOptions
    hold = 600.0  # seconds offers are held unused (a class default a test may change)

    def __init__(self, options: CommonOptions, post: Post, context: BackendContext) -> None:
        super().__init__(options, post, context)
        self.actions: list[Action] = []
        self.flushes = 0
        self.shutdowns = 0
        self.confirm_kills = False
        self.node_events: list[Event] = []
        self.note: str | None = None
        self.fatal: str | None = None

    def core_config(self) -> CoreConfig:
        return CoreConfig(offer_hold_seconds=self.hold)

    def start(self) -> list[Event]:
        return []

    def execute(self, actions: Sequence[Action]) -> list[Event]:
        self.actions.extend(actions)
        for action in actions:
            if isinstance(action, KillTask) and self.confirm_kills:
                # as a real backend: the confirmation comes later, from its own thread
                event = TaskStatus(action.task_id, TaskState.KILLED, time.time())
                threading.Thread(target=self.post, args=(event,), daemon=True).start()
        return []

    def flush(self) -> None:
        self.flushes += 1

    def poll_nodes(self) -> list[Event]:
        return list(self.node_events)

    def status_note(self) -> str | None:
        return self.note

    def fatal_error(self) -> str | None:
        return self.fatal

    def shutdown(self) -> None:
        self.shutdowns += 1

    def of(self, kind: type[Any]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]


class RecorderBatchSystem(BatchSystem):
    backend_class = Recorder


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[BatchSystem, Recorder]]]:
    made: list[BatchSystem] = []

    def factory(**options: Any) -> tuple[BatchSystem, Recorder]:
        options = {"max_cores": 4.0, "max_memory": 4 * GIB, "max_disk": 4 * GIB,
                   "kill_grace_period": 1.0, **options}
        bs = RecorderBatchSystem(options=CommonOptions(**options))
        made.append(bs)
        backend = bs._backend
        assert isinstance(backend, Recorder)
        return bs, backend

    yield factory
    for bs in made:
        bs.shutdown()


def offer(oid: str = "o1", agent: str = "a1", cpus: int = 2000, **kw: Any) -> Offer:
    return Offer(oid, agent, f"host-{agent}", kw.pop("ip", "10.0.0.1"),
                 Resources(cpus, 2048, 2048), **kw)


def test_a_job_goes_through_the_core_and_is_reported_exactly_once(make: Any) -> None:
    bs, backend = make()
    job = bs.issueBatchJob("echo hi", SMALL, {"OWN": "1"})
    assert bs.getIssuedBatchJobIDs() == [job]
    assert backend.of(Revive)  # work arrived: ask for offers
    backend.post(OffersReceived((offer(native="raw entries"),), time.time()))
    (launch,) = backend.of(Launch)
    assert [t.task_id for t in launch.tasks] == [f"{job}.0"]
    assert launch.offers[0].native == "raw entries"
    assert launch.tasks[0].job.command == "echo hi"
    assert launch.tasks[0].job.job_environment == {"OWN": "1"}
    assert bs.getRunningBatchJobIDs() == {}  # launching is not running yet
    backend.post(TaskStatus(f"{job}.0", TaskState.RUNNING, time.time()))
    assert list(bs.getRunningBatchJobIDs()) == [job]
    backend.post(TaskStatus(f"{job}.0", TaskState.FAILED, time.time(), exit_code=3,
                            wall_time=1.5, peak_memory=5 * MIB, cpu_time=0.25))
    assert bs.getIssuedBatchJobIDs() == [job]  # reported, not yet collected
    assert bs.getUpdatedBatchJob(0) == UpdatedBatchJobInfo(
        job, 3, BatchJobExitReason.FAILED, 1.5, f"{job}.0", JobUsage("host-a1", 5 * MIB, 0.25))
    assert bs.getUpdatedBatchJob(0) is None
    assert bs.getIssuedBatchJobIDs() == [] and bs.getRunningBatchJobIDs() == {}
    assert backend.flushes == 3  # once after each batch of events the backend posted


def test_issuing_is_all_or_none_and_bad_jobs_say_why(make: Any) -> None:
    bs, backend = make(max_cores=2.0)
    too_big = JobDescription(cores=3, memory=MIB, disk=MIB)
    with pytest.raises(InsufficientSystemResources, match="at most 2 cores"):
        bs.issue_many([("true", SMALL, None), ("true", too_big, None)])
    assert bs.getIssuedBatchJobIDs() == [] and backend.actions == []
    with pytest.raises(InsufficientSystemResources):
        bs.validate_job("true", too_big)
    with pytest.raises(InvalidJob, match="invalid command ''"):
        bs.issueBatchJob("", SMALL)
    bs.validate_job("true", SMALL)
    assert bs.getIssuedBatchJobIDs() == []  # validating issues nothing
    first, second = bs.issue_many([("true", SMALL, None), ("false", None, None)])
    assert sorted(bs.getIssuedBatchJobIDs()) == [first, second] and first != second


def test_a_kill_waits_until_the_backend_confirms_and_is_never_reported(make: Any) -> None:
    bs, backend = make()
    backend.confirm_kills = True
    job = bs.issueBatchJob("sleep 60", SMALL)
    backend.post(OffersReceived((offer(),), time.time()))
    backend.post(TaskStatus(f"{job}.0", TaskState.RUNNING, time.time()))
    bs.killBatchJobs([job])
    assert [k.task_id for k in backend.of(KillTask)] == [f"{job}.0"]
    assert bs._core.unconfirmed_kills({job}) == set()  # returned after the confirmation
    assert bs.getIssuedBatchJobIDs() == [] and bs.getRunningBatchJobIDs() == {}
    assert bs.getUpdatedBatchJob(0.1) is None


def test_killing_a_reported_job_withdraws_its_uncollected_result(make: Any) -> None:
    bs, backend = make()
    done, other = bs.issue_many([("true", SMALL, None), ("true", SMALL, None)])
    backend.post(OffersReceived((offer(cpus=4000),), time.time()))
    for job in (done, other):
        backend.post(TaskStatus(f"{job}.0", TaskState.FINISHED, time.time(), exit_code=0))
    bs.killBatchJobs([done])
    assert backend.of(KillTask) == []  # nothing ran any more: nothing to kill
    info = bs.getUpdatedBatchJob(0)
    assert info is not None and info.jobID == other
    assert bs.getUpdatedBatchJob(0) is None


def test_set_env_reaches_jobs_issued_afterwards(make: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bs, backend = make()
    bs.setEnv("A", "1")
    first = bs.issueBatchJob("true", SMALL)
    monkeypatch.setenv("FROM_OUTSIDE", "x")
    bs.setEnv("FROM_OUTSIDE")
    second = bs.issueBatchJob("true", SMALL)
    monkeypatch.delenv("FROM_OUTSIDE")
    with pytest.raises(RuntimeError, match="FROM_OUTSIDE does not exist"):
        bs.setEnv("FROM_OUTSIDE")
    backend.post(OffersReceived((offer(cpus=4000),), time.time()))
    envs = {t.job.job_id: dict(t.job.environment)
            for launch in backend.of(Launch) for t in launch.tasks}
    assert envs == {first: {"A": "1"}, second: {"A": "1", "FROM_OUTSIDE": "x"}}


def test_a_backend_that_cannot_ship_code_says_so(make: Any) -> None:
    bs, _ = make()
    assert not RecorderBatchSystem.supportsAutoDeployment()
    with pytest.raises(NotImplementedError, match="recorder backend cannot ship code"):
        bs.setUserScript(__file__)
    bs.issueBatchJob("true", SMALL)
    with pytest.raises(RuntimeError, match="before the first job"):
        bs.setUserScript(__file__)


def test_waiting_for_a_result_ends_at_max_wait_or_at_shutdown(make: Any) -> None:
    bs, _ = make()
    started = time.monotonic()
    assert bs.getUpdatedBatchJob(0.2) is None
    assert time.monotonic() - started >= 0.2
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(bs.getUpdatedBatchJob(None)))
    waiter.start()
    bs.shutdown()
    waiter.join(timeout=10)
    assert not waiter.is_alive() and got == [None]


def test_shutdown_kills_every_job_stops_the_backend_once_and_removes_its_logs(
        make: Any) -> None:
    bs, backend = make()
    running = bs.issueBatchJob("sleep 60", SMALL)
    backend.post(OffersReceived((offer(cpus=1000),), time.time()))
    bs.issueBatchJob("sleep 60", SMALL)  # no room left: stays queued
    assert [t.job.job_id for a in backend.of(Launch) for t in a.tasks] == [running]
    log_dir = Path(bs.log_dir)
    assert log_dir.is_dir()
    bs.shutdown()
    bs.shutdown()
    assert [k.task_id for k in backend.of(KillTask)] == [f"{running}.0"]  # queued: no call
    assert backend.shutdowns == 1 and bs.is_shut_down and not log_dir.exists()
    seen = len(backend.actions)
    backend.post(TaskStatus("99.0", TaskState.RUNNING, time.time()))  # an orphan
    assert len(backend.actions) == seen  # the core's kill is not carried out any more
    with pytest.raises(RuntimeError, match="shut down"):
        bs.issueBatchJob("true", SMALL)


def test_a_log_dir_given_is_kept(make: Any, tmp_path: Path) -> None:
    bs, _ = make(log_dir=str(tmp_path / "logs"))
    assert bs.log_dir == str(tmp_path / "logs")
    bs.shutdown()
    assert (tmp_path / "logs").is_dir()


def test_the_ticker_carries_out_timed_work(make: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Recorder, "hold", 0.5)
    _, backend = make()
    backend.post(OffersReceived((offer(),), time.time()))
    assert backend.of(Decline) == []  # held while nothing uses it
    assert wait_for(lambda: backend.of(Decline))  # then given back, without any event
    assert backend.of(Decline)[0].offer_ids == ("o1",)


def test_nodes_come_from_offers_and_node_stats(make: Any) -> None:
    bs, backend = make()
    job = bs.issueBatchJob("sleep 60", SMALL)
    backend.post(OffersReceived((offer(cpus=4000, ip="10.0.0.1"),
                                 offer("o2", "a2", ip="10.0.0.2", preemptible=True)),
                                time.time()))
    backend.node_events = [NodeStats("a1", "host-a1", "10.0.0.1",
                                     NodeLoad(0.5, GIB, 8, 16 * GIB, 1), time.time())]
    nodes = bs.getNodes()
    assert set(nodes) == {"10.0.0.1", "10.0.0.2"}
    assert (nodes["10.0.0.1"].coresTotal, nodes["10.0.0.1"].workers) == (8, 1)
    assert set(bs.getNodes(preemptible=True)) == {"10.0.0.2"}
    assert bs.nodeInUse("10.0.0.1") and not bs.nodeInUse("10.0.0.2")
    assert bs.nodeTypes() == {NodeType(4.0, 2048 * MIB, 2048 * MIB, 0, False),
                              NodeType(2.0, 2048 * MIB, 2048 * MIB, 0, True)}
    bs.ignoreNode("host-a2")  # its held offer goes back at once, for a long while
    (decline,) = backend.of(Decline)
    assert decline.offer_ids == ("o2",) and decline.refuse_seconds == 600.0
    bs.unignoreNode("host-a2")
    backend.post(TaskStatus(f"{job}.0", TaskState.FINISHED, time.time(), exit_code=0))
    assert not bs.nodeInUse("10.0.0.1")


def test_status_and_fatal_errors_come_from_the_backend(make: Any) -> None:
    bs, backend = make()
    assert bs.getSchedulingStatusMessage() is None and bs.fatal_error() is None
    backend.note, backend.fatal = "Not connected.", "credentials refused"
    assert bs.getSchedulingStatusMessage() == "Not connected."
    assert bs.fatal_error() == "credentials refused"
    bs.issueBatchJob("true", SMALL)
    message = bs.getSchedulingStatusMessage()
    assert message is not None
    assert message.startswith("1 job waiting, 0 running.") and message.endswith(
        "Not connected.")


def test_options_from_keywords_and_a_toil_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESOBATCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")  # no config file of the user's
    config = SimpleNamespace(workflowID="wf-42", kill_grace_period=2.5)
    with RecorderBatchSystem(config, maxCores=2, maxMemory="1G", maxDisk="2G") as bs:
        assert (bs.options.max_cores, bs.options.max_memory, bs.options.max_disk) == (
            2.0, GIB, 2 * GIB)
        assert bs.options.kill_grace_period == 2.5 and bs.workflow_id == "wf-42"
        with pytest.raises(InsufficientSystemResources, match="--maxCores"):
            bs.issueBatchJob("true", JobDescription(cores=3, memory=MIB, disk=MIB))
    assert bs.is_shut_down  # the with block shut it down


def test_class_hooks_for_toil() -> None:
    parser = argparse.ArgumentParser()
    RecorderBatchSystem.add_options(parser)
    args = parser.parse_args(["--maxCores", "3", "--killGracePeriod", "7"])
    assert (args.max_cores, args.kill_grace_period) == ("3", "7")  # resolve parses them
    copied: list[str] = []
    RecorderBatchSystem.setOptions(copied.append)
    assert {"max_cores", "max_memory", "kill_grace_period", "log_dir"} <= set(copied)
    assert not RecorderBatchSystem.supportsWorkerCleanup()
    assert RecorderBatchSystem.getWaitDuration() == 1
    assert RecorderBatchSystem.getRescueBatchJobFrequency() > 0


# ---------------------------------------------------------------- nodeFilter (Toil's names)


def test_node_filter_declines_rejected_nodes_and_get_nodes_flags_them(make: Any) -> None:
    bs, backend = make()
    seen: list[ExecutorInfo] = []

    def only_a2(node: ExecutorInfo) -> bool:
        seen.append(node)
        bs.getIssuedBatchJobIDs()  # user code may call back: no lock is held
        return node.agentId == "a2"

    bs.nodeFilter = [only_a2]
    assert bs.nodeFilter == [only_a2]
    job = bs.issueBatchJob("sleep 60", SMALL)
    before = time.time()
    backend.post(OffersReceived((offer("o1", "a1", ip="10.0.0.1"),
                                 offer("o2", "a2", ip="10.0.0.2")), time.time()))
    (launch,) = backend.of(Launch)
    assert launch.agent_id == "a2" and [t.job.job_id for t in launch.tasks] == [job]
    (decline,) = backend.of(Decline)
    assert decline.offer_ids == ("o1",)
    assert decline.refuse_seconds == CoreConfig().decline_refuse_seconds  # asked again soon
    first = {n.agentId: n for n in seen}["a1"]
    assert isinstance(first, BatchSystem.ExecutorInfo)
    assert (first.nodeAddress, first.agentId) == ("10.0.0.1", "a1")
    assert first.nodeInfo is not None and first.nodeInfo.coresTotal == 2.0
    assert first.lastSeen >= before
    nodes = bs.getNodes(timeout=None)
    assert nodes["10.0.0.1"].filtered and not nodes["10.0.0.2"].filtered
    assert nodes["10.0.0.2"].workers == 1


def test_node_filtering_applies_within_the_block_and_known_nodes_are_asked_at_once(
        make: Any) -> None:
    bs, backend = make()
    backend.post(OffersReceived((offer("o1", "a1"),), time.time()))  # held, no job yet
    with bs.nodeFiltering(lambda node: node.agentId != "a1"):
        assert backend.of(Decline)[0].offer_ids == ("o1",)  # went back at once
        bs.issueBatchJob("true", SMALL)
        backend.post(OffersReceived((offer("o2", "a1"),), time.time()))
        assert backend.of(Launch) == []
    assert bs.nodeFilter == []
    revives = len(backend.of(Revive))
    assert wait_for(lambda: len(backend.of(Revive)) > revives)  # a1 is wanted again
    backend.post(OffersReceived((offer("o3", "a1"),), time.time()))
    (launch,) = backend.of(Launch)
    assert launch.agent_id == "a1"


def test_a_node_filter_that_raises_rejects_the_node(make: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    bs, backend = make()

    def broken(node: ExecutorInfo) -> bool:
        raise RuntimeError("no such key")

    bs.nodeFilter = [broken]
    bs.issueBatchJob("true", SMALL)
    backend.post(OffersReceived((offer(),), time.time()))
    assert backend.of(Launch) == [] and backend.of(Decline)[0].offer_ids == ("o1",)
    assert "no such key" in caplog.text and "no new jobs go there" in caplog.text
    assert bs.getNodes()["10.0.0.1"].filtered


def test_get_nodes_timeout_none_lists_every_node_ever_seen(make: Any) -> None:
    bs, backend = make()
    backend.post(OffersReceived((offer("o1", "a1", ip="10.0.0.1"),), time.time() - 3600))
    backend.post(OffersReceived((offer("o2", "a2", ip="10.0.0.2"),), time.time()))
    assert set(bs.getNodes()) == {"10.0.0.2"}  # seen within the default 600 s
    assert set(bs.getNodes(timeout=None)) == {"10.0.0.1", "10.0.0.2"}
    assert set(bs.getNodes(None, None)) == {"10.0.0.1", "10.0.0.2"}
