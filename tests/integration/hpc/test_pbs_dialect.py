"""PBS dialect (PBS Pro and Torque): parsers on documented output, builders against the fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesobatch.integration.hpc.dialect import CommandResult, ErrorKind
from mesobatch.integration.hpc.pbs import PbsDialect, PbsSettings
from mesobatch.scheduler.contract import BatchJobExitReason as R
from mesobatch.scheduler.core.states import TaskState as S
from tests.doubles.hpcfake.testing import FakeCluster
from tests.doubles.pbs import BIN

from .drive import final, make_submission, poll, result, submit, until_state

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "pbs"
PRO = PbsDialect()
TORQUE = PbsDialect(PbsSettings(flavor="torque"))


def fixture(name: str, argv: tuple[str, ...] = ("qstat",)) -> CommandResult:
    return CommandResult(argv, 0, (FIXTURES / name).read_text(), "")


def test_pbspro_status_and_exit_codes() -> None:
    got = PRO.parse_status(fixture("qstat_pbspro.json"))
    assert "22[].pbsserver" not in got
    assert got["11.pbsserver"].state is S.STARTING
    assert got["11.pbsserver"].pending_reason == \
        "Not Running: Insufficient amount of resource: ncpus"
    assert (got["12.pbsserver"].state, got["12.pbsserver"].node) == (S.RUNNING, "node1")
    assert (got["13.pbsserver"].state, got["13.pbsserver"].exit_code) == (S.FINISHED, 0)
    assert (got["14.pbsserver"].state, got["14.pbsserver"].exit_code) == (S.FAILED, 2)
    assert got["15.pbsserver"].exit_reason is R.MEMLIMIT
    assert "JOB_EXEC_KILL_MEM" in got["15.pbsserver"].message
    assert got["16.pbsserver"].exit_reason is R.MAXJOBDURATION
    assert (got["17.pbsserver"].state, got["17.pbsserver"].exit_code) == (S.KILLED, 128 + 15)
    assert (got["18.pbsserver"].state, got["18.pbsserver"].exit_reason) == (S.LOST, R.LOST)
    assert (got["19.pbsserver"].state, got["19.pbsserver"].exit_reason) == (S.ERROR, R.ERROR)
    assert got["20.pbsserver"].pending_reason == "held (Hold_Types=u)"
    assert got["21.pbsserver"].state is S.KILLED  # deleted before it ran: no Exit_status
    assert got["22[1].pbsserver"].state is S.FINISHED
    assert got["22[2].pbsserver"].state is S.RUNNING
    assert (got["23.pbsserver"].state, got["23.pbsserver"].exit_code) == (S.FAILED, 139)
    assert (got["24.pbsserver"].state, got["24.pbsserver"].exit_code) == (S.FAILED, 137)


def test_torque_status_uses_its_own_exit_codes() -> None:
    got = TORQUE.parse_status(fixture("qstat_torque.xml"))
    assert got["31.torquesrv"].state is S.STARTING
    assert (got["32.torquesrv"].state, got["32.torquesrv"].node) == (S.RUNNING, "node1")
    assert got["33.torquesrv"].state is S.FINISHED
    assert got["34.torquesrv"].exit_reason is R.MAXJOBDURATION  # -11 is walltime in Torque
    assert got["35.torquesrv"].exit_reason is R.MEMLIMIT
    assert got["36.torquesrv"].state is S.ERROR
    assert got["37[1].torquesrv"].exit_code == 5
    # the same -11 in PBS Pro is JOB_EXEC_RERUN
    assert PRO.from_exit_status("x", -11).exit_reason is R.LOST


def test_builders_by_flavor(tmp_path: Path) -> None:
    sub = make_submission(tmp_path, PRO, "mesobatch-run3-x", ["true", "true"], cores=2,
                          memory=512 * 2**20, walltime=3661, gpus=1)
    pro = PbsDialect(PbsSettings(queue="q1", account="acct")).submit_argv(sub)
    assert pro[pro.index("-l") + 1] == "select=1:ncpus=2:mem=512mb:ngpus=1"
    assert "walltime=01:01:01" in pro and pro[pro.index("-J") + 1] == "1-2"
    assert pro[pro.index("-q") + 1] == "q1" and pro[pro.index("-A") + 1] == "acct"
    tq = TORQUE.submit_argv(sub)
    assert tq[tq.index("-l") + 1] == "nodes=1:ppn=2:gpus=1,mem=512mb"
    assert tq[tq.index("-t") + 1] == "1-2" and "-J" not in tq
    one = make_submission(tmp_path, PRO, "mesobatch-run3-y", ["true"])
    assert "-J" not in PRO.submit_argv(one)  # PBS Pro arrays need two elements
    assert PRO.parse_submit(sub, CommandResult(("qsub",), 0, "45[].srv\n", "")) == [
        "45[1].srv", "45[2].srv"]
    assert PRO.status_argv("run3", ["45[1].srv", "45[2].srv", "46.srv"])[-2:] == [
        "45[].srv", "46.srv"]
    with pytest.raises(ValueError, match="flavor='lsf'"):
        PbsSettings(flavor="lsf")


def test_nodes_and_classify() -> None:
    pro = PRO.parse_nodes(fixture("pbsnodes_pbspro.json", ("pbsnodes",)))
    assert [(n.name, n.cores, n.gpus, n.usable) for n in pro] == [
        ("node1", 16.0, 2, True), ("node2", 16.0, 0, False)]
    assert pro[0].memory == 65536000 * 1024 and pro[1].memory == 64 * 2**30
    tq = TORQUE.parse_nodes(fixture("pbsnodes_torque.xml", ("pbsnodes",)))
    assert [(n.name, n.cores, n.usable) for n in tq] == [("node1", 8.0, True),
                                                        ("node2", 8.0, False)]
    assert PRO.classify(CommandResult(("qdel",), 153, "", "qdel: Unknown Job Id 9.srv\n")) \
        is ErrorKind.UNKNOWN_JOB
    assert PRO.classify(CommandResult(("qsub",), 170, "", "qsub: Unknown queue\n")) \
        is ErrorKind.PERMANENT
    assert PRO.classify(CommandResult(("qstat",), 1, "", "Connection refused\nqstat: cannot "
                                      "connect to server srv (errno=111)\n")) is ErrorKind.TRANSIENT


@pytest.fixture(params=["pbspro", "torque"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "pbs").mkdir()
    fake = FakeCluster(BIN, "FAKE_PBS_DIR", tmp_path / "pbs", {
        "FAKE_PBS_FLAVOR": request.param, "FAKE_PBS_KILL_DELAY": "0.3"})
    yield fake
    fake.stop()


def test_end_to_end_against_the_fake(cluster: FakeCluster, tmp_path: Path) -> None:
    d = PbsDialect(PbsSettings(flavor=cluster.env["FAKE_PBS_FLAVOR"]))
    ok = submit(cluster, d, make_submission(tmp_path, d, "mbrun5-ok", ["exit 0", "exit 6"]))
    slow = submit(cluster, d, make_submission(tmp_path, d, "mbrun5-slow", ["sleep 30"],
                                              walltime=1))
    hog = submit(cluster, d, make_submission(
        tmp_path, d, "mbrun5-hog",
        ["exec python3 -c 'b = bytearray(200 * 2**20); import time; time.sleep(30)'"],
        memory=40 * 2**20))
    victim = submit(cluster, d, make_submission(tmp_path, d, "mbrun5-kill", ["sleep 30"]))
    gone = submit(cluster, d, make_submission(tmp_path, d, "mbrun5-gone", ["sleep 30"]))
    until_state(cluster, d, "mbrun5", victim[0], S.RUNNING)
    assert result(cluster, d.cancel_argv(victim)).returncode == 0
    until_state(cluster, d, "mbrun5", gone[0], S.RUNNING)
    cluster.vanish(gone[0].split(".")[0])
    got = final(cluster, d, "mbrun5", ok + slow + hog + victim)
    assert [(got[i].state, got[i].exit_code) for i in ok] == [(S.FINISHED, 0), (S.FAILED, 6)]
    assert got[slow[0]].exit_reason is R.MAXJOBDURATION
    assert got[hog[0]].exit_reason is R.MEMLIMIT
    assert (got[victim[0]].state, got[victim[0]].exit_code) == (S.KILLED, 128 + 15)
    vanished = result(cluster, d.status_argv("mbrun5", gone))
    assert d.parse_status(vanished) == {}
    assert d.classify(vanished) is ErrorKind.UNKNOWN_JOB
    assert gone[0] not in poll(cluster, d, "mbrun5", gone)
    nodes = d.parse_nodes(result(cluster, d.nodes_argv() or []))
    assert len(nodes) == 1 and nodes[0].cores >= 1


def test_held_job_waits_with_its_reason(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.env["FAKE_PBS_START_DELAY"] = "3"
    d = PbsDialect(PbsSettings(flavor=cluster.env["FAKE_PBS_FLAVOR"]))
    (job,) = submit(cluster, d, make_submission(tmp_path, d, "mbrun8-held", ["true"]))
    assert result(cluster, ["qhold", job]).returncode == 0
    held = poll(cluster, d, "mbrun8", [job])[job]
    assert (held.state, held.pending_reason) == (S.STARTING, "held (Hold_Types=u)")
    assert result(cluster, ["qrls", job]).returncode == 0
    assert final(cluster, d, "mbrun8", [job])[job].state is S.FINISHED
