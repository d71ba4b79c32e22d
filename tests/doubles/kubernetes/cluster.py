"""The cluster behind the API: nodes, control-plane loops, kubelet, and the fault hooks
(evict a pod, preempt it, lose a node) that produce the ``DisruptionTarget`` pod condition as
described in "Pod disruption conditions"
(https://kubernetes.io/docs/concepts/workloads/pods/disruptions/#pod-disruption-conditions).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import errors
from .controllers import GarbageCollector, JobController, SchedulerLoop, set_condition
from .events import EventRecorder
from .kubelet import Kubelet
from .objects import RESOURCE_NAMES
from .quantity import parse_quantity
from .registry import Registry
from .resources import RESOURCES
from .store import JsonDict, Store, clone, now

NODES = RESOURCES["nodes"]
PODS = RESOURCES["pods"]
DISRUPTIONS = {
    "EvictionByEvictionAPI": "Eviction API: evicting",
    "PreemptionByScheduler": "default-scheduler: preempting to accommodate a higher priority pod",
    "DeletionByTaintManager": "Taint manager: deleting due to NoExecute taint",
    "DeletionByPodGC": "PodGC: node no longer exists",
    "TerminationByKubelet": "The node was low on resource: memory.",
}


@dataclass
class NodeSpec:
    """One node: allocatable resources (quantities), labels and taints."""

    name: str | None = None
    cpu: str = "4"
    memory: str = "8Gi"
    ephemeral_storage: str = "100Gi"
    gpu: int = 0
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ClusterOptions:
    work_dir: Path
    bad_images: tuple[str, ...] = ("registry.invalid/no-such-image",)
    job_backoff_base: float = 10.0
    history_limit: int = 10000
    memory_poll_interval: float = 0.1
    container_create_delay: float = 0.0
    image_pull_backoff_delay: float = 0.3
    config_retry_interval: float = 0.5
    inherit_environment: bool = True
    kubernetes_version: str = "v1.32.0"

    def is_bad_image(self, image: str) -> bool:
        bare = image.split("@", maxsplit=1)[0]
        if ":" in bare.rsplit("/", 1)[-1]:
            bare = bare.rsplit(":", 1)[0]
        return image in self.bad_images or bare in self.bad_images


class Cluster:
    def __init__(self, loop: asyncio.AbstractEventLoop, options: ClusterOptions) -> None:
        self.loop = loop
        self.options = options
        self.port = 0
        self.store = Store(options.history_limit)
        self.registry = Registry(self.store)
        self.events = EventRecorder(self.store)
        self.kubelet = Kubelet(self)
        self.scheduler = SchedulerLoop(self)
        self.jobs = JobController(self)
        self.gc = GarbageCollector(self)
        self.requests: Counter[tuple[str, str]] = Counter()
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.registry.create(RESOURCES["namespaces"], {"metadata": {"name": name}})
            self.registry.create(RESOURCES["serviceaccounts"],
                                 {"metadata": {"name": "default", "namespace": name}})

    # -- nodes ----------------------------------------------------------------------------------
    def add_node(self, spec: NodeSpec, index: int) -> JsonDict:
        name = spec.name or f"node-{index}"
        for value in (spec.cpu, spec.memory, spec.ephemeral_storage):
            parse_quantity(value)
        capacity = {"cpu": spec.cpu, "memory": spec.memory,
                    "ephemeral-storage": spec.ephemeral_storage, "pods": str(spec.pods)}
        if spec.gpu:
            capacity["nvidia.com/gpu"] = str(spec.gpu)
        stamp = now()
        node: JsonDict = {
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64", **spec.labels},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
            "status": {
                "capacity": capacity,
                "allocatable": dict(capacity),
                "conditions": [
                    self._node_condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                                         "kubelet has sufficient memory available", stamp),
                    self._node_condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                                         "kubelet has no disk pressure", stamp),
                    self._node_condition("PIDPressure", "False", "KubeletHasSufficientPID",
                                         "kubelet has sufficient PID available", stamp),
                    self._node_condition("Ready", "True", "KubeletReady",
                                         "kubelet is posting ready status", stamp),
                ],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                              {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": "", "systemUUID": "", "bootID": "",
                    "kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.22",
                    "kubeletVersion": self.options.kubernetes_version,
                    "kubeProxyVersion": self.options.kubernetes_version,
                    "operatingSystem": "linux", "architecture": "amd64",
                },
            },
        }
        if spec.taints:
            node["spec"]["taints"] = clone(spec.taints)
        return self.registry.create(NODES, node)

    @staticmethod
    def _node_condition(kind: str, status: str, reason: str, message: str,
                        stamp: str) -> JsonDict:
        return {"type": kind, "status": status, "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp, "reason": reason, "message": message}

    def allocatable(self) -> dict[str, dict[str, str]]:
        return {n["metadata"]["name"]: {k: v for k, v in n["status"]["allocatable"].items()
                                        if k in (*RESOURCE_NAMES, "pods")}
                for n in self.store.items(NODES)}

    # -- fault hooks ----------------------------------------------------------------------------
    def disrupt_pod(self, namespace: str, name: str, reason: str = "EvictionByEvictionAPI",
                    grace: int | None = None) -> JsonDict:
        """Add the DisruptionTarget condition, then delete the pod gracefully."""
        if reason not in DISRUPTIONS:
            raise ValueError(f"unknown disruption reason {reason!r}; one of {sorted(DISRUPTIONS)}")
        self.store.require(PODS, namespace, name)
        self.store.mutate(PODS, namespace, name, lambda p: set_condition(
            p, "DisruptionTarget", "True", reason, DISRUPTIONS[reason]))
        options = {} if grace is None else {"gracePeriodSeconds": grace}
        if reason == "PreemptionByScheduler":
            pod = self.store.require(PODS, namespace, name)
            self.events.record(pod, "Normal", "Preempted",
                               "Preempted by pod on node " + str(pod["spec"].get("nodeName")),
                               "default-scheduler")
        last, _ = self.registry.delete(PODS, namespace, name, options)
        return last

    def lose_node(self, node: str, delete_node: bool = False) -> list[str]:
        """The node stops: its processes die, it turns NotReady with the unreachable taints, and
        its pods are marked (DisruptionTarget DeletionByTaintManager, Failed,
        ContainerStatusUnknown) and deleted. Returns the pods' names."""
        current = self.store.require(NODES, "", node)
        lost = self.kubelet.kill_node(node)
        stamp = now()

        def unreachable(obj: JsonDict) -> None:
            for cond in obj["status"]["conditions"]:
                cond.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                             "message": "Kubelet stopped posting node status.",
                             "lastTransitionTime": stamp})
            taints = [t for t in obj["spec"].get("taints") or []
                      if not t["key"].startswith("node.kubernetes.io/unreachable")]
            taints += [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule",
                        "timeAdded": stamp},
                       {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
                        "timeAdded": stamp}]
            obj["spec"]["taints"] = taints

        self.store.mutate(NODES, "", node, unreachable)
        del current
        names = []
        for pod in self.store.items(PODS):
            if pod["spec"].get("nodeName") != node:
                continue
            meta = pod["metadata"]
            names.append(meta["name"])

            def mark(p: JsonDict) -> None:
                earlier = [c for c in p["status"].get("conditions") or []
                           if c["type"] == "DisruptionTarget" and c["status"] == "True"]
                if not earlier:  # an earlier disruption keeps its reason
                    set_condition(p, "DisruptionTarget", "True", "DeletionByTaintManager",
                                  DISRUPTIONS["DeletionByTaintManager"])
                if p["status"].get("phase") in ("Succeeded", "Failed"):
                    return
                p["status"]["phase"] = "Failed"
                for status in p["status"].get("containerStatuses") or []:
                    if "terminated" in status.get("state", {}):
                        continue
                    status["state"] = {"terminated": {
                        "exitCode": 137, "reason": "ContainerStatusUnknown",
                        "message": "The container could not be located when the pod was "
                                   "terminated", "startedAt": None, "finishedAt": None}}
                    status["ready"] = False
                    status["started"] = False
                set_condition(p, "Ready", "False", "PodCompleted")
                set_condition(p, "ContainersReady", "False", "PodCompleted")

            self.store.mutate(PODS, meta["namespace"], meta["name"], mark)
            self.events.record(pod, "Normal", "TaintManagerEviction",
                               f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
                               "taint-eviction-controller")
            with contextlib.suppress(errors.ApiError):
                self.registry.delete(PODS, meta["namespace"], meta["name"], {})
        del lost
        if delete_node:
            self.registry.delete(NODES, "", node, {})
        return names

    def count(self, verb: str, resource: str) -> None:
        self.requests[(verb, resource)] += 1

    def run_soon(self, fn: Callable[[], Any]) -> None:
        self.loop.call_soon(fn)
