"""A Toil workflow for --batchSystem mesobatch_kubernetes, run from the command line:

    python -m tests.integration.toil.kubernetes_workflow JOBSTORE --summary FILE [Toil options]

Six jobs (one fails on its first attempt and succeeds when Toil retries it) with memory
a Toil worker fits in: on Kubernetes a pod's memory limit is its request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from toil.common import Toil
from toil.job import Job, Promise

FANOUT = 6
FLAKY = 3


def square(job: Job, i: int, attempts_dir: str) -> dict[str, Any]:
    if i == FLAKY:
        marker = Path(attempts_dir) / f"job{i}.attempts"
        with marker.open("a") as f:
            f.write("attempt\n")
        if len(marker.read_text().splitlines()) == 1:
            raise RuntimeError(f"job {i} fails on its first attempt, as planned")
    return {"i": i, "square": i * i, "pod": os.environ.get("HOSTNAME", "")}


def check(job: Job, results: list[dict[str, Any]], summary: str) -> int:
    assert sorted(r["i"] for r in results) == list(range(FANOUT)), results
    Path(summary).write_text(json.dumps({"results": results}))
    return sum(r["square"] for r in results)


def fan_out(job: Job, attempts_dir: str, summary: str) -> Promise:
    results = [job.addChildJobFn(square, i, attempts_dir, cores=0.5, memory="512Mi",
                                 disk="16Mi").rv()
               for i in range(FANOUT)]
    return job.addFollowOnJobFn(check, results, summary, cores=0.5, memory="512Mi",
                                disk="16Mi").rv()


def main() -> None:
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--summary", required=True)
    options = parser.parse_args()
    with Toil(options) as toil:
        total = toil.start(Job.wrapJobFn(fan_out, str(Path(options.summary).parent),
                                         options.summary, cores=0.5, memory="512Mi",
                                         disk="16Mi"))
    print(f"total {total}")


if __name__ == "__main__":
    main()
