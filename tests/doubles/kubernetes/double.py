"""``KubernetesDouble``: the API server double on a background event-loop thread, with a
kubeconfig for clients (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from .api import Api
from .cluster import Cluster, ClusterOptions, NodeSpec
from .store import JsonDict

T = TypeVar("T")


class KubernetesDouble:
    """A Kubernetes API server, scheduler, Job controller, garbage collector and kubelets.

    ``with KubernetesDouble(nodes=[NodeSpec(cpu="2", memory="4Gi")]) as k:`` serves on
    ``k.url`` (HTTPS with a throw-away CA unless ``tls=False``), requires ``k.token`` and
    writes ``k.kubeconfig`` (context ``double``, namespace ``default``). Hooks and queries are
    thread-safe and block until done.
    """

    def __init__(
        self,
        nodes: int | Sequence[NodeSpec] = 1,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        token: str | None = None,
        namespace: str = "default",
        work_dir: str | Path | None = None,
        bad_images: Sequence[str] = ("registry.invalid/no-such-image",),
        job_backoff_base: float = 10.0,
        history_limit: int = 10000,
        memory_poll_interval: float = 0.1,
        container_create_delay: float = 0.0,
        image_pull_backoff_delay: float = 0.3,
        bookmark_interval: float = 60.0,
        inherit_environment: bool = True,
    ) -> None:
        self.node_specs = [NodeSpec() for _ in range(nodes)] if isinstance(nodes, int) \
            else list(nodes)
        self.host = host
        self.port = port
        self.tls = tls
        self.token = token if token is not None else secrets.token_hex(16)
        self.namespace = namespace
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir is not None else \
            Path(tempfile.mkdtemp(prefix="k8s-double-"))
        self.options = ClusterOptions(
            work_dir=self.work_dir, bad_images=tuple(bad_images),
            job_backoff_base=job_backoff_base, history_limit=history_limit,
            memory_poll_interval=memory_poll_interval,
            container_create_delay=container_create_delay,
            image_pull_backoff_delay=image_pull_backoff_delay,
            inherit_environment=inherit_environment)
        self.bookmark_interval = bookmark_interval
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.cluster: Cluster | None = None
        self.api: Api | None = None
        self.ca_file: Path | None = None
        self.kubeconfig = self.work_dir / "kubeconfig"

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> KubernetesDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True,
                                        name="k8s-double")
        self._thread.start()
        ready.result(timeout=30)
        self._write_kubeconfig()

    def _serve(self, ready: Future[None]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as error:  # report start failures to the caller
            ready.set_exception(error)
            return
        ready.set_result(None)
        self.loop.run_forever()

    async def _start(self) -> None:
        ssl_context = None
        if self.tls:
            from tests.services.tls import TlsFiles

            files = TlsFiles.create(self.work_dir / "tls")
            self.ca_file = files.ca_cert
            ssl_context = files.server_context()
        self.cluster = Cluster(self.loop, self.options)
        for index, spec in enumerate(self.node_specs):
            self.cluster.add_node(spec, index)
        self.api = Api(self.cluster, self.token, self.bookmark_interval)
        self._runner = web.AppRunner(self.api.app(), access_log=None,
                                     handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.cluster.port = self.port

    def stop(self) -> None:
        if self._thread is None:
            return

        async def shutdown() -> None:
            assert self.api is not None and self.cluster is not None
            self.api.close_watches()
            await self.cluster.kubelet.stop_all()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self.loop.close()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _write_kubeconfig(self) -> None:
        cluster: JsonDict = {"server": self.url}
        if self.ca_file is not None:
            cluster["certificate-authority-data"] = base64.b64encode(
                self.ca_file.read_bytes()).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "double",
            "clusters": [{"name": "double", "cluster": cluster}],
            "users": [{"name": "double", "user": {"token": self.token}}],
            "contexts": [{"name": "double", "context": {
                "cluster": "double", "user": "double", "namespace": self.namespace}}],
            "preferences": {},
        }
        # JSON is YAML: every kubeconfig reader accepts it
        self.kubeconfig.write_text(json.dumps(config, indent=2))
        self.kubeconfig.chmod(0o600)

    # -- thread-safe access ---------------------------------------------------------------------
    def call(self, fn: Callable[[Cluster], T]) -> T:
        """Run ``fn(cluster)`` on the double's loop and return its result."""
        assert self.cluster is not None
        cluster = self.cluster

        async def run() -> T:
            return fn(cluster)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def get(self, plural: str, name: str, namespace: str | None = None) -> JsonDict | None:
        from .resources import RESOURCES

        rt = RESOURCES[plural]
        return self.call(lambda c: c.store.get(rt, namespace or self.namespace, name))

    def items(self, plural: str, namespace: str | None = None) -> list[JsonDict]:
        from .resources import RESOURCES

        rt = RESOURCES[plural]
        return self.call(lambda c: list(c.store.items(rt, namespace)))

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

    # -- hooks ----------------------------------------------------------------------------------
    def evict_pod(self, name: str, namespace: str | None = None,
                  reason: str = "EvictionByEvictionAPI", grace: int | None = None) -> None:
        """DisruptionTarget (reason EvictionByEvictionAPI, PreemptionByScheduler, ...) + delete."""
        self.call(lambda c: c.disrupt_pod(namespace or self.namespace, name, reason, grace))

    def preempt_pod(self, name: str, namespace: str | None = None) -> None:
        self.evict_pod(name, namespace, "PreemptionByScheduler")

    def lose_node(self, node: str, delete_node: bool = False) -> list[str]:
        return self.call(lambda c: c.lose_node(node, delete_node))

    def add_node(self, spec: NodeSpec) -> JsonDict:
        from .resources import RESOURCES

        return self.call(lambda c: c.add_node(spec, len(c.store.items(RESOURCES["nodes"]))))

    def compact(self) -> int:
        """Drop the watch history: resuming from an older resourceVersion gets 410 Gone."""
        return self.call(lambda c: c.store.compact())

    def requests(self) -> dict[tuple[str, str], int]:
        """Requests served, by (verb, resource), e.g. ("create", "jobs"), ("watch", "pods")."""
        return self.call(lambda c: dict(c.requests))

    def request_count(self, verb: str | None = None, resource: str | None = None) -> int:
        return sum(n for (v, r), n in self.requests().items()
                   if verb in (None, v) and resource in (None, r))

    def reset_requests(self) -> None:
        self.call(lambda c: c.requests.clear())

    def process_ids(self) -> dict[str, list[int]]:
        """Pod name -> pids of its running containers."""
        def collect(c: Cluster) -> dict[str, list[int]]:
            return {run.name: [x.process.pid for x in run.containers
                               if x.process is not None and x.process.returncode is None]
                    for run in c.kubelet.runs.values()}
        return self.call(collect)
