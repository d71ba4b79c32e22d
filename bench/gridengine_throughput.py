"""Grid Engine: N x `true` through mesobatch's gridengine backend vs a plain qsub loop,
in the same run, on the real Grid Engine (tests/services/gridengine.py).

Run: python bench/gridengine_throughput.py [--jobs 100] [--repeat 3] [--queue all.q]

Scenarios, interleaved (drift hits all alike), each N jobs of `true`, 1 core:
  qsub loop   qsub -terse of a script file per job, one after another, then `qstat -xml`
              once a second until none of them is listed (bench/gridengine_baseline.py)
  mesobatch   issueBatchJob N times, then getUpdatedBatchJob until all N results are in
              (defaults: --pollInterval 1; memory as mem_free per job, so neither side
              has a memory limit)
  no arrays   mesobatch with --jobArrays false (one qsub per job, as Toil's backend)
Each prints jobs/s over the whole (first submission to last job done) and the Grid
Engine commands run per job (qsub, qstat, qacct, qdel; the loop's qsub and qstat).
Queue all.q has one slot per core; light.q (--queue light.q) 32 slots.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mesobatch
from mesobatch.scheduler.api import BatchSystem
from tests.services import gridengine

SCENARIOS = ("qsub loop", "mesobatch", "no arrays")


def queue_args(queue: str) -> list[str]:
    return ["-q", queue] + (["-l", gridengine.LIGHT_RESOURCE]
                            if queue == gridengine.LIGHT_QUEUE else [])


def qsub_loop(n: int, queue: str, env: dict[str, str], work: Path) -> dict[str, float]:
    script = work / "true.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    script.chmod(0o755)
    argv = ["qsub", "-terse", "-b", "n", "-S", "/bin/sh", "-N", "mbbench_loop", "-o",
            str(work), "-e", str(work), "-wd", str(work), *queue_args(queue), str(script)]
    ids: set[str] = set()
    commands = 0
    start = time.perf_counter()
    for _ in range(n):
        ids.add(subprocess.run(argv, env=env, capture_output=True, text=True,
                               check=True).stdout.strip())
        commands += 1
    while True:
        commands += 1
        listing = subprocess.run(["qstat", "-xml"], env=env, capture_output=True, text=True,
                                 check=True).stdout
        queued = {j.findtext("JB_job_number") for j in ET.fromstring(listing).iter("job_list")}
        if not ids & queued:
            break
        time.sleep(1.0)
    elapsed = time.perf_counter() - start
    return {"jobs_per_s": n / elapsed, "elapsed": elapsed, "commands_per_job": commands / n}


def through_mesobatch(n: int, queue: str, work: Path, arrays: bool) -> dict[str, float]:
    light = queue == gridengine.LIGHT_QUEUE
    bs: BatchSystem = mesobatch.batch_system(
        "gridengine", logDir=str(work / f"logs-{time.monotonic_ns()}"), gridEngineQueue=queue,
        gridEngineArgs="-l light" if light else "", gridEngineMemoryResource="mem_free",
        gridEngineMemoryPer="job", gridEngineAccountingDelay=2, jobArrays=arrays)
    job = mesobatch.JobDescription(cores=1, memory=16 * 2**20, disk=2**20)
    try:
        start = time.perf_counter()
        for _ in range(n):
            bs.issueBatchJob("true", job)
        done = 0
        while done < n:
            info = bs.getUpdatedBatchJob(60)
            if info is None:
                raise RuntimeError(f"no result for 60 s after {done} of {n}")
            if info.exitStatus != 0:
                raise RuntimeError(f"job {info.jobID} failed: {info}")
            done += 1
        elapsed = time.perf_counter() - start
        backend = bs._backend
        total = backend.commands.total  # type: ignore[attr-defined]
        counts = dict(backend.commands.counts)  # type: ignore[attr-defined]
    finally:
        bs.shutdown()
    return {"jobs_per_s": n / elapsed, "elapsed": elapsed, "commands_per_job": total / n,
            **{f"n_{k}": float(v) for k, v in counts.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queue", default=gridengine.QUEUE,
                        choices=[gridengine.QUEUE, gridengine.LIGHT_QUEUE])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated subset of: " + ", ".join(SCENARIOS))
    args = parser.parse_args()
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    ge = gridengine.ensure_running()
    os.environ.update(ge.env)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="mesobatch-ge-bench-") as d:
        for i in range(args.repeat):
            for name in names if i % 2 == 0 else reversed(names):
                work = Path(d) / f"{i}-{name.replace(' ', '_')}"
                work.mkdir()
                if name == "qsub loop":
                    result = qsub_loop(args.jobs, args.queue, ge.env, work)
                else:
                    result = through_mesobatch(args.jobs, args.queue, work,
                                               arrays=name == "mesobatch")
                runs[name].append(result)
                print(f"  run {i + 1} {name}: {result['jobs_per_s']:.2f} jobs/s, "
                      f"{result['commands_per_job']:.2f} commands/job", file=sys.stderr)
    slots = ge.setup.slots if args.queue == gridengine.QUEUE else gridengine.LIGHT_SLOTS
    print(f"Grid Engine: {args.jobs} x `true` at 1 core, queue {args.queue} ({slots} slots), "
          f"scheduler every {gridengine.SCHEDULE_INTERVAL}; median of {args.repeat} run(s)")
    print(f"{'scenario':12}{'jobs/s':>8}{'total s':>9}{'GE commands/job':>17}  commands (median)")
    for name in names:
        keys = sorted({k for r in runs[name] for k in r})
        m = {k: statistics.median(r.get(k, 0.0) for r in runs[name]) for k in keys}
        detail = " ".join(f"{k[2:]} {m[k]:.0f}" for k in keys if k.startswith("n_"))
        print(f"{name:12}{m['jobs_per_s']:8.2f}{m['elapsed']:9.1f}"
              f"{m['commands_per_job']:17.2f}  {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
