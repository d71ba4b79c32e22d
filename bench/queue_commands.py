"""Commands a 200-job run costs the LSF, PBS Pro, Torque and HTCondor backends.

Run: python bench/queue_commands.py [--jobs 200] [--repeat 3] [--command 'sleep 10']

Each backend runs on its fake (tests/doubles; these systems cannot be installed here)
in a fresh process: N jobs of `true` (or --command) at 0.1 core issued at once, with the default
poll settings (--pollInterval 1, --maxPollInterval 30), until every result is in.
The table shows medians over the rounds (interleaved): the status queries (one per
poll for all of the run's jobs), accounting queries (condor_history for jobs gone from
the queue), submissions, every command, each per job; and the run's wall time. The
fakes are Python programs, so the wall time measures them more than the backend.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import interleaved_medians, run_child

BACKENDS = ["lsf", "pbs", "torque", "htcondor"]
STATUS = {"lsf": "bjobs", "pbs": "qstat", "torque": "qstat", "htcondor": "condor_q"}
ACCOUNTING = {"htcondor": "condor_history"}
SUBMIT = {"lsf": "bsub", "pbs": "qsub", "torque": "qsub", "htcondor": "condor_submit"}


def scenario(backend: str, n: int, command: str) -> dict[str, float]:
    import mesobatch
    from mesobatch import JobDescription
    from mesobatch.integration.hpc.base import BatchQueueBackend
    from tests.doubles.hpcfake.backends import FAKES

    fake = FAKES[backend]
    with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp:
        state = Path(tmp) / "cluster"
        cluster = fake.cluster(state)
        os.environ.update(fake.environment(state))
        bs = mesobatch.batch_system(backend, logDir=str(Path(tmp) / "logs"))
        try:
            started = time.perf_counter()
            bs.issue_many([(command, JobDescription(cores=0.1, memory=2**24, disk=2**20),
                            None)] * n)
            results = 0
            while results < n:
                info = bs.getUpdatedBatchJob(60)
                if info is None:
                    raise SystemExit(f"{backend}: no result for 60 s ({results} of {n})")
                if info.exitStatus != 0:
                    raise SystemExit(f"{backend}: job {info.jobID} ended {info}")
                results += 1
            elapsed = time.perf_counter() - started
            backend_ = bs._backend
            assert isinstance(backend_, BatchQueueBackend)
        finally:
            bs.shutdown()
            cluster.stop()
        counts = backend_.commands.counts
        status = counts[STATUS[backend]]
        accounting = counts[ACCOUNTING[backend]] if backend in ACCOUNTING else 0
        return {"status": status, "status_per_job": status / n, "accounting": accounting,
                "submits": counts[SUBMIT[backend]], "commands": sum(counts.values()),
                "commands_per_job": sum(counts.values()) / n, "polls": backend_.polls,
                "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--command", default="true")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(scenario(args.child, args.jobs, args.command)))
        return
    root = Path(__file__).resolve().parents[1]

    def one(name: str, i: int) -> dict[str, float]:
        result = run_child(__file__, name, "--jobs", str(args.jobs), "--command",
                           args.command, cwd=root)
        print(f"round {i + 1} {name}: {json.dumps(result)}", file=sys.stderr, flush=True)
        return result

    medians = interleaved_medians(BACKENDS, args.repeat, one)
    print(f"{args.jobs} x `{args.command}` at 0.1 core per run; medians of {args.repeat} runs")
    print(f"{'backend':<10}{'status cmds':>12}{'per job':>9}{'polls':>7}{'accounting':>12}"
          f"{'submits':>9}{'all cmds':>10}{'per job':>9}{'wall s':>8}")
    for name, m in medians.items():
        print(f"{name:<10}{m['status']:>12g}{m['status_per_job']:>9.3f}{m['polls']:>7g}"
              f"{m['accounting']:>12g}{m['submits']:>9g}{m['commands']:>10g}"
              f"{m['commands_per_job']:>9.3f}{m['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
