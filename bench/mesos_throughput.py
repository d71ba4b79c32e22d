"""The mesos backend through the Mesos test double, run as a separate process.

Run: python bench/mesos_throughput.py [--repeat 3] [--only ...]

The double keeps Mesos's timing (offers every 1 s allocation interval, or at once after
REVIVE; declined resources withheld for the filter), so these figures carry over to a
real cluster. The scheduler is this process; CPU seconds are read per process
(this one, the executors, the double) with psutil. Scenarios:
  t1   1000 x `true` @0.1 core, 1 agent of 2 cpus
  t4   1000 x `true` @0.1 core, 4 agents of 2 cpus
  rt   30 jobs one at a time (issue, wait for the result, repeat): round trip
  sl   20 x `sleep 1` @1 core on one 2-cpu agent (ideal 10 s)
  fr   start to first result: create the batch system, issue one job, get its result
and then the pure core at scale (bench/core_scale.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import interleaved_medians, percentile, run_child

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu(pid: int) -> float:
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def run(scenario: str) -> dict[str, float]:
    import mesobatch
    from tests.doubles.mesos import DoubleProcess

    agents = 4 if scenario == "t4" else 1
    out: dict[str, float] = {}
    with DoubleProcess("--agent-resources", "cpus:2.01;mem:4096;disk:10000",
                       agents=agents) as double:
        assert double.control is not None
        started = time.perf_counter()
        bs = mesobatch.batch_system("mesos", mesosMaster=double.master_address,
                                    logDir=None)
        try:
            small = mesobatch.JobDescription(cores=0.1, memory=2**20, disk=2**20)
            if scenario == "fr":
                bs.issueBatchJob("true", small)
                info = bs.getUpdatedBatchJob(60)
                assert info is not None and info.exitStatus == 0, info
                out["elapsed"] = time.perf_counter() - started
                return out
            # warm up: subscribe, first offers, executors started
            for _ in range(agents * 2):
                bs.issueBatchJob("true", small)
            for _ in range(agents * 2):
                assert bs.getUpdatedBatchJob(60) is not None
            pids = list(double.control.state()["executor_pids"].values())
            cpu0 = {"sched": _self_cpu(), "double": _cpu(double.pid),
                    "exec": sum(_cpu(p) for p in pids)}
            lat: list[float] = []
            t0 = time.perf_counter()
            if scenario == "rt":
                n = 30
                for _ in range(n):
                    t = time.perf_counter()
                    bs.issueBatchJob("true", small)
                    info = bs.getUpdatedBatchJob(60)
                    assert info is not None and info.exitStatus == 0, info
                    lat.append(time.perf_counter() - t)
            else:
                n, cores, command = (20, 1.0, "sleep 1") if scenario == "sl" else (1000, 0.1,
                                                                                     "true")
                desc = mesobatch.JobDescription(cores=cores, memory=2**20, disk=2**20)
                issued = {}
                for _ in range(n):
                    issued[bs.issueBatchJob(command, desc)] = time.perf_counter()
                while len(lat) < n:
                    info = bs.getUpdatedBatchJob(120)
                    assert info is not None and info.exitStatus == 0, info
                    lat.append(time.perf_counter() - issued[info.jobID])
            elapsed = time.perf_counter() - t0
            pids = list(double.control.state()["executor_pids"].values())
            out.update(
                elapsed=elapsed, tasks_per_s=n / elapsed,
                p50_ms=percentile(lat, 50) * 1000, p95_ms=percentile(lat, 95) * 1000,
                sched_ms=(_self_cpu() - cpu0["sched"]) / n * 1000,
                exec_ms=(sum(_cpu(p) for p in pids) - cpu0["exec"]) / n * 1000,
                double_ms=(_cpu(double.pid) - cpu0["double"]) / n * 1000,
            )
            return out
        finally:
            bs.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["t1", "t4", "rt", "sl", "fr", "core"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import json

        print(json.dumps(run(args.child)))
        return
    med = interleaved_medians((n for n in args.only if n != "core"), args.repeat,
                              lambda name, _: run_child(__file__, name, cwd=ROOT))
    titles = {"t1": "1000 x true @0.1 core, 1 agent", "t4": "1000 x true @0.1 core, 4 agents",
              "rt": "30 jobs one at a time", "sl": "20 x sleep 1 @1 core, 2 cpus"}
    print(f"mesos backend through the double (separate process), medians of {args.repeat}\n")
    print(f"{'':4}{'scenario':34}{'tasks/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'elapsed s':>11}"
          f"{'sched ms/task':>15}{'exec ms/task':>14}{'double ms/task':>16}")
    for name, title in titles.items():
        if name in med:
            m = med[name]
            print(f"{name:4}{title:34}{m['tasks_per_s']:9.0f}{m['p50_ms']:9.1f}"
                  f"{m['p95_ms']:9.1f}{m['elapsed']:11.3f}{m['sched_ms']:15.3f}"
                  f"{m['exec_ms']:14.3f}{m['double_ms']:16.3f}")
    if "sl" in med:
        print(f"\n(sl) {med['sl']['elapsed']:.3f} s vs ideal 10 s: "
              f"{(med['sl']['elapsed'] / 10 - 1) * 100:+.2f}%")
    if "fr" in med:
        print(f"(fr) start to first result: {med['fr']['elapsed'] * 1000:.0f} ms")
    if "core" in args.only:
        print()
        subprocess.run([sys.executable, str(ROOT / "bench" / "core_scale.py"), "--repeat",
                        str(args.repeat)], check=True)


if __name__ == "__main__":
    main()
