"""Local backend throughput, latency and memory, beside the machine's physical limit.

Run: python bench/local_throughput.py [--repeat 5]

Each scenario runs in a fresh process (so peak RSS is that scenario's), repeated and
interleaved with the raw baseline; the table shows medians. Job logs go where the
API puts them by default (a scratch directory in /dev/shm), or to --log-dir; the
table's last column is what creating one file there cost in that run.
Scenarios:
  raw  subprocess.Popen(["true"]) with at most 2 in flight, N=1000 (the physical limit)
  f0   the floor of a scheduler in Python: one thread spawns (2 in flight) and reaps,
       the caller takes each result from a queue; f2, f4: the same spending 200 or 400
       us of CPU per job between one job's end and the next one's start (see
       scenario_floor): how much per-job work b's target (90% of raw) leaves
  a    N=1000 jobs of `true` at 0.1 core on maxCores=2
  b    N=200 jobs of `true` at 1 core on maxCores=2
  c    50 jobs one at a time (issue, wait for the result, repeat): round trip
  d    20 jobs of `sleep 1` at 1 core on maxCores=2 (ideal: 10 s)
  m0   a, with no job's memory sampled (the runner's memory watch off): a - m0 is what
       measuring each job's peak memory costs; m1 the same for d
  p0   N=10000 jobs of `true` at 0.1 core, no status page (the API's default)
  p1   the same with the status page served (--statusPort 0), nobody looking
  p2   the same with a client (another process) fetching the page every second, as a
       browser on it does; the target: p2 costs at most 2% of p0's throughput
The columns "CPU ms/job" give the scheduling process's CPU (own) and the jobs' (their
processes, as wait4 counted them) per job: on 2 cores, once both are busy, the rate is
at most 2000 / (own + jobs); Popen's loop in raw costs little of its own, so where the
cores are free enough for raw to be bound by them, a and b trail it by their extra CPU.
For p0-p2 the table also gives the scheduler process's CPU seconds per 1000 jobs, how
many pages the client fetched, and the share of the process's CPU spent in the status
page's own code (timed per thread, so other load on the machine does not move it).
Run only them with: --only p0 p1 p2. --baseline DIR runs a, b, c and those also with
the code in DIR (e.g. ``git -C /work/main archive COMMIT | tar -x -C DIR``), interleaved
with this tree's, so before and after come from one run (rows a- b- c- p0- p1- p2-:
before; "vs raw" is the median of each round's ratio to its own raw run); the
column "ms/page" is the CPU one page fetch took in the server (its look at the core,
rendering, sending; not the recorder's intake of events that its snapshot did, which
the recorder's thread would have done anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from harness import interleaved_medians, percentile, run_child

if "--code" in sys.argv:  # a child measuring another checkout (--baseline)
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])


def _cpu() -> tuple[float, float]:
    """CPU seconds so far of this process and of its children that were waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _cpu_per_job(out: dict[str, float], before: tuple[float, float], n: int) -> None:
    """The scheduling process's and the jobs' CPU milliseconds per job since ``before``
    (on 2 cores, their sum bounds the rate once the cores are busy)."""
    own, kids = _cpu()
    out["own_cpu_ms"] = (own - before[0]) / n * 1000
    out["jobs_cpu_ms"] = (kids - before[1]) / n * 1000


def scenario_raw(n: int) -> dict[str, float]:
    inflight: list[tuple[subprocess.Popen[bytes], float]] = []
    lat: list[float] = []
    cpu = _cpu()
    start = time.perf_counter()
    for _ in range(n):
        if len(inflight) >= 2:
            p, t = inflight.pop(0)
            p.wait()
            lat.append(time.perf_counter() - t)
        inflight.append((subprocess.Popen(["true"]), time.perf_counter()))
    for p, t in inflight:
        p.wait()
        lat.append(time.perf_counter() - t)
    out = _stats(n, time.perf_counter() - start, lat)
    _cpu_per_job(out, cpu, n)
    return out


