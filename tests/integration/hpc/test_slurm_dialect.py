"""The Slurm dialect: builders, and every parser on output recorded from a real Slurm 22.05
(tests/fixtures/slurm/), then the builders' commands run against the real Slurm."""

from __future__ import annotations

import fcntl
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from mesobatch.integration.hpc.dialect import (
    CommandResult,
    ErrorKind,
    NativeStatus,
    Submission,
)
from mesobatch.integration.hpc.slurm import (
    ARGS_ENV,
    NEVER_STARTS,
    SQUEUE_FORMAT,
    Partition,
    PartitionChoiceError,
    SlurmArgumentError,
    SlurmDialect,
    SlurmSettings,
    accounting_disabled,
    check_extra_args,
    choose_partition,
    chunks,
    classify,
    expand_job_ids,
    extra_args,
    format_time_limit,
    gres_gpus,
    max_array_size,
    parse_config,
    parse_duration,
    parse_exit_code,
    parse_key_values,
    parse_partitions,
    parse_wait_status,
)
from mesobatch.scheduler.contract import BatchJobExitReason
from mesobatch.scheduler.core.states import TaskState
from tests.services.slurm import SlurmCluster

from .recordings import Recording, load, names

MIB = 2**20
Reason = BatchJobExitReason
T = TypeVar("T")


def sub(**kw: object) -> Submission:
    fields: dict[str, object] = dict(
        name="mb-run1", scripts=("/w/job.sh",), array_script=None, system_output="/w/out",
        work_dir="/w", cores=1.0, memory=0, disk=0, gpus=0, walltime=None, preemptible=False)
    fields.update(kw)
    return Submission(**fields)  # type: ignore[arg-type]


def described(rec: Recording) -> dict[str, str]:
    """The recorder's notes say what each job did: '171 cancelled while running, ...'."""
    found = re.findall(r"(\d+(?:_\d+)?) (cancelled (?:by us )?while running|cancelled while held|"
                       r"exit \d+|kill -9 \$\$|kill -TERM \$\$|array element exit \d+|"
                       r"TIMEOUT)", rec.notes)
    return dict(found)


def expected_final(what: str) -> tuple[TaskState, int | None, Reason | None]:
    """(state, exit code, exit reason) a job that did ``what`` must end with."""
    if what.startswith("cancelled"):
        return TaskState.KILLED, None, Reason.KILLED
    if what == "TIMEOUT":
        return TaskState.FAILED, None, Reason.MAXJOBDURATION
    if what == "kill -9 $$":
        return TaskState.FAILED, 137, None
    if what == "kill -TERM $$":
        return TaskState.FAILED, 143, None
    code = int(what.rsplit(" ", 1)[1])
    return (TaskState.FINISHED if code == 0 else TaskState.FAILED), code, None


DIALECT = SlurmDialect()


# ---------------------------------------------------------------------------- recordings

def test_recordings_are_well_formed() -> None:
    assert len(names()) >= 50
    for name in names():
        rec = load(name)
        assert rec.result.argv[0] in {"sbatch", "squeue", "sacct", "scancel", "sinfo",
                                      "scontrol"}, name
        if rec.recorded:
            assert "slurm-wlm 22.05" in rec.meta["cluster"][0], name
        else:
            assert "NOT RECORDED" in rec.meta["source"][0], name


def test_recordings_were_made_with_todays_builders() -> None:
    """The recorded commands are what the dialect builds now (else re-record)."""
    rec = load("sbatch-single")
    work = rec.result.argv[-1].rsplit("/", 1)[0]
    s = sub(name="mbrec-submit", scripts=(f"{work}/ok.sh",), system_output=f"{work}/out",
            work_dir=work, memory=64 * MIB, disk=MIB)
    assert tuple(DIALECT.submit_argv(s)) == rec.result.argv
    arr = sub(name="mbrec-submit", scripts=(f"{work}/ok.sh",) * 4, array_script=f"{work}/ok.sh",
              system_output=f"{work}/out", work_dir=work, memory=64 * MIB, disk=MIB)
    assert tuple(DIALECT.submit_argv(arr)) == load("sbatch-array").result.argv
    assert tuple(DIALECT.status_argv("mbrec-queue", ["1"])) == \
        load("squeue-pending-running").result.argv
    assert tuple(DIALECT.nodes_argv() or ()) == load("sinfo-nodes").result.argv
    assert tuple(DIALECT.partitions_argv()) == load("scontrol-show-partition").result.argv
    ids = load("sacct-final").result.argv[-1].removeprefix("--jobs=").split(",")
    assert tuple(DIALECT.accounting_argv(ids) or ()) == load("sacct-final").result.argv


