"""Issue 10 against the Mesos double: task ids across scheduler runs, launches Mesos
refuses, the executor's cpus, and jobs on an agent that is cut off and comes back."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mesobatch import BatchJobExitReason
from mesobatch.scheduler.mesos import backend as mesos_backend
from mesobatch.scheduler.mesos.driver import MesosSchedulerDriver
from tests.doubles.mesos import AgentSpec
from tests.processes import running
from tests.waiting import wait_for

from .conftest import Cluster, job
from .test_framework import results

FINISHED = BatchJobExitReason.FINISHED


def _crash(bs: Any) -> str:
    """Stop a batch system's scheduler as a crash would (its tasks stay); its framework id."""
    driver = bs._backend.driver
    framework_id: str = driver.framework_id
    driver.stop(failover=True)
    return framework_id


def _running_tasks(double: Any) -> list[str]:
    return [t for t, s in double.tasks().items() if s == "TASK_RUNNING"]


# ----------------------------------------------------------------------------- defect 1


def test_restarted_scheduler_runs_new_jobs_while_the_old_runs_task_still_dies(
        cluster: Cluster) -> None:
    double = cluster.start()
    # the earlier run's job ignores SIGTERM: a kill takes its whole grace period (30 s)
    first = cluster.batch_system(mesosFailoverTimeout=60, killGracePeriod=30)
    stubborn = first.issueBatchJob("trap '' TERM; sleep 120", job())
    assert wait_for(lambda: stubborn in first.getRunningBatchJobIDs())
    (old_task,) = _running_tasks(double)
    framework_id = _crash(first)
    second = cluster.batch_system(mesosFrameworkId=framework_id)
    fresh = [second.issueBatchJob("true", job(0.25)) for _ in range(3)]  # ids 1, 2, 3 again
    infos = results(second, 3, timeout=30)
    assert sorted(i.jobID for i in infos) == sorted(fresh)
    assert all((i.exitStatus, i.exitReason) == (0, FINISHED) for i in infos), infos
    assert all(i.backing_id != old_task for i in infos)
    # the earlier run's task was told to die and is still dying: the runs overlapped
    assert wait_for(lambda: double.tasks()[old_task] == "TASK_KILLING", timeout=10)
    assert second.getUpdatedBatchJob(1) is None


def test_a_launch_refused_for_a_taken_id_goes_back_to_the_queue(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    # two runs that draw the same tag: the second's first launch reuses a live task's id
    monkeypatch.setattr(mesos_backend, "new_run_tag", lambda: "same00")
    double = cluster.start()
    first = cluster.batch_system(mesosFailoverTimeout=60, killGracePeriod=30)
    stubborn = first.issueBatchJob("trap '' TERM; sleep 120", job())
    assert wait_for(lambda: stubborn in first.getRunningBatchJobIDs())
    assert _running_tasks(double) == [f"{stubborn}.0-same00"]
    second = cluster.batch_system(mesosFrameworkId=_crash(first))
    fresh = second.issueBatchJob("true", job(0.25))
    assert fresh == stubborn  # the same job id, so the same first task id
    (info,) = results(second, 1, timeout=30)
    assert (info.jobID, info.exitStatus, info.exitReason) == (fresh, 0, FINISHED)
    assert info.backing_id == f"{fresh}.1-same00"  # launched again under a new id
    assert second.getUpdatedBatchJob(1) is None


def test_a_launch_refused_for_its_content_fails_after_three_tries_with_the_message(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    double = cluster.start()
    bs = cluster.batch_system()
    # an executor no agent can hold: the master refuses every launch (REASON_TASK_INVALID)
    backend = bs._backend
    monkeypatch.setattr(backend, "executor_resource_entries", lambda: [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 100.0}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}])
    # the logger by name: Toil run in-process earlier in this worker sets "mesobatch" to
    # CRITICAL (toil.statsAndLogging.suppress_exotic_logging)
    with caplog.at_level(logging.WARNING, logger="mesobatch.scheduler.api"):
        doomed = bs.issueBatchJob("true", job())
        (info,) = results(bs, 1, timeout=30)
    assert (info.jobID, info.exitReason, info.exitStatus) == (
        doomed, BatchJobExitReason.ERROR, 255)
    assert info.backing_id is not None and info.backing_id.startswith(f"{doomed}.2-")
    assert sorted(t for t in double.tasks() if t.startswith(f"{doomed}.")) == []  # none ran
    assert "launch refused 3 times" in caplog.text
    assert "is more than available" in caplog.text  # the master's own words
    assert bs.getUpdatedBatchJob(1) is None


