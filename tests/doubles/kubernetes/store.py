"""The object store: one global, monotonically increasing resourceVersion and a history of
changes that watches resume from, with 410 Gone once a version fell out of the window.

Semantics from "Kubernetes API Concepts" (https://kubernetes.io/docs/reference/using-api/
api-concepts/#efficient-detection-of-changes and #resource-versions): a watch from version N
streams every change after N; a watch without a version (or "0") first sends the current
objects as ADDED; a version older than the kept history answers a watch ERROR event holding a
``410`` Status (reason ``Expired``). A watch with a selector sees an object that stops matching
as DELETED and one that starts matching as ADDED, as the API server's watch cache does.

All methods run on the double's event-loop thread (no locks): callers from other threads go
through ``KubernetesDouble.call``.
"""

from __future__ import annotations

import asyncio
import datetime
import pickle
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import errors
from .resources import RESOURCES, ResourceType

JsonDict = dict[str, Any]
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the API server's random-name alphabet


def clone(obj: Any) -> Any:
    """A deep copy of JSON-like data (pickle's round trip is several times faster than
    copy.deepcopy, and every write copies an object)."""
    return pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))


def now() -> str:
    """RFC 3339 in UTC with second precision, as metadata timestamps are written."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    return datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc
    ).timestamp()


def random_suffix(length: int = 5) -> str:
    raw = uuid.uuid4().int
    chars = []
    for _ in range(length):
        raw, index = divmod(raw, len(_SUFFIX_CHARS))
        chars.append(_SUFFIX_CHARS[index])
    return "".join(chars)


@dataclass
class Change:
    rv: int
    resource: ResourceType
    type: str  # ADDED, MODIFIED, DELETED
    obj: JsonDict
    old: JsonDict | None


class Watcher:
    """One open watch: filters changes and queues (type, object) pairs for the HTTP stream."""

    def __init__(self, resource: ResourceType, namespace: str | None,
                 labels: Callable[[Mapping[str, str]], bool],
                 fields: Callable[[Mapping[str, Any]], bool]) -> None:
        self.resource = resource
        self.namespace = namespace
        self._labels = labels
        self._fields = fields
        self.queue: asyncio.Queue[tuple[str, JsonDict] | None] = asyncio.Queue()

    def matches(self, obj: JsonDict | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self._labels(meta.get("labels") or {}) and self._fields(obj)

    def event_for(self, change: Change) -> tuple[str, JsonDict] | None:
        if change.resource is not self.resource:
            return None
        now_matches = self.matches(change.obj)
        if change.type == "DELETED":
            return ("DELETED", change.obj) if now_matches else None
        was_matching = self.matches(change.old)
        if now_matches and was_matching:
            return ("MODIFIED", change.obj)
        if now_matches:
            return ("ADDED", change.obj)
        if was_matching:
            return ("DELETED", change.obj)
        return None

    def offer(self, change: Change) -> None:
        event = self.event_for(change)
        if event is not None:
            self.queue.put_nowait(event)

    def close(self) -> None:
        self.queue.put_nowait(None)


class Store:
    """Objects by resource, namespace and name, with change history and watchers."""

    def __init__(self, history_limit: int = 10000) -> None:
        self.rv = 1
        self.objects: dict[str, dict[tuple[str, str], JsonDict]] = {p: {} for p in RESOURCES}
        self.history: deque[Change] = deque()
        self.history_limit = history_limit
        self.oldest_rv = 1  # watches may resume from any version >= this
        self.watchers: set[Watcher] = set()
        self.listeners: list[Callable[[Change], None]] = []

    # -- reads ----------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> JsonDict | None:
        return self.objects[rt.plural].get((namespace if rt.namespaced else "", name))

    def require(self, rt: ResourceType, namespace: str, name: str) -> JsonDict:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def items(self, rt: ResourceType, namespace: str | None = None) -> list[JsonDict]:
        items = self.objects[rt.plural]
        if namespace is None or not rt.namespaced:
            return [items[key] for key in sorted(items)]
        return [obj for (ns, _), obj in sorted(items.items()) if ns == namespace]

    # -- writes ---------------------------------------------------------------------------------
    def _record(self, rt: ResourceType, kind: str, obj: JsonDict, old: JsonDict | None) -> None:
        change = Change(self.rv, rt, kind, obj, old)
        self.history.append(change)
        while len(self.history) > self.history_limit:
            self.oldest_rv = self.history.popleft().rv
        for watcher in list(self.watchers):
            watcher.offer(change)
        for listener in self.listeners:
            listener(change)

    def _bump(self, obj: JsonDict) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def create(self, rt: ResourceType, obj: JsonDict) -> JsonDict:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        name = meta.get("name") or ""
        if not name:
            raise errors.ApiError(
                422, "Invalid", f"{rt.kind} \"\" is invalid: metadata.name: Required value: "
                "name or generateName is required",
            )
        if len(name) > 253 or not _NAME.match(name):
            raise errors.invalid(rt, name, [(
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )])
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        if rt.namespaced:
            ns = self.objects["namespaces"].get(("", namespace))
            if ns is None:
                raise errors.not_found(RESOURCES["namespaces"], namespace)
            if ns.get("metadata", {}).get("deletionTimestamp"):
                raise errors.ApiError(
                    403, "Forbidden",
                    f'{rt.plural} "{name}" is forbidden: unable to create new content in '
                    f"namespace {namespace} because it is being terminated",
                )
        else:
            meta.pop("namespace", None)
        key = (namespace, name)
        if key in self.objects[rt.plural]:
            raise errors.already_exists(rt, name)
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["creationTimestamp"] = now()
        if rt.plural in ("pods", "jobs", "namespaces", "nodes"):
            meta.setdefault("generation", 1)
        self._bump(obj)
        self.objects[rt.plural][key] = obj
        self._record(rt, "ADDED", obj, None)
        return obj

    def replace(self, rt: ResourceType, obj: JsonDict) -> JsonDict | None:
        """Store a new version; an object marked deleted with no finalizers left goes away."""
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        old = self.objects[rt.plural].get(key)
        if old is None:
            raise errors.not_found(rt, meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and \
                not (rt.plural == "pods" and _pod_still_running(obj)):
            self.objects[rt.plural][key] = obj
            self.remove(rt, key[0], key[1], last=obj)
            return None
        self._bump(obj)
        self.objects[rt.plural][key] = obj
        self._record(rt, "MODIFIED", obj, old)
        return obj

    def mutate(self, rt: ResourceType, namespace: str, name: str,
               edit: Callable[[JsonDict], bool | None]) -> JsonDict | None:
        """Apply ``edit`` to a copy; it returns False to skip the write. None if absent."""
        current = self.get(rt, namespace, name)
        if current is None:
            return None
        updated = clone(current)
        if edit(updated) is False:
            return current
        return self.replace(rt, updated)

    def remove(self, rt: ResourceType, namespace: str, name: str,
               last: JsonDict | None = None) -> None:
        key = (namespace if rt.namespaced else "", name)
        old = self.objects[rt.plural].pop(key, None)
        if old is None:
            return
        final = clone(last if last is not None else old)
        self._bump(final)
        self._record(rt, "DELETED", final, old)

    def compact(self) -> int:
        """Forget all history (as an etcd compaction): older watches get 410 Gone."""
        self.history.clear()
        self.oldest_rv = self.rv
        return self.rv

    # -- watches --------------------------------------------------------------------------------
    def open_watch(self, watcher: Watcher, since: int | None) -> list[tuple[str, JsonDict]]:
        """Register ``watcher``; returns the events to send first. Raises 410 if too old."""
        initial: list[tuple[str, JsonDict]] = []
        if since is None:
            for obj in self.items(watcher.resource, watcher.namespace):
                if watcher.matches(obj):
                    initial.append(("ADDED", obj))
        else:
            if since < self.oldest_rv:
                raise errors.gone(f"too old resource version: {since} ({self.oldest_rv})")
            for change in self.history:
                if change.rv > since:
                    event = watcher.event_for(change)
                    if event is not None:
                        initial.append(event)
        self.watchers.add(watcher)
        return initial

    def close_watch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)


def _pod_still_running(pod: JsonDict) -> bool:
    """A deleted pod bound to a node stays until its kubelet reports the containers stopped."""
    if not pod.get("spec", {}).get("nodeName"):
        return False
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")
