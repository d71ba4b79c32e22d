"""The fault suite (issue 10): for each fault kind, a run of short jobs on the Mesos
double (with a real ZooKeeper for master failover) with the fault injected at random
moments, several times per run; one table of what happened to the jobs.

Run: python bench/faults.py [--jobs 1000] [--seed 0] [--kind KIND ...]

Columns: faults injected; jobs reported once, never (lost), twice; reports of jobs that
never started (LOST ones apart: "LOST unstarted"); tasks started twice; LOST reports;
LOST jobs with a process still running 2 s after the report; jobs of a killed scheduler
still running 10 s after the kill; seconds from the last fault to the last report; the
run's length. The harness is tests/fault_suite.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fault_suite import KINDS, run_kind, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", action="append", choices=KINDS,
                        help="only this kind (again for more); default: all")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    args = parser.parse_args()
    results = []
    for i, kind in enumerate(args.kind or KINDS):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_kind(kind, args.jobs, Path(tmp), seed=args.seed + i,
                                    timeout=args.timeout))
        print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(results))
    for r in results:
        for note in r.notes:
            print(f"{r.kind}: {note}")


if __name__ == "__main__":
    main()