def test_an_accept_mesos_refuses_with_400_fails_only_its_bad_task(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    # issue 17: a job name with a lone surrogate (a file name read with surrogateescape)
    # makes the whole ACCEPT unparsable JSON for Mesos (HTTP 400); the good jobs
    # launched in the same ACCEPT must run, the bad one fail with Mesos's words
    double = cluster.start()
    bs = cluster.batch_system()
    with caplog.at_level(logging.WARNING):
        jobs = bs.issue_many([("true", job(0.25), None)] * 2
                             + [("true", job(0.25, name="bad\udc80name"), None)]
                             + [("true", job(0.25), None)] * 2)
        infos = results(bs, 5, timeout=60)
    by_id = {i.jobID: i for i in infos}
    assert sorted(by_id) == sorted(jobs)
    bad = jobs[2]
    assert (by_id[bad].exitReason, by_id[bad].exitStatus) == (BatchJobExitReason.ERROR, 255)
    assert all((by_id[j].exitStatus, by_id[j].exitReason) == (0, FINISHED)
               for j in jobs if j != bad)
    assert "launch refused 3 times" in caplog.text
    assert "Failed to parse body into JSON" in caplog.text  # the master's own words
    assert not [t for t in double.tasks() if t.startswith(f"{bad}.")]
    assert bs.getUpdatedBatchJob(1) is None


# ----------------------------------------------------------------------------- defect 3


def test_the_executor_reserves_cpus_and_its_first_launch_takes_them(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[list[Any]] = []
    original = MesosSchedulerDriver.launchTasks

    def spy(self: MesosSchedulerDriver, offer_ids: Any, tasks: list[Any],
            filters: Any = None) -> None:
        launched.append(tasks)
        original(self, offer_ids, tasks, filters)

    monkeypatch.setattr(MesosSchedulerDriver, "launchTasks", spy)
    # a master that refuses executors under Mesos's minimum, as later releases will
    double = cluster.start([AgentSpec("cpus:2.01;mem:4096;disk:10000")],
                           refuse_small_executors=True)
    bs = cluster.batch_system()
    jobs = bs.issue_many([("sleep 1", job(1), None)] * 2)
    # both fit at once: 1 + 1 cores for the jobs, 0.01 for the executor, in one launch
    assert wait_for(lambda: len(bs.getRunningBatchJobIDs()) == 2)
    (first,) = launched[:1]
    assert len(first) == 2
    executor = {r["name"]: r["scalar"]["value"] for r in first[0]["executor"]["resources"]}
    assert executor == {"cpus": 0.01, "mem": 32.0}
    assert first[0]["executor"] == first[1]["executor"]
    tasks = sum(r["scalar"]["value"] for t in first for r in t["resources"]
                if r["name"] == "cpus")
    assert tasks == 2.0
    infos = results(bs, 2)
    assert sorted(i.jobID for i in infos) == sorted(jobs)
    assert all(i.exitStatus == 0 for i in infos)
    warnings = double.warnings()
    assert (warnings["executor_cpus"], warnings["executor_mem"]) == (0, 0), warnings


def test_without_executor_cpus_mesos_warns(cluster: Cluster) -> None:
    # what the warning counter above would have seen: --mesosExecutorCpus 0 is allowed,
    # and Mesos 1.11 (here the double) warns at every launch
    double = cluster.start()
    bs = cluster.batch_system(mesosExecutorCpus=0)
    bs.issueBatchJob("true", job())
    (info,) = results(bs, 1)
    assert info.exitStatus == 0
    warnings = double.warnings()
    assert warnings["executor_cpus"] >= 1 and warnings["executor_mem"] == 0
    assert "uses less CPUs (None) than the minimum required (0.01)" in warnings["recent"][0]


def test_a_job_that_fits_only_without_the_executor_waits_and_says_why(
        cluster: Cluster) -> None:
    cluster.start([AgentSpec("cpus:1;mem:4096;disk:10000", hostname="tiny")])
    bs = cluster.batch_system()
    bs.issueBatchJob("true", job(1))
    message = wait_for(lambda: (m := bs.getSchedulingStatusMessage()) and "largest" in m
                       and m, timeout=15)
    assert "the largest offer in the last 60 s had 0.99 cores for jobs (and 0.01 cores " \
           "for the executor)" in message, message
    assert bs.getRunningBatchJobIDs() == {}


def test_executor_cpus_option() -> None:
    import mesobatch
    from mesobatch.scheduler.mesos.options import MesosOptions
    from mesobatch.scheduler.options import resolve

    assert resolve(MesosOptions, {}).mesos_executor_cpus == 0.01
    assert resolve(MesosOptions, {"mesosExecutorCpus": "0.5"}).mesos_executor_cpus == 0.5
    assert resolve(MesosOptions, {"mesosExecutorCpus": 0}).mesos_executor_cpus == 0
    with pytest.raises(mesobatch.OptionError,
                       match=r"'0\.005' for --mesosExecutorCpus: .*>= 0\.01"):
        resolve(MesosOptions, {"mesosExecutorCpus": "0.005"})


# ----------------------------------------------------------------------------- defect 5


def test_by_default_a_job_on_an_unreachable_agent_is_reported_as_mesos_gives_up(
        cluster: Cluster) -> None:
    double = cluster.start(agent_removal_timeout=1.0)
    bs = cluster.batch_system()  # --mesosUnreachableTimeout as its default
    doomed = bs.issueBatchJob("sleep 60", job())
    assert wait_for(lambda: doomed in bs.getRunningBatchJobIDs())
    double.lose_agent(0)
    assert wait_for(lambda: "TASK_UNREACHABLE" in double.tasks().values(), timeout=15)
    unreachable_at = time.monotonic()
    (info,) = results(bs, 1, timeout=15)
    assert (info.jobID, info.exitReason) == (doomed, BatchJobExitReason.PARTITION)
    assert time.monotonic() - unreachable_at < 5
    assert bs.getUpdatedBatchJob(1) is None


def test_a_job_given_up_as_unreachable_is_killed_when_its_agent_comes_back(
        cluster: Cluster, tmp_path: Path) -> None:
    double = cluster.start(agent_removal_timeout=0.5)
    bs = cluster.batch_system(mesosUnreachableTimeout=1)
    pid_file = tmp_path / "pid"
    stubborn = bs.issueBatchJob(f"echo $$ > {pid_file}; trap '' TERM; sleep 120", job())
    assert wait_for(lambda: stubborn in bs.getRunningBatchJobIDs() and pid_file.exists())
    (task,) = _running_tasks(double)
    pid = int(pid_file.read_text())
    # the agent goes away (its executors live on), long enough for Mesos and the timeout
    away = threading.Thread(target=double.restart_agent, args=(0, 6.0), daemon=True)
    away.start()
    (info,) = results(bs, 1, timeout=15)
    assert (info.jobID, info.exitReason) == (stubborn, BatchJobExitReason.PARTITION)
    assert double.tasks()[task] == "TASK_UNREACHABLE"
    os.kill(pid, 0)  # still running, out of reach
    away.join(timeout=30)
    # back, with the task running: it is killed (SIGKILL after the grace period) ...
    assert wait_for(lambda: double.tasks().get(task) == "TASK_KILLED", timeout=30), \
        double.tasks()
    assert wait_for(lambda: not running(pid), timeout=10)
    # ... and its job is not reported again
    assert bs.getUpdatedBatchJob(2) is None
    assert bs.getIssuedBatchJobIDs() == [] and bs.getRunningBatchJobIDs() == {}
