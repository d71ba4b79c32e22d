"""``AwsBatchDouble``: the AWS Batch + CloudWatch Logs double on a background event-loop thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from .batch import Batch, Options
from .server import Server

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_logs import CloudWatchLogsClient

T = TypeVar("T")


class AwsBatchDouble:
    """AWS Batch's REST API and CloudWatch Logs' GetLogEvents on one loopback port.

    ``with AwsBatchDouble() as aws:`` then ``boto3.client("batch",
    endpoint_url=aws.endpoint_url, region_name=aws.region, aws_access_key_id="x",
    aws_secret_access_key="x")`` (``aws.batch_client()`` / ``aws.logs_client()`` do that).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1",
                 state_delay: float = 0.05, minimum_timeout: int = 60,
                 memory_poll_interval: float = 0.1, unmanaged_vcpus: int = 256,
                 stop_grace: float = 2.0, inherit_environment: bool = True) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.batch = Batch(Options(region=region, state_delay=state_delay,
                                   minimum_timeout=minimum_timeout,
                                   memory_poll_interval=memory_poll_interval,
                                   unmanaged_vcpus=unmanaged_vcpus, stop_grace=stop_grace,
                                   inherit_environment=inherit_environment))
        self.server = Server(self.batch)
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> AwsBatchDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        ready: Future[None] = Future()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._start())
            except BaseException as error:
                ready.set_exception(error)
                return
            ready.set_result(None)
            self.loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name="aws-batch-double")
        self._thread.start()
        ready.result(timeout=30)

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.server.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.batch.start(self.loop)

    def stop(self) -> None:
        if self._thread is None:
            return

        async def shutdown() -> None:
            await self.batch.stop_all()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self.loop.close()

    def _session_args(self, config: dict[str, Any]) -> dict[str, Any]:
        from botocore.config import Config

        return {"endpoint_url": self.endpoint_url, "region_name": self.region,
                "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                "config": Config(**config) if config else None}

    def batch_client(self, **config: Any) -> BatchClient:
        """A boto3 ``batch`` client pointed at the double (``config``: botocore Config args)."""
        import boto3

        return boto3.client("batch", **self._session_args(config))

    def logs_client(self, **config: Any) -> CloudWatchLogsClient:
        import boto3

        return boto3.client("logs", **self._session_args(config))

    def call(self, fn: Callable[[Batch], T]) -> T:
        async def run() -> T:
            return fn(self.batch)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    # -- hooks and counters ---------------------------------------------------------------------
    def throttle(self, count: int = 1, action: str | None = None) -> None:
        """Answer the next ``count`` requests (of ``action``, e.g. "SubmitJob") with
        TooManyRequestsException (HTTP 429)."""
        self.call(lambda b: self.server.throttle.pending.update({action: count}))

    def lose_host(self, job_id: str) -> str:
        """Kill the job's EC2 instance: statusReason "Host EC2 (instance i-...) terminated.";
        returns the instance id."""
        return self.call(lambda b: b.lose_host(job_id))

    def reclaim_spot(self) -> list[str]:
        return self.call(lambda b: b.reclaim_spot())

    def requests(self) -> dict[str, int]:
        """Requests served by action, e.g. {"SubmitJob": 200, "DescribeJobs": 7}."""
        return self.call(lambda b: dict(self.server.requests))

    def reset_requests(self) -> None:
        self.call(lambda b: self.server.requests.clear())

    def status(self, job_id: str) -> str:
        return self.call(lambda b: b.jobs[job_id].status)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0,
                 interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(interval)