def test_parse_submit_single_array_and_cluster() -> None:
    single = load("sbatch-single").result
    (job,) = DIALECT.parse_submit(sub(), single)
    assert job == single.stdout.strip() and job.isdigit()
    arr = load("sbatch-array").result
    four = sub(scripts=("/a",) * 4, array_script="/d")
    base = arr.stdout.strip()
    assert DIALECT.parse_submit(four, arr) == [f"{base}_{i}" for i in range(4)]
    clusters = load("sbatch-clusters").result
    assert ";" in clusters.stdout  # ID;CLUSTER
    assert DIALECT.parse_submit(sub(), clusters) == [clusters.stdout.split(";")[0]]


def test_parse_submit_without_an_id_is_an_error() -> None:
    failed = load("sbatch-error-invalid-partition").result
    with pytest.raises(ValueError, match="sbatch printed no job id"):
        DIALECT.parse_submit(sub(), failed)


def test_pending_and_running_with_slurms_reasons() -> None:
    rec = load("squeue-pending-running")
    status = DIALECT.parse_status(rec.result)
    assert len(status) == len(rec.result.stdout.splitlines())
    running = {i: s for i, s in status.items() if s.state is TaskState.RUNNING}
    pending = {i: s for i, s in status.items() if s.state is TaskState.STARTING}
    assert len(running) == 2 and all(s.node == "vm" for s in running.values())
    assert len(pending) == len(status) - 2
    assert all(s.node is None and s.pending_reason for s in pending.values())
    reasons = {s.pending_reason for s in pending.values()}
    assert reasons == {"QOSMaxJobsPerUserLimit", "Resources", "Priority", "Dependency",
                       "BeginTime", "JobHeldUser"}
    # the QOS array: element 0 runs, the others wait for the QOS limit
    qos = sorted(i for i, s in pending.items() if s.pending_reason == "QOSMaxJobsPerUserLimit")
    array = qos[0].split("_")[0]
    assert qos == [f"{array}_{n}" for n in (1, 2, 3)] and f"{array}_0" in running


def test_compact_array_ranges_expand_to_the_same_jobs() -> None:
    compact = load("squeue-pending-running-compact")
    assert re.search(r"^\d+_\[\d+-\d+\]\|", compact.result.stdout, re.M)  # 123_[1-3]
    assert DIALECT.parse_status(compact.result) == \
        DIALECT.parse_status(load("squeue-pending-running").result)


def test_squeue_with_clusters_parses_like_without() -> None:
    with_cluster = DIALECT.parse_status(load("squeue-clusters").result)
    assert set(with_cluster) == set(DIALECT.parse_status(load("squeue-pending-running").result))


def test_jobs_that_ended_within_min_job_age() -> None:
    rec = load("squeue-ended")
    status = DIALECT.parse_status(rec.result)
    what = described(rec)
    assert len(what) >= 5  # the array at least, and what else had not yet left the queue
    for job, did in what.items():
        state, code, reason = expected_final(did)
        assert (status[job].state, status[job].exit_code, status[job].exit_reason) == \
            (state, code, reason), (job, did, status[job])
    # the time-limited job was still running when this was taken
    assert [s.state for s in status.values()].count(TaskState.RUNNING) == 1


def test_timeout_in_squeue() -> None:
    status = DIALECT.parse_status(load("squeue-timeout").result)
    (st,) = status.values()
    assert (st.state, st.exit_reason, st.exit_code) == \
        (TaskState.FAILED, Reason.MAXJOBDURATION, None)
    assert "TIMEOUT" in st.message and st.node == "vm"


def test_final_states_from_sacct() -> None:
    rec = load("sacct-final")
    acct = DIALECT.parse_accounting(rec.result)
    asked = rec.result.argv[-1].removeprefix("--jobs=").split(",")
    # the bare ids of arrays are asked for too (for arrays cancelled before they ran)
    ids = [i for i in asked if not any(j.startswith(f"{i}_") for j in asked)]
    assert len(ids) < len(asked) and set(ids) <= set(acct)
    held_array = next(i for i in asked if i not in ids and f"{i}_0" not in
                      DIALECT.parse_status(load("squeue-ended").result))
    assert f"{held_array}_1" in acct
    assert any(line.startswith(f"{held_array}|") for line in rec.result.stdout.splitlines())
    what = described(rec)
    for job in ids:
        st = acct[job]
        array = job.split("_")[0]
        if job not in what and f"array {array} cancelled while held" in rec.notes:
            did = "cancelled while held"
        elif job not in what:
            did = f"exit {job.split('_')[1]}"  # "array N exits with its index"
        else:
            did = what[job]
        assert (st.state, st.exit_code, st.exit_reason) == expected_final(did), (job, did, st)
        assert st.node == (None if "held" in did else "vm"), job
    assert any(s.message.startswith("CANCELLED by") for s in acct.values())


