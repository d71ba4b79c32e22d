"""Slurm: a plain sbatch loop, mesobatch's slurm backend and Toil's own SlurmBatchSystem,
side by side in one run, on the real Slurm the tests start (tests/services/slurm.py).

Run: python bench/slurm_throughput.py [--jobs 200] [--sleepers 20] [--trips 10] [--repeat 1]

Contenders (interleaved per workload, so drift hits all alike):
  plain loop  ``sbatch --parsable --wrap CMD`` per job, then one ``squeue --me`` per
              second until none of them is listed (done = first poll without it)
  mesobatch   issueBatchJob per job, getUpdatedBatchJob until all results are in
              (default options: --pollInterval 1, job arrays on, packs of up to
              32 jobs of less than a core: --slurmPack)
  mb no packs mesobatch with --slurmPack 0 (each job a Slurm job: before packs)
  Toil        Toil 9.x's SlurmBatchSystem, driven through the same two calls
Workloads:
  true        --jobs x ``true`` at 0.1 core (Slurm gives each a whole CPU)
  sleep 1     --sleepers x ``sleep 1`` at 1 core (2 CPUs: ideal --sleepers / 2 seconds)
  round trip  --trips jobs of ``true`` one at a time: each issued when the last is back
Figures: jobs/s over the whole (first issue to last result), p50/p95 of each job's
issue-to-result latency, and the Slurm commands run per job (sbatch, squeue, sacct,
scancel, scontrol, sinfo; counted by shims on PATH that every contender goes through,
start-up included). A job lost or reported twice makes the run fail.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import percentile
from tests.services.slurm import SlurmCluster

SLURM_COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo")
CONTENDERS = ("plain loop", "mesobatch", "mb no packs", "Toil")
MIB = 2**20


def install_shims(directory: Path, log: Path) -> None:
    """A script per Slurm command that notes its name in ``log``, then runs the real one."""
    directory.mkdir()
    for name in SLURM_COMMANDS:
        real = shutil.which(name)
        if real is None:
            raise SystemExit(f"{name} is not installed")
        shim = directory / name
        shim.write_text(f'#!/bin/sh\necho {name} >>"{log}"\nexec {real} "$@"\n')
        shim.chmod(0o755)


class Driver(Protocol):
    def issue(self, command: str, cores: float) -> object: ...
    def next_result(self, timeout: float) -> tuple[object, int] | None: ...
    def close(self) -> None: ...


class Mesobatch:
    def __init__(self, logs: Path, **options: Any) -> None:
        import mesobatch

        self.bs = mesobatch.batch_system("slurm", logDir=str(logs), **options)
        self.desc = mesobatch.JobDescription

    def issue(self, command: str, cores: float) -> object:
        return self.bs.issueBatchJob(command, self.desc(cores=cores, memory=16 * MIB,
                                                        disk=MIB))

    def next_result(self, timeout: float) -> tuple[object, int] | None:
        info = self.bs.getUpdatedBatchJob(timeout)
        return None if info is None else (info.jobID, info.exitStatus)

    def close(self) -> None:
        self.bs.shutdown()


class Toil:
    def __init__(self, logs: Path) -> None:
        from toil.batchSystems.slurm import SlurmBatchSystem
        from toil.common import Config
        from toil.job import JobDescription

        config = Config()
        config.workflowID = str(uuid.uuid4())
        config.cleanWorkDir = "always"
        config.batch_logs_dir = str(logs)
        self.config = config
        self.bs = SlurmBatchSystem(config=config, maxCores=2, maxMemory=2**33, maxDisk=2**33)
        self.job_class = JobDescription

    def issue(self, command: str, cores: float) -> object:
        desc = self.job_class(requirements={"cores": cores, "memory": 16 * MIB, "disk": MIB,
                                            "accelerators": [], "preemptible": False},
                              jobName="bench", unitName="")
        desc.assignConfig(self.config)
        return self.bs.issueBatchJob(command, desc)

    def next_result(self, timeout: float) -> tuple[object, int] | None:
        info = self.bs.getUpdatedBatchJob(timeout)
        return None if info is None else (info.jobID, info.exitStatus)

    def close(self) -> None:
        self.bs.shutdown()


class PlainLoop:
    """sbatch --wrap per job; one squeue per second; a job is done when it is not listed."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.name = f"loop{os.getpid()}"
        self.live: set[str] = set()
        self.done: list[str] = []
        self.next_poll = 0.0

    def issue(self, command: str, cores: float) -> object:
        out = subprocess.run(
            ["sbatch", "--parsable", f"--job-name={self.name}", f"--output={self.logs}/%j.out",
             f"--cpus-per-task={max(1, round(cores + 0.4999))}", "--mem=16M",
             f"--wrap={command}"], capture_output=True, text=True, check=True)
        job = out.stdout.strip().split(";")[0]
        self.live.add(job)
        return job

    def next_result(self, timeout: float) -> tuple[object, int] | None:
        deadline = time.monotonic() + timeout
        while not self.done:
            if not self.live or time.monotonic() >= deadline:
                return None
            time.sleep(max(0.0, self.next_poll - time.monotonic()))
            self.next_poll = time.monotonic() + 1.0
            out = subprocess.run(["squeue", "--me", f"--name={self.name}", "--noheader",
                                  "--format=%i"], capture_output=True, text=True, check=True)
            gone = self.live - set(out.stdout.split())
            self.live -= gone
            self.done.extend(sorted(gone))
        return self.done.pop(0), 0  # squeue says it left; not how it ended

    def close(self) -> None:
        pass


