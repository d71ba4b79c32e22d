"""Record what the real Slurm prints into tests/fixtures/slurm/ (run by hand, ~3 minutes).

    python -m tests.services.slurm_record

Starts (or reuses) both test clusters of ``tests.services.slurm``, submits jobs built by
the Slurm dialect where the dialect builds the command, and writes one file per command:
a header of ``# key: value`` lines (the exact argv, return code, cluster, what it shows)
then the command's stdout and stderr after ``--- stdout`` and ``--- stderr`` lines. It
stops and restarts daemons of the clusters briefly (to record a controller that is down or
does not answer), so run it when no test uses them.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mesobatch.integration.hpc.dialect import CommandResult, Submission
from mesobatch.integration.hpc.slurm import SlurmDialect, SlurmSettings

from .slurm import SlurmCluster

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
WORK = Path("/tmp/mesobatch-slurm-rec")
MIB = 2**20


def write_fixture(name: str, result: CommandResult, cluster: SlurmCluster, note: str) -> None:
    version = subprocess.run(["sbatch", "--version"], check=False, capture_output=True, text=True,
                             env=cluster.environ()).stdout.strip()
    mode = "with accounting" if cluster.accounting else "without accounting"
    lines = [
        f"# argv: {shlex.join(result.argv)}",
        f"# returncode: {result.returncode}",
        f"# cluster: {cluster.name} ({mode}), one node, recorded with {version}",
        f"# recorded: {time.strftime('%Y-%m-%d')} by tests/services/slurm_record.py",
        *(f"# note: {n}" for n in note.splitlines() if n),
        "--- stdout",
    ]
    body = "\n".join(lines) + "\n" + result.stdout
    if result.stdout and not result.stdout.endswith("\n"):
        body += "\n"
    body += "--- stderr\n" + result.stderr
    (FIXTURES / f"{name}.txt").write_text(body)
    print(f"{name}: rc={result.returncode}")


class Recorder:
    def __init__(self, cluster: SlurmCluster, settings: SlurmSettings | None = None) -> None:
        self.cluster = cluster
        self.dialect = SlurmDialect(settings or SlurmSettings())
        self.dir = WORK / cluster.name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "out").mkdir(exist_ok=True)

    def run(self, argv: Sequence[str], timeout: float = 120) -> CommandResult:
        try:
            p = subprocess.run(list(argv), check=False, capture_output=True, text=True,
                               cwd=self.dir, env=self.cluster.environ(), timeout=timeout)
        except subprocess.TimeoutExpired as exc:  # killed: what it printed so far
            out, err = (x.decode() if isinstance(x, bytes) else x or ""
                        for x in (exc.stdout, exc.stderr))
            return CommandResult(tuple(argv), -signal.SIGKILL, out, err)
        return CommandResult(tuple(argv), p.returncode, p.stdout, p.stderr)

    def rec(self, name: str, argv: Sequence[str], note: str = "",
            timeout: float = 120) -> CommandResult:
        result = self.run(argv, timeout)
        write_fixture(name, result, self.cluster, note)
        return result

    def script(self, name: str, body: str) -> str:
        path = self.dir / f"{name}.sh"
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
        return str(path)

    def sub(self, name: str, scripts: Sequence[str], *, array_script: str | None = None,
            cores: float = 1, memory: int = 64 * MIB, disk: int = MIB, gpus: int = 0,
            walltime: float | None = None) -> Submission:
        return Submission(name=name, scripts=tuple(scripts), array_script=array_script,
                          system_output=str(self.dir / "out"), work_dir=str(self.dir),
                          cores=cores, memory=memory, disk=disk, gpus=gpus,
                          walltime=walltime, preemptible=False)

    def submit(self, sub: Submission, dialect: SlurmDialect | None = None,
               extra: Sequence[str] = ()) -> list[str]:
        d = dialect or self.dialect
        argv = d.submit_argv(sub)
        argv[1:1] = list(extra)
        result = self.run(argv)
        if result.returncode:
            raise RuntimeError(f"{argv}: {result.stderr}")
        return d.parse_submit(sub, result)

    def squeue(self, tag: str) -> CommandResult:
        return self.run(self.dialect.status_argv(tag, []))

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float = 200) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out waiting for {what}")

    def cancel_all(self) -> None:
        self.run(["scancel", "--me"])
        self.wait("an empty queue",
                  lambda: not self.run(["squeue", "--me", "--noheader", "--states=PD,R,CG"])
                  .stdout.strip(), 60)


def submissions(r: Recorder) -> str:
    """sbatch --parsable: one job, an array, with --clusters; each error sbatch prints."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    ok = r.script("ok", "true")
    s = r.sub("mbrec-submit", [ok])
    r.rec("sbatch-single", r.dialect.submit_argv(s), "one job built by SlurmDialect")
    arr = r.sub("mbrec-submit", [ok] * 4, array_script=ok)
    r.rec("sbatch-array", r.dialect.submit_argv(arr), "an array of 4 built by SlurmDialect")
    with_cluster = SlurmDialect(SlurmSettings(cluster=r.cluster.name))
    r.rec("sbatch-clusters", with_cluster.submit_argv(s),
          "with --clusters sbatch --parsable prints ID;CLUSTER")
    errors: list[tuple[str, SlurmSettings, Submission, str]] = [
        ("invalid-partition", SlurmSettings(partition="nosuch"), s, ""),
        ("invalid-account", SlurmSettings(account="nosuch"), s, ""),
        ("invalid-qos", SlurmSettings(qos="nosuch"), s, ""),
        ("too-many-cpus", SlurmSettings(), r.sub("mbrec-submit", [ok], cores=64), ""),
        ("too-much-memory", SlurmSettings(), r.sub("mbrec-submit", [ok], memory=2**50), ""),
        ("too-much-disk", SlurmSettings(), r.sub("mbrec-submit", [ok], disk=2**50), ""),
        ("over-maxtime", SlurmSettings(partition="short"),
         r.sub("mbrec-submit", [ok], walltime=3600), "partition short has MaxTime 10 minutes"),
        ("gres-gpu", SlurmSettings(), r.sub("mbrec-submit", [ok], gpus=1),
         "the cluster has no GPUs (no GresTypes)"),
        ("gpus", SlurmSettings(gpus="gpus"), r.sub("mbrec-submit", [ok], gpus=1),
         "the cluster has no GPUs (no GresTypes)"),
        ("unknown-node-excluded", SlurmSettings(),
         dataclasses.replace(s, exclude=("nosuchnode",)),
         "--exclude names a node the cluster does not have"),
    ]
    for name, settings, sub, note in errors:
        r.rec(f"sbatch-error-{name}", SlurmDialect(settings).submit_argv(sub), note)
    r.rec("sbatch-error-unrecognized-option", ["sbatch", "--parsable", "--no-such-option", ok])
    if r.cluster.accounting:
        held = r.submit(s, extra=["--hold", "--qos=onesubmit"])
        r.rec("sbatch-error-submit-limit", ["sbatch", "--parsable", "--qos=onesubmit", ok],
              f"QOS onesubmit has MaxSubmitJobsPerUser=1 and job {held[0]} is in it")
        long = r.sub("mbrec-submit", [ok], walltime=300)
        r.rec("sbatch-error-qos-maxwall-deny",
              SlurmDialect(SlurmSettings(qos="shortwalldeny")).submit_argv(long),
              "QOS shortwalldeny: MaxWall=1 (minute), Flags=DenyOnLimit")
        r.rec("sbatch-qos-maxwall", SlurmDialect(SlurmSettings(qos="shortwall"))
              .submit_argv(long), "QOS shortwall: MaxWall=1 (minute), no DenyOnLimit: accepted")
        r.wait("the QOS wall-time reason", lambda: any(
            s.pending_reason == "QOSMaxWallDurationPerJobLimit"
            for s in r.dialect.parse_status(r.squeue("mbrec-submit")).values()), 30)
        r.rec("squeue-qos-maxwall", r.dialect.status_argv("mbrec-submit", []),
              f"job {held[0]} held in QOS onesubmit; the job over QOS shortwall's MaxWall; "
              "jobs sbatch refused (FAILED BadConstraints)")
    r.cancel_all()
    return started