def scenario_floor(n: int, work_us: float) -> dict[str, float]:
    """How near raw a minimal scheduler in Python gets at 1-core jobs: one thread
    spawns (os.posix_spawn, 2 in flight) and reaps (pidfd + epoll, wait4), spends
    ``work_us`` of CPU on each job between its end and the next one's start (the
    scheduling: the core's decision, bookkeeping), and hands each result to the
    calling thread through a queue, as getUpdatedBatchJob does. Where this falls below
    90% of raw is the per-job budget that scenario b's target leaves a scheduler."""
    import queue
    import select
    import threading

    env = dict(os.environ)
    results: queue.SimpleQueue[float] = queue.SimpleQueue()

    def spend() -> None:  # busy, holding the interpreter's lock, as Python work does
        end = time.thread_time() + work_us / 1e6
        while time.thread_time() < end:
            pass

    def loop() -> None:
        poller = select.epoll()
        pids: dict[int, tuple[int, float]] = {}  # pidfd -> (pid, started)

        def start() -> None:
            pid = os.posix_spawn("/usr/bin/true", ["true"], env, setsid=True)
            fd = os.pidfd_open(pid)
            poller.register(fd, select.EPOLLIN)
            pids[fd] = (pid, time.perf_counter())

        started = 0
        while started < min(2, n):
            start()
            started += 1
        while pids:
            for fd, _ in poller.poll():
                pid, t = pids.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                os.wait4(pid, 0)
                spend()
                if started < n:
                    start()
                    started += 1
                results.put(time.perf_counter() - t)
        poller.close()

    cpu = _cpu()
    begin = time.perf_counter()
    worker = threading.Thread(target=loop)
    worker.start()
    lat = [results.get() for _ in range(n)]
    worker.join()
    out = _stats(n, time.perf_counter() - begin, lat)
    _cpu_per_job(out, cpu, n)
    return out


