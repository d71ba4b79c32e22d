"""core/v1 Events as the components record them, repeats folded into ``count``.

Shape from the Event v1 reference
(https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/).
"""

from __future__ import annotations

import uuid

from .resources import RESOURCES
from .store import JsonDict, Store, now


class EventRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._names: dict[tuple[str, str, str, str], tuple[str, str]] = {}

    def record(self, involved: JsonDict, event_type: str, reason: str, message: str,
               component: str, host: str | None = None, field_path: str | None = None) -> None:
        rt = RESOURCES["events"]
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), reason, message, component)
        stamp = now()
        known = self._names.get(key)
        if known is not None:
            def bump(event: JsonDict) -> None:
                event["count"] = int(event.get("count", 1)) + 1
                event["lastTimestamp"] = stamp

            if self.store.mutate(rt, known[0], known[1], bump) is not None:
                return
        name = f"{meta.get('name', '')}.{uuid.uuid4().hex[:16]}"
        source: JsonDict = {"component": component}
        if host:
            source["host"] = host
        reference: JsonDict = {
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            reference["fieldPath"] = field_path
        if not reference["namespace"]:
            reference.pop("namespace")
        event: JsonDict = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": reference,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        self.store.create(rt, event)
        self._names[key] = (namespace, name)