def pending_and_running(r: Recorder) -> None:
    """squeue while jobs wait for every common reason and array elements run."""
    tag = "mbrec-queue"
    sleep = r.script("sleep", "sleep 300")
    one = r.sub(tag, [sleep])
    arr = r.sub(tag, [sleep] * 4, array_script=sleep)
    onejob = SlurmDialect(SlurmSettings(qos="onejob")) if r.cluster.accounting else None
    first = r.submit(arr, onejob)  # element 0 runs, 1-3 wait for the QOS (accounting)
    running = r.submit(one)  # takes the second core
    resources = r.submit(one)
    priority = r.submit(one)
    r.submit(one, extra=["--hold"])
    r.submit(one, extra=[f"--dependency=afterok:{running[0]}"])
    r.submit(one, extra=["--begin=now+3600"])
    r.submit(r.sub(tag, [sleep] * 3, array_script=sleep))
    expect = {resources[0]: "Resources", priority[0]: "Priority"}

    def settled() -> bool:
        status = r.dialect.parse_status(r.squeue(tag))
        return all(status.get(i) and status[i].pending_reason == why
                   for i, why in expect.items()) and status[first[0]].node is not None

    r.wait("pending reasons", settled, 60)
    note = (f"array {first[0].split('_')[0]} "
            + ("(QOS onejob: one running job per user) " if onejob else "")
            + f"element 0 runs, job {running[0]} runs; the rest wait: Resources, Priority, "
            "held (JobHeldUser), --dependency (Dependency), --begin (BeginTime), an array")
    r.rec("squeue-pending-running", r.dialect.status_argv(tag, []), note)
    compact = [a for a in r.dialect.status_argv(tag, []) if a != "--array"]
    r.rec("squeue-pending-running-compact", compact,
          note + "\nwithout --array: pending array elements as one range 123_[1-3]")
    r.rec("squeue-default", ["squeue", "--me"], "squeue's default output, for people")
    with_cluster = SlurmDialect(SlurmSettings(cluster=r.cluster.name))
    r.rec("squeue-clusters", with_cluster.status_argv(tag, []),
          "with --clusters (one cluster) and --noheader squeue prints no CLUSTER: line")
    r.rec("scancel-array-element", r.dialect.cancel_argv([first[0]]))
    r.rec("scancel-running-and-pending", r.dialect.cancel_argv([running[0], priority[0]]))
    r.cancel_all()


