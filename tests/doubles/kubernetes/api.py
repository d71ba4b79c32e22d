"""The HTTP face of the double: the REST paths, watch streams, pod logs, eviction and
discovery of a Kubernetes API server, on aiohttp.

Paths and verbs follow "Kubernetes API Concepts"
(https://kubernetes.io/docs/reference/using-api/api-concepts/): ``/api/v1/...`` and
``/apis/batch/v1/...``, collections per namespace or across all, ``?watch=1`` streams of
newline-delimited ``{"type": ..., "object": ...}`` events (BOOKMARK when
``allowWatchBookmarks=true``), ``limit``/``continue`` paging, DELETE on a collection
(deletecollection) and DeleteOptions in the body or the query. Authentication is a bearer
token ("Authenticating": https://kubernetes.io/docs/reference/access-authn-authz/authentication/).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import web

from . import errors
from .cluster import Cluster
from .resources import GROUP_VERSIONS, RESOURCES, ResourceType, resource_list
from .selectors import SelectorError, field_selector, label_selector
from .store import JsonDict, Watcher

log = logging.getLogger(__name__)
JSON = "application/json"
_NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "the server could not find the requested resource",
              "reason": "NotFound", "details": {}, "code": 404}


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type=JSON)


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


class Api:
    def __init__(self, cluster: Cluster, token: str | None,
                 bookmark_interval: float = 60.0) -> None:
        self.cluster = cluster
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.watchers: set[Watcher] = set()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def close_watches(self) -> None:
        for watcher in list(self.watchers):
            watcher.close()

    # -- dispatch -------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/__double__/"):
            return await self.control(request, path[len("/__double__/"):])
        if self.token is not None and \
                request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Failure", "message": "Unauthorized",
                          "reason": "Unauthorized", "code": 401}, 401)
        try:
            return await self.route(request, path)
        except errors.ApiError as error:
            return _json(error.status, error.code)
        except SelectorError as error:
            return _json(errors.bad_request(str(error)).status, 400)
        except (ValueError, KeyError, TypeError) as error:
            log.debug("bad request %s %s", request.method, path, exc_info=True)
            return _json(errors.bad_request(f"{type(error).__name__}: {error}").status, 400)

    async def route(self, request: web.Request, path: str) -> web.StreamResponse:
        discovery = self.discovery(path)
        if discovery is not None:
            self.cluster.count("get", path)
            if isinstance(discovery, str):
                return web.Response(text=discovery)
            return _json(discovery)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, rest = "", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4 and f"{parts[1]}/{parts[2]}" in GROUP_VERSIONS:
            group, rest = parts[1], parts[3:]
        else:
            self.cluster.count(request.method.lower(), path)
            return _json(_NOT_FOUND, 404)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in RESOURCES and \
                RESOURCES[rest[2]].group == group and RESOURCES[rest[2]].namespaced:
            namespace, rest = rest[1], rest[2:]
        rt = RESOURCES.get(rest[0])
        if rt is None or rt.group != group or len(rest) > 3:
            return _json(_NOT_FOUND, 404)
        if namespace is not None and not rt.namespaced:
            return _json(_NOT_FOUND, 404)
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and sub not in rt.subresources:
            return _json(_NOT_FOUND, 404)
        if name is None:
            return await self.collection(request, rt, namespace)
        return await self.item(request, rt, namespace or "", name, sub)

    def discovery(self, path: str) -> Any:
        version = self.cluster.options.kubernetes_version.lstrip("v").split(".")
        address = f"127.0.0.1:{self.cluster.port}"
        if path == "/version":
            return {"major": version[0], "minor": version[1],
                    "gitVersion": self.cluster.options.kubernetes_version,
                    "gitCommit": "0" * 40, "gitTreeState": "clean",
                    "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.4",
                    "compiler": "gc", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}
        batch = {"name": "batch", "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [batch]}
        if path == "/apis/batch":
            return {"kind": "APIGroup", "apiVersion": "v1", **batch}
        if path == "/api/v1":
            return resource_list("", "v1")
        if path == "/apis/batch/v1":
            return resource_list("batch", "v1")
        if path in ("/healthz", "/livez", "/readyz"):
            return "ok"
        return None

    @staticmethod
    async def body(request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            return None
        return json.loads(raw)

    # -- collections ----------------------------------------------------------------------------
    async def collection(self, request: web.Request, rt: ResourceType,
                         namespace: str | None) -> web.StreamResponse:
        query = request.query
        store = self.cluster.store
        if request.method == "GET":
            labels = label_selector(query.get("labelSelector"))
            fields = field_selector(query.get("fieldSelector"))
            if _true(query.get("watch")):
                self.cluster.count("watch", rt.plural)
                return await self.watch(request, rt, namespace, labels, fields)
            self.cluster.count("list", rt.plural)
            items = [o for o in store.items(rt, namespace)
                     if labels(o["metadata"].get("labels") or {}) and fields(o)]
            meta: JsonDict = {"resourceVersion": str(store.rv)}
            token = query.get("continue")
            if token:
                after = json.loads(base64.b64decode(token))["after"]
                items = [o for o in items if self._key(o) > tuple(after)]
            limit = int(query.get("limit") or 0)
            if limit and len(items) > limit:
                meta["continue"] = base64.b64encode(json.dumps(
                    {"after": list(self._key(items[limit - 1]))}).encode()).decode()
                meta["remainingItemCount"] = len(items) - limit
                items = items[:limit]
            return _json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                          "metadata": meta, "items": items})
        if request.method == "POST":
            self.cluster.count("create", rt.plural)
            body = await self.body(request)
            if not isinstance(body, dict):
                raise errors.bad_request("the body of the request must be a JSON object")
            kind = body.get("kind")
            if kind not in (None, rt.kind):
                raise errors.bad_request(f"the kind {kind!r} does not match {rt.kind!r}")
            created = self.cluster.registry.create(rt, body, namespace if rt.namespaced else None)
            return _json(created, 201)
        if request.method == "DELETE":
            self.cluster.count("deletecollection", rt.plural)
            if "deletecollection" not in rt.verbs:
                raise errors.ApiError(405, "MethodNotAllowed",
                                      "the server does not allow this method on the "
                                      "requested resource")
            options = await self.delete_options(request)
            labels = label_selector(query.get("labelSelector"))
            fields = field_selector(query.get("fieldSelector"))
            deleted = self.cluster.registry.delete_collection(
                rt, namespace, lambda o: labels(o["metadata"].get("labels") or {}) and fields(o),
                options)
            return _json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                          "metadata": {"resourceVersion": str(store.rv)}, "items": deleted})
        raise errors.ApiError(405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource")

    @staticmethod
    def _key(obj: JsonDict) -> tuple[str, str]:
        return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    async def delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        body = await self.body(request)
        if isinstance(body, dict):
            options.update(body)
        query = request.query
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if "orphanDependents" in query:
            options["orphanDependents"] = _true(query["orphanDependents"])
        return options

    async def watch(self, request: web.Request, rt: ResourceType, namespace: str | None,
                    labels: Any, fields: Any) -> web.StreamResponse:
        query = request.query
        version = query.get("resourceVersion") or "0"
        try:
            since = None if version == "0" else int(version)
        except ValueError:
            raise errors.bad_request(f"invalid resource version: {version}") from None
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = _true(query.get("allowWatchBookmarks"))
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        watcher = Watcher(rt, namespace if rt.namespaced else None, labels, fields)
        try:
            initial = self.cluster.store.open_watch(watcher, since)
        except errors.ApiError as error:
            await response.write(self._line("ERROR", error.status))
            await response.write_eof()
            return response
        self.watchers.add(watcher)
        end = time.monotonic() + timeout
        try:
            for kind, obj in initial:
                await response.write(self._line(kind, obj))
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                wait = min(left, self.bookmark_interval) if bookmarks else left
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), wait)
                except asyncio.TimeoutError:
                    if bookmarks and end - time.monotonic() > 0:
                        await response.write(self._line("BOOKMARK", {
                            "kind": rt.kind, "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": str(self.cluster.store.rv)}}))
                    continue
                if item is None:
                    break
                await response.write(self._line(*item))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.cluster.store.close_watch(watcher)
            self.watchers.discard(watcher)
        return response

    @staticmethod
    def _line(kind: str, obj: JsonDict) -> bytes:
        return json.dumps({"type": kind, "object": obj}).encode() + b"\n"

    # -- single objects -------------------------------------------------------------------------
    async def item(self, request: web.Request, rt: ResourceType, namespace: str, name: str,
                   sub: str | None) -> web.StreamResponse:
        resource = f"{rt.plural}/{sub}" if sub else rt.plural
        method = request.method
        registry = self.cluster.registry
        store = self.cluster.store
        if sub == "log":
            self.cluster.count("get", resource)
            return await self.logs(request, namespace, name)
        if sub == "eviction":
            self.cluster.count("create", resource)
            body = await self.body(request) or {}
            grace = (body.get("deleteOptions") or {}).get("gracePeriodSeconds")
            self.cluster.disrupt_pod(namespace, name, "EvictionByEvictionAPI", grace)
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Success", "code": 201}, 201)
        if method == "GET":
            self.cluster.count("get", resource)
            return _json(store.require(rt, namespace, name))
        if method == "PUT":
            self.cluster.count("update", resource)
            body = await self.body(request)
            return _json(registry.update(rt, namespace, name, body, sub))
        if method == "PATCH":
            self.cluster.count("patch", resource)
            body = await self.body(request)
            return _json(registry.patch(rt, namespace, name,
                                        request.headers.get("Content-Type", ""), body, sub))
        if method == "DELETE":
            self.cluster.count("delete", resource)
            options = await self.delete_options(request)
            last, removed = registry.delete(rt, namespace, name, options)
            if removed and rt.plural not in ("pods",):
                return _json(errors.success_status(rt, name, last["metadata"]["uid"]))
            return _json(last, 200 if removed else 202)
        raise errors.ApiError(405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource")

    async def logs(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self.cluster.store.require(RESOURCES["pods"], namespace, name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = request.query.get("container")
        if container is None:
            if len(names) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(names)}]")
            container = names[0]
        if container not in names:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        run = self.cluster.kubelet.log_of(pod["metadata"]["uid"], container)
        path = run.log if run is not None else None
        if path is None or not path.exists():
            sandbox = self.cluster.options.work_dir / "pods" / \
                f"{namespace}_{name}_{pod['metadata']['uid']}" / f"{container}.log"
            path = sandbox if sandbox.exists() else None
        if path is None:
            reason = "ContainerCreating"
            for status in pod.get("status", {}).get("containerStatuses") or []:
                if status["name"] == container:
                    reason = (status.get("state", {}).get("waiting") or {}).get("reason", reason)
            raise errors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        data = path.read_bytes()
        tail = request.query.get("tailLines")
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(tail):]) if int(tail) else b""
        limit = request.query.get("limitBytes")
        if limit is not None:
            data = data[:int(limit)]
        if not _true(request.query.get("follow")):
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        offset = path.stat().st_size
        with contextlib.suppress(ConnectionResetError):
            await response.write(data)
            while True:
                size = path.stat().st_size if path.exists() else offset
                if size > offset:
                    with path.open("rb") as handle:
                        handle.seek(offset)
                        chunk = handle.read(size - offset)
                    offset = size
                    await response.write(chunk)
                    continue
                if self.cluster.kubelet.log_of(pod["metadata"]["uid"], container) is None or \
                        (run is not None and run.exit_code is not None):
                    break
                await asyncio.sleep(0.05)
            await response.write_eof()
        return response

    # -- the double's own control API -----------------------------------------------------------
    async def control(self, request: web.Request, action: str) -> web.StreamResponse:
        cluster = self.cluster
        args = await self.body(request) if request.method == "POST" else None
        args = args or {}
        try:
            if action == "requests":
                counts = [{"verb": v, "resource": r, "count": n}
                          for (v, r), n in sorted(cluster.requests.items())]
                return _json({"requests": counts, "total": sum(cluster.requests.values())})
            if action == "reset-requests":
                cluster.requests.clear()
                return _json({"ok": True})
            if action == "evict":
                cluster.disrupt_pod(args.get("namespace", "default"), args["name"],
                                    args.get("reason", "EvictionByEvictionAPI"),
                                    args.get("grace"))
                return _json({"ok": True})
            if action == "lose-node":
                pods = cluster.lose_node(args["node"], bool(args.get("delete", False)))
                return _json({"ok": True, "pods": pods})
            if action == "compact":
                return _json({"ok": True, "resourceVersion": cluster.store.compact()})
        except errors.ApiError as error:
            return _json(error.status, error.code)
        except (KeyError, ValueError) as error:
            return _json({"ok": False, "error": str(error)}, 400)
        return _json({"ok": False, "error": f"unknown control action {action!r}"}, 404)
