"""Create, update, patch and delete with the API server's semantics on top of the store.

Deletion follows "Garbage Collection" and "Finalizers"
(https://kubernetes.io/docs/concepts/architecture/garbage-collection/,
https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/) and the
DeleteOptions reference: an object with finalizers gets ``deletionTimestamp`` and stays;
``propagationPolicy`` Foreground adds the ``foregroundDeletion`` finalizer, Orphan adds
``orphan``; batch/v1 Jobs default to orphaning their pods when no policy is given (kubectl
sends Background). A pod bound to a node is deleted gracefully: it gets
``deletionTimestamp``/``deletionGracePeriodSeconds`` and goes away once its kubelet stopped
the containers (or at once with ``gracePeriodSeconds: 0``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from . import errors, objects
from .resources import RESOURCES, ResourceType
from .store import JsonDict, Store, clone, now

POLICIES = ("Orphan", "Background", "Foreground")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also used for strategic merge patches of simple fields)."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, test."""
    document = clone(target)
    for operation in operations:
        path = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        parent: Any = document
        for part in path[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = path[-1]
        op = operation["op"]
        if op == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != operation.get("value"):
                raise errors.ApiError(422, "Invalid",
                                      f"test operation failed at {operation['path']}")
        elif op == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        elif op in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(operation["value"])
                elif op == "add":
                    parent.insert(int(last), operation["value"])
                else:
                    parent[int(last)] = operation["value"]
            else:
                parent[last] = operation["value"]
        else:
            raise errors.bad_request(f"unsupported JSON patch operation {op!r}")
    return document


class Registry:
    """The verbs of the API on the store; hooks let the kubelet learn of pod deletions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.on_pod_deleting: Callable[[JsonDict], None] = lambda pod: None

    # -- create / update ------------------------------------------------------------------------
    def create(self, rt: ResourceType, obj: JsonDict, namespace: str | None = None) -> JsonDict:
        obj = clone(obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if namespace is not None:
                if meta.get("namespace") not in (None, "", namespace):
                    raise errors.bad_request(
                        "the namespace of the provided object does not match the namespace "
                        "sent on the request"
                    )
                meta["namespace"] = namespace
            meta.setdefault("namespace", "default")
        for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        objects.prepare(rt, obj)
        if rt.plural == "jobs":
            self._job_selector(obj)
        if rt.plural == "pods":
            self._admit_service_account(obj)
        return self.store.create(rt, obj)

    def _admit_service_account(self, pod: JsonDict) -> None:
        """The ServiceAccount admission plugin: a pod's service account must exist."""
        meta = pod["metadata"]
        account = pod["spec"]["serviceAccountName"]
        if self.store.get(RESOURCES["serviceaccounts"], meta["namespace"], account) is None:
            name = meta.get("name") or meta.get("generateName") or ""
            raise errors.ApiError(
                403, "Forbidden",
                f'pods "{name}" is forbidden: error looking up service account '
                f'{meta["namespace"]}/{account}: serviceaccount "{account}" not found',
                {"name": name, "kind": "pods"})

    @staticmethod
    def _job_selector(job: JsonDict) -> None:
        spec = job["spec"]
        uid = job["metadata"]["uid"]
        name = job["metadata"].get("name") or ""
        labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
        if not spec.get("manualSelector"):
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            labels.update({
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
            })
        if name:
            labels.setdefault("batch.kubernetes.io/job-name", name)
            labels.setdefault("job-name", name)

    def update(self, rt: ResourceType, namespace: str, name: str, obj: JsonDict,
               subresource: str | None = None) -> JsonDict:
        current = self.store.require(rt, namespace, name)
        meta = obj.get("metadata") or {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        wanted = meta.get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        updated = clone(current)
        if subresource == "status":
            updated["status"] = clone(obj.get("status", {}))
        else:
            keep = {k: current["metadata"][k] for k in (
                "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "namespace", "name", "generation") if k in current["metadata"]}
            updated = clone(obj)
            updated["metadata"] = {**clone(meta), **keep}
            updated["status"] = clone(current.get("status", {}))
            updated["kind"] = rt.kind
            updated["apiVersion"] = rt.api_version
            if updated.get("spec") != current.get("spec") and "generation" in keep:
                updated["metadata"]["generation"] = keep["generation"] + 1
        result = self.store.replace(rt, updated)
        return result if result is not None else updated

    def patch(self, rt: ResourceType, namespace: str, name: str, content_type: str,
              body: Any, subresource: str | None = None) -> JsonDict:
        current = self.store.require(rt, namespace, name)
        if content_type.startswith("application/json-patch+json"):
            if not isinstance(body, list):
                raise errors.bad_request("a JSON patch must be a list of operations")
            patched = json_patch(current, body)
        elif content_type.startswith(("application/merge-patch+json",
                                      "application/strategic-merge-patch+json",
                                      "application/apply-patch+yaml")):
            patched = merge_patch(current, body)
        else:
            raise errors.ApiError(415, "UnsupportedMediaType",
                                  f"the body of the request was in an unknown format - "
                                  f"accepted media types include: application/json-patch+json, "
                                  f"application/merge-patch+json, "
                                  f"application/strategic-merge-patch+json ({content_type})")
        patched.setdefault("metadata", {})["resourceVersion"] = \
            (body.get("metadata", {}) or {}).get("resourceVersion") if isinstance(body, dict) \
            else None
        if not patched["metadata"]["resourceVersion"]:
            patched["metadata"].pop("resourceVersion")
        return self.update(rt, namespace, name, patched, subresource)

    # -- delete ---------------------------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str, name: str,
               options: dict[str, Any] | None = None) -> tuple[JsonDict, bool]:
        """Returns (object, removed now). The object is the last state."""
        options = options or {}
        current = self.store.require(rt, namespace, name)
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != current["metadata"]["uid"]:
            raise errors.ApiError(409, "Conflict",
                                  f"Precondition failed: UID in precondition: "
                                  f"{preconditions['uid']}, UID in object meta: "
                                  f"{current['metadata']['uid']}")
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != \
                current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is not None and policy is None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy is not None and policy not in POLICIES:
            raise errors.bad_request(
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                f'value: "{policy}": supported values: "Foreground", "Background", "Orphan"'
            )
        if policy is None and rt.plural == "jobs":
            policy = "Orphan"
        grace = options.get("gracePeriodSeconds")
        result: JsonDict | None = None

        def mark(obj: JsonDict) -> None:
            meta = obj["metadata"]
            finalizers: list[str] = list(meta.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers and self._has_dependents(obj):
                finalizers.append("orphan")
            if policy in ("Background", "Foreground"):
                finalizers = [f for f in finalizers if f != "orphan"]
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
            seconds = 0
            if rt.plural == "pods":
                default = obj["spec"].get("terminationGracePeriodSeconds", 30)
                seconds = int(grace) if grace is not None else int(default)
                previous = meta.get("deletionGracePeriodSeconds")
                if previous is not None:
                    seconds = min(seconds, int(previous))
            if not meta.get("deletionTimestamp") or rt.plural == "pods":
                meta["deletionTimestamp"] = now()
                meta["deletionGracePeriodSeconds"] = seconds

        if rt.plural == "namespaces":
            self._empty_namespace(name)
        marked = clone(current)
        mark(marked)
        if rt.plural == "pods" and marked["metadata"]["deletionGracePeriodSeconds"] == 0 \
                and not marked["metadata"].get("finalizers"):
            # force deletion: gone from the API at once; the kubelet kills what still runs
            self.on_pod_deleting(marked)
            self.store.remove(rt, namespace, name, last=marked)
            return marked, True
        result = self.store.replace(rt, marked)
        if result is None:
            return marked, True
        if rt.plural == "pods":
            self.on_pod_deleting(result)
        return result, False

    def _has_dependents(self, owner: JsonDict) -> bool:
        uid = owner["metadata"]["uid"]
        return any(self.dependents(uid))

    def dependents(self, uid: str) -> list[tuple[ResourceType, JsonDict]]:
        found: list[tuple[ResourceType, JsonDict]] = []
        for plural in ("pods", "jobs", "events"):
            rt = RESOURCES[plural]
            for obj in self.store.items(rt):
                for ref in obj["metadata"].get("ownerReferences") or []:
                    if ref.get("uid") == uid:
                        found.append((rt, obj))
                        break
        return found

    def _empty_namespace(self, namespace: str) -> None:
        for rt in RESOURCES.values():
            if rt.namespaced:
                for obj in self.store.items(rt, namespace):
                    meta = obj["metadata"]
                    if not meta.get("deletionTimestamp"):
                        self.delete(rt, namespace, meta["name"],
                                    {"propagationPolicy": "Background"})

    def delete_collection(self, rt: ResourceType, namespace: str | None,
                          matches: Callable[[JsonDict], bool],
                          options: dict[str, Any] | None = None) -> list[JsonDict]:
        deleted: list[JsonDict] = []
        for obj in self.store.items(rt, namespace):
            if matches(obj):
                meta = obj["metadata"]
                try:
                    last, _ = self.delete(rt, meta.get("namespace", ""), meta["name"], options)
                except errors.ApiError as error:
                    if error.code != 404:
                        raise
                    continue
                deleted.append(last)
        return deleted