def final_states(r: Recorder) -> list[str]:
    """Jobs that end in each way this node can make them end; squeue and sacct of them."""
    tag = "mbrec-final"
    timeout = r.submit(r.sub(tag, [r.script("timeout", "sleep 300")], walltime=60))
    victim = r.submit(r.sub(tag, [r.script("victim", "sleep 300")]))
    r.wait("the jobs to run", lambda: all(
        (st := r.dialect.parse_status(r.squeue(tag)).get(i)) is not None and st.node
        for i in (timeout[0], victim[0])), 60)
    ok = r.submit(r.sub(tag, [r.script("ok", "true")]))
    fail3 = r.submit(r.sub(tag, [r.script("fail3", "sleep 1; exit 3")]))
    kill9 = r.submit(r.sub(tag, [r.script("kill9", "kill -9 $$")]))
    term = r.submit(r.sub(tag, [r.script("term", "kill -TERM $$")]))
    elems = [r.script(f"elem{i}", f"exit {i}") for i in range(4)]
    dispatch = r.script("dispatch", 'case "$SLURM_ARRAY_TASK_ID" in\n' + "".join(
        f"  {i}) exec {e} ;;\n" for i, e in enumerate(elems)) + "esac")
    arr = r.submit(r.sub(tag, elems, array_script=dispatch))
    held = r.submit(r.sub(tag, [r.script("held", "true")]), extra=["--hold"])
    held_array = r.submit(r.sub(tag, elems[:3], array_script=dispatch), extra=["--hold"])
    # all of them wait behind the two sleepers; they end within MinJobAge of each other
    r.run(r.dialect.cancel_argv([*victim, *held, *held_array]))
    short = [*victim, *ok, *fail3, *kill9, *term, *arr, *held, *held_array]
    what = {victim[0]: "cancelled while running", ok[0]: "exit 0", fail3[0]: "exit 3",
            kill9[0]: "kill -9 $$", term[0]: "kill -TERM $$", held[0]: "cancelled while held",
            **{a: f"array element exit {i}" for i, a in enumerate(arr)}}
    # one core is free, so they run one after the other and the first may have left the
    # queue (MinJobAge) when the last ends: the snapshot holds those still there
    r.wait("the array to end", lambda: all(
        (st := r.dialect.parse_status(r.squeue(tag)).get(i)) is not None and st.state.terminal
        for i in arr), 90)
    snapshot = r.squeue(tag)
    shown = [i for i in r.dialect.parse_status(snapshot) if i in what]
    write_fixture("squeue-ended", snapshot, r.cluster,
                  "ended less than MinJobAge ago: "
                  + ", ".join(f"{i} {what[i]}" for i in shown)
                  + f"; {timeout[0]} runs with --time=1")
    r.wait("the time limit", lambda: (
        (st := r.dialect.parse_status(r.squeue(tag)).get(timeout[0])) is not None
        and st.state.terminal), 200)
    r.rec("squeue-timeout", r.dialect.status_argv(tag, []),
          f"{timeout[0]} ran past --time=1 (minute)")
    every = [*timeout, *short]
    if r.cluster.accounting:
        argv = r.dialect.accounting_argv(every)
        assert argv is not None
        r.wait("accounting", lambda: len(r.dialect.parse_accounting(r.run(argv))) >= len(every)
               and all(s.state.terminal for s in r.dialect.parse_accounting(r.run(argv))
                       .values()), 60)
        r.rec("sacct-final", argv,
              f"{timeout[0]} TIMEOUT (--time=1), {victim[0]} cancelled by us while running, "
              f"{ok[0]} exit 0, {fail3[0]} exit 3, {kill9[0]} kill -9 $$, "
              f"{term[0]} kill -TERM $$, array {arr[0].split('_')[0]} exits with its index, "
              f"{held[0]} cancelled while held, array {held_array[0].split('_')[0]} "
              "cancelled while held")
        r.rec("sacct-array-whole", ["sacct", "--noheader", "--parsable2", "--allocations",
                                    "--format=JobID,JobIDRaw,State",
                                    f"--jobs={arr[0].split('_')[0]}"],
              "the array's own id names every element; the last element keeps the raw id")
        r.rec("sacct-unknown", r.dialect.accounting_argv(["99999999"]) or [],
              "a job id accounting never saw")
    else:
        r.rec("sacct-disabled", r.dialect.accounting_argv(every) or [],
              "no slurmdbd: AccountingStorageType=accounting_storage/none")
    return every


