"""Record what the real Grid Engine prints, into tests/fixtures/gridengine/.

    python -m tests.services.gridengine_record [--outage]

Starts (or reuses) the machine's Grid Engine (tests/services/gridengine.py), runs each
scenario below and writes one file per command output plus ``index.json``: for each
recording its exact argv, exit status, stdout file, stderr, a note, and which job ids
were which (``jobs``). ``--outage`` also stops sge_qmaster for a moment to record what
clients print then (do not use it while others use this Grid Engine).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.services import gridengine

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "gridengine"
PREFIX = "mbrec"  # every recorded job's name starts with it

SCRIPTS = {
    "ok.sh": "exit 0\n",
    "exit3.sh": "echo out; echo err >&2; exit 3\n",
    "long.sh": "sleep 300\n",
    "array.sh": "exit $((SGE_TASK_ID - 1))\n",
    # one process cannot pass h_vmem (it is also its RLIMIT_AS): three together can
    "memory.sh": ("for i in 1 2 3; do python3 -c 'x = bytearray(120 * 2**20); "
                  "import time; time.sleep(30)' & done\nwait\n"),
    "exit99.sh": "exit 99\n",
    "exit100.sh": "exit 100\n",
}


class Recorder:
    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        self.index: dict[str, Any] = {}
        self.user = pwd.getpwuid(os.getuid()).pw_name  # qdel -u does not take $user
        OUT.mkdir(parents=True, exist_ok=True)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=self.work, env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)

    def record(self, name: str, argv: list[str], note: str = "",
               jobs: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = self.run(argv)
        suffix = ".xml" if "-xml" in argv else ".txt"
        (OUT / f"{name}{suffix}").write_text(result.stdout)
        self.index[name] = {"argv": argv, "returncode": result.returncode,
                            "stdout": f"{name}{suffix}", "stderr": result.stderr,
                            "note": note, "jobs": jobs or {}}
        print(f"{name}: rc={result.returncode} {result.stderr.strip()[:70]}", flush=True)
        return result

    def qsub(self, *args: str) -> str:
        result = self.run(["qsub", "-terse", "-o", str(self.work), "-e", str(self.work),
                           "-wd", str(self.work), *args])
        if result.returncode != 0:
            raise RuntimeError(f"qsub {args} failed: {result.stderr}")
        return result.stdout.strip().split(".")[0]

    def states(self) -> dict[str, str]:
        """job id (id.task for array tasks) -> qstat state; -g d lists each task."""
        root = ET.fromstring(self.run(["qstat", "-xml", "-g", "d", "-u", "$user"]).stdout)
        found = {}
        for job in root.iter("job_list"):
            number, tasks = job.findtext("JB_job_number"), job.findtext("tasks")
            found[f"{number}.{tasks}" if tasks else f"{number}"] = job.findtext("state") or ""
        return found

    def wait(self, what: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out waiting for {what}: {self.states()}")

    def accounted(self, job: str, records: int = 1) -> Callable[[], bool]:
        def ready() -> bool:
            out = self.run(["qacct", "-j", job])
            return out.returncode == 0 and out.stdout.count("jobnumber") >= records
        return ready

    def save(self) -> None:
        version = self.run(["qstat", "-help"]).stdout.splitlines()[0]
        index = {"recorded_with": f"{version} (Debian gridengine 8.1.9), one host, "
                                  "tests/services/gridengine.py setup",
                 "recorded_by": "python -m tests.services.gridengine_record",
                 "recordings": dict(sorted(self.index.items()))}
        old = OUT / "index.json"
        if old.exists():  # keep recordings made by other runs (e.g. --outage)
            kept = json.loads(old.read_text()).get("recordings", {})
            index["recordings"] = dict(sorted({**kept, **self.index}.items()))
        old.write_text(json.dumps(index, indent=1) + "\n")


def submissions(r: Recorder) -> None:
    w = str(r.work)
    common = ["-o", w, "-e", w, "-wd", w, "-S", "/bin/sh", "-b", "n", "-h"]
    single = r.record("submit_single", ["qsub", "-terse", "-N", f"{PREFIX}_single", *common,
                                        "ok.sh"], "held (-h) so it never runs")
    array = r.record("submit_array", ["qsub", "-terse", "-N", f"{PREFIX}_array", *common,
                                      "-t", "1-3", "ok.sh"], "held")
    r.record("submit_single_verbose", ["qsub", "-N", f"{PREFIX}_verbose", *common, "ok.sh"],
             "without -terse")
    r.record("submit_array_verbose", ["qsub", "-N", f"{PREFIX}_verbose", *common, "-t", "1-3",
                                      "ok.sh"], "without -terse")
    r.record("submit_unknown_queue", ["qsub", "-terse", *common, "-q", "nosuch.q", "ok.sh"])
    r.record("submit_unknown_project", ["qsub", "-terse", *common, "-P", "nosuch", "ok.sh"])
    r.record("submit_unknown_pe", ["qsub", "-terse", *common, "-pe", "nosuch", "2", "ok.sh"])
    r.record("submit_unknown_resource", ["qsub", "-terse", *common, "-l", "nosuch=1",
                                         "ok.sh"])
    r.record("submit_bad_name", ["qsub", "-terse", *common, "-N", "1abc", "ok.sh"],
             "a job name may not start with a digit")
    r.record("submit_impossible_verified", ["qsub", "-terse", *common, "-w", "e", "-pe", "smp",
                                            "64", "ok.sh"],
             "-w e: more slots than any queue has. Without -w e qsub accepts it and the job "
             "waits forever")
    r.record("submit_impossible_memory_verified",
             ["qsub", "-terse", *common, "-w", "e", "-l", "h_vmem=100T", "ok.sh"])
    r.run(["qdel", single.stdout.strip(), array.stdout.strip().split(".")[0]])
    r.run(["qdel", "-u", r.user])


def status(r: Recorder) -> None:
    r.run(["qdel", "-u", r.user])
    r.wait("an empty queue", lambda: not r.states())
    r.record("status_empty", ["qstat", "-xml", "-u", "$user"], "no jobs")
    # Eqw first, while a slot is free: its working directory is gone when execd starts it
    gone = r.work / "gone"
    gone.mkdir()
    eqw = r.qsub("-N", f"{PREFIX}_eqw", "-wd", str(gone), "ok.sh")
    gone.rmdir()
    r.wait("Eqw", lambda: r.states().get(eqw) == "Eqw")
    running = r.qsub("-N", f"{PREFIX}_running", "long.sh")
    array = r.qsub("-N", f"{PREFIX}_array", "-t", "1-4", "long.sh")
    r.wait("running", lambda: r.states().get(running) == "r"
           and r.states().get(f"{array}.1") == "r")
    pending = r.qsub("-N", f"{PREFIX}_pending", "long.sh")
    held = r.qsub("-N", f"{PREFIX}_held", "-h", "ok.sh")
    r.wait("pending", lambda: r.states().get(pending) == "qw")
    time.sleep(2)  # let the scheduler look at the pending jobs (schedd_job_info)
    jobs = {"eqw": eqw, "running": running, "array": array, "pending": pending, "held": held}
    r.record("status_mixed", ["qstat", "-xml", "-u", "$user"],
             "r: running and array task 1 (2 slots); array tasks 2-4 and pending: qw; "
             "held: hqw; eqw: Eqw (its -wd was removed)", jobs)
    r.record("status_mixed_text", ["qstat", "-u", "$user"], "the same, plain", jobs)
    r.record("explain_eqw", ["qstat", "-xml", "-j", f"{eqw},{pending}"],
             "the error reason of an Eqw job, and the scheduler's words on a pending one",
             jobs)
    r.record("explain_eqw_text", ["qstat", "-j", eqw], "", jobs)
    r.record("explain_unknown", ["qstat", "-xml", "-j", "9999999"])
    r.record("explain_unknown_text", ["qstat", "-j", "9999999"])
    r.record("qdel_pending", ["qdel", pending], "", jobs)
    r.record("qdel_array_task", ["qdel", f"{array}.3"], "a pending task", jobs)
    r.record("qdel_running", ["qdel", running], "", jobs)
    r.record("status_after_qdel", ["qstat", "-xml", "-u", "$user"],
             "right after qdel of the running job (dr while execd kills it, if caught)", jobs)
    r.record("qdel_unknown", ["qdel", "9999999"])
    r.record("qdel_known_and_unknown", ["qdel", held, "9999998"], "", jobs)
    r.wait("the qdel'd job in accounting", r.accounted(running))
    r.record("qacct_qdel_running", ["qacct", "-j", running], "qdel of a running job", jobs)
    r.record("qacct_eqw", ["qacct", "-j", eqw],
             "an Eqw job has a record while it still waits in error state", jobs)
    r.run(["qdel", "-u", r.user])
    r.wait("an empty queue", lambda: not r.states())
    r.record("qacct_deleted_pending", ["qacct", "-j", pending],
             "a job deleted while pending has no record", jobs)


def accounting(r: Recorder) -> None:
    ok = r.qsub("-N", f"{PREFIX}_ok", "ok.sh")
    exit3 = r.qsub("-N", f"{PREFIX}_exit3", "exit3.sh")
    walltime = r.qsub("-N", f"{PREFIX}_h_rt", "-l", "h_rt=2", "long.sh")
    memory = r.qsub("-N", f"{PREFIX}_h_vmem", "-l", "h_vmem=300M", "memory.sh")
    array = r.qsub("-N", f"{PREFIX}_array", "-t", "1-3", "array.sh")
    parallel = r.qsub("-N", f"{PREFIX}_pe", "-pe", "smp", "2", "-l", "h_vmem=100M,h_rt=60",
                      "ok.sh")
    jobs = {"ok": ok, "exit3": exit3, "h_rt": walltime, "h_vmem": memory, "array": array,
            "pe": parallel}
    for job in (ok, exit3, walltime, memory, parallel):
        r.wait(f"job {job} in accounting", r.accounted(job), 120)
    r.wait("the array in accounting", r.accounted(array, 3), 120)
    r.record("qacct_exit0", ["qacct", "-j", ok], "", jobs)
    r.record("qacct_exit3", ["qacct", "-j", exit3], "", jobs)
    r.record("qacct_h_rt", ["qacct", "-j", walltime], "h_rt=2, sleep 300", jobs)
    r.record("qacct_h_vmem", ["qacct", "-j", memory],
             "h_vmem=300M, three processes of 120 MB: execd kills the job", jobs)
    r.record("qacct_array", ["qacct", "-j", array], "tasks exit 0, 1, 2", jobs)
    r.record("qacct_array_task", ["qacct", "-j", array, "-t", "2"], "", jobs)
    r.record("qacct_pe", ["qacct", "-j", parallel], "-pe smp 2, h_vmem and h_rt asked", jobs)
    r.record("qacct_unknown", ["qacct", "-j", "9999999"])
    r.record("qacct_unknown_task", ["qacct", "-j", array, "-t", "7"], "the array has 3 tasks",
             jobs)
    r.record("qacct_two_ids", ["qacct", "-j", f"{ok},{exit3}"],
             "qacct reads one id: '-j A,B' gives A only", jobs)
    r.record("qacct_by_name", ["qacct", "-j", f"{PREFIX}_[oe]*"],
             "a name pattern: every finished job whose name matches", jobs)
    r.record("qacct_by_name_none", ["qacct", "-j", f"{PREFIX}_nosuch*"])
    # exit 99: Grid Engine requeues the job; exit 100: error state
    e99 = r.qsub("-N", f"{PREFIX}_exit99", "exit99.sh")
    e100 = r.qsub("-N", f"{PREFIX}_exit100", "exit100.sh")
    jobs |= {"exit99": e99, "exit100": e100}
    r.wait("exit 99 requeued", lambda: r.accounted(e99)() and r.states().get(e99) == "Rq")
    r.wait("exit 100 in error state", lambda: r.states().get(e100) == "Eqw")
    r.record("status_exit99_exit100", ["qstat", "-xml", "-u", "$user"],
             "exit 99 is requeued (Rq; on one host it then waits: 'cannot run on host until "
             "clean up of a previous run has finished'), exit 100 is Eqw", jobs)
    r.record("explain_exit100", ["qstat", "-xml", "-j", e100], "", jobs)
    r.run(["qdel", e99, e100])
    r.wait("exit 99/100 jobs gone", lambda: e99 not in r.states() and e100 not in r.states())
    r.record("qacct_exit99", ["qacct", "-j", e99], "rescheduled (failed 25), then qdel'd in Rq",
             jobs)
    r.record("qacct_exit100", ["qacct", "-j", e100], "", jobs)
    # an output file that cannot be opened: Eqw, and a failed 26 record
    no_output = r.run(["qsub", "-terse", "-N", f"{PREFIX}_no_output", "-wd", str(r.work),
                       "-o", "/nonexistent/dir/out", "-e", str(r.work), "ok.sh"]).stdout.strip()
    jobs["no_output"] = no_output
    r.wait("the job without output file in accounting", r.accounted(no_output))
    r.record("qacct_no_output", ["qacct", "-j", no_output], "-o /nonexistent/dir/out", jobs)
    r.run(["qdel", no_output])


def nodes(r: Recorder) -> None:
    host = gridengine.host_name()
    r.record("qhost", ["qhost", "-xml"])
    r.record("qhost_queues", ["qhost", "-q", "-xml"])
    r.record("qhost_queues_text", ["qhost", "-q"])
    r.run(["qmod", "-d", f"{gridengine.QUEUE}@{host}"])
    try:
        r.record("qhost_queue_disabled", ["qhost", "-q", "-xml"], "qmod -d on the queue")
    finally:
        r.run(["qmod", "-e", f"{gridengine.QUEUE}@{host}"])


#: failed codes this one-host setup cannot produce: (job name, code, description as in
#: sge_status(5), exit_status)
MAN_PAGE_CASES = [
    ("mbman_before_job", 1, "assumedly before job", 0),
    ("mbman_prolog", 8, "in prolog", 0),
    ("mbman_epilog", 15, "in epilog", 0),
    ("mbman_signal", 17, "through signal", 137),
    ("mbman_shepherd", 19, "before writing exit_status", 0),
    ("mbman_unknown_job", 21, "in recognizing job", 0),
    ("mbman_migrating", 24, "migrating (checkpointing jobs)", 0),
]


def man_pages(r: Recorder) -> None:
    """Write (not record) qacct records for MAN_PAGE_CASES, in the recorded layout."""
    lines, jobs = [], {}
    for number, (name, code, text, status) in enumerate(MAN_PAGE_CASES, start=9000001):
        jobs[name] = str(number)
        exit_status = f"{status:<20} (Killed)" if status == 137 else str(status)
        rows = [("qname", "all.q"), ("hostname", "node1"), ("group", "users"),
                ("owner", "alice"), ("project", "NONE"), ("department", "defaultdepartment"),
                ("jobname", name), ("jobnumber", str(number)), ("taskid", "undefined"),
                ("account", "sge"), ("priority", "0"),
                ("qsub_time", "Wed Dec  2 17:42:54 2026"),
                ("start_time", "Wed Dec  2 17:42:55 2026"),
                ("end_time", "Wed Dec  2 17:42:55 2026"), ("granted_pe", "NONE"),
                ("slots", "1"), ("failed", f"{code:<4} : {text}"),
                ("exit_status", exit_status), ("ru_wallclock", "0s"), ("cpu", "0.000s"),
                ("maxvmem", "0.000B"), ("arid", "undefined"), ("category", "NONE")]
        lines += ["=" * 62, *(f"{k:<12} {v}" for k, v in rows)]
    (OUT / "qacct_from_man_pages.txt").write_text("\n".join(lines) + "\n")
    r.index["qacct_from_man_pages"] = {
        "argv": ["qacct", "-j", "mbman_*"], "returncode": 0,
        "stdout": "qacct_from_man_pages.txt", "stderr": "",
        "note": "WRITTEN, NOT RECORDED: failed codes a one-host setup cannot produce, in the "
                "layout of the recorded qacct -j output (fewer fields); descriptions from "
                "sge_status(5) of Son of Grid Engine 8.1.9 (man sge_status)",
        "source": "sge_status(5), sge_accounting(5)", "jobs": jobs}


def outage(r: Recorder) -> None:
    gridengine.stop()
    try:
        w = str(r.work)
        r.record("outage_qstat", ["qstat", "-xml", "-u", "$user"], "sge_qmaster stopped")
        r.record("outage_qsub", ["qsub", "-terse", "-o", w, "-e", w, "ok.sh"],
                 "sge_qmaster stopped")
        r.record("outage_qdel", ["qdel", "1"], "sge_qmaster stopped")
        r.record("outage_qhost", ["qhost", "-q", "-xml"], "sge_qmaster stopped")
    finally:
        gridengine.ensure_running()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--outage", action="store_true",
                        help="also stop sge_qmaster to record client errors")
    parser.add_argument("--only", choices=["submissions", "status", "accounting", "nodes",
                                           "man_pages", "outage"], action="append")
    args = parser.parse_args()
    ge = gridengine.ensure_running()
    work = Path(tempfile.mkdtemp(prefix="mesobatch-ge-record-"))
    os.chmod(work, 0o755)
    for name, body in SCRIPTS.items():
        (work / name).write_text("#!/bin/sh\n" + body)
        (work / name).chmod(0o755)
    r = Recorder(work, ge.env)
    steps = {"submissions": submissions, "status": status, "accounting": accounting,
             "nodes": nodes, "man_pages": man_pages}
    if args.outage:
        steps["outage"] = outage
    try:
        for name, step in steps.items():
            if not args.only or name in args.only:
                step(r)
    finally:
        r.save()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
