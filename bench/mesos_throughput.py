"""The mesos backend through the Mesos test double, run as a separate process.

Run: python bench/mesos_throughput.py [--repeat 3] [--only ...] [--baseline DIR]

--baseline DIR runs each scenario also with the code checked out in DIR (e.g.
``git worktree add /tmp/mesobatch-main main``), interleaved with this tree's, so that
before and after come from one run on one machine load.

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
from typing import Any

from harness import interleaved_medians, percentile, run_child

ROOT = Path(__file__).resolve().parent.parent
if "--code" in sys.argv:  # a child measuring another checkout (--baseline)
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])
else:
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


def _messages(counters: dict[str, Any], before: dict[str, Any], n: int) -> dict[str, float]:
    """What the framework sent and received per task in the measured window (the double's
    per-framework counters, issue 16): status updates + acknowledgements, ACCEPT and
    REVIVE calls."""
    def total(c: dict[str, Any], field: str, key: str | None = None) -> int:
        table = c.get(field, {})
        return int(sum(table.values()) if key is None else table.get(key, 0))

    def per(field: str, key: str | None = None) -> float:
        return (total(counters, field, key) - total(before, field, key)) / n

    updates = per("executor_updates")
    acks = per("calls", "ACKNOWLEDGE")
    return {"updates": updates, "acks": acks, "updates_acks": updates + acks,
            "accepts": per("calls", "ACCEPT"), "revives": per("calls", "REVIVE"),
            "starting": per("executor_updates", "TASK_STARTING"),
            "running": per("executor_updates", "TASK_RUNNING")}


def _settled(control: Any, framework_id: str) -> dict[str, Any]:
    """The framework's counters once every status update so far has its acknowledgement
    (the scheduler gathers acknowledgements for a few ms before writing them: read at
    once, the window would count the warm-up's last one), or after 2 s."""
    deadline = time.monotonic() + 2.0
    while True:
        counters = control.framework_counters(framework_id)
        updates = sum(counters.get("executor_updates", {}).values())
        if counters.get("calls", {}).get("ACKNOWLEDGE", 0) >= updates or \
                time.monotonic() > deadline:
            return counters
        time.sleep(0.01)


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
            framework_id = bs._backend.driver.framework_id  # type: ignore[attr-defined]
            counters0 = _settled(double.control, framework_id)
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
            out.update(_messages(_settled(double.control, framework_id), counters0, n))
            return out
        finally:
            bs.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["t1", "t4", "rt", "sl", "fr", "core"])
    parser.add_argument("--baseline", metavar="DIR",
                        help="also measure the code checked out in DIR (rows marked 'before')")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import json

        print(json.dumps(run(args.child)))
        return
    # (row, scenario, code dir or None for this tree)
    rows = [(n, n, None) for n in args.only if n != "core"]
    if args.baseline:
        code = str(Path(args.baseline).resolve())
        rows = [r for n, _, _ in rows for r in ((f"{n}-", n, code), (n, n, None))]
    plan = {row: (name, code) for row, name, code in rows}

    def one(row: str, _: int) -> dict[str, Any]:
        name, code = plan[row]
        return run_child(__file__, name, *(("--code", code) if code else ()), cwd=ROOT)

    med = interleaved_medians(plan, args.repeat, one)
    titles = {"t1": "1000 x true @0.1 core, 1 agent", "t4": "1000 x true @0.1 core, 4 agents",
              "rt": "30 jobs one at a time", "sl": "20 x sleep 1 @1 core, 2 cpus"}
    shown = [(row, titles[name] + (" (before)" if code else ""))
             for row, (name, code) in plan.items() if name in titles]
    print(f"mesos backend through the double (separate process), medians of {args.repeat}\n")
    print(f"{'':4}{'scenario':44}{'tasks/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'elapsed s':>11}"
          f"{'sched ms/task':>15}{'exec ms/task':>14}{'double ms/task':>16}")
    for row, title in shown:
        m = med[row]
        print(f"{row:4}{title:44}{m['tasks_per_s']:9.0f}{m['p50_ms']:9.1f}"
              f"{m['p95_ms']:9.1f}{m['elapsed']:11.3f}{m['sched_ms']:15.3f}"
              f"{m['exec_ms']:14.3f}{m['double_ms']:16.3f}")
    print("\nper task, through the double's framework counters (executor UPDATE calls, the "
          "scheduler's ACKNOWLEDGE, ACCEPT and REVIVE calls)")
    print(f"{'':4}{'scenario':44}{'updates':>9}{'STARTING':>10}{'RUNNING':>9}{'acks':>7}"
          f"{'upd+ack':>9}{'ACCEPT':>8}{'REVIVE':>8}")
    for row, title in shown:
        m = med[row]
        print(f"{row:4}{title:44}{m['updates']:9.2f}{m['starting']:10.2f}{m['running']:9.2f}"
              f"{m['acks']:7.2f}{m['updates_acks']:9.2f}{m['accepts']:8.2f}{m['revives']:8.2f}")
    for row, (name, code) in plan.items():
        when = " (before)" if code else ""
        if name == "sl":
            print(f"\n(sl){when} {med[row]['elapsed']:.3f} s vs ideal 10 s: "
                  f"{(med[row]['elapsed'] / 10 - 1) * 100:+.2f}%")
        elif name == "fr":
            print(f"(fr){when} start to first result: {med[row]['elapsed'] * 1000:.0f} ms")
    if "core" in args.only:
        print()
        subprocess.run([sys.executable, str(ROOT / "bench" / "core_scale.py"), "--repeat",
                        str(args.repeat)], check=True)


if __name__ == "__main__":
    main()
