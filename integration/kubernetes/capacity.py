"""The cluster as emulated offers (pure): nodes' allocatable resources, the spot nodes
apart, less what other pods request; or a quota given by options."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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


def _d(value: object) -> JsonDict:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[JsonDict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _amount(amounts: JsonDict, key: str, read: Callable[[object], int]) -> int:
    """One quantity of a resource list; 0 if absent or not a quantity."""
    try:
        return read(amounts.get(key) or 0)
    except ValueError:
        return 0


def resources_of(amounts: JsonDict) -> Resources:
    """cpu, memory, ephemeral-storage and GPUs of a resource list (memory and disk in
    whole MiB, rounded down: what is offered must be there)."""
    return Resources(cpus=_amount(amounts, "cpu", milli),
                     mem=_amount(amounts, "memory", to_int) // MIB,
                     disk=_amount(amounts, "ephemeral-storage", to_int) // MIB,
                     gpus=_amount(amounts, GPU, to_int))


def request_of(amounts: JsonDict) -> Resources:
    """A request in the units jobs are counted in (MiB rounded up)."""
    return Resources(cpus=_amount(amounts, "cpu", milli),
                     mem=-(-_amount(amounts, "memory", to_int) // MIB),
                     disk=-(-_amount(amounts, "ephemeral-storage", to_int) // MIB),
                     gpus=_amount(amounts, GPU, to_int))


def pod_request(pod: JsonDict) -> Resources:
    """What a pod requests: its containers' requests (limits where a request is missing)."""
    total = Resources()
    for c in _dicts(_d(pod.get("spec")).get("containers")):
        res = _d(c.get("resources"))
        total = total + request_of({**_d(res.get("limits")), **_d(res.get("requests"))})
    return total


def read_node(node: JsonDict, spot_labels: Iterable[tuple[str, str]]) -> NodeView:
    meta = _d(node.get("metadata"))
    status = _d(node.get("status"))
    labels = _d(meta.get("labels"))
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in _dicts(status.get("conditions")))
    ips = [str(a.get("address", "")) for a in _dicts(status.get("addresses"))
           if a.get("type") == "InternalIP"]
    alloc = _d(status.get("allocatable"))
    return NodeView(
        name=str(meta.get("name", "")), ip=ips[0] if ips else "",
        allocatable=resources_of(alloc), pods=_amount(alloc, "pods", to_int), ready=ready,
        schedulable=_d(node.get("spec")).get("unschedulable") is not True,
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
