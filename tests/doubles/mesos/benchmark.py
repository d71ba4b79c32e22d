"""CPU cost of the double per task: ``python -m tests.doubles.mesos.benchmark``.

The double runs in its own process (``DoubleProcess``). A scheduler in this process keeps the
agents full of tiny tasks on one sample executor per agent (task data ``bench``: TASK_STARTING,
TASK_RUNNING, TASK_FINISHED), acknowledges every update, and relaunches as offers come back.
Per task the double handles one LAUNCH, three executor UPDATEs, three scheduler ACKNOWLEDGEs,
three scheduler UPDATE events and three executor ACKNOWLEDGED events. The double's CPU time
(user + system, from /proc/<pid>/stat) over the measured tasks, divided by their number, is
the figure printed, with the messages per task the double counted for the framework
(``traffic.per_task``: status updates, acknowledgements, ACCEPT/REVIVE calls...).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from .process import ControlClient, DoubleProcess
from .traffic import per_task
from .wire import RecordIODecoder

SAMPLE = Path(__file__).with_name("sample_executor.py")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class BenchScheduler:
    def __init__(self, master: str, total: int, task_cpus: float, rate: float = 0.0) -> None:
        self.master = master
        self.rate = rate
        self.started = time.monotonic()
        self.total = total
        self.task_cpus = task_cpus
        self.launched = 0
        self.finished = 0
        self.framework_id = ""
        self.stream_id = ""
        self.done = asyncio.Event()
        self.marks: dict[int, float] = {}
        self.session: aiohttp.ClientSession | None = None

    async def call(self, body: dict[str, Any]) -> None:
        assert self.session is not None
        headers = {"Content-Type": "application/json", "Mesos-Stream-Id": self.stream_id}
        try:
            async with self.session.post(
                f"http://{self.master}/api/v1/scheduler", data=json.dumps(body), headers=headers
            ) as response:
                if response.status != 202:
                    raise RuntimeError(f"{body['type']}: {response.status} {await response.text()}")
        except (aiohttp.ClientError, RuntimeError):  # RuntimeError: the session closed
            if not self.done.is_set():
                raise

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=8)
        async with aiohttp.ClientSession(connector=connector) as session:
            self.session = session
            info = {
                "user": "root",
                "name": "bench",
                "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
                "roles": ["*"],
            }
            body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
            async with session.post(
                f"http://{self.master}/api/v1/scheduler",
                data=json.dumps(body),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=None),
            ) as response:
                self.stream_id = response.headers["Mesos-Stream-Id"]
                decoder = RecordIODecoder()
                async for chunk in response.content.iter_any():
                    for record in decoder.feed(chunk):
                        await self.on_event(json.loads(record))
                    if self.done.is_set():
                        return

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "SUBSCRIBED":
            self.framework_id = event["subscribed"]["framework_id"]["value"]
        elif kind == "OFFERS":
            for offer in event["offers"]["offers"]:
                asyncio.get_running_loop().create_task(self.use(offer))
        elif kind == "UPDATE":
            status = event["update"]["status"]
            if "uuid" in status:
                asyncio.get_running_loop().create_task(
                    self.call(
                        {
                            "framework_id": {"value": self.framework_id},
                            "type": "ACKNOWLEDGE",
                            "acknowledge": {
                                "agent_id": status["agent_id"],
                                "task_id": status["task_id"],
                                "uuid": status["uuid"],
                            },
                        }
                    )
                )
            if status["state"] == "TASK_FINISHED":
                self.finished += 1
                self.marks[self.finished] = time.monotonic()
                if self.finished >= self.total:
                    self.done.set()
            elif status["state"] in ("TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"):
                raise RuntimeError(f"task failed: {status}")

    async def use(self, offer: dict[str, Any]) -> None:
        cpus = next(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
        agent = offer["agent_id"]["value"]
        executor = {
            "executor_id": {"value": f"bench-{agent[-3:]}"},
            "type": "CUSTOM",
            "command": {"value": f"{sys.executable} {SAMPLE}", "shell": True},
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            ],
        }
        tasks = []
        budget = cpus - 0.1  # the first launch on an agent also pays for the executor
        limit = self.total
        if self.rate > 0:  # pace launches to about `rate` tasks per second
            limit = min(limit, int(self.rate * (time.monotonic() - self.started)) + 10)
        data = base64.b64encode(b"bench").decode()
        while budget >= self.task_cpus - 1e-9 and self.launched < limit:
            budget -= self.task_cpus
            self.launched += 1
            tasks.append(
                {
                    "name": "b",
                    "task_id": {"value": f"t{self.launched}"},
                    "agent_id": offer["agent_id"],
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": self.task_cpus}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 1}},
                    ],
                    "executor": executor,
                    "data": data,
                }
            )
        body: dict[str, Any] = {
            "framework_id": {"value": self.framework_id},
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                "filters": {"refuse_seconds": 0},
            },
        }
        await self.call(body)


async def bench(
    master: str, pid: int, total: int, warmup: int, task_cpus: float, rate: float = 0.0
) -> dict[str, Any]:
    scheduler = BenchScheduler(master, total, task_cpus, rate)
    runner = asyncio.get_running_loop().create_task(scheduler.run())
    while scheduler.finished < warmup:
        await asyncio.sleep(0.01)
        if runner.done():
            runner.result()
    cpu0, t0, n0 = cpu_seconds(pid), time.monotonic(), scheduler.finished
    await scheduler.done.wait()
    cpu1, t1, n1 = cpu_seconds(pid), time.monotonic(), scheduler.finished
    runner.cancel()
    tasks = n1 - n0
    counters = await asyncio.get_running_loop().run_in_executor(
        None, ControlClient(master).framework_counters, scheduler.framework_id
    )
    return {
        "tasks": tasks,
        "cpu_ms_per_task": (cpu1 - cpu0) * 1000 / tasks,
        "tasks_per_second": tasks / (t1 - t0),
        "double_cpu_utilisation": (cpu1 - cpu0) / (t1 - t0),
        "messages_per_task": per_task(counters),  # over every task, the warm-up included
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--task-cpus", type=float, default=0.05)
    parser.add_argument("--allocation-interval", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=0.0, help="tasks/s to aim at (0 = max)")
    args = parser.parse_args(argv)
    with DoubleProcess(
        "--agent-resources",
        "cpus:8;mem:65536;disk:10000",
        "--allocation-interval",
        str(args.allocation_interval),
        agents=args.agents,
    ) as double:
        result = asyncio.run(
            bench(
                double.master_address,
                double.pid,
                args.tasks + args.warmup,
                args.warmup,
                args.task_cpus,
                args.rate,
            )
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