def gone(r: Recorder, ended: str) -> None:
    """Queries about a job that left the queue (after MinJobAge) and an unknown id."""
    r.wait(f"{ended} to leave the queue",
           lambda: r.run(["squeue", "--noheader", f"--jobs={ended}"]).returncode != 0, 120)
    r.rec("squeue-jobs-ended", ["squeue", "--noheader", f"--jobs={ended}"],
          f"{ended} ended more than MinJobAge (10 s) ago")
    r.rec("squeue-jobs-unknown", ["squeue", "--noheader", "--jobs=99999999"])
    r.rec("squeue-jobs-ended-and-unknown", ["squeue", "--noheader", f"--jobs={ended},99999999"],
          "two ids, both unknown to the controller")
    r.rec("scancel-unknown", r.dialect.cancel_argv(["99999999"]))
    r.rec("scontrol-show-job-unknown", ["scontrol", "show", "job", "99999999"])


def cluster_info(r: Recorder) -> None:
    r.rec("sinfo-nodes", r.dialect.nodes_argv() or [], "one node in partitions main and short")
    r.rec("scontrol-show-partition", r.dialect.partitions_argv())
    r.rec("scontrol-show-node", ["scontrol", "--oneliner", "show", "node"])
    r.rec("scontrol-show-config", r.dialect.config_argv(), "MaxArraySize, MinJobAge, ...")


def job_count_full(r: Recorder) -> None:
    """sbatch when slurmctld holds MaxJobCount (10000) job records: held arrays fill it."""
    true = r.script("true", "true")
    big = r.sub("mbrec-full", [true] * 1001, array_script=true)
    for _ in range(20):
        argv = r.dialect.submit_argv(big)
        argv[1:1] = ["--hold"]
        began = time.monotonic()
        result = r.run(argv, timeout=300)
        if result.returncode:
            took = time.monotonic() - began
            write_fixture("sbatch-error-job-count-full", result, r.cluster,
                          "held arrays of 1001 fill MaxJobCount (default 10000); each array "
                          f"element counts; sbatch gave up after {took:.1f} s")
            break
    else:
        raise RuntimeError("MaxJobCount never reached")
    r.cancel_all()


