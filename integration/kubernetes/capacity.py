"""The cluster as emulated offers (pure): nodes' allocatable resources, the spot nodes
apart, less what other pods request; or a quota given by options."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...scheduler.core.resources import MIB, Resources
from ..emulated import UNBOUNDED, Capacity, EmulatedNode
from .options import Quota
from .quantity import milli, to_int

JsonDict = dict[str, Any]

GPU = "nvidia.com/gpu"
ON_DEMAND = "kubernetes"
SPOT = "kubernetes-spot"


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as the backend counts it."""

    name: str
    ip: str
    allocatable: Resources
    pods: int
    ready: bool
    schedulable: bool
    spot: bool

    @property
    def usable(self) -> bool:
        return self.ready and self.schedulable


def resources_of(amounts: JsonDict) -> Resources:
    """cpu, memory, ephemeral-storage and GPUs of a resource list (memory and disk in
    whole MiB, rounded down: what is offered must be there)."""
    def get(key: str) -> object:
        return amounts.get(key) or 0
    return Resources(cpus=milli(get("cpu")), mem=to_int(get("memory")) // MIB,
                     disk=to_int(get("ephemeral-storage")) // MIB, gpus=to_int(get(GPU)))


def request_of(amounts: JsonDict) -> Resources:
    """A request in the units jobs are counted in (MiB rounded up)."""
    def get(key: str) -> object:
        return amounts.get(key) or 0
    return Resources(cpus=milli(get("cpu")), mem=-(-to_int(get("memory")) // MIB),
                     disk=-(-to_int(get("ephemeral-storage")) // MIB), gpus=to_int(get(GPU)))


def pod_request(pod: JsonDict) -> Resources:
    """What a pod requests: its containers' requests (limits where a request is missing)."""
    total = Resources()
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        total = total + request_of({**(res.get("limits") or {}), **(res.get("requests") or {})})
    return total


def read_node(node: JsonDict, spot_labels: Iterable[tuple[str, str]]) -> NodeView:
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    labels = meta.get("labels") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    ips = [a.get("address", "") for a in status.get("addresses") or []
           if a.get("type") == "InternalIP"]
    alloc = status.get("allocatable") or {}
    return NodeView(
        name=str(meta.get("name", "")), ip=ips[0] if ips else "",
        allocatable=resources_of(alloc), pods=to_int(alloc.get("pods") or 0), ready=ready,
        schedulable=not (node.get("spec") or {}).get("unschedulable", False),
        spot=any(labels.get(k) == v for k, v in spot_labels))


def _clamp(r: Resources) -> Resources:
    return Resources(max(0, r.cpus), max(0, r.mem), max(0, r.disk), max(0, r.gpus))


def pools(nodes: Sequence[NodeView], others: dict[str, tuple[Resources, int]],
          quota: Quota | None) -> list[EmulatedNode]:
    """The emulated nodes: with a quota, one for the whole cluster, of the quota's size
    (unset dimensions: the cluster's); otherwise one for the on-demand nodes and one
    for the spot nodes (whose offers are preemptible), each the sum of its ready nodes'
    allocatable less what other pods request there (``others``: node -> (requests,
    pods))."""
    out: list[EmulatedNode] = []
    for spot, agent, title in ((False, ON_DEMAND, "on-demand nodes"),
                               (True, SPOT, "spot nodes")):
        members = [n for n in nodes if n.usable and (quota is not None or n.spot == spot)]
        if (quota is not None and spot) or (quota is None and not members):
            continue
        # with a quota and no node to see (listing nodes may be forbidden): its size
        total = Resources() if members else UNBOUNDED
        pods = 0
        for n in members:
            used, count = others.get(n.name, (Resources(), 0))
            total = total + _clamp(n.allocatable - used)
            pods += max(0, n.pods - count)
        if quota is not None:
            total = Resources(
                cpus=total.cpus if quota.cpu_milli is None else quota.cpu_milli,
                mem=total.mem if quota.memory is None else quota.memory // MIB,
                disk=total.disk if quota.ephemeral_storage is None
                else quota.ephemeral_storage // MIB,
                gpus=total.gpus if quota.gpus is None else quota.gpus)
            pods = pods if quota.pods is None else quota.pods
        out.append(EmulatedNode(agent, "the quota" if quota is not None else title, "",
                                Capacity(total, pods or None), preemptible=spot))
    return out


def largest(nodes: Sequence[NodeView], quota: Quota | None) -> Resources:
    """The largest pod any one usable node can hold (within the quota); without a
    node to see, the quota's."""
    usable = [n.allocatable for n in nodes if n.usable]
    top = Resources() if usable else UNBOUNDED
    for r in usable:
        top = top.max(r)
    if quota is not None:
        top = Resources(
            cpus=top.cpus if quota.cpu_milli is None else min(top.cpus, quota.cpu_milli),
            mem=top.mem if quota.memory is None else min(top.mem, quota.memory // MIB),
            disk=top.disk if quota.ephemeral_storage is None
            else min(top.disk, quota.ephemeral_storage // MIB),
            gpus=top.gpus if quota.gpus is None else min(top.gpus, quota.gpus))
    return top
