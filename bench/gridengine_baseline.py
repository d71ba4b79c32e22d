"""Grid Engine baseline: what a plain qsub loop gets out of the real Grid Engine here.

Run: python bench/gridengine_baseline.py [--jobs 100] [--repeat 1]

Starts (or reuses) the machine's Grid Engine (tests/services/gridengine.py: 2 slots, the
scheduler every second). Scenarios, each N jobs of `true`:
  script  qsub -terse of a script file whose body is `true` (what mesobatch submits)
  binary  qsub -terse -b y true (what Toil's Grid Engine backend submits)
Each submits its N jobs one after another, then waits until none of them is in
`qstat -xml` any more, asking once per second. The table gives jobs/s over the whole
(submit to last job gone), the time the qsub loop alone took, and qsub's p50/p95.
The mesobatch side comes with the backend (the issue's target: no slower than this).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import percentile

from tests.services import gridengine


def run_loop(name: str, n: int, env: dict[str, str], work: Path) -> dict[str, float]:
    out = str(work)
    if name == "script":
        script = work / "true.sh"
        script.write_text("#!/bin/sh\ntrue\n")
        script.chmod(0o755)
        tail = ["-S", "/bin/sh", str(script)]
    else:
        tail = ["-b", "y", "true"]
    argv = ["qsub", "-terse", "-N", f"mbbench_{name}", "-o", out, "-e", out, "-wd", out, *tail]
    ids: set[str] = set()
    latencies: list[float] = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        latencies.append(time.perf_counter() - t)
        ids.add(done.stdout.strip())
    submitted = time.perf_counter() - start
    polls = 0
    while True:
        polls += 1
        listing = subprocess.run(["qstat", "-xml"], env=env, capture_output=True, text=True,
                                 check=True).stdout
        queued = {j.findtext("JB_job_number") for j in ET.fromstring(listing).iter("job_list")}
        if not ids & queued:
            break
        time.sleep(1.0)
    elapsed = time.perf_counter() - start
    return {"jobs_per_s": n / elapsed, "elapsed": elapsed, "submit": submitted,
            "qsub_p50": percentile(latencies, 50), "qsub_p95": percentile(latencies, 95),
            "polls": polls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    ge = gridengine.ensure_running()
    names = ["script", "binary"]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="mesobatch-ge-bench-") as d:
        for _ in range(args.repeat):
            for name in names:  # interleaved, so drift hits both alike
                runs[name].append(run_loop(name, args.jobs, ge.env, Path(d)))
    print(f"Grid Engine baseline: {args.jobs} x `true`, {ge.setup.slots} slots, scheduler "
          f"every {gridengine.SCHEDULE_INTERVAL}; median of {args.repeat} run(s)")
    print(f"{'scenario':10}{'jobs/s':>8}{'total s':>9}{'qsub loop s':>13}{'qsub/s':>8}"
          f"{'p50 ms':>8}{'p95 ms':>8}{'qstat polls':>13}")
    for name in names:
        m = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
        print(f"{name:10}{m['jobs_per_s']:8.2f}{m['elapsed']:9.1f}{m['submit']:13.1f}"
              f"{args.jobs / m['submit']:8.1f}{m['qsub_p50'] * 1000:8.0f}"
              f"{m['qsub_p95'] * 1000:8.0f}{m['polls']:13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
