"""Shipping code: one transfer per agent for a shared resource, and the round trip of a
shipped function.

Run: python bench/shipping.py [--repeat 5] [--only big rt-local rt-mesos cold]

  big        a 10 MiB object (FunctionExecutor.put) used by 8 calls on 4 agents of the
             Mesos double (1 cpu each, so 2 calls per agent): transfers and bytes sent
             by the resource server, cache hits on the agents, bundle fetches
  rt-local   a trivial closure, issue to result, one call at a time (40 calls after 5
             warm-up calls), local backend: p50 / p95 / max
  rt-mesos   the same on one agent of the Mesos double
  cold       the first call of a fresh FunctionExecutor on the local backend (the
             fork server is still loading: the call starts its own Python)

Each run is a fresh process; scenarios interleave; the table shows medians over runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import interleaved_medians, percentile, run_child

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIB = 2**20


def scenario_big() -> dict[str, float]:
    import mesobatch
    from tests.doubles.mesos import AgentSpec, MesosDouble

    agents = 4
    spec = AgentSpec(resources="cpus:1.01;mem:1056;disk:4096")
    with MesosDouble(agents=[spec] * agents) as double:
        bs = mesobatch.batch_system("mesos", mesosMaster=double.master_address,
                                    maxCores=1, maxMemory="1G")
        with mesobatch.FunctionExecutor(bs, resources=mesobatch.CallResources(
                cores=1, memory="256M", disk="256M")) as ex:
            data = ex.put(os.urandom(10 * MIB))

            def use(blob: bytes, i: int) -> tuple[int, str]:
                time.sleep(0.3)  # long enough that each agent gets two of the calls
                return len(blob), os.environ["MESOS_SLAVE_ID"]

            start = time.perf_counter()
            calls = [ex.submit(use, data, i) for i in range(2 * agents)]
            outcomes = [c.result(timeout=120) for c in calls]
            elapsed = time.perf_counter() - start
        stats = bs.resource_service().stats()
        fetch = double.fetch_stats()
        bs.shutdown()
    assert all(size == 10 * MIB for size, _ in outcomes)
    transfers = stats.transfers.get(data.ref.sha256, 0)
    return {
        "calls": float(len(outcomes)),
        "agents_used": float(len({agent for _, agent in outcomes})),
        "transfers": float(transfers),
        "mib_sent": stats.bytes_sent.get(data.ref.sha256, 0) / MIB,
        "cache_hits": float(len(outcomes) - transfers),
        "bundle_fetches": float(sum(fetch["fetches"].values())),
        "bundle_cache_hits": float(sum(fetch["cache_hits"].values())),
        "elapsed": elapsed,
    }


def _round_trips(bs: Any, n: int, warm: int = 5) -> dict[str, float]:
    import mesobatch

    x = 41
    times: list[float] = []
    with mesobatch.FunctionExecutor(bs) as ex:
        for i in range(warm + n):  # the warm-up calls start the node's fork server
            start = time.perf_counter()
            assert ex.submit(lambda: x + 1).result(timeout=60) == 42
            if i >= warm:
                times.append(time.perf_counter() - start)
    return {"p50_ms": statistics.median(times) * 1000, "p95_ms": percentile(times, 95) * 1000,
            "max_ms": max(times) * 1000}


def scenario_rt_local() -> dict[str, float]:
    import mesobatch

    with mesobatch.batch_system("local", maxCores=2, maxMemory="2G") as bs:
        return _round_trips(bs, 40)


def scenario_rt_mesos() -> dict[str, float]:
    import mesobatch
    from tests.doubles.mesos import AgentSpec, MesosDouble

    with MesosDouble(agents=[AgentSpec(resources="cpus:2.01;mem:2080;disk:4096")]) as double:
        bs = mesobatch.batch_system("mesos", mesosMaster=double.master_address,
                                    maxCores=2, maxMemory="2G")
        try:
            return _round_trips(bs, 40)
        finally:
            bs.shutdown()


def scenario_cold() -> dict[str, float]:
    import mesobatch

    x = 41
    with mesobatch.FunctionExecutor("local", maxCores=2, maxMemory="2G") as ex:
        start = time.perf_counter()
        assert ex.submit(lambda: x + 1).result(timeout=60) == 42
        return {"first_ms": (time.perf_counter() - start) * 1000}


SCENARIOS = {
    "big": scenario_big,
    "rt-local": scenario_rt_local,
    "rt-mesos": scenario_rt_mesos,
    "cold": scenario_cold,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(SCENARIOS[args.child]()))
        return
    med = interleaved_medians(args.only, args.repeat,
                              lambda name, _: run_child(__file__, name, cwd=ROOT))
    print(f"shipping code, medians of {args.repeat} runs (each in a fresh process)\n")
    if "big" in med:
        b = med["big"]
        print("a 10 MiB object (FunctionExecutor.put) used by 8 calls on 4 agents of the "
              "Mesos double")
        print(f"  {'calls':>6}{'agents':>8}{'transfers':>11}{'MiB sent':>10}"
              f"{'cache hits':>12}{'bundle fetches':>16}{'elapsed s':>11}")
        print(f"  {b['calls']:6.0f}{b['agents_used']:8.0f}{b['transfers']:11.0f}"
              f"{b['mib_sent']:10.1f}{b['cache_hits']:12.0f}{b['bundle_fetches']:16.0f}"
              f"{b['elapsed']:11.2f}")
        print("  (target: one transfer per agent; the agents' second calls hit their cache)\n")
    rows = [(k, label) for k, label in (("rt-local", "local backend"),
                                        ("rt-mesos", "Mesos double, 1 agent"))
            if k in med]
    if rows:
        print("a trivial shipped closure, issue to result, one call at a time (40 calls)")
        print(f"  {'':24}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
        for key, label in rows:
            m = med[key]
            print(f"  {label:24}{m['p50_ms']:9.1f}{m['p95_ms']:9.1f}{m['max_ms']:9.1f}")
        print("  (target: p50 <= 30 ms on the local backend)\n")
    if "cold" in med:
        print(f"first call of a fresh executor, local backend (a Python of its own, no fork "
              f"server yet): {med['cold']['first_ms']:.0f} ms")


if __name__ == "__main__":
    main()