def test_squeue_and_sacct_agree_on_final_states() -> None:
    queue = DIALECT.parse_status(load("squeue-ended").result)
    acct = DIALECT.parse_accounting(load("sacct-final").result)
    both = {i for i in set(queue) & set(acct) if queue[i].state.terminal}
    assert len(both) >= 5
    for job in both:
        q, a = queue[job], acct[job]
        assert (q.state, q.exit_code, q.exit_reason) == (a.state, a.exit_code, a.exit_reason)


def test_sacct_of_an_unknown_job_prints_nothing() -> None:
    rec = load("sacct-unknown")
    assert rec.result.returncode == 0 and DIALECT.parse_accounting(rec.result) == {}


def test_rejected_submissions_leave_failed_records() -> None:
    """sbatch refused two jobs, yet squeue (by our name) and sacct show them as FAILED."""
    queue = DIALECT.parse_status(load("squeue-qos-maxwall").result)
    bad = {i: s for i, s in queue.items() if s.message.endswith("BadConstraints")}
    assert len(bad) == 2
    assert all(s.state is TaskState.FAILED and s.exit_code == 1 for s in bad.values())
    assert any(s.pending_reason == "QOSMaxWallDurationPerJobLimit" for s in queue.values())
    rows = load("sacct-rejected-submissions").result.stdout.splitlines()
    assert sum(row.split("|")[2:4] == ["FAILED", "1:0"] for row in rows) == 2


def test_states_from_the_documentation() -> None:
    queue = DIALECT.parse_status(load("squeue-doc-states").result)
    acct = DIALECT.parse_accounting(load("sacct-doc-states").result)
    oom_q, oom_a = queue["301"], acct["401"]
    for oom in (oom_q, oom_a):
        assert (oom.state, oom.exit_reason, oom.exit_code) == \
            (TaskState.FAILED, Reason.MEMLIMIT, 137)
    for st in (queue["302"], queue["303"], queue["304"], acct["402"], acct["403"], acct["404"]):
        assert (st.state, st.exit_reason) == (TaskState.LOST, Reason.LOST), st
    for st in (queue["305"], acct["405"]):
        assert (st.state, st.exit_reason) == (TaskState.FAILED, Reason.MAXJOBDURATION)
    assert queue["306"].state is TaskState.STARTING and acct["406"].state is TaskState.STARTING
    assert queue["307"].state is TaskState.RUNNING and queue["308"].state is TaskState.RUNNING
    assert queue["308"].exit_code is None  # COMPLETING is not final yet
    assert queue["309"].state is TaskState.STARTING
    assert queue["310_4"].pending_reason == "JobHeldAdmin" and "JobHeldAdmin" in NEVER_STARTS
    unknown = queue["311"]
    assert unknown.state is TaskState.UNKNOWN and "SOME_FUTURE_STATE" in unknown.message
    assert [acct[f"407_{i}"].state for i in range(3)] == [TaskState.STARTING] * 3
    assert acct["408"].state is TaskState.RUNNING


def test_partition_limits_without_enforcement_leave_jobs_pending() -> None:
    status = DIALECT.parse_status(load("noacct-squeue-partition-time-limit").result)
    reasons = {s.pending_reason for s in status.values() if s.state is TaskState.STARTING}
    assert reasons == {"PartitionTimeLimit", "PartitionConfig"}
    assert reasons <= NEVER_STARTS


