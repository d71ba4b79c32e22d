"""From a kill -9 to no job process left: the local backend's scheduling process, and a
Mesos executor under the double (issue 10 defect 2; target: at most 1 s).

Run: python bench/orphans.py [--repeat 10] [--jobs 4]

Each round starts ``--jobs`` jobs that ignore SIGTERM and fork two children that do too
(tests/stubborn_jobs.py), waits until all their processes run, then SIGKILLs the
scheduling process (local) or the executor (mesos, through the double's hook), and polls
/proc every millisecond until none of the job processes runs. The two scenarios take
turns; printed: median and max over the rounds, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stubborn_jobs import pids_of, started, still_running, stubborn  # noqa: E402

LOCAL = textwrap.dedent("""
    import sys, time
    import mesobatch
    bs = mesobatch.batch_system("local", maxCores=64, maxMemory="4G", maxDisk="4G")
    for command in sys.argv[1:]:
        bs.issueBatchJob(command, mesobatch.JobDescription(cores=0.1, memory=2**24, disk=2**24))
    time.sleep(600)
""")


def _wait_started(directory: Path, jobs: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while not all(started(directory, f"j{i}") for i in range(jobs)):
        if time.monotonic() > deadline:
            raise RuntimeError("the jobs did not start")
        time.sleep(0.01)
    return pids_of(directory)


def _until_gone(pids: list[int], killed_at: float, limit: float = 30) -> float:
    """Seconds from ``killed_at`` until none of ``pids`` runs."""
    while still_running(pids):
        if time.monotonic() - killed_at > limit:
            raise RuntimeError(f"job processes still run {limit} s after the kill")
        time.sleep(0.001)
    return time.monotonic() - killed_at


def local_round(jobs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        commands = [stubborn(directory, f"j{i}") for i in range(jobs)]
        proc = subprocess.Popen([sys.executable, "-c", LOCAL, *commands], cwd=ROOT)
        try:
            pids = _wait_started(directory, jobs)
        finally:
            killed_at = time.monotonic()
            proc.kill()
            proc.wait()
        return _until_gone(pids, killed_at)


def mesos_round(jobs: int) -> float:
    import mesobatch
    from tests.doubles.mesos import AgentSpec, MesosDouble

    with tempfile.TemporaryDirectory() as tmp, \
            MesosDouble(agents=[AgentSpec(resources="cpus:64;mem:8192;disk:10000")]) as double:
        directory = Path(tmp)
        bs = mesobatch.batch_system("mesos", mesosMaster=double.master_address,
                                    killGracePeriod=1)
        try:
            for i in range(jobs):
                bs.issueBatchJob(stubborn(directory, f"j{i}"), mesobatch.JobDescription(
                    cores=0.1, memory=2**24, disk=2**24))
            pids = _wait_started(directory, jobs)
            killed_at = time.monotonic()
            if double.kill_random_executor() is None:
                raise RuntimeError("no executor to kill")
            return _until_gone(pids, killed_at)
        finally:
            bs.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    scenarios: dict[str, Callable[[int], float]] = {
        "local backend, scheduler kill -9": local_round,
        "mesos double, executor kill -9": mesos_round,
    }
    times: dict[str, list[float]] = {name: [] for name in scenarios}
    for _ in range(args.repeat):
        for name, run in scenarios.items():
            times[name].append(run(args.jobs))
    print(f"kill -9 -> no job process left ({args.jobs} jobs x 3 processes, "
          f"{args.repeat} rounds)")
    print(f"{'scenario':36} {'median ms':>10} {'max ms':>8}")
    for name, values in times.items():
        print(f"{name:36} {statistics.median(values) * 1000:10.1f} {max(values) * 1000:8.1f}")


if __name__ == "__main__":
    main()
