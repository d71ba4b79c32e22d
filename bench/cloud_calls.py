"""API requests per job of the cloud backends, on their doubles: N jobs issued at once, run
to their ends, then shutdown. Each round runs in a fresh process; medians over rounds.

    python bench/cloud_calls.py [--backend kubernetes|aws_batch] [--jobs 200] [--rounds 3]

Targets (issue 14): at most 2 requests per job to submit, at most 0.1 per job for status.
One section per backend; each counts the requests its double served, by kind.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import interleaved_medians, run_child

# ----------------------------------------------------------------------------- kubernetes


def kubernetes_round(jobs: int) -> dict[str, Any]:
    """Requests by purpose: startup (nodes and pods surveyed once), submit (Job creates),
    status (the pod list and watch), logs (one read per ended pod), shutdown
    (deletecollection)."""
    import mesobatch
    from tests.doubles.kubernetes import KubernetesDouble, NodeSpec

    nodes = [NodeSpec(name=f"node-{i}", cpu="8", memory="16Gi") for i in range(4)]
    with KubernetesDouble(nodes=nodes) as double, tempfile.TemporaryDirectory() as logs:
        bs = mesobatch.batch_system("kubernetes", kubernetesConfig=str(double.kubeconfig),
                                    kubernetesImage="debian:bookworm-slim", logDir=logs)
        startup = double.request_count()
        double.reset_requests()
        desc = mesobatch.JobDescription(cores=0.1, memory=16 * 2**20, disk=16 * 2**20)
        began = time.monotonic()
        for _ in range(jobs):
            bs.issueBatchJob("sleep 0.2", desc)
        done = 0
        while done < jobs:
            info = bs.getUpdatedBatchJob(60)
            if info is None:
                raise RuntimeError(f"only {done} of {jobs} jobs ended")
            if info.exitStatus != 0:
                raise RuntimeError(f"job {info.jobID} failed: {info}")
            done += 1
        elapsed = time.monotonic() - began
        during = double.requests()
        bs.shutdown()
        after = double.requests()

    def count(table: dict[tuple[str, str], int], verbs: tuple[str, ...],
              resource: str) -> int:
        return sum(n for (v, r), n in table.items() if v in verbs and r == resource)

    status = count(during, ("list", "watch", "get"), "pods") + count(
        during, ("list", "watch", "get"), "jobs")
    return {
        "startup_requests": startup,
        "submit_per_job": count(during, ("create",), "jobs") / jobs,
        "status_per_job": status / jobs,
        "logs_per_job": count(during, ("get",), "pods/log") / jobs,
        "all_per_job": sum(during.values()) / jobs,
        "shutdown_requests": sum(after.values()) - sum(during.values()),
        "seconds": elapsed,
    }


# ----------------------------------------------------------------------------- aws_batch


def aws_batch_round(jobs: int) -> dict[str, Any]:
    """Requests by purpose: startup (job definition found or registered, the queue and
    its compute environments read once), submit (SubmitJob), status (DescribeJobs, 100
    ids per call, every live job each --pollInterval, default 5 s), logs (GetLogEvents
    per ended job), shutdown (the ListJobs sweep)."""
    import os

    import mesobatch
    from tests.doubles.aws_batch import AwsBatchDouble
    from tests.doubles.aws_batch.queues import add_queue

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with AwsBatchDouble(state_delay=0.05) as double, tempfile.TemporaryDirectory() as logs:
        queue = add_queue(double, "bench", vcpus=256)
        double.reset_requests()
        bs = mesobatch.batch_system("aws_batch", awsBatchEndpoint=double.endpoint_url,
                                    awsBatchRegion=double.region, awsBatchQueue=queue,
                                    awsBatchImage="debian:bookworm-slim", logDir=logs)
        startup = sum(double.requests().values())
        double.reset_requests()
        desc = mesobatch.JobDescription(cores=0.1, memory=16 * 2**20, disk=16 * 2**20)
        began = time.monotonic()
        for _ in range(jobs):
            bs.issueBatchJob("sleep 0.2", desc)
        done = 0
        while done < jobs:
            info = bs.getUpdatedBatchJob(120)
            if info is None:
                raise RuntimeError(f"only {done} of {jobs} jobs ended")
            if info.exitStatus != 0:
                raise RuntimeError(f"job {info.jobID} failed: {info}")
            done += 1
        elapsed = time.monotonic() - began
        during = double.requests()
        bs.shutdown()
        after = double.requests()
    return {
        "startup_requests": startup,
        "submit_per_job": during.get("SubmitJob", 0) / jobs,
        "status_per_job": during.get("DescribeJobs", 0) / jobs,
        "logs_per_job": during.get("GetLogEvents", 0) / jobs,
        "all_per_job": sum(during.values()) / jobs,
        "shutdown_requests": sum(after.values()) - sum(during.values()),
        "seconds": elapsed,
    }


# ----------------------------------------------------------------------------- sections

ROUNDS: dict[str, Callable[[int], dict[str, Any]]] = {
    "kubernetes": kubernetes_round,
    "aws_batch": aws_batch_round,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", action="append", choices=sorted(ROUNDS))
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(ROUNDS[args.child](args.jobs)))
        return
    names = args.backend or sorted(ROUNDS)
    medians = interleaved_medians(
        names, args.rounds,
        lambda name, _: run_child(__file__, name, "--jobs", str(args.jobs),
                                  cwd=Path(__file__).resolve().parents[1]))
    for name in names:
        m = medians[name]
        print(f"{name}: {args.jobs} jobs, median of {args.rounds} rounds")
        for key, value in m.items():
            print(f"  {key:<18} {value:.3f}" if isinstance(value, float)
                  else f"  {key:<18} {value}")


if __name__ == "__main__":
    main()