#: what each failed command means; every recording of a failed command is listed
CLASSIFIED = {
    "sbatch-error-invalid-partition": ErrorKind.PERMANENT,
    "sbatch-error-invalid-account": ErrorKind.PERMANENT,
    "sbatch-error-invalid-qos": ErrorKind.PERMANENT,
    "sbatch-error-too-many-cpus": ErrorKind.PERMANENT,
    "sbatch-error-too-much-memory": ErrorKind.PERMANENT,
    "sbatch-error-too-much-disk": ErrorKind.PERMANENT,
    "sbatch-error-over-maxtime": ErrorKind.PERMANENT,
    "sbatch-error-gres-gpu": ErrorKind.PERMANENT,
    "sbatch-error-gpus": ErrorKind.PERMANENT,
    "sbatch-error-unknown-node-excluded": ErrorKind.PERMANENT,
    "sbatch-error-unrecognized-option": ErrorKind.PERMANENT,
    "sbatch-error-qos-maxwall-deny": ErrorKind.PERMANENT,
    "noacct-sacct": ErrorKind.PERMANENT,
    "sbatch-error-submit-limit": ErrorKind.TRANSIENT,
    "sbatch-error-job-count-full": ErrorKind.TRANSIENT,
    "sbatch-controller-down": ErrorKind.TRANSIENT,
    "sbatch-controller-not-answering": ErrorKind.TRANSIENT,
    "squeue-controller-down": ErrorKind.TRANSIENT,
    "squeue-controller-not-answering": ErrorKind.TRANSIENT,
    "sinfo-controller-down": ErrorKind.TRANSIENT,
    "sacct-slurmdbd-down": ErrorKind.TRANSIENT,
    "squeue-jobs-ended": ErrorKind.UNKNOWN_JOB,
    "squeue-jobs-unknown": ErrorKind.UNKNOWN_JOB,
    "scontrol-show-job-unknown": ErrorKind.UNKNOWN_JOB,
}


def test_every_failed_recording_is_classified() -> None:
    failed = {n for n in names() if load(n).result.returncode != 0}
    assert failed == set(CLASSIFIED)


@pytest.mark.parametrize("name", sorted(CLASSIFIED))
def test_classify_recorded_failures(name: str) -> None:
    assert DIALECT.classify(load(name).result) is CLASSIFIED[name]


def test_classify_a_killed_command_and_an_unknown_message() -> None:
    killed = CommandResult(("squeue",), -9, "", "")
    assert classify(killed) is ErrorKind.TRANSIENT
    odd = CommandResult(("sbatch",), 1, "", "sbatch: error: something new\n")
    assert classify(odd) is ErrorKind.PERMANENT


def test_accounting_disabled_is_recognised() -> None:
    assert accounting_disabled(load("noacct-sacct").result)
    assert not accounting_disabled(load("sacct-slurmdbd-down").result)
    assert not accounting_disabled(load("sacct-final").result)


def test_scancel_of_unknown_ids_says_nothing() -> None:
    """scancel of an id the controller does not know exits 0 silently in 22.05."""
    rec = load("scancel-unknown").result
    assert (rec.returncode, rec.stdout, rec.stderr) == (0, "", "")


def test_squeue_of_ids_fails_for_one_unknown_but_not_for_two() -> None:
    """Why the status query selects by name, not by ids."""
    one, two = load("squeue-jobs-ended").result, load("squeue-jobs-ended-and-unknown").result
    assert one.returncode == 1 and "Invalid job id specified" in one.stderr
    assert (two.returncode, two.stdout, two.stderr) == (0, "", "")


def test_nodes_from_sinfo() -> None:
    (node,) = DIALECT.parse_nodes(load("sinfo-nodes").result)
    assert (node.name, node.cores, node.memory, node.gpus) == ("vm", 2.0, 24105 * MIB, 0)
    assert node.partitions == ("main", "short")
    assert node.usable and node.state == "idle" and node.address == "127.0.0.1"
    assert node.cpu_load is not None and 0 <= node.cpu_load <= 1
    assert node.memory_free is not None and 0 < node.memory_free <= node.memory
    # sinfo's %d is the node's TmpDisk in MB, as scontrol shows it (recorded together)
    tmp_disk = parse_key_values(load("scontrol-show-node").result.stdout)["TmpDisk"]
    assert node.tmp_disk == int(tmp_disk) * MIB > 0


def test_node_states_and_gres() -> None:
    out = "\n".join([
        "n1|64|256000|gpu:a100:4(S:0-1),mps:400|mixed|gpu|12.5|1000|10.0.0.1|500000",
        "n2|64|256000|(null)|drained|main*|0.00|1000|10.0.0.2|0",
        "n3|64|256000|(null)|idle*|main*|N/A|N/A|10.0.0.3|0",
        "n4|64|256000|gpu:tesla:2(S:0,1)|idle~|main*|0.00|250000|n4|1",
        "n4|64|256000|gpu:tesla:2(S:0,1)|idle~|gpu|0.00|250000|n4|1",
    ])
    nodes = {n.name: n for n in DIALECT.parse_nodes(CommandResult(("sinfo",), 0, out, ""))}
    assert nodes["n1"].gpus == 4 and nodes["n1"].usable and nodes["n1"].cpu_load == 12.5 / 64
    assert not nodes["n2"].usable and not nodes["n3"].usable  # drained; not responding
    assert nodes["n3"].cpu_load is None and nodes["n3"].memory_free is None
    assert nodes["n4"].usable and nodes["n4"].gpus == 2 and nodes["n4"].partitions == \
        ("main", "gpu")
    # TmpDisk in MB; 0 (slurm.conf's default) when the node does not say
    assert [nodes[n].tmp_disk for n in ("n1", "n2", "n4")] == [500000 * MIB, 0, MIB]