MAKERS: dict[str, Callable[[Path], Driver]] = {
    "plain loop": PlainLoop, "mesobatch": Mesobatch,
    "mb no packs": lambda logs: Mesobatch(logs, slurmPack=0), "Toil": Toil}


def run_workload(driver: Driver, command: str, cores: float, n: int,
                 one_at_a_time: bool) -> dict[str, float]:
    issued: dict[object, float] = {}
    latencies: list[float] = []
    seen: set[object] = set()
    start = time.monotonic()

    def collect() -> None:
        got = driver.next_result(120)
        if got is None:
            raise RuntimeError(f"no result for 120 s; {len(seen)} of {n} back")
        job, status = got
        if job in seen:
            raise RuntimeError(f"job {job} reported twice")
        if job not in issued or status != 0:
            raise RuntimeError(f"unexpected result {got}")
        seen.add(job)
        latencies.append(time.monotonic() - issued[job])

    for _ in range(n):
        issued[driver.issue(command, cores)] = time.monotonic()
        if one_at_a_time:
            collect()
    while len(seen) < n:
        collect()
    elapsed = time.monotonic() - start
    if seen != set(issued):
        raise RuntimeError(f"lost: {set(issued) - seen}")
    return {"jobs_per_s": n / elapsed, "elapsed": elapsed,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)}


def measure(name: str, workload: tuple[str, float, int, bool], work: Path,
            log: Path) -> dict[str, float]:
    command, cores, n, one = workload
    log.write_text("")
    logs = work / f"logs-{time.monotonic_ns()}"
    logs.mkdir()
    driver = MAKERS[name](logs)
    try:
        result = run_workload(driver, command, cores, n, one)
    finally:
        driver.close()
    ran = log.read_text().split()
    result["commands_per_job"] = len(ran) / n
    for command in SLURM_COMMANDS:
        result[f"n_{command}"] = float(ran.count(command))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--sleepers", type=int, default=20)
    parser.add_argument("--trips", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated subset of: " + ", ".join(CONTENDERS))
    args = parser.parse_args()
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    cluster = SlurmCluster.default(accounting=True)
    cluster.start()
    os.environ.update(cluster.env)
    # the cluster's CPUs are this run's alone (tests take the same lock)
    lock = open(cluster.root.with_name(cluster.root.name + ".tests"), "a")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)
    workloads = {
        f"{args.jobs} x true @0.1": ("true", 0.1, args.jobs, False),
        f"{args.sleepers} x sleep 1 @1": ("sleep 1", 1.0, args.sleepers, False),
        f"round trip x{args.trips}": ("true", 0.1, args.trips, True),
    }
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mesobatch-slurm-bench-", dir=os.getcwd()) as d:
        work = Path(d)
        log = work / "commands.log"
        install_shims(work / "shims", log)
        os.environ["PATH"] = f"{work / 'shims'}{os.pathsep}{os.environ['PATH']}"
        os.chdir(work)  # mesobatch's jobs start here; their logs are on a shared disk
        for i in range(args.repeat):
            for label, workload in workloads.items():
                for name in names if i % 2 == 0 else reversed(names):
                    result = measure(name, workload, work, log)
                    rows.setdefault((label, name), []).append(result)
                    print(f"  run {i + 1} {label:22} {name:11} {result['jobs_per_s']:6.2f} "
                          f"jobs/s p50 {result['p50']:.2f} s p95 {result['p95']:.2f} s "
                          f"{result['commands_per_job']:.2f} commands/job", file=sys.stderr,
                          flush=True)
    print(f"Slurm 22.05, one node of 2 CPUs, with accounting; median of {args.repeat} run(s); "
          "no job lost or reported twice")
    print(f"{'workload':22}{'contender':12}{'jobs/s':>8}{'p50 s':>8}{'p95 s':>8}"
          f"{'total s':>9}{'cmds/job':>10}  commands")
    for (label, name), results in rows.items():
        m: dict[str, Any] = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(f"{label:22}{name:12}{m['jobs_per_s']:8.2f}{m['p50']:8.2f}{m['p95']:8.2f}"
              f"{m['elapsed']:9.1f}{m['commands_per_job']:10.2f}  "
              + " ".join(f"{c} {m['n_' + c]:.0f}" for c in SLURM_COMMANDS if m["n_" + c]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
