"""A small Toil workflow for the batch-queue backends, run from the command line:

    python -m tests.integration.toil.queue_workflow JOBSTORE --summary FILE [Toil options]

The root job fans out to 4 jobs of 1 core and 256 MiB (enough for Toil's worker, which a
queue's memory limit would otherwise kill); one fails on its first attempt and succeeds
when Toil retries it; a follow-on checks the results and writes a summary as JSON.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from toil.common import Toil
from toil.job import Job, Promise

FANOUT = 4
FLAKY = 2  #: this job fails once
SHAPE: dict[str, Any] = {"cores": 1, "memory": "256Mi", "disk": "16Mi"}


def square(job: Job, i: int, attempts_dir: str) -> dict[str, Any]:
    if i == FLAKY:
        marker = Path(attempts_dir) / f"job{i}.attempts"
        with marker.open("a") as f:
            f.write("attempt\n")
        if len(marker.read_text().splitlines()) == 1:
            raise RuntimeError(f"job {i} fails on its first attempt, as planned")
    # what the batch system put in the job's environment says where it ran
    markers = sorted(k for k in os.environ if k.startswith(("LSB_", "PBS_", "_CONDOR_")))
    return {"i": i, "square": i * i, "host": socket.gethostname(), "markers": markers}


def check(job: Job, results: list[dict[str, Any]], summary: str) -> int:
    assert sorted(r["i"] for r in results) == list(range(FANOUT)), results
    assert all(r["square"] == r["i"] ** 2 for r in results), results
    Path(summary).write_text(json.dumps({"results": results}))
    return sum(r["square"] for r in results)


def fan_out(job: Job, attempts_dir: str, summary: str) -> Promise:
    results = [job.addChildJobFn(square, i, attempts_dir, **SHAPE).rv() for i in range(FANOUT)]
    return job.addFollowOnJobFn(check, results, summary, **SHAPE).rv()


def main() -> None:
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--summary", required=True)
    options = parser.parse_args()
    attempts_dir = str(Path(options.summary).parent)
    with Toil(options) as toil:
        total = toil.start(Job.wrapJobFn(fan_out, attempts_dir, options.summary, **SHAPE))
    print(f"total {total}")


if __name__ == "__main__":
    main()
