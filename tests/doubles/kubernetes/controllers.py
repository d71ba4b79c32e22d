"""The control plane's loops: scheduler, Job controller (with TTL-after-finished) and the
garbage collector, each reacting to store changes on the event-loop thread.

Job semantics follow "Jobs" (https://kubernetes.io/docs/concepts/workloads/controllers/job/:
backoffLimit, activeDeadlineSeconds, podFailurePolicy, the ``batch.kubernetes.io/job-tracking``
finalizer, the v1.31+ terminal conditions: FailureTarget then Failed with reason
BackoffLimitExceeded / DeadlineExceeded / PodFailurePolicy, SuccessCriteriaMet then Complete
with reason CompletionsReached), "Automatic Cleanup for Finished Jobs"
(https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/: deleted with
foreground propagation) and "Garbage Collection"
(https://kubernetes.io/docs/concepts/architecture/garbage-collection/).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import errors, scheduler
from .objects import pod_requests
from .resources import RESOURCES
from .store import Change, JsonDict, now, parse_time

if TYPE_CHECKING:
    from .cluster import Cluster

PODS = RESOURCES["pods"]
JOBS = RESOURCES["jobs"]
TRACKING = "batch.kubernetes.io/job-tracking"


def condition(obj: JsonDict, kind: str) -> JsonDict | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            found: JsonDict = cond
            return found
    return None


def set_condition(obj: JsonDict, kind: str, status: str, reason: str | None = None,
                  message: str | None = None, probe: bool = False) -> None:
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    stamp = now()
    for cond in conditions:
        if cond["type"] == kind:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = stamp
            cond["status"] = status
            if probe:
                cond["lastProbeTime"] = stamp
            _set_reason(cond, reason, message)
            return
    cond = {"type": kind, "status": status, "lastProbeTime": stamp if probe else None,
            "lastTransitionTime": stamp}
    _set_reason(cond, reason, message)
    conditions.append(cond)


def _set_reason(cond: JsonDict, reason: str | None, message: str | None) -> None:
    for key, value in (("reason", reason), ("message", message)):
        if value is None:
            cond.pop(key, None)
        else:
            cond[key] = value


def is_terminal(pod: JsonDict) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def owner_uid(obj: JsonDict) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            uid: str = ref.get("uid", "")
            return uid
    return None


class Debounced:
    """Runs ``action(key)`` once per loop turn for keys queued in that turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, action: Callable[[Any], None]) -> None:
        self._loop = loop
        self._action = action
        self._pending: set[Any] = set()

    def __call__(self, key: Any) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._loop.call_soon(self._run, key)

    def _run(self, key: Any) -> None:
        self._pending.discard(key)
        self._action(key)