def _pid(cluster: SlurmCluster, daemon: str) -> int:
    pid = cluster.running()[daemon]
    if pid is None:
        raise RuntimeError(f"{daemon} of {cluster.name} does not run")
    return pid


def controller_trouble(r: Recorder) -> None:
    """Commands while slurmctld is stopped (SIGSTOP: no answer) or gone (no listener)."""
    tag = "mbrec-trouble"
    ok = r.script("ok", "true")
    pid = _pid(r.cluster, "slurmctld")
    os.kill(pid, signal.SIGSTOP)
    try:
        r.rec("squeue-controller-not-answering", r.dialect.status_argv(tag, []),
              "slurmctld stopped with SIGSTOP: it accepts connections but never answers")
        r.rec("sbatch-controller-not-answering", r.dialect.submit_argv(r.sub(tag, [ok])),
              "slurmctld stopped with SIGSTOP", timeout=300)
    finally:
        os.kill(pid, signal.SIGCONT)
    r.cancel_all()
    os.kill(pid, signal.SIGTERM)
    r.wait("slurmctld to exit", lambda: r.cluster.running()["slurmctld"] is None, 60)
    r.rec("squeue-controller-down", r.dialect.status_argv(tag, []),
          "slurmctld not running (connection refused)")
    r.rec("sbatch-controller-down", r.dialect.submit_argv(r.sub(tag, [ok])),
          "slurmctld not running", timeout=300)
    r.rec("sinfo-controller-down", r.dialect.nodes_argv() or [], "slurmctld not running")
    r.cluster.start()


def dbd_down(r: Recorder) -> None:
    pid = _pid(r.cluster, "slurmdbd")
    os.kill(pid, signal.SIGTERM)
    r.wait("slurmdbd to exit", lambda: r.cluster.running()["slurmdbd"] is None, 60)
    r.rec("sacct-slurmdbd-down", r.dialect.accounting_argv(["1"]) or [],
          "slurmdbd not running", timeout=300)
    r.cluster.start()


def main() -> int:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK, ignore_errors=True)
    acct = SlurmCluster.default(accounting=True)
    noacct = SlurmCluster.default(accounting=False)
    for c in (acct, noacct):
        c.start()
    a, n = Recorder(acct), Recorder(noacct)
    for r in (a, n):
        r.cancel_all()
    started = submissions(a)
    cluster_info(a)
    pending_and_running(a)
    ended = final_states(a)
    gone(a, ended[1])
    a.rec("sacct-rejected-submissions",
          ["sacct", "--noheader", "--parsable2", "--allocations",
           "--format=JobID,JobName,State,ExitCode,ReqMem,ReqCPUS,Timelimit,Partition",
           "--name=mbrec-submit", f"--starttime={started}"],
          "the jobs of the submission recordings: sbatch refused some (rc 1), yet slurmctld "
          "made job records for them, which accounting lists as FAILED 1:0")
    dbd_down(a)
    # the cluster without accounting: the errors that differ, sacct, controller trouble
    n_ok = n.script("ok", "true")
    s = n.sub("mbrec-submit", [n_ok])
    for name, settings, sub in (
        ("noacct-sbatch-over-maxtime", SlurmSettings(partition="short"),
         n.sub("mbrec-submit", [n_ok], walltime=3600)),
        ("noacct-sbatch-too-many-cpus", SlurmSettings(), n.sub("mbrec-submit", [n_ok], cores=64)),
        ("noacct-sbatch-invalid-account", SlurmSettings(account="nosuch"), s),
        ("noacct-sbatch-invalid-qos", SlurmSettings(qos="nosuch"), s),
    ):
        n.rec(name, SlurmDialect(settings).submit_argv(sub),
              "EnforcePartLimits is Slurm's default (NO) and there is no accounting")
    time.sleep(3)
    n.rec("noacct-squeue-partition-time-limit", n.dialect.status_argv("mbrec-submit", []),
          "the job over the partition's MaxTime, accepted without EnforcePartLimits")
    n.cancel_all()
    n.rec("noacct-sacct", n.dialect.accounting_argv(["1"]) or [], "no slurmdbd")
    job_count_full(n)
    controller_trouble(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
