"""The control API on the master port, for a double running in another process.

``GET /__double__/state`` returns the introspection snapshot (``framework_counters`` and
``warnings`` give parts of it); ``POST /__double__/<hook>`` with a JSON object of arguments runs
a fault hook. Hooks that take the master down (``restart_master``, ``kill_process``) run in the
background after the response is sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .httpserver import Request, Response, Router
from .httputil import bad_request, ok_json
from .wire import dumps, loads

if TYPE_CHECKING:
    from .cluster import Cluster

PREFIX = "/__double__"


def add_control_routes(router: Router, cluster: Cluster) -> None:
    async def control(request: Request) -> Response:
        name = request.path[len(PREFIX) + 1 :]
        if name == "state":
            return ok_json(dumps(cluster.state()))
        if name == "framework_counters":
            return ok_json(dumps(cluster.framework_counters()))
        if name == "warnings":
            return ok_json(dumps(cluster.warnings()))
        body = request.body
        args: dict[str, Any] = loads(body) if body else {}
        try:
            result = await _run(cluster, name, args)
        except (KeyError, TypeError, ValueError) as exc:
            return bad_request(f"{name}: {exc}")
        return ok_json(dumps({"ok": True, "result": result}))

    router.add_prefix(PREFIX + "/", control)


async def _run(cluster: Cluster, name: str, args: dict[str, Any]) -> Any:
    wait = bool(args.pop("wait", False))
    if name == "kill_executor":
        sig = int(args.get("signal", signal.SIGKILL))
        return cluster.kill_executor(args["executor_id"], args.get("framework_id"), sig)
    if name == "kill_random_executor":
        return cluster.kill_random_executor(
            args.get("agent"),
            args.get("framework_id"),
            int(args.get("signal", signal.SIGKILL)),
            args.get("seed"),
        )
    if name == "kill_process":
        # kill -9 of this whole double process (its master, and its agents if it has any).
        if not cluster.own_process:
            raise ValueError("only a double running as python -m tests.doubles.mesos can")
        sig = int(args.get("signal", signal.SIGKILL))
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), sig)
        return os.getpid()
    if name == "drop_subscription":
        return cluster.drop_subscription(args.get("framework_id"))
    if name == "mark_agent_unreachable":
        cluster.mark_agent_unreachable(args.get("agent", 0))
        return None
    job: Coroutine[Any, Any, Any]
    if name == "lose_agent":
        job = cluster.lose_agent(args.get("agent", 0), args.get("restart_after"))
    elif name == "restart_agent":
        job = cluster.restart_agent(args.get("agent", 0), float(args.get("downtime", 0.0)))
    elif name == "restart_master":
        # The response must leave before the master's port closes.
        cluster.background(_later(cluster.restart_master(float(args.get("downtime", 0.0)))))
        return None
    else:
        raise KeyError(f"unknown hook {name!r}")
    if wait:
        return await job
    cluster.background(job)
    return None


async def _later(job: Any) -> None:
    try:
        await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        job.close()  # never started: no "coroutine was never awaited" warning
        raise
    await job
