"""Master failover: from the kill of the leading Mesos master to the first task launched
through the new leader, with the double's election time beside it.

Run: python bench/failover.py [--repeat 5] [--session-timeout 10]

Each run starts a real ZooKeeper and three double masters in separate processes (the
leader without agents, a standby, and one with 2 agents), runs 200 jobs through
`--mesosMaster zk://...`, SIGKILLs the leader after 50 results, and checks that every
job is reported exactly once. The election time is the double's: from the SIGKILL to the
new leader being elected (the old leader's ZooKeeper session must expire first, as with
real Mesos: 10 s by default). Our part is from that election to our first launch through
the new leader. Medians over the runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one_run(session_timeout: float) -> dict[str, float]:
    import mesobatch
    from mesobatch.scheduler.mesos.backend import MesosBackend
    from tests.doubles.mesos import DoubleProcess
    from tests.doubles.mesos.process import wait_for_leader
    from tests.services.zookeeper import ZooKeeper

    launches: list[float] = []
    original = MesosBackend._launch

    def spy(self: MesosBackend, action: Any) -> Any:
        launches.append(time.time())
        return original(self, action)

    MesosBackend._launch = spy  # type: ignore[method-assign]
    # ZooKeeper caps sessions at 20 ticks: 2 s ticks let a master keep Mesos's 10 s
    with ZooKeeper.standalone(tick_ms=2000 if session_timeout > 4 else 200) as zk:
        url = zk.url("/mesos")
        common = ("--zk", url, "--zk-session-timeout", str(session_timeout))
        first = DoubleProcess(*common, agents=0).start()
        wait_for_leader([first])
        others = [DoubleProcess(*common, agents=0).start(),
                  DoubleProcess(*common, "--agent-resources", "cpus:2.01;mem:4096;disk:10000",
                                agents=2).start()]
        try:
            desc = mesobatch.JobDescription(cores=0.25, memory=2**25, disk=2**25)
            with mesobatch.batch_system("mesos", mesosMaster=url, killGracePeriod=1) as bs:
                ids = [bs.issueBatchJob("sleep 0.2", desc) for _ in range(200)]
                seen: list[int] = []
                killed_at = 0.0
                while len(seen) < len(ids):
                    info = bs.getUpdatedBatchJob(120)
                    assert info is not None, "results stopped coming"
                    seen.append(info.jobID)
                    if len(seen) == 50:
                        killed_at = first.kill()
                assert bs.getUpdatedBatchJob(1) is None
            leader = wait_for_leader(others)
            assert leader.control is not None
            elected = float(leader.control.state()["master"]["elected_time"])
            after = [t for t in launches if t > elected]
            return {
                "election": elected - killed_at,
                "ours": after[0] - elected,
                "total": after[0] - killed_at,
                "lost": float(len(set(ids) - set(seen))),
                "twice": float(len(seen) - len(set(seen))),
            }
        finally:
            first.stop()
            for p in others:
                p.stop()
            MesosBackend._launch = original  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--session-timeout", type=float, default=10.0,
                        help="the double masters' ZooKeeper session timeout (Mesos: 10 s)")
    args = parser.parse_args()
    runs = [one_run(args.session_timeout) for _ in range(args.repeat)]
    print(f"failover, {args.repeat} runs, ZooKeeper session timeout "
          f"{args.session_timeout:g} s\n")
    print(f"{'run':>4}{'election s':>12}{'ours s':>10}{'kill->launch s':>16}{'lost':>6}"
          f"{'twice':>7}")
    for i, r in enumerate(runs, 1):
        print(f"{i:4}{r['election']:12.2f}{r['ours']:10.2f}{r['total']:16.2f}"
              f"{int(r['lost']):6}{int(r['twice']):7}")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"{'med':>4}{med['election']:12.2f}{med['ours']:10.2f}{med['total']:16.2f}"
          f"{int(sum(r['lost'] for r in runs)):6}{int(sum(r['twice'] for r in runs)):7}")
    print("\n(ours = from the new leader's election to our first launch through it; "
          "lost/twice summed over all runs)")


if __name__ == "__main__":
    main()
