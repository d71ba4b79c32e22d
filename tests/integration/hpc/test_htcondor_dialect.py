"""HTCondor dialect: parsers on documented output, builders against the HTCondor fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesobatch.integration.hpc.dialect import CommandResult, ErrorKind
from mesobatch.integration.hpc.htcondor import HTCondorDialect, HTCondorSettings
from mesobatch.scheduler.contract import BatchJobExitReason as R
from mesobatch.scheduler.core.states import TaskState as S
from tests.doubles.hpcfake.testing import FakeCluster
from tests.doubles.htcondor import BIN

from .drive import final, make_submission, poll, result, submit, until_state

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "htcondor"
D = HTCondorDialect()


def fixture(name: str, argv: tuple[str, ...] = ("condor_q",)) -> CommandResult:
    return CommandResult(argv, 0, (FIXTURES / name).read_text(), "")


def test_queue_states_and_holds() -> None:
    got = D.parse_status(fixture("condor_q.json"))
    assert got["40.0"].state is S.STARTING
    assert (got["40.1"].state, got["40.1"].node) == (S.RUNNING, "exec1.example.org")
    assert (got["41.0"].state, got["41.0"].exit_reason) == (S.FAILED, R.MEMLIMIT)
    assert "cgroup memory limit" in got["41.0"].message
    assert got["42.0"].exit_reason is R.MAXJOBDURATION
    assert (got["43.0"].state, got["43.0"].exit_reason) == (S.ERROR, R.ERROR)
    assert got["43.0"].message == ("held: via condor_hold (by user alice) (HoldReasonCode 1, "
                                   "HoldReasonSubCode 0)")
    assert got["44.0"].state is S.ERROR and "Permission denied" in got["44.0"].message
    assert got["45.0"].state is S.KILLED
    assert D.parse_status(CommandResult(("condor_q",), 0, "", "")) == {}


def test_history() -> None:
    got = D.parse_accounting(fixture("condor_history.json", ("condor_history",)))
    assert (got["39.0"].state, got["39.0"].exit_code) == (S.FINISHED, 0)
    assert (got["39.1"].state, got["39.1"].exit_code) == (S.FAILED, 7)
    assert (got["39.2"].state, got["39.2"].exit_code) == (S.FAILED, 128 + 11)
    assert got["38.0"].state is S.KILLED
    argv = D.accounting_argv(["39.0", "39.2", "40.1"])
    assert argv is not None
    assert argv[argv.index("-constraint") + 1] == (
        "(ClusterId == 39 && (ProcId == 0 || ProcId == 2)) || (ClusterId == 40 && "
        "(ProcId == 1))")
    assert argv[-2:] == ["-limit", "3"]


def test_submit_description(tmp_path: Path) -> None:
    sub = make_submission(tmp_path, D, "mb-run4-x", ["true", "true", "true"], cores=1.5,
                          memory=1536 * 2**20, disk=2**30, gpus=1, walltime=90.5,
                          exclude=("bad1",))
    text = HTCondorDialect(HTCondorSettings(extra_submit_lines=("accounting_group = g",))) \
        .submit_description(sub)
    lines = text.splitlines()
    assert f"executable = {sub.array_script}" in lines
    assert 'environment = "MESOBATCH_PROCESS=$(Process)"' in lines
    assert {"request_cpus = 2", "request_memory = 1536", "request_disk = 1048576",
            "request_gpus = 1", "allowed_job_duration = 91", "accounting_group = g",
            '+MesobatchRun = "mb-run4-x"', 'requirements = (Machine != "bad1")'} <= set(lines)
    assert lines[-1] == "queue 3"
    assert D.submit_argv(sub) == ["condor_submit", D.submit_path(sub)]
    assert D.parse_submit(sub, CommandResult(("condor_submit",), 0, "Submitting job(s)...\n"
                                             "3 job(s) submitted to cluster 57.\n", "")) == [
        "57.0", "57.1", "57.2"]
    with pytest.raises(ValueError, match="queue statement"):
        HTCondorSettings(extra_submit_lines=("queue 2",))


def test_nodes_and_classify() -> None:
    nodes = D.parse_nodes(fixture("condor_status.json", ("condor_status",)))
    assert [(n.name, n.cores, n.memory // 2**20, n.gpus, n.usable) for n in nodes] == [
        ("exec1.example.org", 16.0, 64000, 2, True), ("exec2.example.org", 1.0, 2048, 0, False)]
    assert nodes[0].address == "10.0.0.5"
    assert D.classify(CommandResult(("condor_rm",), 1, "", "Job 5.0 not found\n")) \
        is ErrorKind.UNKNOWN_JOB
    assert D.classify(CommandResult(("condor_submit",), 1, "", "\nERROR: Executable file /x "
                                    "does not exist\n")) is ErrorKind.PERMANENT
    assert D.classify(CommandResult(("condor_q",), 1, "", "-- Failed to fetch ads from: "
                                    "<127.0.0.1:9618>\n")) is ErrorKind.TRANSIENT


@pytest.fixture
def condor(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "condor").mkdir()
    cluster = FakeCluster(BIN, "FAKE_CONDOR_DIR", tmp_path / "condor",
                          {"FAKE_CONDOR_KILL_DELAY": "0.3"})
    yield cluster
    cluster.stop()


def test_end_to_end_against_the_fake(condor: FakeCluster, tmp_path: Path) -> None:
    ok = submit(condor, D, make_submission(tmp_path, D, "mb-run6-ok",
                                           ["exit 0", "exit 5", "kill -SEGV $$"]))
    assert [i.split(".")[1] for i in ok] == ["0", "1", "2"]
    slow = submit(condor, D, make_submission(tmp_path, D, "mb-run6-slow", ["sleep 30"],
                                             walltime=1))
    hog = submit(condor, D, make_submission(
        tmp_path, D, "mb-run6-hog",
        ["exec python3 -c 'b = bytearray(200 * 2**20); import time; time.sleep(30)'"],
        memory=40 * 2**20))
    victim = submit(condor, D, make_submission(tmp_path, D, "mb-run6-kill", ["sleep 30"]))
    gone = submit(condor, D, make_submission(tmp_path, D, "mb-run6-gone", ["sleep 30"]))
    until_state(condor, D, "mb-run6", victim[0], S.RUNNING)
    assert result(condor, D.cancel_argv(victim)).returncode == 0
    until_state(condor, D, "mb-run6", gone[0], S.RUNNING)
    condor.vanish(gone[0])
    got = final(condor, D, "mb-run6", ok + slow + hog + victim)
    assert [(got[i].state, got[i].exit_code) for i in ok] == [
        (S.FINISHED, 0), (S.FAILED, 5), (S.FAILED, 128 + 11)]
    assert (got[slow[0]].state, got[slow[0]].exit_reason) == (S.FAILED, R.MAXJOBDURATION)
    assert (got[hog[0]].state, got[hog[0]].exit_reason) == (S.FAILED, R.MEMLIMIT)
    assert "HoldReasonCode 34" in got[hog[0]].message
    assert (got[victim[0]].state, got[victim[0]].exit_reason) == (S.KILLED, R.KILLED)
    assert gone[0] not in poll(condor, D, "mb-run6", gone)  # not in the queue nor history
    # the status query only sees its own run (accounting looks jobs up by id)
    assert D.parse_status(result(condor, D.status_argv("mb-run7", ok))) == {}
    # a held job stays in the queue until it is removed
    assert result(condor, D.cancel_argv(hog)).returncode == 0
    assert poll(condor, D, "mb-run6", hog)[hog[0]].state is S.KILLED
    nodes = D.parse_nodes(result(condor, D.nodes_argv() or []))
    assert len(nodes) == 1 and nodes[0].cores >= 1


def test_held_job_is_an_error_with_its_reason(condor: FakeCluster, tmp_path: Path) -> None:
    (job,) = submit(condor, D, make_submission(tmp_path, D, "mb-run8-held", ["sleep 30"]))
    until_state(condor, D, "mb-run8", job, S.RUNNING)
    assert result(condor, ["condor_hold", "-reason", "disk quota exceeded", job]).returncode == 0
    held = until_state(condor, D, "mb-run8", job, S.ERROR)
    assert held.message == "held: disk quota exceeded (HoldReasonCode 1, HoldReasonSubCode 0)"
