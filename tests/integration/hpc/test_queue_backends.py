"""The LSF, PBS Pro, Torque and HTCondor backends end to end on their fakes
(tests/doubles): options into submissions, limits and holds into reasons, vanished jobs
into LOST, one status command per poll, and getNodes' addresses back to node names."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mesobatch
from mesobatch import BatchJobExitReason, JobDescription, UpdatedBatchJobInfo
from mesobatch.integration.hpc.base import BatchQueueBackend
from mesobatch.scheduler.options import OptionError
from tests.doubles.hpcfake.backends import FAKES
from tests.doubles.hpcfake.control import vanish
from tests.doubles.hpcfake.store import Store
from tests.doubles.hpcfake.testing import FakeCluster
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
QUEUES = ["lsf", "pbs", "torque", "htcondor"]
MIB = 2**20
J = JobDescription(cores=1, memory=64 * MIB, disk=MIB)

Make = Callable[..., mesobatch.BatchSystem]


class Queue:
    """One fake cluster and the batch systems made on it for one test."""

    def __init__(self, name: str, state: Path, cluster: FakeCluster) -> None:
        self.name = name
        self.state = state
        self.cluster = cluster
        self.made: list[mesobatch.BatchSystem] = []

    def batch_system(self, **options: Any) -> mesobatch.BatchSystem:
        options.setdefault("logDir", str(self.state / "logs"))
        options.setdefault("pollInterval", 0.2)
        options.setdefault("maxPollInterval", 1)
        options.setdefault("killGracePeriod", 1)
        bs = mesobatch.batch_system(self.name, **options)
        self.made.append(bs)
        return bs

    def jobs(self) -> list[dict[str, Any]]:
        """What the fake holds now (queue and history)."""
        state = Store(self.state).read()
        return [*state.get("jobs", {}).values(), *state.get("history", {}).values()]

    def log(self, job_id: int) -> str:
        return next((self.state / "logs").glob(f"{job_id}-*.log")).read_text()


def _queue(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           **knobs: str) -> Iterator[Queue]:
    fake = FAKES[name]
    state = tmp_path / name
    for var, value in {**fake.environment(state), **knobs}.items():
        monkeypatch.setenv(var, value)
    q = Queue(name, state, fake.cluster(state))
    yield q
    for bs in q.made:
        bs.shutdown()
    q.cluster.stop()


@pytest.fixture(params=QUEUES)
def queue(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    # bsub -W 1 means one second here
    yield from _queue(request.param, tmp_path, monkeypatch, FAKE_LSF_SECONDS_PER_MINUTE="1")


@pytest.fixture(params=["lsf", "pbs", "torque"])
def one_core_queue(request: pytest.FixtureRequest, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    """A queue whose one host has one core."""
    yield from _queue(request.param, tmp_path, monkeypatch, FAKE_LSF_NCPUS="1",
                      FAKE_PBS_NCPUS="1")


@pytest.fixture
def condor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    yield from _queue("htcondor", tmp_path, monkeypatch)


def backend_of(bs: mesobatch.BatchSystem) -> BatchQueueBackend:
    backend = bs._backend
    assert isinstance(backend, BatchQueueBackend)
    return backend


def collect(bs: mesobatch.BatchSystem, n: int, timeout: float = 60
            ) -> dict[int, UpdatedBatchJobInfo]:
    out: dict[int, UpdatedBatchJobInfo] = {}
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        info = bs.getUpdatedBatchJob(0.5)
        if info is not None:
            assert info.jobID not in out, f"job {info.jobID} reported twice"
            out[info.jobID] = info
    assert len(out) == n, out
    return out


def test_options_reach_the_submission(queue: Queue) -> None:
    options: dict[str, dict[str, Any]] = {
        "lsf": {"lsfQueue": "normal", "lsfProject": "proj1", "lsfArgs": "-r"},
        "pbs": {"pbsQueue": "workq", "pbsAccount": "acct1", "pbsArgs": "-p 5"},
        "torque": {"pbsQueue": "batch", "pbsAccount": "acct1", "pbsArgs": "-p 5"},
        "htcondor": {"htcondorSubmitLines": "+ProjectName = \"p1\"\n+Site = \"here\""},
    }
    bs = queue.batch_system(**options[queue.name])
    job = bs.issueBatchJob("exit 3", JobDescription(cores=2, memory=96 * MIB, disk=MIB))
    info = collect(bs, 1)[job]
    assert (info.exitStatus, info.exitReason) == (3, BatchJobExitReason.FAILED)
    (record,) = queue.jobs()
    extra = record["extra"]
    assert record["cores"] == 2
    if queue.name == "lsf":
        assert (extra["queue"], extra["project"]) == ("normal", "proj1")
        assert record["mem_request"] == 96 * MIB  # rusage[mem=96] (MB, LSF's default unit)
        assert record["mem_limit"] == 96 * MIB  # -M 98304 (KB)
    elif queue.name in ("pbs", "torque"):
        assert (extra["queue"], extra["account"]) == (options[queue.name]["pbsQueue"],
                                                     "acct1")
        assert record["mem_limit"] == 96 * MIB
    else:
        ad = extra["ad"]
        assert (ad["ProjectName"], ad["Site"]) == ("p1", "here")
        assert (ad["RequestCpus"], ad["RequestMemory"]) == (2, 96)


@pytest.mark.parametrize("name", QUEUES)
def test_extra_arguments_that_overwrite_what_mesobatch_sets_are_refused(name: str) -> None:
    bad = {"lsf": {"lsfArgs": "-o /tmp/x"}, "pbs": {"pbsArgs": "-N other"},
           "torque": {"pbsArgs": "-j oe"},
           "htcondor": {"htcondorSubmitLines": "request_cpus = 8"}}[name]
    option = next(iter(bad))
    with pytest.raises(OptionError, match=f"--{option}"):
        mesobatch.batch_system(name, **bad)


def test_limits_become_exit_reasons_and_the_reason_is_in_the_log(queue: Queue) -> None:
    bs = queue.batch_system()
    hog = bs.issueBatchJob(
        "python3 -c 'import time; x = bytearray(300 * 2**20); time.sleep(30)'",
        JobDescription(cores=1, memory=64 * MIB, disk=MIB))
    slow = bs.issueBatchJob("sleep 60", JobDescription(cores=1, memory=64 * MIB, disk=MIB,
                                                        walltime=1.0))
    results = collect(bs, 2)
    assert results[hog].exitReason is BatchJobExitReason.MEMLIMIT
    assert results[slow].exitReason is BatchJobExitReason.MAXJOBDURATION
    words = {"lsf": ("TERM_MEMLIMIT", "TERM_RUNLIMIT"),
             "pbs": ("JOB_EXEC_KILL_MEM", "JOB_EXEC_KILL_WALLTIME"),
             "torque": ("JOB_EXEC_OVERLIMIT_MEM", "JOB_EXEC_OVERLIMIT_WT"),
             "htcondor": ("HoldReasonCode 34", "HoldReasonCode 46")}[queue.name]
    assert words[0] in queue.log(hog) and words[1] in queue.log(slow)


def test_a_vanished_job_is_lost_within_three_polls_and_the_others_go_on(queue: Queue
                                                                        ) -> None:
    bs = queue.batch_system(vanishedPolls=3, jobArrays=False)
    doomed = bs.issueBatchJob("sleep 100", J)
    other = bs.issueBatchJob("sleep 4", J)
    assert wait_for(lambda: set(bs.getRunningBatchJobIDs()) == {doomed, other})
    backend = backend_of(bs)
    native = next(j.native_id for j in backend._jobs.values() if j.spec.job_id == doomed)
    before = backend.polls
    assert vanish(Store(queue.state), lambda j: _same_job(queue.name, j, native))
    reported: dict[int, int] = {}  # job -> polls done when it was reported
    while len(reported) < 2:
        info = bs.getUpdatedBatchJob(60)
        assert info is not None and info.jobID not in reported
        reported[info.jobID] = backend.polls
        if info.jobID == doomed:
            assert info.exitReason is BatchJobExitReason.LOST
        else:  # the other job (which the same status queries named) is untouched
            assert (info.jobID, info.exitStatus) == (other, 0)
    # the poll under way when it vanished may still have seen it; then three that did not
    assert reported[doomed] - before <= 3 + 1
    log = queue.log(doomed)
    assert f"job {native} vanished: not in the queue" in log and "after 3 polls" in log


def _same_job(system: str, record: dict[str, Any], native: str) -> bool:
    """Is this fake's record the job mesobatch knows as ``native``?"""
    if system == "lsf":
        return str(record["extra"]["job_id"]) == native
    if system == "htcondor":
        return str(record["id"]) == native
    return native.split(".", 1)[0] == str(record["id"])  # PBS: "12.pbsserver"


