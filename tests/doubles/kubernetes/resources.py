"""The resource types the double serves, as the discovery documents name them.

Shapes of APIResourceList follow "API Overview" and the discovery section of "Kubernetes API
Concepts" (https://kubernetes.io/docs/reference/using-api/api-concepts/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" is the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``pods`` or ``jobs.batch``: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES: dict[str, ResourceType] = {
    r.plural: r
    for r in (
        ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",),
                     subresources=("status", "log", "eviction")),
        ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
        ResourceType("", "v1", "nodes", "node", "Node", False, ("no",), subresources=("status",)),
        ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",),
                     verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                     subresources=("status",)),
        ResourceType("", "v1", "secrets", "secret", "Secret", True),
        ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
        ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True,
                     ("sa",)),
        ResourceType("", "v1", "persistentvolumeclaims", "persistentvolumeclaim",
                     "PersistentVolumeClaim", True, ("pvc",)),
        ResourceType("batch", "v1", "jobs", "job", "Job", True, (), subresources=("status",)),
    )
}
GROUP_VERSIONS = ("v1", "batch/v1")
RESOURCE_BY_KIND = {r.kind: r for r in RESOURCES.values()}


def resources_of(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCES.values() if r.group == group and r.version == version]


def resource_list(group: str, version: str) -> dict[str, Any]:
    """The APIResourceList document kubectl reads for discovery."""
    group_version = f"{group}/{version}" if group else version
    entries: list[dict[str, Any]] = []
    for r in resources_of(group, version):
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.plural in ("pods", "jobs"):
            entry["categories"] = ["all"]
        entries.append(entry)
        for sub in r.subresources:
            kind = {"eviction": "Eviction", "log": "Pod"}.get(sub, r.kind)
            entry_sub: dict[str, Any] = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": {"log": ["get"], "eviction": ["create"]}.get(
                    sub, ["get", "patch", "update"]
                ),
            }
            if sub == "eviction":
                entry_sub["group"] = "policy"
                entry_sub["version"] = "v1"
            entries.append(entry_sub)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": entries}
