"""The Grid Engine dialect on output recorded from the real Grid Engine
(tests/fixtures/gridengine/, made by tests/services/gridengine_record.py), its builders,
and its argument lists run against the real Grid Engine the tests start."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mesobatch.integration.hpc.dialect import CommandResult, ErrorKind, NativeStatus, Submission
from mesobatch.integration.hpc.gridengine import (
    ENVIRONMENT_VARIABLE,
    GridEngineDialect,
    GridEngineSettings,
    expand_tasks,
    native_state,
    parse_memory,
    parse_time,
)
from mesobatch.scheduler.contract import BatchJobExitReason as Reason
from mesobatch.scheduler.core.states import TaskState

from .conftest import recording

GE = GridEngineDialect()


def rec(name: str) -> tuple[CommandResult, dict[str, str]]:
    return recording("gridengine", name)


def submission(**changes: Any) -> Submission:
    base = Submission(name="mb_run1_7", scripts=("/w/job.sh",), array_script=None,
                      system_output="/w/sys", work_dir="/w", cores=1, memory=0, disk=0,
                      gpus=0, walltime=None, preemptible=False)
    return dataclasses.replace(base, **changes)


# -- qsub ---------------------------------------------------------------------------------

def test_submit_output_terse_and_long_give_the_job_id() -> None:
    one = submission()
    for name in ("submit_single", "submit_single_verbose"):
        result, _ = rec(name)
        ids = GE.parse_submit(one, result)
        assert len(ids) == 1 and ids[0].isdigit()
        assert ids[0] in result.stdout


def test_array_submit_output_gives_one_id_per_task() -> None:
    three = submission(scripts=("a", "b", "c"), array_script="/w/array.sh")
    for name in ("submit_array", "submit_array_verbose"):
        result, _ = rec(name)
        ids = GE.parse_submit(three, result)
        job = ids[0].split(".")[0]
        assert ids == [f"{job}.1", f"{job}.2", f"{job}.3"]
    with pytest.raises(ValueError, match="expected tasks 1-2"):
        GE.parse_submit(dataclasses.replace(three, scripts=("a", "b")), rec("submit_array")[0])


def test_a_failed_qsub_has_no_id() -> None:
    with pytest.raises(ValueError, match="no job id"):
        GE.parse_submit(submission(), rec("submit_unknown_queue")[0])


@pytest.mark.parametrize("name", [
    "submit_unknown_queue", "submit_unknown_project", "submit_unknown_pe",
    "submit_unknown_resource", "submit_bad_name", "submit_impossible_verified",
    "submit_impossible_memory_verified"])
def test_rejected_submissions_are_permanent(name: str) -> None:
    result, _ = rec(name)
    assert result.returncode != 0
    assert GE.classify(result) is ErrorKind.PERMANENT


@pytest.mark.parametrize("name", ["outage_qstat", "outage_qsub", "outage_qdel", "outage_qhost"])
def test_no_qmaster_is_transient(name: str) -> None:
    result, _ = rec(name)
    assert result.returncode != 0
    assert GE.classify(result) is ErrorKind.TRANSIENT


@pytest.mark.parametrize("name", [
    "qacct_unknown", "qacct_unknown_task", "qacct_deleted_pending", "qdel_unknown",
    "qdel_known_and_unknown", "explain_unknown_text"])
def test_unknown_jobs_are_recognised(name: str) -> None:
    result, _ = rec(name)
    assert result.returncode != 0
    assert GE.classify(result) is ErrorKind.UNKNOWN_JOB


def test_an_unexplained_failure_is_permanent_for_qsub_and_transient_for_queries() -> None:
    odd = CommandResult(("qsub", "x.sh"), 1, "", "something new\n")
    assert GE.classify(odd) is ErrorKind.PERMANENT
    assert GE.classify(dataclasses.replace(odd, argv=("qstat", "-xml"))) is ErrorKind.TRANSIENT


# -- qstat --------------------------------------------------------------------------------

def test_status_of_running_pending_held_error_and_array_jobs() -> None:
    result, jobs = rec("status_mixed")
    found = GE.parse_status(result)
    array = jobs["array"]
    assert set(found) == {jobs["running"], jobs["pending"], jobs["held"], jobs["eqw"],
                          f"{array}.1", f"{array}.2", f"{array}.3", f"{array}.4"}
    assert found[jobs["running"]].state is TaskState.RUNNING
    assert found[jobs["running"]].node == "vm"
    assert found[f"{array}.1"].state is TaskState.RUNNING
    for waiting in (jobs["pending"], f"{array}.2", f"{array}.4"):
        assert found[waiting].state is TaskState.STARTING
        assert found[waiting].node is None
    assert found[jobs["held"]].state is TaskState.STARTING
    assert found[jobs["held"]].pending_reason == "on hold"
    error = found[jobs["eqw"]]
    assert error.state is TaskState.ERROR and error.exit_reason is Reason.ERROR
    assert f"qstat -j {jobs['eqw']}" in error.message


def test_status_of_nothing_and_of_a_job_being_deleted() -> None:
    assert GE.parse_status(rec("status_empty")[0]) == {}
    result, jobs = rec("status_after_qdel")
    assert GE.parse_status(result)[jobs["running"]].state is TaskState.KILLING


def test_requeued_and_exit_100_jobs() -> None:
    result, jobs = rec("status_exit99_exit100")
    found = GE.parse_status(result)
    assert found[jobs["exit99"]].state is TaskState.STARTING
    assert found[jobs["exit99"]].pending_reason == "rescheduled"
    assert found[jobs["exit100"]].state is TaskState.ERROR


def test_status_output_that_is_not_xml_is_an_error() -> None:
    with pytest.raises(ValueError, match="no XML"):
        GE.parse_status(rec("outage_qstat")[0])


def test_error_reasons_and_scheduler_words_from_qstat_j() -> None:
    result, jobs = rec("explain_eqw")
    assert GE.explain_argv([jobs["eqw"], jobs["pending"]]) == list(result.argv)
    words = GE.parse_explain(result)
    assert "can't chdir" in words[jobs["eqw"]]
    assert "dropped because it is full" in words[jobs["pending"]]
    result, jobs = rec("explain_exit100")
    assert "exit_status of job start = 100" in GE.parse_explain(result)[jobs["exit100"]]
    assert GE.parse_explain(rec("explain_unknown")[0]) == {}


@pytest.mark.parametrize(("state", "expected"), [
    ("qw", TaskState.STARTING), ("hqw", TaskState.STARTING), ("hRwq", TaskState.STARTING),
    ("Rq", TaskState.STARTING), ("t", TaskState.STARTING), ("Rt", TaskState.STARTING),
    ("r", TaskState.RUNNING), ("hr", TaskState.RUNNING), ("Rr", TaskState.RUNNING),
    ("s", TaskState.RUNNING), ("ts", TaskState.RUNNING), ("S", TaskState.RUNNING),
    ("T", TaskState.RUNNING), ("RtT", TaskState.RUNNING),
    ("Eqw", TaskState.ERROR), ("Ehqw", TaskState.ERROR), ("EhRqw", TaskState.ERROR),
    ("dr", TaskState.KILLING), ("dt", TaskState.KILLING), ("dRs", TaskState.KILLING),
    ("X", TaskState.UNKNOWN), ("", TaskState.UNKNOWN), ("qwP", TaskState.UNKNOWN)])
def test_every_state_of_sge_status_5(state: str, expected: TaskState) -> None:
    # t (transferring to execd): sge_status(5) files it under running; here the process has
    # not started yet, so it is STARTING
    assert native_state(state)[0] is expected


def test_task_ranges() -> None:
    assert expand_tasks("2-5:1") == [2, 3, 4, 5]
    assert expand_tasks("2,4") == [2, 4]
    assert expand_tasks("1-9:4,12") == [1, 5, 9, 12]
    with pytest.raises(ValueError, match="task range"):
        expand_tasks("1-x")


# -- qacct --------------------------------------------------------------------------------

def final(name: str, key: str) -> NativeStatus:
    result, jobs = rec(name)
    status = GE.parse_accounting(result).get(jobs[key])
    assert status is not None, f"{name}: no final state for {jobs[key]}"
    return status


def test_exit_codes_from_accounting() -> None:
    ok = final("qacct_exit0", "ok")
    assert ok.state is TaskState.FINISHED and ok.exit_code == 0
    three = final("qacct_exit3", "exit3")
    assert three.state is TaskState.FAILED and three.exit_code == 3
    assert three.exit_reason is Reason.FAILED and three.node == "vm"


def test_limits_qdel_and_errors_from_accounting() -> None:
    walltime = final("qacct_h_rt", "h_rt")
    assert walltime.state is TaskState.FAILED
    assert walltime.exit_reason is Reason.MAXJOBDURATION
    assert walltime.exit_code == 137 and "h_rt=2" in walltime.message
    memory = final("qacct_h_vmem", "h_vmem")
    assert memory.exit_reason is Reason.MEMLIMIT and "h_vmem=300M" in memory.message
    killed = final("qacct_qdel_running", "running")
    assert killed.state is TaskState.KILLED and killed.exit_reason is Reason.KILLED
    assert killed.exit_code == 137
    eqw = final("qacct_eqw", "eqw")
    assert eqw.state is TaskState.ERROR and "working directory" in eqw.message
    no_output = final("qacct_no_output", "no_output")
    assert no_output.state is TaskState.ERROR and "failed 26" in no_output.message
    e100 = final("qacct_exit100", "exit100")
    assert e100.state is TaskState.FAILED and e100.exit_code == 100
    assert "failed 30" in e100.message
    assert final("qacct_pe", "pe").state is TaskState.FINISHED


def test_a_requeued_job_has_no_final_record() -> None:
    result, _ = rec("qacct_exit99")
    assert "failed       25" in result.stdout
    assert GE.parse_accounting(result) == {}


def test_array_accounting_gives_every_task() -> None:
    result, jobs = rec("qacct_array")
    array = jobs["array"]
    found = GE.parse_accounting(result)
    assert {k: v.exit_code for k, v in found.items()} == {
        f"{array}.1": 0, f"{array}.2": 1, f"{array}.3": 2}
    assert found[f"{array}.1"].state is TaskState.FINISHED
    assert found[f"{array}.3"].state is TaskState.FAILED
    result, _ = rec("qacct_array_task")
    assert GE.accounting_argv([f"{array}.2"]) == list(result.argv)
    assert list(GE.parse_accounting(result)) == [f"{array}.2"]


def test_qacct_reads_one_id_and_name_patterns() -> None:
    result, jobs = rec("qacct_two_ids")
    assert list(GE.parse_accounting(result)) == [jobs["ok"]]  # "-j A,B" is A
    result, jobs = rec("qacct_by_name")
    assert GE.accounting_by_name_argv("mbrec_[oe]*") == list(result.argv)
    found = GE.parse_accounting(result)
    assert {jobs["ok"], jobs["exit3"]} <= set(found)
    assert GE.parse_accounting(rec("qacct_by_name_none")[0]) == {}
    assert GE.parse_accounting(rec("qacct_unknown")[0]) == {}


def test_failed_codes_from_the_man_pages() -> None:
    result, jobs = rec("qacct_from_man_pages")
    found = GE.parse_accounting(result)
    assert found[jobs["mbman_before_job"]].state is TaskState.ERROR
    assert found[jobs["mbman_prolog"]].state is TaskState.ERROR
    assert found[jobs["mbman_signal"]].exit_reason is Reason.KILLED
    assert found[jobs["mbman_shepherd"]].state is TaskState.LOST
    assert found[jobs["mbman_unknown_job"]].exit_reason is Reason.LOST
    epilog = found[jobs["mbman_epilog"]]
    assert epilog.state is TaskState.FINISHED and "in epilog" in epilog.message
    assert jobs["mbman_migrating"] not in found


def test_accounting_argv_takes_one_job() -> None:
    assert GE.accounting_argv(["12"]) == ["qacct", "-j", "12"]
    assert GE.accounting_argv(["12.3"]) == ["qacct", "-j", "12", "-t", "3"]
    assert GE.accounting_argv(["12.1", "12.2"]) == ["qacct", "-j", "12"]
    with pytest.raises(ValueError, match="one job id"):
        GE.accounting_argv(["12", "13"])
    with pytest.raises(ValueError, match="not a Grid Engine job id"):
        GE.accounting_argv(["12;rm"])


# -- qdel, qhost --------------------------------------------------------------------------

def test_accounting_queries_ask_once_per_job_or_once_for_the_run() -> None:
    assert GE.accounting_queries("mb-x-1a2b", ["12.1", "13", "12.3", "14.2"]) == [
        ["qacct", "-j", "12"], ["qacct", "-j", "13"], ["qacct", "-j", "14", "-t", "2"]]
    with pytest.raises(ValueError, match="not a Grid Engine job id"):
        GE.accounting_queries("mb-x-1a2b", ["12", "x;y"])
    # many jobs: one call for all the run's finished jobs, by the tag in their names
    many = [str(n) for n in range(20, 20 + GE.accounting_by_id + 1)]
    assert GE.accounting_queries("mb-x-1a2b", many) == [["qacct", "-j", "mb-x-1a2b-*"]]


def test_cancel_argv() -> None:
    assert GE.cancel_argv(["12", "13.2"]) == ["qdel", "12", "13.2"]
    with pytest.raises(ValueError):
        GE.cancel_argv(["-u"])
    result, jobs = rec("qdel_array_task")
    assert GE.cancel_argv([f"{jobs['array']}.3"]) == list(result.argv)
    assert result.returncode == 0


def test_nodes_from_qhost() -> None:
    result, _ = rec("qhost_queues")
    assert GE.nodes_argv() == list(result.argv)
    (node,) = GE.parse_nodes(result)
    assert node.name == "vm" and node.cores == 2 and node.usable
    assert node.memory > 2**30 and node.memory_free is not None
    assert 0 < node.memory_free < node.memory
    assert node.partitions == ("all.q",) and node.cpu_load is not None
    (disabled,) = GE.parse_nodes(rec("qhost_queue_disabled")[0])
    assert not disabled.usable and "all.q:d" in disabled.state
    (plain,) = GE.parse_nodes(rec("qhost")[0])  # without -q: no queue, so no use known
    assert plain.cores == 2 and not plain.usable


# -- builders -----------------------------------------------------------------------------

def flags(argv: list[str]) -> dict[str, str]:
    return {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("-")}


def test_one_core_job_is_a_plain_script_submission() -> None:
    argv = GE.submit_argv(submission())
    assert argv[0] == "qsub" and argv[-1] == "/w/job.sh"
    f = flags(argv)
    assert f["-b"] == "n" and f["-S"] == "/bin/sh" and f["-N"] == "mb_run1_7"
    assert f["-o"] == f["-e"] == "/w/sys" and f["-wd"] == "/w"
    assert "-pe" not in argv and "-l" not in argv and "-t" not in argv and "-terse" in argv


def test_cores_memory_walltime_queue_project_and_exclusions() -> None:
    sub = submission(cores=4, memory=8 * 2**30, walltime=90.5, exclude=("n1", "n2"))
    f = flags(GridEngineDialect(GridEngineSettings(queue="long.q", project="p1"))
              .submit_argv(sub))
    assert f["-pe"] == "smp" and f["-q"] == "long.q" and f["-P"] == "p1"
    assert f["-l"] == "h_vmem=2048M,h_rt=91,hostname=!n1&!n2"
    per_job = GridEngineDialect(GridEngineSettings(memory_resource="mem_free",
                                                   memory_per_slot=False,
                                                   parallel_environment="threads"))
    argv = per_job.submit_argv(dataclasses.replace(sub, exclude=()))
    assert flags(argv)["-l"] == "mem_free=8192M,h_rt=91"
    assert argv[argv.index("-pe"):argv.index("-pe") + 3] == ["-pe", "threads", "4"]
    uge = GridEngineDialect(GridEngineSettings(flavor="uge"))
    assert flags(uge.submit_argv(submission(cores=0.5, memory=100)))["-l"] == "m_mem_free=1M"


def test_disk_gpus_and_arrays() -> None:
    sub = submission(cores=2, disk=10 * 2**30, gpus=3, scripts=("a", "b"),
                     array_script="/w/array.sh")
    dialect = GridEngineDialect(GridEngineSettings(disk_resource="scratch"))
    argv = dialect.submit_argv(sub)
    assert flags(argv)["-l"] == "scratch=10240M,gpu=3"
    assert flags(argv)["-t"] == "1-2" and argv[-1] == "/w/array.sh"
    assert GE.array_index_variable == "SGE_TASK_ID" and GE.array_first_index == 1
    with pytest.raises(ValueError, match="no Grid Engine GPU resource"):
        GridEngineDialect(GridEngineSettings(gpu_resource=None)).submit_argv(sub)
    with pytest.raises(ValueError, match="max_array_size 1"):
        GridEngineDialect(GridEngineSettings(max_array_size=1)).submit_argv(sub)


@pytest.mark.parametrize("name", ["1job", "a b", "a/b", "a:b", "a@b", "a*b", "", "a\nb"])
def test_job_names_grid_engine_refuses_are_refused_here(name: str) -> None:
    with pytest.raises(ValueError, match="job name"):
        GE.submit_argv(submission(name=name))


def test_extra_arguments_from_settings_and_environment() -> None:
    settings = GridEngineSettings(extra_args=("-p", "-5"))
    dialect = GridEngineDialect(settings, {ENVIRONMENT_VARIABLE: "-l scratch=1G -A 'my acct'"})
    argv = dialect.submit_argv(submission())
    assert argv[-7:] == ["-p", "-5", "-l", "scratch=1G", "-A", "my acct", "/w/job.sh"]
    # -q is the user's to give while no queue is set
    queued = GridEngineDialect(GridEngineSettings(), {ENVIRONMENT_VARIABLE: "-q any.q"})
    assert queued.submit_argv(submission())[-3:] == ["-q", "any.q", "/w/job.sh"]


@pytest.mark.parametrize(("settings", "args", "words"), [
    (GridEngineSettings(), "-N other", "'-N' conflicts"),
    (GridEngineSettings(), "-b y", "'-b' conflicts"),
    (GridEngineSettings(), "-t 1-3", "arrays"),
    (GridEngineSettings(), "-pe mpi 4", "cores"),
    (GridEngineSettings(), "-sync y", "wait"),
    (GridEngineSettings(), "-l h_vmem=1G", "memory"),
    (GridEngineSettings(), "-l arch=lx-amd64,h_rt=10", "walltime"),
    (GridEngineSettings(memory_resource="mem_free"), "-l mf=1G", "memory"),
    (GridEngineSettings(queue="a.q"), "-q b.q", "queue is set"),
    (GridEngineSettings(project="p"), "-P q", "project is set"),
])
def test_extra_arguments_that_clash_are_a_clear_error(settings: GridEngineSettings, args: str,
                                                      words: str) -> None:
    with pytest.raises(ValueError, match=ENVIRONMENT_VARIABLE) as err:
        GridEngineDialect(settings, {ENVIRONMENT_VARIABLE: args})
    assert words in str(err.value)
    with pytest.raises(ValueError, match="extra arguments"):
        GridEngineDialect(dataclasses.replace(settings, extra_args=tuple(args.split())))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="flavor 'pbs'"):
        GridEngineSettings(flavor="pbs")
    with pytest.raises(ValueError, match="not a valid name"):
        GridEngineSettings(memory_resource="h_vmem=1G")
    with pytest.raises(ValueError, match="cannot be split"):
        GridEngineDialect(GridEngineSettings(), {ENVIRONMENT_VARIABLE: "-l 'open"})


def test_units() -> None:
    assert parse_memory("300M") == 300 * 2**20 and parse_memory("1.5k") == 1500
    assert parse_memory("385.668MB") == round(385.668 * 2**20)
    assert parse_memory("23.5G") == round(23.5 * 2**30) and parse_memory("-") is None
    assert parse_time("4s") == 4 and parse_time("1:30:00") == 5400 and parse_time("x") is None


# -- against the real Grid Engine ---------------------------------------------------------

def test_dialect_built_jobs_run_on_the_real_grid_engine(gridengine_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    import subprocess
    import time
    import uuid

    def run(argv: list[str]) -> CommandResult:
        done = subprocess.run(argv, env=gridengine_env, capture_output=True, text=True,
                              timeout=60, check=False)
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    def script(name: str, body: str) -> str:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
        return str(path)

    (tmp_path / "sys").mkdir()
    tag = f"mbtest_{uuid.uuid4().hex[:8]}"
    base = submission(name=tag, system_output=str(tmp_path / "sys"), work_dir=str(tmp_path))
    # parentheses and quotes survive: the script is run as a file, not re-parsed
    jobs = {
        "pe": dataclasses.replace(base, scripts=(script("pe.sh", 'test "$NSLOTS" = 2 && '
                                                        'echo "(ok)" > pe.out\n'),),
                                  cores=2, memory=512 * 2**20, walltime=60),
        "exit3": dataclasses.replace(base, scripts=(script("e3.sh", 'sh -c "exit 3"\n'),)),
        "h_rt": dataclasses.replace(base, scripts=(script("rt.sh", "sleep 60\n"),),
                                    walltime=2),
        "array": dataclasses.replace(
            base, scripts=(script("t1.sh", "exit 0\n"), script("t2.sh", "exit 5\n")),
            array_script=script("array.sh", f'exec "{tmp_path}/t$SGE_TASK_ID.sh"\n')),
    }
    ids: dict[str, str] = {}
    try:
        for key, sub in jobs.items():
            result = run(GE.submit_argv(sub))
            assert result.returncode == 0, result.stderr
            for n, native_id in enumerate(GE.parse_submit(sub, result)):
                ids[f"{key}{n}"] = native_id
        seen: dict[str, set[TaskState]] = {}
        finals: dict[str, NativeStatus] = {}
        deadline = time.monotonic() + 120
        while len(finals) < len(ids) and time.monotonic() < deadline:
            queue = GE.parse_status(run(GE.status_argv(tag, list(ids.values()))))
            for native_id, status in queue.items():
                seen.setdefault(native_id, set()).add(status.state)
            for native_id in set(ids.values()) - set(queue) - set(finals):
                argv = GE.accounting_argv([native_id])
                assert argv is not None
                result = run(argv)
                if result.returncode == 0:
                    finals.update({k: v for k, v in GE.parse_accounting(result).items()
                                   if k == native_id})
                else:
                    assert GE.classify(result) is ErrorKind.UNKNOWN_JOB, result
            time.sleep(0.5)
    finally:
        run(GE.cancel_argv(list(ids.values())))
    # a short job may come and go between two polls; this one runs for 2 s
    assert TaskState.RUNNING in seen[ids["h_rt0"]]
    state = {key: finals[i] for key, i in ids.items()}
    assert state["pe0"].state is TaskState.FINISHED
    assert (tmp_path / "pe.out").read_text() == "(ok)\n"
    assert state["exit30"].exit_code == 3
    assert state["h_rt0"].exit_reason is Reason.MAXJOBDURATION
    assert [state["array0"].exit_code, state["array1"].exit_code] == [0, 5]


def test_a_running_grid_engine_is_reused(gridengine_env: dict[str, str]) -> None:
    from tests.services import gridengine as service

    before = service.status()
    again = service.ensure_running()
    assert not again.started and "running (pid" in before
    assert service.status().splitlines()[:2] == before.splitlines()[:2]  # the same pids
