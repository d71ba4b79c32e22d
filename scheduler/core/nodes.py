"""The node registry behind getNodes, nodeInUse and ignoreNode."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..contract import NodeInfo
from .events import NodeLoad, Offer
from .resources import EMPTY, MIB, Resources


@dataclass(slots=True)
class Node:
    agent_id: str
    hostname: str
    ip: str
    preemptible: bool = False
    #: largest resources seen free at once (a lower bound of the node's size)
    largest_offer: Resources = EMPTY
    #: the same, less what our executor takes before it runs there: what jobs can get
    largest_usable: Resources = EMPTY
    load: NodeLoad | None = None
    last_seen: float = 0.0
    #: epoch seconds of announced maintenance, if any
    unavailable_at: float | None = None
    running: dict[int, Resources] = field(default_factory=dict)  # job id -> resources
    lost: bool = False


class NodeRegistry:
    """Nodes seen in offers and stats messages; which are ignored; what runs where.

    Addresses given to ignoreNode match a node's hostname or IP (Toil compared
    hostnames with IPs and so never matched), or its agent id.
    """

    #: how far back getSchedulingStatusMessage looks at offers
    RECENT_SECONDS = 60.0
    BUCKET_SECONDS = 10.0

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.ignored: set[str] = set()
        #: agent ids the node filter rejects (its last verdict on each)
        self.filtered: set[str] = set()
        # per agent: the largest offer (per resource) in each 10 s bucket of the window
        self._recent: dict[str, deque[tuple[int, Resources]]] = {}

    # -- observation
    def observe_offer(self, offer: Offer, now: float) -> Node:
        node = self._node(offer.agent_id, offer.hostname, offer.ip, now)
        node.preemptible = offer.preemptible
        node.largest_offer = node.largest_offer.max(offer.resources)
        overhead = offer.executor_overhead
        usable = (offer.resources if overhead is EMPTY
                  else offer.resources - overhead).max(EMPTY)
        node.largest_usable = node.largest_usable.max(usable)
        node.unavailable_at = offer.unavailable_at
        node.lost = False
        bucket = int(now // self.BUCKET_SECONDS)
        buckets = self._recent.setdefault(offer.agent_id, deque())
        if buckets and buckets[-1][0] == bucket:
            buckets[-1] = (bucket, buckets[-1][1].max(usable))
        else:
            buckets.append((bucket, usable))
            while buckets[0][0] * self.BUCKET_SECONDS < now - self.RECENT_SECONDS - \
                    self.BUCKET_SECONDS:
                buckets.popleft()
        return node

    def observe_load(self, agent_id: str, hostname: str, ip: str, load: NodeLoad,
                     now: float) -> None:
        self._node(agent_id, hostname, ip, now).load = load

    def _node(self, agent_id: str, hostname: str, ip: str, now: float) -> Node:
        node = self.nodes.get(agent_id)
        if node is None:
            node = self.nodes[agent_id] = Node(agent_id, hostname, ip)
        if hostname:
            node.hostname = hostname
        if ip:
            node.ip = ip
        node.last_seen = now
        return node

    # -- placement
    def task_started(self, agent_id: str, job_id: int, resources: Resources) -> None:
        node = self.nodes.get(agent_id)
        if node is not None:
            node.running[job_id] = resources

    def task_ended(self, agent_id: str | None, job_id: int) -> None:
        node = self.nodes.get(agent_id) if agent_id else None
        if node is not None:
            node.running.pop(job_id, None)

    def mark_lost(self, agent_id: str) -> None:
        node = self.nodes.get(agent_id)
        if node is not None:
            node.lost = True
            node.running.clear()

    # -- ignoring
    def ignore(self, address: str) -> None:
        self.ignored.add(address)

    def unignore(self, address: str) -> None:
        self.ignored.discard(address)

    def is_ignored(self, agent_id: str, hostname: str, ip: str) -> bool:
        ig = self.ignored
        return bool(ig) and (agent_id in ig or hostname in ig or ip in ig)

    def is_draining(self, node: Node, now: float, window: float) -> bool:
        return node.unavailable_at is not None and node.unavailable_at <= now + window

    # -- queries
    def matching(self, address: str) -> list[Node]:
        return [n for n in self.nodes.values()
                if address in (n.ip, n.hostname, n.agent_id)]

    def in_use(self, address: str) -> bool:
        return any(n.running for n in self.matching(address))

    def recent_offers(self, now: float) -> list[tuple[str, Resources]]:
        """(agent id, largest resources offered for jobs) per agent in the recent window
        (what our executor takes on a node it does not yet run on left out)."""
        oldest = int((now - self.RECENT_SECONDS) // self.BUCKET_SECONDS)
        out: list[tuple[str, Resources]] = []
        for agent_id, buckets in self._recent.items():
            top: Resources | None = None
            for bucket, res in buckets:
                if bucket >= oldest:
                    top = res if top is None else top.max(res)
            if top is not None:
                out.append((agent_id, top))
        return out

    def node_infos(self, preemptible: bool | None, timeout: float | None,
                   now: float) -> dict[str, NodeInfo]:
        """getNodes: address -> NodeInfo of the nodes seen within ``timeout`` seconds
        (None: ever) and not lost."""
        return {address: info for address, info, _ in self.node_entries(preemptible, timeout,
                                                                          now)}

    def node_entries(self, preemptible: bool | None, timeout: float | None,
                     now: float) -> list[tuple[str, NodeInfo, Node]]:
        """(address, NodeInfo, Node) of the nodes node_infos lists."""
        out: list[tuple[str, NodeInfo, Node]] = []
        for node in self.nodes.values():
            if node.lost or (timeout is not None and now - node.last_seen > timeout):
                continue
            if preemptible is not None and node.preemptible != preemptible:
                continue
            out.append((node.ip or node.hostname, self.info(node), node))
        return out

    @staticmethod
    def info(node: Node) -> NodeInfo:
        """What getNodes says of one node."""
        requested = Resources()
        for res in node.running.values():
            requested = requested + res
        load = node.load
        cores_total = load.cores_total if load else node.largest_offer.cores
        mem_total = load.mem_total if load else node.largest_offer.mem * MIB
        return NodeInfo(
            coresUsed=load.cpu_load if load else 0.0,
            memoryUsed=(load.mem_used / load.mem_total) if load and load.mem_total else 0.0,
            coresTotal=cores_total,
            memoryTotal=mem_total,
            requestedCores=requested.cores,
            requestedMemory=requested.mem * MIB,
            workers=len(node.running),
        )