def test_a_held_htcondor_job_is_an_error_with_its_reason_and_is_removed(
        condor: Queue) -> None:
    queue = condor
    bs = queue.batch_system()
    job = bs.issueBatchJob("sleep 100", J)
    assert wait_for(lambda: job in bs.getRunningBatchJobIDs())
    backend = backend_of(bs)
    native = next(j.native_id for j in backend._jobs.values())
    held = queue.cluster.run(["condor_hold", "-reason", "disk quota exceeded", native])
    assert held.returncode == 0, held
    info = collect(bs, 1)[job]
    assert info.exitReason is BatchJobExitReason.ERROR
    assert "held: disk quota exceeded (HoldReasonCode 1" in queue.log(job)
    # removed from the queue, with the reason kept in its RemoveReason
    assert wait_for(lambda: queue.cluster.run(["condor_q", "-json", native]).stdout == "")
    history = json.loads(queue.cluster.run(["condor_history", "-json", native]).stdout)
    assert history[0]["JobStatus"] == 3
    assert "mesobatch: held: disk quota exceeded" in history[0]["RemoveReason"]


def test_a_held_pending_job_says_so_in_the_status_message(one_core_queue: Queue) -> None:
    """PBS and LSF holds are someone's decision to wait: the job stays, and the status
    message says why (an HTCondor hold ends the job: the test before)."""
    queue = one_core_queue
    bs = queue.batch_system(jobArrays=False)
    blocker = bs.issueBatchJob("sleep 100", J)  # holds the one core
    assert wait_for(lambda: blocker in bs.getRunningBatchJobIDs())
    job = bs.issueBatchJob("true", J)
    backend = backend_of(bs)
    assert wait_for(lambda: any(j.native_id for j in backend._jobs.values()
                                if j.spec.job_id == job))
    native = next(j.native_id for j in backend._jobs.values() if j.spec.job_id == job)
    hold = ["bstop", native] if queue.name == "lsf" else ["qhold", native]
    held = queue.cluster.run(hold)  # it waits for the core
    assert held.returncode == 0, held
    words = "held: The job was suspended" if queue.name == "lsf" else "held (Hold_Types=u)"
    assert wait_for(lambda: words in (bs.getSchedulingStatusMessage() or ""), timeout=20)
    release = ["bresume", native] if queue.name == "lsf" else ["qrls", native]
    queue.cluster.run(release, check=True)
    bs.killBatchJobs([blocker])
    assert collect(bs, 1)[job].exitStatus == 0