class SchedulerLoop:
    """Binds pending pods; a pod that fits nowhere is retried when pods end or nodes change,
    with a FailedScheduling event when its message changes or at most once a second."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.trigger = Debounced(cluster.loop, lambda _: self.schedule_pending())
        self._requests: dict[str, dict[str, Decimal]] = {}
        self._last_event: dict[str, tuple[str, float]] = {}
        cluster.store.listeners.append(self.on_change)

    def requests_of(self, pod: JsonDict) -> dict[str, Decimal]:
        uid = pod["metadata"]["uid"]
        found = self._requests.get(uid)
        if found is None:
            found = self._requests[uid] = pod_requests(pod)
        return found

    def on_change(self, change: Change) -> None:
        plural = change.resource.plural
        if plural == "nodes":
            self.trigger(None)
        elif plural == "pods":
            pod = change.obj
            if change.type == "DELETED":
                self._requests.pop(pod["metadata"]["uid"], None)
                self._last_event.pop(pod["metadata"]["uid"], None)
            unbound = change.type == "ADDED" and not pod["spec"].get("nodeName")
            freed = change.type == "DELETED" or (
                is_terminal(pod) and not (change.old and is_terminal(change.old)))
            if unbound or freed:
                self.trigger(None)

    def schedule_pending(self) -> None:
        store = self.cluster.store
        nodes = store.items(RESOURCES["nodes"])
        pods = store.items(PODS)
        pending = [p for p in pods if not p["spec"].get("nodeName")
                   and not p["metadata"].get("deletionTimestamp")
                   and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"]
        if not pending:
            return
        pending.sort(key=lambda p: (-int(p["spec"].get("priority", 0)),
                                    int(p["metadata"]["resourceVersion"])))
        bound = [p for p in pods if p["spec"].get("nodeName")]
        usage = scheduler.usage_by_node(bound, self.requests_of)
        for pod in pending:
            requests = self.requests_of(pod)
            node_name, message = scheduler.pick_node(pod, nodes, bound, usage, requests)
            meta = pod["metadata"]
            if node_name is None:
                self._unschedulable(pod, message)
                continue

            def bind(p: JsonDict, node: str = node_name) -> None:
                p["spec"]["nodeName"] = node
                set_condition(p, "PodScheduled", "True")

            updated = store.mutate(PODS, meta["namespace"], meta["name"], bind)
            if updated is not None:
                bound.append(updated)
                scheduler.add_usage(usage, node_name, requests)
                self.cluster.events.record(
                    updated, "Normal", "Scheduled",
                    f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
                    "default-scheduler")
                self.cluster.kubelet.pod_bound(updated)

    def _unschedulable(self, pod: JsonDict, message: str) -> None:
        meta = pod["metadata"]
        previous = condition(pod, "PodScheduled")
        if previous is None or previous.get("message") != message:
            def unschedulable(p: JsonDict) -> None:
                set_condition(p, "PodScheduled", "False", "Unschedulable", message, probe=True)

            self.cluster.store.mutate(PODS, meta["namespace"], meta["name"], unschedulable)
        last = self._last_event.get(meta["uid"])
        now_seconds = time.monotonic()
        if last is None or last[0] != message or now_seconds - last[1] >= 1.0:
            self._last_event[meta["uid"]] = (message, now_seconds)
            self.cluster.events.record(pod, "Warning", "FailedScheduling", message,
                                       "default-scheduler")


class JobController:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.sync = Debounced(cluster.loop, self._sync)
        self._counted: dict[str, set[str]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._next_create: dict[str, float] = {}
        cluster.store.listeners.append(self.on_change)

    def on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        if change.resource is JOBS:
            if change.type == "DELETED":
                self._counted.pop(meta["uid"], None)
                return
            self.sync((meta["namespace"], meta["name"]))
        elif change.resource is PODS:
            owned = False
            for ref in meta.get("ownerReferences") or []:
                if ref.get("kind") == "Job" and ref.get("controller"):
                    owned = True
                    job = self.cluster.store.get(JOBS, meta["namespace"], ref["name"])
                    if job is not None and job["metadata"]["uid"] == ref.get("uid"):
                        self.sync((meta["namespace"], ref["name"]))
                    else:
                        owned = False
            if not owned and change.type != "DELETED" and \
                    TRACKING in (meta.get("finalizers") or []):
                # an orphan (its Job is gone): nothing will count it, so let it go
                self.cluster.loop.call_soon(self._release, [change.obj], True)

    def _later(self, key: tuple[str, str], delay: float, tag: str) -> None:
        timer_key = (f"{tag}:{key[0]}", key[1])
        if timer_key in self._timers:
            return
        def fire() -> None:
            self._timers.pop(timer_key, None)
            self.sync(key)
        self._timers[timer_key] = self.cluster.loop.call_later(max(delay, 0.0), fire)

    def _pods_of(self, job: JsonDict) -> list[JsonDict]:
        uid = job["metadata"]["uid"]
        return [p for p in self.cluster.store.items(PODS, job["metadata"]["namespace"])
                if owner_uid(p) == uid]

    def _sync(self, key: tuple[str, str]) -> None:
        namespace, name = key
        store = self.cluster.store
        job = store.get(JOBS, namespace, name)
        if job is None:
            return
        pods = self._pods_of(job)
        if self._finished(job):
            self._release(pods, everything=True)
            self._ttl(job)
            return
        if job["metadata"].get("deletionTimestamp") or job["spec"].get("suspend"):
            self._release(pods, everything=True)
            return
        uid = job["metadata"]["uid"]
        counted = self._counted.setdefault(uid, set())
        status = dict(job.get("status") or {})
        target = condition(job, "FailureTarget") or condition(job, "SuccessCriteriaMet")
        if target is not None and target.get("status") == "True":
            # decided already: wait for the remaining pods to end, keep the reason
            unfinished = [p for p in pods if not is_terminal(p)]
            fail = (target["reason"], target["message"]) \
                if target["type"] == "FailureTarget" else None
            self._finish(job, status, pods, unfinished, fail)
            return
        changed = False
        if not status.get("startTime"):
            status["startTime"] = now()
            changed = True
        succeeded = int(status.get("succeeded", 0))
        failed = int(status.get("failed", 0))
        fail_reason: tuple[str, str] | None = None
        for pod in pods:
            pod_uid = pod["metadata"]["uid"]
            finished = is_terminal(pod) or (pod["metadata"].get("deletionTimestamp") and
                                            not pod["spec"].get("nodeName"))
            if pod_uid in counted or not finished:
                continue
            counted.add(pod_uid)
            if pod["status"].get("phase") == "Succeeded":
                succeeded += 1
                continue
            action, rule_message = self._failure_policy(job, pod)
            if action == "Ignore":
                continue
            failed += 1
            if action == "FailJob" and fail_reason is None:
                fail_reason = ("PodFailurePolicy", rule_message)
        active = [p for p in pods if not is_terminal(p) and
                  not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in pods if not is_terminal(p) and
                       p["metadata"].get("deletionTimestamp")]
        spec = job["spec"]
        if fail_reason is None and failed > int(spec.get("backoffLimit", 6)):
            fail_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        deadline = spec.get("activeDeadlineSeconds")
        if fail_reason is None and deadline is not None:
            left = parse_time(status["startTime"]) + int(deadline) - time.time()
            if left <= 0:
                fail_reason = ("DeadlineExceeded", "Job was active longer than specified deadline")
            else:
                self._later(key, left + 0.05, "deadline")
        status["succeeded"], status["failed"] = succeeded, failed
        complete = succeeded >= int(spec.get("completions", 1))
        if fail_reason is not None or complete:
            self._finish(job, status, pods, active + terminating, fail_reason)
            return
        want = min(int(spec.get("parallelism", 1)), int(spec.get("completions", 1)) - succeeded)
        missing = want - len(active)
        if spec.get("podReplacementPolicy") == "Failed":
            missing -= 0
        else:
            missing -= len(terminating)
        if missing > 0:
            wait = self._next_create.get(uid, 0.0) - time.monotonic()
            if failed and wait > 0:
                self._later(key, wait, "backoff")
            else:
                for _ in range(missing):
                    created = self._create_pod(job)
                    if created is not None:
                        active.append(created)
                if failed:
                    base = self.cluster.options.job_backoff_base
                    self._next_create[uid] = time.monotonic() + min(base * 2 ** failed, 360.0)
        ready = sum(1 for p in active if (condition(p, "Ready") or {}).get("status") == "True")
        counts = {"active": len(active), "ready": ready, "terminating": len(terminating)}
        for field, value in counts.items():
            if status.get(field, 0 if field == "active" else None) != value:
                changed = True
            status[field] = value
        if not status["active"]:
            status.pop("active")
        for field in ("succeeded", "failed"):
            if status.get(field) == 0:
                status.pop(field)
            if status.get(field) != (job.get("status") or {}).get(field):
                changed = True
        status.setdefault("uncountedTerminatedPods", {})
        if changed or status != job.get("status"):
            store.mutate(JOBS, namespace, name, lambda j: j.__setitem__("status", status))
        self._release(pods)

    def _failure_policy(self, job: JsonDict, pod: JsonDict) -> tuple[str, str]:
        rules = (job["spec"].get("podFailurePolicy") or {}).get("rules") or []
        meta = pod["metadata"]
        for index, rule in enumerate(rules):
            on_exit = rule.get("onExitCodes")
            if on_exit:
                values = set(on_exit.get("values") or [])
                for status in pod["status"].get("containerStatuses") or []:
                    if on_exit.get("containerName") not in (None, status["name"]):
                        continue
                    code = ((status.get("state") or {}).get("terminated") or {}).get("exitCode")
                    if code is None or code == 0:
                        continue
                    if (code in values) == (on_exit.get("operator") == "In"):
                        return rule["action"], (
                            f"Container {status['name']} for pod {meta['namespace']}/"
                            f"{meta['name']} failed with exit code {code} matching "
                            f"{rule['action']} rule at index {index}")
            for pattern in rule.get("onPodConditions") or []:
                cond = condition(pod, pattern["type"])
                if cond is not None and cond.get("status") == pattern.get("status", "True"):
                    return rule["action"], (
                        f"Pod {meta['namespace']}/{meta['name']} has condition "
                        f"{pattern['type']} matching {rule['action']} rule at index {index}")
        return "Count", ""

    def _create_pod(self, job: JsonDict) -> JsonDict | None:
        meta = job["metadata"]
        template = job["spec"]["template"]
        pod = {
            "metadata": {
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                    "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
                }],
                "finalizers": [TRACKING],
            },
            "spec": template["spec"],
        }
        if not pod["metadata"]["annotations"]:
            pod["metadata"].pop("annotations")
        try:
            created = self.cluster.registry.create(PODS, pod, meta["namespace"])
        except errors.ApiError as error:
            self.cluster.events.record(job, "Warning", "FailedCreate",
                                       f"Error creating: {error}", "job-controller")
            return None
        self.cluster.events.record(job, "Normal", "SuccessfulCreate",
                                   f"Created pod: {created['metadata']['name']}",
                                   "job-controller")
        return created

    def _finish(self, job: JsonDict, status: JsonDict, pods: list[JsonDict],
                unfinished: list[JsonDict], fail: tuple[str, str] | None) -> None:
        meta = job["metadata"]
        for pod in unfinished:
            if not pod["metadata"].get("deletionTimestamp"):
                try:
                    self.cluster.registry.delete(PODS, meta["namespace"],
                                                 pod["metadata"]["name"], {})
                except errors.ApiError:
                    continue
                self.cluster.events.record(job, "Normal", "SuccessfulDelete",
                                           f"Deleted pod: {pod['metadata']['name']}",
                                           "job-controller")
        still = [p for p in unfinished
                 if self.cluster.store.get(PODS, meta["namespace"], p["metadata"]["name"])
                 is not None and not is_terminal(
                     self.cluster.store.get(PODS, meta["namespace"], p["metadata"]["name"])
                     or {})]
        job_now = {"status": {**status}}
        job_now["status"]["conditions"] = list((job.get("status") or {}).get("conditions") or [])
        if fail is not None:
            set_condition(job_now, "FailureTarget", "True", fail[0], fail[1], probe=True)
        else:
            set_condition(job_now, "SuccessCriteriaMet", "True", "CompletionsReached",
                          "Reached expected number of succeeded pods", probe=True)
        final = not still
        if final:
            if fail is not None:
                set_condition(job_now, "Failed", "True", fail[0], fail[1], probe=True)
                self.cluster.events.record(job, "Warning", fail[0], fail[1], "job-controller")
            else:
                set_condition(job_now, "Complete", "True", "CompletionsReached",
                              "Reached expected number of succeeded pods", probe=True)
                job_now["status"]["completionTime"] = now()
                self.cluster.events.record(job, "Normal", "Completed", "Job completed",
                                           "job-controller")
        new_status = job_now["status"]
        new_status.pop("active", None)
        new_status["ready"] = 0
        new_status["terminating"] = len(still)
        for field in ("succeeded", "failed"):
            if not new_status.get(field):
                new_status.pop(field, None)
        new_status.setdefault("uncountedTerminatedPods", {})
        self.cluster.store.mutate(JOBS, meta["namespace"], meta["name"],
                                  lambda j: j.__setitem__("status", new_status))
        self._release(pods, everything=final)

    @staticmethod
    def _finished(job: JsonDict) -> bool:
        return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in (job.get("status") or {}).get("conditions") or [])

    def _release(self, pods: list[JsonDict], everything: bool = False) -> None:
        """Drop the tracking finalizer of pods the job has accounted for."""
        for pod in pods:
            meta = pod["metadata"]
            if TRACKING not in (meta.get("finalizers") or []):
                continue
            done = is_terminal(pod) or (meta.get("deletionTimestamp") and
                                        not pod["spec"].get("nodeName"))
            if not done and not (everything and meta.get("deletionTimestamp")):
                continue

            def drop(p: JsonDict) -> None:
                rest = [f for f in p["metadata"].get("finalizers") or [] if f != TRACKING]
                if rest:
                    p["metadata"]["finalizers"] = rest
                else:
                    p["metadata"].pop("finalizers", None)

            self.cluster.store.mutate(PODS, meta["namespace"], meta["name"], drop)

    def _ttl(self, job: JsonDict) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None or job["metadata"].get("deletionTimestamp"):
            return
        finished_at = None
        for cond in job["status"].get("conditions") or []:
            if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
                finished_at = parse_time(cond["lastTransitionTime"])
        if finished_at is None:
            return
        left = finished_at + int(ttl) - time.time()
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        if left > 0:
            self._later(key, left, "ttl")
            return
        with contextlib.suppress(errors.ApiError):
            self.cluster.registry.delete(JOBS, key[0], key[1],
                                         {"propagationPolicy": "Foreground"})


class GarbageCollector:
    """Deletes dependents of deleted owners; runs the foreground and orphan finalizers."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.sync = Debounced(cluster.loop, self._sync_owner)
        self.orphans = Debounced(cluster.loop, self._collect_orphans)
        cluster.store.listeners.append(self.on_change)

    def on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        if change.type == "DELETED":
            self.orphans(meta["uid"])
            for ref in meta.get("ownerReferences") or []:
                self.sync(ref.get("uid"))
        elif set(meta.get("finalizers") or []) & {"foregroundDeletion", "orphan"} and \
                meta.get("deletionTimestamp"):
            self.sync(meta["uid"])

    def _find(self, uid: str) -> tuple[Any, JsonDict] | None:
        for plural in ("jobs", "pods"):
            rt = RESOURCES[plural]
            for obj in self.cluster.store.items(rt):
                if obj["metadata"]["uid"] == uid:
                    return rt, obj
        return None

    def _sync_owner(self, uid: str) -> None:
        found = self._find(uid)
        if found is None:
            self._collect_orphans(uid)
            return
        rt, owner = found
        meta = owner["metadata"]
        finalizers = meta.get("finalizers") or []
        if not meta.get("deletionTimestamp"):
            return
        dependents = self.cluster.registry.dependents(uid)
        if "orphan" in finalizers:
            for dep_rt, dep in dependents:
                self.cluster.store.mutate(
                    dep_rt, dep["metadata"].get("namespace", ""), dep["metadata"]["name"],
                    lambda d: d["metadata"].__setitem__("ownerReferences", [
                        r for r in d["metadata"].get("ownerReferences") or []
                        if r.get("uid") != uid]) or None)
            self._drop_finalizer(rt, owner, "orphan")
            return
        if "foregroundDeletion" in finalizers:
            blocking = []
            for dep_rt, dep in dependents:
                dep_meta = dep["metadata"]
                if not dep_meta.get("deletionTimestamp"):
                    try:
                        self.cluster.registry.delete(dep_rt, dep_meta.get("namespace", ""),
                                                     dep_meta["name"],
                                                     {"propagationPolicy": "Foreground"})
                    except errors.ApiError:
                        continue
                if self.cluster.store.get(dep_rt, dep_meta.get("namespace", ""),
                                          dep_meta["name"]) is not None:
                    blocking.append(dep)
            if not blocking:
                self._drop_finalizer(rt, owner, "foregroundDeletion")

    def _drop_finalizer(self, rt: Any, owner: JsonDict, name: str) -> None:
        meta = owner["metadata"]

        def drop(obj: JsonDict) -> None:
            rest = [f for f in obj["metadata"].get("finalizers") or [] if f != name]
            if rest:
                obj["metadata"]["finalizers"] = rest
            else:
                obj["metadata"].pop("finalizers", None)

        self.cluster.store.mutate(rt, meta.get("namespace", ""), meta["name"], drop)

    def _collect_orphans(self, uid: str) -> None:
        """The owner is gone: delete dependents whose owners are all gone (background)."""
        for dep_rt, dep in self.cluster.registry.dependents(uid):
            refs = dep["metadata"].get("ownerReferences") or []
            if any(self._find(r.get("uid", "")) is not None for r in refs if r.get("uid") != uid):
                continue
            if dep["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.cluster.registry.delete(dep_rt, dep["metadata"].get("namespace", ""),
                                             dep["metadata"]["name"],
                                             {"propagationPolicy": "Background"})
            except errors.ApiError:
                continue