def test_partitions_and_config() -> None:
    parts = {p.name: p for p in parse_partitions(load("scontrol-show-partition").result)}
    assert set(parts) == {"main", "short"}
    assert parts["main"].max_time is None and parts["main"].default and parts["main"].up
    assert parts["short"].max_time == 600 and not parts["short"].default
    assert parts["main"].gpus == 0 and parts["main"].cpus == 2
    config = parse_config(load("scontrol-show-config").result)
    assert max_array_size(config) == 1001
    assert config["MinJobAge"] == "10 sec" and config["ClusterName"] == "mesobatch"


def test_show_node_key_values() -> None:
    kv = parse_key_values(load("scontrol-show-node").result.stdout)
    assert kv["NodeName"] == "vm" and kv["RealMemory"] == "24105"
    assert kv["OS"].startswith("Linux ") and " " in kv["OS"]  # a value with spaces


# ---------------------------------------------------------------------------- builders

def test_submit_argv_maps_every_field() -> None:
    s = sub(cores=2.5, memory=3 * 2**30 + 1, disk=10 * 2**30, gpus=2, walltime=3601,
            exclude=("n1", "n2"))
    d = SlurmDialect(SlurmSettings(partition="p", account="a", qos="q"))
    argv = d.submit_argv(s)
    assert argv[:2] == ["sbatch", "--parsable"] and argv[-1] == "/w/job.sh"
    assert "--cpus-per-task=3" in argv and "--mem=3073M" in argv
    assert "--tmp=10240M" in argv and "--gres=gpu:2" in argv and "--time=1:01:00" in argv
    assert {"--partition=p", "--account=a", "--qos=q", "--exclude=n1,n2", "--no-requeue",
            "--job-name=mb-run1", "--chdir=/w", "--output=/w/out/slurm-%j.out"} <= set(argv)
    assert not any(a.startswith("--wrap") for a in argv)


def test_submit_argv_policies() -> None:
    s = sub(cores=4, memory=4096 * MIB, disk=MIB, gpus=1)
    per_cpu = SlurmDialect(SlurmSettings(memory="per-cpu", disk="none", gpus="gpus"))
    argv = per_cpu.submit_argv(s)
    assert "--mem-per-cpu=1024M" in argv and "--gpus=1" in argv
    assert not any(a.startswith(("--mem=", "--tmp", "--gres")) for a in argv)
    bare = SlurmDialect(SlurmSettings(memory="none", requeue=True)).submit_argv(s)
    assert not any(a.startswith("--mem") for a in bare) and "--requeue" in bare
    nothing = DIALECT.submit_argv(sub())  # no memory, disk, GPUs or walltime asked
    assert not any(a.startswith(("--mem", "--tmp", "--gres", "--time", "--partition"))
                   for a in nothing)


def test_array_argv() -> None:
    s = sub(scripts=("/w/a.sh", "/w/b.sh", "/w/c.sh"), array_script="/w/array.sh")
    argv = DIALECT.submit_argv(s)
    assert "--array=0-2" in argv and argv[-1] == "/w/array.sh"
    assert "--output=/w/out/slurm-%A_%a.out" in argv
    assert (DIALECT.array_index_variable, DIALECT.array_first_index) == \
        ("SLURM_ARRAY_TASK_ID", 0)
    with pytest.raises(ValueError, match="no array script"):
        DIALECT.submit_argv(sub(scripts=("/a", "/b")))
    small = SlurmDialect(SlurmSettings(max_array_size=2))
    with pytest.raises(ValueError, match="larger than Slurm's limit of 2"):
        small.submit_argv(s)
    assert SlurmDialect(SlurmSettings(arrays=False)).max_array_size == 1
    assert SlurmDialect(config_max_array_size=5000).max_array_size == 5000


def test_time_limits() -> None:
    assert [format_time_limit(s) for s in (1, 60, 61, 3600, 86400 + 1)] == \
        ["0:01:00", "0:01:00", "0:02:00", "1:00:00", "1-00:01:00"]
    assert [parse_duration(t) for t in ("UNLIMITED", "00:10:00", "1-00:00:00", "10",
                                        "5:30", "2-3", "INFINITE")] == \
        [None, 600, 86400, 600, 330, 2 * 86400 + 3 * 3600, None]