def test_one_status_command_per_poll_whatever_the_number_of_jobs(queue: Queue) -> None:
    bs = queue.batch_system()
    ids = bs.issue_many([(f"sleep 2; exit {i % 2}", J, None) for i in range(30)])
    results = collect(bs, 30, timeout=120)
    assert {j: results[j].exitStatus for j in ids} == {j: i % 2 for i, j in enumerate(ids)}
    backend = backend_of(bs)
    bs.shutdown()
    status = {"lsf": "bjobs", "pbs": "qstat", "torque": "qstat", "htcondor": "condor_q"}
    counts = backend.commands.counts
    assert backend.polls >= 1
    assert counts[status[queue.name]] == backend.polls
    # submissions: one array for the burst (the submitter may split it once)
    submit = {"lsf": "bsub", "pbs": "qsub", "torque": "qsub", "htcondor": "condor_submit"}
    assert counts[submit[queue.name]] <= 2


def test_get_nodes_addresses_map_back_to_node_names(queue: Queue) -> None:
    bs = queue.batch_system()
    nodes = bs.getNodes()
    assert len(nodes) == 1
    (address,) = nodes
    assert nodes[address].coresTotal == 64
    job = bs.issueBatchJob("sleep 100", J)
    assert wait_for(lambda: bs.nodeInUse(address))
    bs.ignoreNode(address)
    later = bs.issueBatchJob("sleep 100", J)
    # submissions exclude the node by the system's name for it, whatever getNodes said
    assert backend_of(bs)._exclude == {socket.gethostname().split(".")[0]}
    bs.killBatchJobs([job, later])


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MESOBATCH_")}
    full.update(env, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "mesobatch", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=300, check=False)


