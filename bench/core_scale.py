"""The pure core at scale: 100,000 queued jobs in 50 shapes against 1,000 agents' offers.

Run: python bench/core_scale.py [--jobs 100000] [--agents 1000] [--repeat 5]

Prints the time to match one batch of 100 offers (medians over batches), offers matched
per second, and the scheduling process's RSS with all the jobs queued. Everything runs
in this process with no I/O: it is the core's own cost.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import time


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--shapes", type=int, default=50)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from mesobatch.scheduler.contract import JobDescription
    from mesobatch.scheduler.core.events import JobsSubmitted, Offer, OffersReceived
    from mesobatch.scheduler.core.jobs import build_spec
    from mesobatch.scheduler.core.resources import Resources
    from mesobatch.scheduler.core.scheduler import CoreConfig, SchedulerCore

    rng = random.Random(1)
    shapes = [JobDescription(cores=rng.choice([0.1, 0.5, 1, 2, 4]),
                             memory=rng.choice([256, 512, 1024, 2048, 4096]) * 2**20 + i,
                             disk=rng.choice([1, 2, 4]) * 2**30,
                             preemptible=rng.random() < 0.3)
              for i in range(args.shapes)]
    base_rss = rss_mb()
    batches: list[float] = []
    matched_total = launched_total = 0
    elapsed_total = 0.0
    rss_queued = 0.0
    for r in range(args.repeat):
        core = SchedulerCore(CoreConfig(offer_hold_seconds=3.0))
        env: dict[str, str] = {}
        specs = tuple(build_spec(i, f"run-step --input part-{i}.dat", shapes[i % args.shapes],
                                 env, None) for i in range(args.jobs))
        core.handle(JobsSubmitted(specs, 0.0))
        del specs
        gc.collect()
        if r == 0:
            rss_queued = rss_mb()
        offer_id = 0
        now = 1.0
        # every agent offers its whole size once (a full allocation round), in batches
        agents = list(range(args.agents))
        rng.shuffle(agents)
        for start in range(0, len(agents), args.batch):
            offers = []
            for a in agents[start:start + args.batch]:
                offer_id += 1
                offers.append(Offer(
                    f"o{offer_id}", f"agent-{a}", f"host-{a}", f"10.0.{a // 256}.{a % 256}",
                    Resources(cpus=16000, mem=64 * 1024, disk=500 * 1024),
                    preemptible=a % 4 == 0))
            t = time.perf_counter()
            actions = core.handle(OffersReceived(tuple(offers), now))
            dt = time.perf_counter() - t
            batches.append(dt)
            elapsed_total += dt
            matched_total += len(offers)
            launched_total += sum(len(getattr(a, "tasks", ())) for a in actions)
            now += 0.01
        del core
        gc.collect()
    print(f"pure core: {args.jobs:,} queued jobs in {args.shapes} shapes, {args.agents:,} "
          f"agents of 16 cores / 64 GiB, offers in batches of {args.batch}; "
          f"{args.repeat} repetitions\n")
    median = statistics.median(batches) * 1000
    print(f"{'match one batch of 100 offers, median':48}{median:10.2f} ms")
    print(f"{'match one batch of 100 offers, p95':48}"
          f"{sorted(batches)[int(0.95 * (len(batches) - 1))] * 1000:10.2f} ms")
    print(f"{'offers matched per second':48}{matched_total / elapsed_total:10.0f}")
    print(f"{'tasks launched per second of matching':48}{launched_total / elapsed_total:10.0f}")
    print(f"{'RSS with all jobs queued (process)':48}{rss_queued:10.1f} MB")
    print(f"{'  of which the queued jobs':48}{rss_queued - base_rss:10.1f} MB")


if __name__ == "__main__":
    main()