def test_small_parsers() -> None:
    assert expand_job_ids("7") == ["7"] and expand_job_ids("7_3") == ["7_3"]
    assert expand_job_ids("7_[0-2,5]") == ["7_0", "7_1", "7_2", "7_5"]
    assert expand_job_ids("7_[1-3%2]") == ["7_1", "7_2", "7_3"]
    assert expand_job_ids("7_[0-300:100]") == ["7_0", "7_100", "7_200", "7_300"]
    assert gres_gpus("gpu:2,gpu:tesla:1") == 3 and gres_gpus("(null)") == 0
    assert gres_gpus("gpu:tesla:2(S:0,1)") == 2 and gres_gpus("mps:100") == 0
    assert parse_wait_status("768") == (3, 0) and parse_wait_status("9") == (0, 9)
    assert parse_exit_code("3:0") == (3, 0) and parse_exit_code("0:15") == (0, 15)
    assert [list(c) for c in chunks(["1", "2", "3"], 2)] == [["1", "2"], ["3"]]


def test_status_accounting_and_cancel_argv() -> None:
    argv = DIALECT.status_argv("mb-run1", ["11", "12_3"])
    assert argv[:4] == ["squeue", "--me", "--name=mb-run1", "--states=all"]
    assert f"--Format={SQUEUE_FORMAT}" in argv and not any("11" in a for a in argv)
    # the bare array id too: an array cancelled before it ran is known only by it
    accounting = DIALECT.accounting_argv(["11", "12_3"])
    assert accounting is not None and accounting[-1] == "--jobs=11,12_3,12"
    assert SlurmDialect(SlurmSettings(accounting=False)).accounting_argv(["1"]) is None
    assert DIALECT.cancel_argv(["11", "12_3"]) == ["scancel", "11", "12_3"]
    clustered = SlurmDialect(SlurmSettings(cluster="c1"))
    for built in (clustered.status_argv("t", []), clustered.cancel_argv(["1"]),
                  clustered.accounting_argv(["1"]) or [], clustered.submit_argv(sub())):
        assert "--clusters=c1" in built


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"memory='lots': expected one of per-node"):
        SlurmSettings(memory="lots")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_array_size=0"):
        SlurmSettings(max_array_size=0)


# ---------------------------------------------------------------------------- extra args

def test_extra_args_from_environment_then_setting() -> None:
    settings = SlurmSettings(extra_args=("--comment=x",))
    env = {ARGS_ENV: "--mail-type=END --constraint='a&b'"}
    assert extra_args(settings, env) == ["--mail-type=END", "--constraint=a&b", "--comment=x"]
    with pytest.raises(SlurmArgumentError, match=ARGS_ENV):
        extra_args(settings, {ARGS_ENV: "--comment='unclosed"})
    d = SlurmDialect(extra=("--constraint=a&b",))
    assert d.submit_argv(sub())[2] == "--constraint=a&b"


@pytest.mark.parametrize(("args", "settings", "named"), [
    (["--job-name=x"], SlurmSettings(), "--job-name"),
    (["-J", "x"], SlurmSettings(), "--job-name"),
    (["--time", "5"], SlurmSettings(), "--time"),
    (["-t5"], SlurmSettings(), "--time"),
    (["--wrap=true"], SlurmSettings(), "--wrap"),
    (["--mem=4G"], SlurmSettings(), "--mem"),
    (["--part=x"], SlurmSettings(partition="p"), "--partition"),
    (["-p", "x"], SlurmSettings(partitions=("a",)), "--partition"),
    (["--gres=gpu:1"], SlurmSettings(), "--gres"),
    (["--gpus=1"], SlurmSettings(gpus="gpus"), "--gpus"),
    (["-G", "1"], SlurmSettings(), "--gpus"),
    (["--account=x"], SlurmSettings(account="a"), "--account"),
    (["--tmp=1G"], SlurmSettings(), "--tmp"),
])
def test_extra_args_that_clash(args: list[str], settings: SlurmSettings, named: str) -> None:
    with pytest.raises(SlurmArgumentError, match=f"clashes with mesobatch: {named}: ") as err:
        check_extra_args(args, settings)
    assert repr(args[0]) in str(err.value)


def test_extra_args_that_do_not_clash() -> None:
    check_extra_args(["--mem=4G", "--tmp=1G", "-p", "x", "--account=a", "--qos=q",
                      "--gres=lscratch:10", "--constraint=avx", "--mail-type=END", "-5"],
                     SlurmSettings(memory="none", disk="none", gpus="gpus"))
    with pytest.raises(SlurmArgumentError):
        SlurmDialect(extra=("--array=1-3",))