def test_backends_says_which_queue_is_usable_here(tmp_path: Path) -> None:
    env = FAKES["lsf"].environment(tmp_path / "lsf")
    listing = _cli("backends", cwd=tmp_path, env=env)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    assert " yes " in rows["lsf"]  # the LSF fake's bsub, bjobs and bkill are on PATH
    assert "no: command 'condor_submit' is not on PATH" in rows["htcondor"]
    assert "no: command 'pbsnodes' is not on PATH" in rows["pbs"]
    assert "no: command 'pbsnodes' is not on PATH" in rows["torque"]


@pytest.mark.slow
@pytest.mark.parametrize("name", QUEUES)
def test_mesobatch_run_on_each_queue(name: str, tmp_path: Path) -> None:
    fake = FAKES[name]
    cluster = fake.cluster(tmp_path / name)
    try:
        r = _cli("run", str(ROOT / "examples" / "jobs.jsonl"), "--backend", name,
                 "--pollInterval", "0.2", "--logDir", str(tmp_path / "logs"), "--no-progress",
                 cwd=tmp_path, env=fake.environment(tmp_path / name))
        submitted = len(Store(tmp_path / name).read()["jobs"])
    finally:
        cluster.stop()
    assert r.returncode == 0, r.stderr
    assert "succeeded  10" in r.stdout and "failed     0" in r.stdout, r.stdout
    assert submitted == 10  # every job went through the fake


def test_a_log_directory_with_a_space_in_its_name(queue: Queue) -> None:
    """The scripts live under the log directory: each system gets their paths whole
    (bsub's command is run by a shell, so LSF's is quoted)."""
    logs = queue.state / "job logs"
    bs = queue.batch_system(logDir=str(logs))
    job = bs.issueBatchJob("echo ran here", J)
    assert collect(bs, 1)[job].exitStatus == 0
    assert (logs / f"{job}-job{job}.log").read_text() == "ran here\n"


def test_lsf_unit_for_limits_comes_from_the_cluster(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from mesobatch.integration.hpc.lsf_backend import LsfOptions
    from mesobatch.scheduler.options import resolve

    monkeypatch.delenv("LSF_UNIT_FOR_LIMITS", raising=False)
    monkeypatch.delenv("LSF_ENVDIR", raising=False)
    assert resolve(LsfOptions, {}, environ={}).lsf_unit_for_limits is None
    (tmp_path / "lsf.conf").write_text("LSF_LOGDIR=/var/log\nLSF_UNIT_FOR_LIMITS=GB\n")
    monkeypatch.setenv("LSF_ENVDIR", str(tmp_path))
    assert resolve(LsfOptions, {}, environ={}).lsf_unit_for_limits == "GB"
    # the cluster's variable, then mesobatch's own, then the argument
    assert resolve(LsfOptions, {}, environ={"LSF_UNIT_FOR_LIMITS": "mb"}
                   ).lsf_unit_for_limits == "MB"
    assert resolve(LsfOptions, {"lsfUnitForLimits": "TB"},
                   environ={"LSF_UNIT_FOR_LIMITS": "MB"}).lsf_unit_for_limits == "TB"
    with pytest.raises(OptionError, match=r"--lsfUnitForLimits.*expected one of KB, MB"):
        resolve(LsfOptions, {"lsfUnitForLimits": "bytes"}, environ={})
