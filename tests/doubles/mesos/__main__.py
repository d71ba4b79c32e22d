"""``python -m tests.doubles.mesos``: run a master and N agents until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

from .auth import load_credentials
from .cluster import AgentSpec, Cluster, ClusterOptions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.doubles.mesos", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5050, help="master port (0 = any free port)")
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--agent-ports", default="", help="comma-separated agent ports")
    parser.add_argument("--allocation-interval", type=float, default=1.0)
    parser.add_argument("--heartbeat-interval", type=float, default=15.0)
    parser.add_argument("--agent-ping-timeout", type=float, default=15.0, help="seconds")
    parser.add_argument("--max-agent-ping-timeouts", type=int, default=5)
    parser.add_argument(
        "--agent-removal-timeout",
        type=float,
        default=None,
        help="agent_ping_timeout x max_agent_ping_timeouts given directly (seconds)",
    )
    parser.add_argument("--agent-reregister-timeout", type=float, default=600.0)
    parser.add_argument("--registry", choices=("replicated_log", "in_memory"),
                        default="replicated_log")
    parser.add_argument(
        "--fast-agent-reregistration",
        action="store_true",
        help="agents re-register at once when their master goes, not after the ping timeout",
    )
    parser.add_argument(
        "--refuse-small-executors",
        action="store_true",
        help="TASK_ERROR for executors under 0.01 cpus / 32 MB (Mesos 1.11 only warns)",
    )
    parser.add_argument("--agent-resources", default="cpus:2;mem:4096;disk:10000")
    parser.add_argument("--agent-attributes", default="")
    parser.add_argument(
        "--agent-override",
        action="append",
        default=[],
        metavar="INDEX:KEY=VALUE",
        help="per-agent resources/attributes, e.g. '1:resources=cpus:8;mem:1024'",
    )
    parser.add_argument("--executor-registration-timeout", type=float, default=60.0)
    parser.add_argument("--executor-shutdown-grace-period", type=float, default=5.0)
    parser.add_argument("--executor-reregistration-timeout", type=float, default=2.0)
    parser.add_argument("--status-update-retry-base", type=float, default=10.0)
    parser.add_argument(
        "--executor-environment-variables", default="{}", help="JSON object, like the agent flag"
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--fetcher-cache-dir", type=Path, default=None)
    parser.add_argument(
        "--zk",
        default=None,
        metavar="zk://HOST:PORT[,HOST:PORT]/PATH",
        help="contend for leadership in ZooKeeper; several processes form one cluster",
    )
    parser.add_argument(
        "--zk-session-timeout", type=float, default=10.0, help="seconds (Mesos: 10)"
    )
    parser.add_argument("--zk-connect-timeout", type=float, default=15.0, help="seconds")
    parser.add_argument(
        "--agent-registration-backoff",
        type=float,
        default=None,
        help="agents' registration_backoff_factor (default 1 s with --zk, else 0)",
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        default=None,
        help="Mesos credentials file; enables --authenticate_http_frameworks behaviour",
    )
    parser.add_argument("--tls-cert", type=Path, default=None, help="serve the API over TLS")
    parser.add_argument("--tls-key", type=Path, default=None)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    if args.tls_key is not None and args.tls_cert is None:
        parser.error("--tls-key needs --tls-cert")
    return args


def build(args: argparse.Namespace) -> Cluster:
    ports = [int(p) for p in args.agent_ports.split(",") if p.strip()]
    overrides: dict[int, dict[str, str]] = {}
    for item in args.agent_override:
        index, _, assignment = item.partition(":")
        key, _, value = assignment.partition("=")
        overrides.setdefault(int(index), {})[key] = value
    specs = []
    for index in range(args.agents):
        extra = overrides.get(index, {})
        specs.append(
            AgentSpec(
                resources=extra.get("resources", args.agent_resources),
                attributes=extra.get("attributes", args.agent_attributes),
                hostname=extra.get("hostname"),
                port=ports[index] if index < len(ports) else 0,
            )
        )
    options = ClusterOptions(
        host=args.host,
        port=args.port,
        allocation_interval=args.allocation_interval,
        heartbeat_interval=args.heartbeat_interval,
        agent_ping_timeout=args.agent_ping_timeout,
        max_agent_ping_timeouts=args.max_agent_ping_timeouts,
        agent_removal_timeout=args.agent_removal_timeout,
        agent_reregister_timeout=args.agent_reregister_timeout,
        registry=args.registry,
        fast_agent_reregistration=args.fast_agent_reregistration,
        refuse_small_executors=args.refuse_small_executors,
        executor_registration_timeout=args.executor_registration_timeout,
        executor_shutdown_grace_period=args.executor_shutdown_grace_period,
        executor_reregistration_timeout=args.executor_reregistration_timeout,
        status_update_retry_base=args.status_update_retry_base,
        executor_environment_variables=json.loads(args.executor_environment_variables),
        work_dir=args.work_dir,
        fetcher_cache_dir=args.fetcher_cache_dir,
        zk=args.zk,
        zk_session_timeout=args.zk_session_timeout,
        zk_connect_timeout=args.zk_connect_timeout,
        agent_registration_backoff=args.agent_registration_backoff,
        credentials=load_credentials(args.credentials) if args.credentials else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    return Cluster(specs, options)


async def serve(cluster: Cluster) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cluster.own_process = True
    try:
        await cluster.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        await cluster.stop()
        # one line, not a traceback; the listening options only where listening failed
        # (a port taken), not after e.g. an unreachable ZooKeeper, whose message says it all
        if isinstance(exc, OSError):
            print(f"error: cannot start the Mesos double: {exc.strerror or exc} "
                  f"(--host {cluster.options.host}, --port, --agent-ports; --port 0 takes a "
                  "free port)", file=sys.stderr, flush=True)
        else:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    print(f"master {cluster.master.address}", flush=True)
    for agent in cluster.agents:
        print(f"agent {agent.agent_id} {agent.address}", flush=True)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await cluster.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(build(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