# ---------------------------------------------------------------------------- partitions

PARTS = (Partition("short", 600.0), Partition("main", None, default=True),
         Partition("long", 7 * 86400.0), Partition("gpu", 86400.0, gpus=8),
         Partition("broken", None, state="DOWN"))


def test_partition_chooser() -> None:
    assert choose_partition(PARTS, ["short", "main"], 300, 0) == "short"
    assert choose_partition(PARTS, ["short", "long", "main"], 3600, 0) == "long"
    assert choose_partition(PARTS, ["short", "long", "main"], None, 0) == "main"
    assert choose_partition(PARTS, ["gpu", "main"], 60, 0) == "main"  # GPUs are the fallback
    assert choose_partition(PARTS, ["gpu", "short"], 3600, 0) == "gpu"
    assert choose_partition(PARTS, ["main", "gpu"], 60, 1) == "gpu"
    assert choose_partition(PARTS, ["broken", "main"], 60, 0) == "main"


def test_partition_chooser_errors_say_why() -> None:
    with pytest.raises(PartitionChoiceError, match=r"short: MaxTime 600.0 s, 0 GPUs, UP"):
        choose_partition(PARTS, ["short"], 3600, 0)
    with pytest.raises(PartitionChoiceError, match=r"1 GPU\(s\)"):
        choose_partition(PARTS, ["short", "main"], 60, 1)
    with pytest.raises(PartitionChoiceError, match=r"unknown Slurm partition.*nosuch"):
        SlurmDialect(SlurmSettings(partitions=("nosuch",)), partitions=PARTS)


def test_partition_settings_in_submit() -> None:
    d = SlurmDialect(SlurmSettings(partitions=("short", "main"), gpu_partition="gpu"),
                     partitions=PARTS)
    assert "--partition=short" in d.submit_argv(sub(walltime=60))
    assert "--partition=main" in d.submit_argv(sub(walltime=3600))
    assert "--partition=gpu" in d.submit_argv(sub(gpus=1))


# ---------------------------------------------------------------------------- real Slurm