def _stats(n: int, elapsed: float, lat: list[float]) -> dict[str, float]:
    return {
        "jobs_per_s": n / elapsed, "elapsed": elapsed,
        "p50_ms": percentile(lat, 50) * 1000, "p95_ms": percentile(lat, 95) * 1000,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _local(status: bool = False):  # type: ignore[no-untyped-def]
    import mesobatch

    return mesobatch.batch_system("local", maxCores=2, maxMemory="4G", maxDisk="4G",
                                  maxGpus=0, logDir=os.environ.get("BENCH_LOG_DIR") or None,
                                  statusPort=0 if status else None)


#: a browser on the status page: fetch it (all of it) once a second until told to stop
_CLIENT = """
import signal, sys, time, urllib.request
fetched = 0
def stop(*_):
    print(fetched, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
next_at = time.monotonic()
while True:
    urllib.request.urlopen(sys.argv[1], timeout=30).read()
    fetched += 1
    next_at += 1.0
    time.sleep(max(0.0, next_at - time.monotonic()))
"""


class _StatusCpu:
    """CPU seconds spent in the status page's own code, on whichever thread (the
    recorder's bookkeeping, snapshots with their look at the core, rendering, serving):
    its share of the process's CPU does not depend on what else loads the machine."""

    def __init__(self) -> None:
        import threading

        from mesobatch.scheduler.status.recorder import Recorder
        from mesobatch.scheduler.status.server import _Handler

        self.seconds = 0.0
        #: of which in page fetches (do_GET), less the events a fetch's snapshot took in
        #: (the recorder's thread would have taken them in anyway)
        self.serving = 0.0
        self._inside = threading.local()
        for cls, name in ((Recorder, "drain"), (Recorder, "snapshot"), (_Handler, "do_GET")):
            setattr(cls, name, self._timed(getattr(cls, name), name))

    def _timed(self, method: Any, name: str) -> Any:
        def timed(*args: Any) -> Any:
            outer = not getattr(self._inside, "on", False)
            if not outer and not (name == "drain" and getattr(self._inside, "serving", False)):
                return method(*args)  # counted by the outer call
            self._inside.on = True
            self._inside.serving = self._inside.serving if not outer else name == "do_GET"
            start = time.thread_time()
            try:
                return method(*args)
            finally:
                spent = time.thread_time() - start
                if outer:
                    self.seconds += spent
                    self._inside.on = False
                if name == "do_GET":
                    self.serving += spent
                    self._inside.serving = False
                elif name == "drain" and not outer:  # inside a fetch
                    self.serving -= spent
        return timed


def scenario_batch(n: int, cores: float, command: str, status: bool = False,
                   client: bool = False, sample: bool = True) -> dict[str, float]:
    import mesobatch

    if not sample:  # what measuring each job's memory costs: no task is ever sampled
        from mesobatch.executor.memory_watch import MemoryWatch

        MemoryWatch.watch = lambda *args, **kwargs: None  # type: ignore[method-assign]

    status_cpu = _StatusCpu() if status else None
    desc = mesobatch.JobDescription(cores=cores, memory=2**20, disk=2**20)
    with _local(status) as bs:
        viewer = None
        if client:
            viewer = subprocess.Popen([sys.executable, "-c", _CLIENT, bs.status_url],
                                      stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)  # its interpreter has started and fetched the page once
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        both = _cpu()
        status_start = status_cpu.seconds if status_cpu else 0.0
        # the client's first fetch (before this) loaded the page's modules: not counted
        serving_start = status_cpu.serving if status_cpu else 0.0
        issued: dict[int, float] = {}
        start = time.perf_counter()
        for _ in range(n):
            issued[bs.issueBatchJob(command, desc)] = time.perf_counter()
        lat: list[float] = []
        while len(lat) < n:
            info = bs.getUpdatedBatchJob(60)
            assert info is not None and info.exitStatus == 0, info
            lat.append(time.perf_counter() - issued[info.jobID])
        out = _stats(n, time.perf_counter() - start, lat)
        _cpu_per_job(out, both, n)
        end = resource.getrusage(resource.RUSAGE_SELF)
        process_cpu = (end.ru_utime - cpu.ru_utime) + (end.ru_stime - cpu.ru_stime)
        out["cpu_s_per_1000"] = process_cpu / n * 1000
        if status_cpu is not None:
            out["status_cpu_share"] = (status_cpu.seconds - status_start) / process_cpu
        if viewer is not None:
            viewer.terminate()
            out["pages"] = float(viewer.communicate(timeout=30)[0].strip() or 0)
            if status_cpu is not None and out["pages"] > 1:
                out["ms_per_page"] = ((status_cpu.serving - serving_start)
                                      / (out["pages"] - 1) * 1000)
        return out


def scenario_round_trip(n: int) -> dict[str, float]:
    import mesobatch

    desc = mesobatch.JobDescription(cores=0.1, memory=2**20, disk=2**20)
    with _local() as bs:
        for _ in range(5):  # warm up
            bs.issueBatchJob("true", desc)
            bs.getUpdatedBatchJob(10)
        lat: list[float] = []
        start = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            bs.issueBatchJob("true", desc)
            info = bs.getUpdatedBatchJob(10)
            assert info is not None and info.exitStatus == 0
            lat.append(time.perf_counter() - t)
        return _stats(n, time.perf_counter() - start, lat)


def file_create_us(log_dir: str | None, n: int = 200) -> float:
    """What creating one new file costs where the job logs go (median, microseconds)."""
    base = log_dir or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    if base:
        os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(dir=base)
    times = []
    for i in range(n):
        t = time.perf_counter()
        os.close(os.open(os.path.join(d, str(i)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        times.append(time.perf_counter() - t)
    shutil.rmtree(d)
    return statistics.median(times) * 1e6


SCENARIOS = {
    "raw": ("Popen(['true']), 2 in flight, N=1000", lambda: scenario_raw(1000)),
    "f0": ("minimal scheduler, 0 us/job, N=1000", lambda: scenario_floor(1000, 0)),
    "f2": ("... 200 us of work per job", lambda: scenario_floor(1000, 200)),
    "f4": ("... 400 us of work per job", lambda: scenario_floor(1000, 400)),
    "a": ("1000 x true @0.1 core", lambda: scenario_batch(1000, 0.1, "true")),
    "b": ("200 x true @1 core", lambda: scenario_batch(200, 1, "true")),
    "m0": ("... a, memory not sampled", lambda: scenario_batch(1000, 0.1, "true",
                                                              sample=False)),
    "m1": ("20 x sleep 1 @1 core, not sampled", lambda: scenario_batch(20, 1, "sleep 1",
                                                                      sample=False)),
    "c": ("50 x true one at a time", lambda: scenario_round_trip(50)),
    "d": ("20 x sleep 1 @1 core, 2 cores", lambda: scenario_batch(20, 1, "sleep 1")),
    "p0": ("10000 x true @0.1 core, no status page",
           lambda: scenario_batch(10000, 0.1, "true")),
    "p1": ("... status page served, not looked at",
           lambda: scenario_batch(10000, 0.1, "true", status=True)),
    "p2": ("... page fetched every second",
           lambda: scenario_batch(10000, 0.1, "true", status=True, client=True)),
}


#: the scenarios --baseline also runs with the code from before
_WITH_BASELINE = ("a", "b", "c", "p0", "p1", "p2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run a, b, c and p0-p2 with the code in DIR (rows a- b- "
                             "c- p0- p1- p2-)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.log_dir:
            os.environ["BENCH_LOG_DIR"] = args.log_dir
        print(json.dumps(SCENARIOS[args.child][1]()))
        return
    creates: list[float] = []
    baseline = str(os.path.abspath(args.baseline)) if args.baseline else None
    rows = list(args.only)
    if baseline:  # each status scenario also with the code from before, side by side
        rows = [r for n in args.only for r in ((n + "-", n) if n in _WITH_BASELINE
                                               else (n,))]
    rounds: dict[str, list[dict[str, Any]]] = {row: [] for row in rows}

    def run(row: str, i: int) -> dict[str, Any]:
        name = row.rstrip("-")
        log_dir = ["--log-dir", os.path.join(args.log_dir, f"{row}-{i}")] if args.log_dir else []
        code = ["--code", baseline] if row.endswith("-") and baseline else []
        result = run_child(__file__, name, *log_dir, *code)
        rounds[row].append(result)
        if row == rows[-1]:  # once a round, after its scenarios
            creates.append(file_create_us(args.log_dir))
        return result

    med = interleaved_medians(rows, args.repeat, run)
    raw = med.get("raw", {}).get("jobs_per_s")
    where = args.log_dir or "/dev/shm (the default scratch directory)"
    print(f"local backend, medians of {args.repeat} runs (each in a fresh process); job logs "
          f"in {where}: creating a file there took {statistics.median(creates):.0f} us\n")
    print(f"{'':4}{'scenario':38}{'jobs/s':>9}{'vs raw':>8}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'elapsed s':>11}{'peak RSS MB':>13}{'CPU ms/job: own':>17}{'jobs':>6}")
    for name, m in med.items():
        ratio = ""
        if raw and name.rstrip("-") in ("a", "b", "f0", "f2", "f4"):  # paired: own raw
            pairs = zip(rounds[name], rounds["raw"], strict=True)
            ratio = f"{statistics.median(r['jobs_per_s'] / w['jobs_per_s'] for r, w in pairs):.0%}"
        cpu = (f"{m['own_cpu_ms']:17.3f}{m['jobs_cpu_ms']:6.3f}" if "own_cpu_ms" in m
               else "")
        print(f"{name:4}{SCENARIOS[name.rstrip('-')][0]:38}{m['jobs_per_s']:9.0f}{ratio:>8}"
              f"{m['p50_ms']:9.2f}{m['p95_ms']:9.2f}{m['elapsed']:11.3f}{m['rss_mb']:13.1f}"
              f"{cpu}")
    if "p0" in med:
        print(f"\n{'':4}{'status page (vs p0: median of the rounds':38}{'jobs/s':>9}"
              f"{'vs p0':>8}{'CPU s/1000 jobs':>17}{'vs p0':>8}{'pages':>7}"
              f"{'status CPU':>12}{'ms/page':>9}")
        print(f"{'':4}{'  paired ratios; -: before)':38}")
        for name in ("p0-", "p1-", "p2-", "p0", "p1", "p2"):
            if name not in med:
                continue
            m = med[name]
            pairs = list(zip(rounds["p0"], rounds[name], strict=True))
            speed = statistics.median(b["jobs_per_s"] / a["jobs_per_s"] - 1 for a, b in pairs)
            cpu = statistics.median(b["cpu_s_per_1000"] / a["cpu_s_per_1000"] - 1
                                    for a, b in pairs)
            pages = f"{m['pages']:.0f}" if "pages" in m else ""
            share = f"{m['status_cpu_share']:.2%}" if "status_cpu_share" in m else ""
            per_page = f"{m['ms_per_page']:.2f}" if "ms_per_page" in m else ""
            print(f"{name:4}{SCENARIOS[name.rstrip('-')][0]:38}{m['jobs_per_s']:9.0f}"
                  f"{speed:+8.1%}{m['cpu_s_per_1000']:17.3f}{cpu:+8.1%}{pages:>7}{share:>12}"
                  f"{per_page:>9}")
        print("\n(status CPU: the share of the scheduler process's CPU spent in the status "
              "page's code: recording, snapshots, rendering, serving)")
    if "d" in med:
        print(f"\n(d) {med['d']['elapsed']:.3f} s vs ideal 10 s: "
              f"{(med['d']['elapsed'] / 10 - 1) * 100:+.2f}%")


if __name__ == "__main__":
    main()
