"""LSF dialect: parsers on documented output, builders run against the LSF fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesobatch.integration.hpc.dialect import CommandResult, ErrorKind
from mesobatch.integration.hpc.lsf import LsfDialect, LsfSettings, parse_lsf_conf_unit
from mesobatch.scheduler.contract import BatchJobExitReason as R
from mesobatch.scheduler.core.states import TaskState as S
from tests.doubles.hpcfake.testing import FakeCluster
from tests.doubles.lsf import BIN

from .drive import final, make_submission, poll, result, submit, until_state

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lsf"


def fixture(name: str, argv: tuple[str, ...] = ("bjobs",)) -> CommandResult:
    return CommandResult(argv, 0, (FIXTURES / name).read_text(), "")


def test_parse_status_maps_states_and_termination_reasons() -> None:
    got = LsfDialect().parse_status(fixture("bjobs_json.json"))
    assert "111" not in got  # the ERROR record: unknown to LSF
    assert got["101"].state is S.STARTING
    assert got["101"].pending_reason == "New job is waiting for scheduling"
    assert (got["102"].state, got["102"].node) == (S.RUNNING, "hostA")
    assert (got["103"].state, got["103"].exit_code) == (S.FINISHED, 0)
    assert (got["104"].state, got["104"].exit_code, got["104"].exit_reason) == (S.FAILED, 3, None)
    assert (got["105"].exit_reason, got["105"].exit_code) == (R.MEMLIMIT, 130)
    assert got["106"].exit_reason is R.MAXJOBDURATION
    assert (got["107"].state, got["107"].exit_reason) == (S.KILLED, R.KILLED)
    assert (got["108"].state, got["108"].exit_reason) == (S.LOST, R.LOST)
    assert "TERM_REMOVE_HUNG_JOB" in got["108"].message
    assert got["109[2]"].state is S.STARTING
    assert got["109[2]"].pending_reason is not None and "held" in got["109[2]"].pending_reason
    assert got["110"].state is S.UNKNOWN


def test_builders_memory_units_and_arrays(tmp_path: Path) -> None:
    sub = make_submission(tmp_path, LsfDialect(), "mesobatch-run7-x", ["true", "true"],
                          cores=1.5, memory=3 * 2**30, walltime=61, gpus=1)
    argv = LsfDialect(LsfSettings(queue="short", project="p1")).submit_argv(sub)
    assert argv[:3] == ["bsub", "-J", "mesobatch-run7-x[1-2]"]
    assert argv[argv.index("-n") + 1] == "2"
    assert argv[argv.index("-R") + 1] == "rusage[mem=3072] span[hosts=1]"  # MB, unset unit
    assert argv[argv.index("-M") + 1] == str(3 * 2**20)  # KB, unset unit
    assert argv[argv.index("-W") + 1] == "2"
    assert argv[argv.index("-gpu") + 1] == "num=1"
    assert argv[-1] == sub.array_script
    gb = LsfDialect(LsfSettings(unit_for_limits="GB", memory_per_slot=True)).submit_argv(sub)
    assert gb[gb.index("-R") + 1] == "rusage[mem=2] span[hosts=1]"
    assert gb[gb.index("-M") + 1] == "3"
    assert parse_lsf_conf_unit("# x\nLSF_UNIT_FOR_LIMITS=MB\n") == "MB"
    assert LsfDialect().parse_submit(sub, fixture("bsub_array.txt", ("bsub",))) == [
        "4567[1]", "4567[2]"]
    with pytest.raises(ValueError, match="LSF_UNIT_FOR_LIMITS='XB'"):
        LsfSettings(unit_for_limits="XB")


def test_nodes_and_classify() -> None:
    nodes = LsfDialect().parse_nodes(fixture("lshosts_json.json", ("lshosts",)))
    assert [(n.name, n.cores, n.gpus, n.usable) for n in nodes] == [
        ("hostA", 32.0, 4, True), ("login1", 8.0, 0, False)]
    assert nodes[0].memory == int(251.5 * 2**30)
    d = LsfDialect()
    assert d.classify(CommandResult(("bkill",), 255, "", "Job <5>: No matching job found\n")) \
        is ErrorKind.UNKNOWN_JOB
    assert d.classify(CommandResult(("bsub",), 255, "", "nosuch: No such queue. Job not "
                                    "submitted.\n")) is ErrorKind.PERMANENT
    assert d.classify(CommandResult(("bjobs",), 255, "", "LSF is down. Please wait ...\n")) \
        is ErrorKind.TRANSIENT


@pytest.fixture
def lsf(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "lsf").mkdir()
    cluster = FakeCluster(BIN, "FAKE_LSF_DIR", tmp_path / "lsf", {
        "FAKE_LSF_TERMINATE_INTERVAL": "0.3", "FAKE_LSF_SECONDS_PER_MINUTE": "1",
        "LSF_UNIT_FOR_LIMITS": "MB"})
    yield cluster
    cluster.stop()


def test_end_to_end_against_the_fake(lsf: FakeCluster, tmp_path: Path) -> None:
    d = LsfDialect(LsfSettings(unit_for_limits="MB"))
    ok = submit(lsf, d, make_submission(tmp_path, d, "mesobatch-run9-ok", ["exit 0", "exit 4"]))
    slow = submit(lsf, d, make_submission(tmp_path, d, "mesobatch-run9-slow", ["sleep 30"],
                                          walltime=1))
    hog = submit(lsf, d, make_submission(
        tmp_path, d, "mesobatch-run9-hog",
        ["exec python3 -c 'b = bytearray(200 * 2**20); import time; time.sleep(30)'"],
        memory=40 * 2**20))
    victim = submit(lsf, d, make_submission(tmp_path, d, "mesobatch-run9-kill", ["sleep 30"]))
    gone = submit(lsf, d, make_submission(tmp_path, d, "mesobatch-run9-gone", ["sleep 30"]))
    until_state(lsf, d, "run9", victim[0], S.RUNNING)
    assert result(lsf, d.cancel_argv(victim)).returncode == 0
    until_state(lsf, d, "run9", gone[0], S.RUNNING)
    lsf.vanish(gone[0])
    got = final(lsf, d, "run9", ok + slow + hog + victim)
    assert [(got[i].state, got[i].exit_code) for i in ok] == [(S.FINISHED, 0), (S.FAILED, 4)]
    assert got[slow[0]].exit_reason is R.MAXJOBDURATION
    assert got[hog[0]].exit_reason is R.MEMLIMIT
    assert (got[victim[0]].state, got[victim[0]].exit_reason) == (S.KILLED, R.KILLED)
    assert gone[0] not in poll(lsf, d, "run9", gone)  # vanished: the base's rule takes over
    assert poll(lsf, d, "other-run", ok) == {}  # the query only sees its own run
    again = result(lsf, d.cancel_argv(victim))
    assert d.classify(again) is ErrorKind.UNKNOWN_JOB
    nodes = d.parse_nodes(result(lsf, d.nodes_argv() or []))
    assert len(nodes) == 1 and nodes[0].cores >= 1 and nodes[0].memory > 0


def test_held_job_waits_with_its_reason(lsf: FakeCluster, tmp_path: Path) -> None:
    lsf.env["FAKE_LSF_START_DELAY"] = "3"
    d = LsfDialect()
    (job,) = submit(lsf, d, make_submission(tmp_path, d, "mesobatch-run8-held", ["true"]))
    assert result(lsf, ["bstop", job]).returncode == 0
    held = poll(lsf, d, "run8", [job])[job]
    assert held.state is S.STARTING
    assert held.pending_reason == "held: The job was suspended by the user while pending"
    assert result(lsf, ["bresume", job]).returncode == 0
    assert final(lsf, d, "run8", [job])[job].state is S.FINISHED
