"""A Toil workflow, run from the command line as a user would run theirs:

    python -m tests.integration.toil.fanout_workflow JOBSTORE --summary FILE [Toil options]

The root job fans out to 20 jobs of different cores and memory; one of them fails on
its first attempt and succeeds when Toil retries it. A follow-on checks every result
(and fails the workflow if one is wrong) and writes a summary as JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from toil.common import Toil
from toil.job import Job, Promise

FANOUT = 20
CORES = (0.1, 0.25, 0.5, 1.0)
MEMORY_MIB = (32, 64, 96, 128, 160)
FLAKY = 7  #: this job fails once


def square(job: Job, i: int, attempts_dir: str) -> dict[str, Any]:
    if i == FLAKY:
        marker = Path(attempts_dir) / f"job{i}.attempts"
        with marker.open("a") as f:
            f.write("attempt\n")
        if len(marker.read_text().splitlines()) == 1:
            raise RuntimeError(f"job {i} fails on its first attempt, as planned")
    return {"i": i, "square": i * i, "cores": job.cores, "memory": job.memory,
            "omp": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid()}


def check(job: Job, results: list[dict[str, Any]], summary: str) -> int:
    by_index = {r["i"]: r for r in results}
    assert sorted(by_index) == list(range(FANOUT)), sorted(by_index)
    for i, r in by_index.items():
        assert r["square"] == i * i, r
        cores, memory = CORES[i % len(CORES)], MEMORY_MIB[i % len(MEMORY_MIB)] * 2**20
        if i == FLAKY:  # Toil retries a failed job with at least its default resources
            assert r["cores"] >= cores and r["memory"] >= memory, r
        else:
            assert (r["cores"], r["memory"]) == (cores, memory), r
    Path(summary).write_text(json.dumps({"results": results}))
    return sum(r["square"] for r in results)


def fan_out(job: Job, attempts_dir: str, summary: str) -> Promise:
    results = [
        job.addChildJobFn(square, i, attempts_dir, cores=CORES[i % len(CORES)],
                          memory=f"{MEMORY_MIB[i % len(MEMORY_MIB)]}Mi", disk="16Mi").rv()
        for i in range(FANOUT)
    ]
    return job.addFollowOnJobFn(check, results, summary, cores=0.1, memory="64Mi",
                                disk="16Mi").rv()


def main() -> None:
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--summary", required=True)
    options = parser.parse_args()
    attempts_dir = str(Path(options.summary).parent)
    with Toil(options) as toil:
        total = toil.start(Job.wrapJobFn(fan_out, attempts_dir, options.summary, cores=0.1,
                                         memory="64Mi", disk="16Mi"))
    print(f"total {total}")


if __name__ == "__main__":
    main()