def _alone(cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    """The cluster, this test's alone: the file lock the contract suite and the backend's
    tests take, so no other worker's jobs hold its 2 CPUs or show in its queue."""
    with open(cluster.root.with_name(cluster.root.name + ".tests"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield cluster


@pytest.fixture
def real_slurm(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    yield from _alone(slurm_cluster)


@pytest.fixture
def real_slurm_noacct(slurm_cluster_noacct: SlurmCluster) -> Iterator[SlurmCluster]:
    yield from _alone(slurm_cluster_noacct)


def _run(cluster: SlurmCluster, argv: list[str]) -> CommandResult:
    p = cluster.run(argv)
    return CommandResult(tuple(argv), p.returncode, p.stdout, p.stderr)


def _until(what: str, probe: Callable[[], T | None], timeout: float = 120) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def _real_dialect(cluster: SlurmCluster, **settings: object) -> SlurmDialect:
    probe = SlurmDialect()
    parts = parse_partitions(_run(cluster, probe.partitions_argv()))
    config = parse_config(_run(cluster, probe.config_argv()))
    return SlurmDialect(SlurmSettings(**settings),  # type: ignore[arg-type]
                        partitions=tuple(parts), config_max_array_size=max_array_size(config))


def _final(cluster: SlurmCluster, d: SlurmDialect, tag: str,
           ids: list[str]) -> dict[str, NativeStatus]:
    """Each job's final state: from squeue while it is there, else from sacct."""
    seen: dict[str, NativeStatus] = {}

    def probe() -> dict[str, NativeStatus] | None:
        queue = d.parse_status(_run(cluster, d.status_argv(tag, ids)))
        seen.update({i: s for i, s in queue.items() if i in ids and s.state.terminal})
        gone = [i for i in ids if i not in queue and i not in seen]
        argv = d.accounting_argv(gone) if gone else None
        if argv:
            acct = d.parse_accounting(_run(cluster, argv))
            seen.update({i: s for i, s in acct.items() if s.state.terminal})
        return dict(seen) if set(seen) >= set(ids) else None

    return _until("final states", probe)


def test_dialect_commands_on_real_slurm(real_slurm: SlurmCluster, tmp_path: Path) -> None:
    d = _real_dialect(real_slurm, partitions=("short", "main"))
    tag = f"mbtest-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    out.mkdir()
    one = Submission(tag, (_script(tmp_path / "one.sh", "exit 3"),), None, str(out),
                     str(tmp_path), 0.5, 64 * MIB, MIB, 0, 120.0, False)
    elems = [_script(tmp_path / f"e{i}.sh", f"echo element {i}; exit {i}") for i in range(3)]
    dispatch = _script(tmp_path / "array.sh", f'exec "{tmp_path}/e$SLURM_ARRAY_TASK_ID.sh"')
    arr = Submission(tag, tuple(elems), dispatch, str(out), str(tmp_path), 1, 64 * MIB, MIB,
                     0, 3600.0, False)
    assert "--partition=short" in d.submit_argv(one)  # 2 minutes fit short's 10
    assert "--partition=main" in d.submit_argv(arr)  # an hour does not
    ids = []
    for s in (one, arr):
        result = _run(real_slurm, d.submit_argv(s))
        assert result.returncode == 0, result.stderr
        ids += d.parse_submit(s, result)
    queued = _until("the jobs in squeue", lambda: (
        q if set(ids) <= set(q := d.parse_status(_run(real_slurm, d.status_argv(tag, ids))))
        else None), 30)
    assert all(queued[i].state in (TaskState.STARTING, TaskState.RUNNING) or
               queued[i].state.terminal for i in ids)
    final = _final(real_slurm, d, tag, ids)
    assert [(final[i].state, final[i].exit_code) for i in ids] == [
        (TaskState.FAILED, 3), (TaskState.FINISHED, 0), (TaskState.FAILED, 1),
        (TaskState.FAILED, 2)]
    array_id = ids[1].split("_")[0]
    assert (out / f"slurm-{array_id}_2.out").read_text() == "element 2\n"
    # gone from the queue (MinJobAge), accounting still has every one of them
    _until("the jobs to leave the queue", lambda: (
        True if not set(ids) & set(d.parse_status(_run(real_slurm, d.status_argv(tag, ids))))
        else None), 90)
    acct = d.parse_accounting(_run(real_slurm, d.accounting_argv(ids) or []))
    assert {i: (s.state, s.exit_code) for i, s in acct.items()} == \
        {i: (s.state, s.exit_code) for i, s in final.items()}


def test_cancel_on_real_slurm(real_slurm: SlurmCluster, tmp_path: Path) -> None:
    d = _real_dialect(real_slurm)
    tag = f"mbtest-{uuid.uuid4().hex[:8]}"
    s = Submission(tag, (_script(tmp_path / "sleep.sh", "sleep 300"),), None, str(tmp_path),
                   str(tmp_path), 1, 64 * MIB, 0, 0, None, False)
    (job,) = d.parse_submit(s, _run(real_slurm, d.submit_argv(s)))
    _until("the job to run", lambda: (
        True if (st := d.parse_status(_run(real_slurm, d.status_argv(tag, [job]))).get(job))
        and st.state is TaskState.RUNNING else None), 60)
    assert _run(real_slurm, d.cancel_argv([job])).returncode == 0
    final = _final(real_slurm, d, tag, [job])[job]
    assert (final.state, final.exit_reason) == (TaskState.KILLED, Reason.KILLED)


def test_without_accounting_on_real_slurm(real_slurm_noacct: SlurmCluster,
                                          tmp_path: Path) -> None:
    cluster = real_slurm_noacct
    d = _real_dialect(cluster)
    sacct = _run(cluster, d.accounting_argv(["1"]) or [])
    assert accounting_disabled(sacct) and d.classify(sacct) is ErrorKind.PERMANENT
    d = _real_dialect(cluster, accounting=False)
    tag = f"mbtest-{uuid.uuid4().hex[:8]}"
    s = Submission(tag, (_script(tmp_path / "ok.sh", "exit 4"),), None, str(tmp_path),
                   str(tmp_path), 1, 64 * MIB, 0, 0, 60.0, False)
    (job,) = d.parse_submit(s, _run(cluster, d.submit_argv(s)))
    final = _until("the job's end in squeue", lambda: (
        st if (st := d.parse_status(_run(cluster, d.status_argv(tag, [job]))).get(job))
        and st.state.terminal else None), 60)
    assert (final.state, final.exit_code) == (TaskState.FAILED, 4)


def test_cluster_reuse_is_idempotent(slurm_cluster: SlurmCluster) -> None:
    """A second start (another pytest worker, the command line) reuses the running cluster."""
    before = slurm_cluster.running()
    assert slurm_cluster.start(owner="pytest") == 0.0
    assert slurm_cluster.running() == before and slurm_cluster.healthy()
    status = subprocess.run(["python3", "-m", "tests.services.slurm", "status"],
                            capture_output=True, text=True, check=False,
                            cwd=Path(__file__).resolve().parents[3])
    assert status.returncode == 0 and '"slurmctld": ' in status.stdout
