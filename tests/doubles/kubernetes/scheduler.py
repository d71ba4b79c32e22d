"""A pretend kube-scheduler: filters nodes the way the default plugins do and explains a
pod that fits nowhere with the scheduler's own message.

Follows "Kubernetes Scheduler", "Assigning Pods to Nodes" (nodeSelector, node affinity,
inter-pod anti-affinity), "Taints and Tolerations" and "Resource Management for Pods and
Containers" (https://kubernetes.io/docs/concepts/scheduling-eviction/). Filters run per node
in the default plugin order (NodeUnschedulable, TaintToleration, NodeAffinity,
NodeResourcesFit, InterPodAffinity) and a node is rejected by the first that fails; the
message counts reasons over nodes, sorted, as ``0/3 nodes are available: 3 Insufficient
memory.``
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from .objects import pod_requests
from .quantity import parse_quantity
from .selectors import match_label_selector_object
from .store import JsonDict

TERMINAL = ("Succeeded", "Failed")


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        operator = toleration.get("operator") or "Equal"
        key = toleration.get("key") or ""
        if operator == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == \
                (taint.get("value") or ""):
            return True
    return False


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expression["key"]
    values = expression.get("values") or []
    operator = expression["operator"]
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt"):
        try:
            have, want = int(labels[key]), int(values[0])
        except (KeyError, ValueError, IndexError):
            return False
        return have > want if operator == "Gt" else have < want
    return False


def _term_matches(term: Mapping[str, Any], node: JsonDict) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    expressions = term.get("matchExpressions") or []
    field_expressions = term.get("matchFields") or []
    if not expressions and not field_expressions:
        return False  # an empty term matches no node
    return all(_expression_matches(e, labels) for e in expressions) and \
        all(_expression_matches(e, fields) for e in field_expressions)


def matches_node_affinity(pod: JsonDict, node: JsonDict) -> bool:
    spec = pod["spec"]
    labels = node["metadata"].get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if required:
        return any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])
    return True


def preferred_score(pod: JsonDict, node: JsonDict) -> int:
    preferred = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution") or []
    return sum(int(p.get("weight", 0)) for p in preferred
               if _term_matches(p.get("preference") or {}, node))


def _pod_affinity_ok(pod: JsonDict, node: JsonDict, nodes: Mapping[str, JsonDict],
                     placed: Iterable[JsonDict], kind: str) -> bool:
    terms = ((pod["spec"].get("affinity") or {}).get(kind) or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or []
    if not terms:
        return True
    placed = list(placed)
    for term in terms:
        key = term.get("topologyKey", "kubernetes.io/hostname")
        domain = (node["metadata"].get("labels") or {}).get(key)
        selector = match_label_selector_object(term.get("labelSelector"))
        namespaces = term.get("namespaces") or [pod["metadata"]["namespace"]]
        found = False
        for other in placed:
            other_node = nodes.get(other["spec"].get("nodeName", ""))
            if other_node is None or other["metadata"]["namespace"] not in namespaces:
                continue
            if (other_node["metadata"].get("labels") or {}).get(key) != domain:
                continue
            if selector(other["metadata"].get("labels") or {}):
                found = True
                break
        if kind == "podAntiAffinity" and found:
            return False
        if kind == "podAffinity" and not found:
            return False
    return True


Usage = dict[str, tuple[dict[str, Decimal], int]]


def node_usage(node_name: str, pods: Iterable[JsonDict]) -> tuple[dict[str, Decimal], int]:
    used: dict[str, Decimal] = {}
    count = 0
    for pod in pods:
        if pod["spec"].get("nodeName") != node_name or \
                pod.get("status", {}).get("phase") in TERMINAL:
            continue
        count += 1
        for name, value in pod_requests(pod).items():
            used[name] = used.get(name, Decimal(0)) + value
    return used, count


def usage_by_node(pods: Iterable[JsonDict],
                  requests_of: Callable[[JsonDict], dict[str, Decimal]] = pod_requests) -> Usage:
    """What the non-terminal pods bound to each node request, and how many they are."""
    usage: Usage = {}
    for pod in pods:
        node = pod["spec"].get("nodeName")
        if not node or pod.get("status", {}).get("phase") in TERMINAL:
            continue
        used, count = usage.get(node, ({}, 0))
        for name, value in requests_of(pod).items():
            used[name] = used.get(name, Decimal(0)) + value
        usage[node] = (used, count + 1)
    return usage


def add_usage(usage: Usage, node: str, requests: dict[str, Decimal]) -> None:
    used, count = usage.get(node, ({}, 0))
    for name, value in requests.items():
        used[name] = used.get(name, Decimal(0)) + value
    usage[node] = (used, count + 1)


def filter_node(pod: JsonDict, node: JsonDict, nodes: Mapping[str, JsonDict],
                bound: list[JsonDict], usage: Usage | None = None,
                requests: dict[str, Decimal] | None = None) -> list[str]:
    """Reasons this node cannot take the pod (empty when it fits)."""
    tolerations = pod["spec"].get("tolerations") or []
    if node["spec"].get("unschedulable") and not tolerates(
            tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
        return ["node(s) were unschedulable"]
    for taint in node["spec"].get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                not tolerates(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
    if not matches_node_affinity(pod, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    allocatable = node.get("status", {}).get("allocatable") or {}
    name = node["metadata"]["name"]
    used, count = (usage.get(name, ({}, 0)) if usage is not None
                   else node_usage(name, bound))
    reasons = []
    if count + 1 > int(parse_quantity(allocatable.get("pods", "110"))):
        reasons.append("Too many pods")
    wanted = requests if requests is not None else pod_requests(pod)
    for resource, value in sorted(wanted.items()):
        if value <= 0:
            continue
        have = parse_quantity(allocatable[resource]) if resource in allocatable else Decimal(0)
        if used.get(resource, Decimal(0)) + value > have:
            reasons.append(f"Insufficient {resource}")
    if reasons:
        return reasons
    if not _pod_affinity_ok(pod, node, nodes, bound, "podAffinity"):
        return ["node(s) didn't match pod affinity rules"]
    if not _pod_affinity_ok(pod, node, nodes, bound, "podAntiAffinity"):
        return ["node(s) didn't match pod anti-affinity rules"]
    return []


def unschedulable_message(node_count: int, reasons: Counter[str]) -> str:
    if node_count == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"0/{node_count} nodes are available: {', '.join(parts)}."


def pick_node(pod: JsonDict, nodes: list[JsonDict], bound: list[JsonDict],
              usage: Usage | None = None,
              requests: dict[str, Decimal] | None = None) -> tuple[str | None, str]:
    """(node name, "") or (None, the FailedScheduling message)."""
    by_name = {n["metadata"]["name"]: n for n in nodes}
    if usage is None:
        usage = usage_by_node(bound)
    reasons: Counter[str] = Counter()
    fits: list[tuple[int, Decimal, str]] = []
    for node in nodes:
        failed = filter_node(pod, node, by_name, bound, usage, requests)
        if failed:
            reasons.update(failed)
            continue
        allocatable = node.get("status", {}).get("allocatable") or {}
        used, _ = usage.get(node["metadata"]["name"], ({}, 0))
        load = Decimal(0)
        for resource in ("cpu", "memory"):
            have = parse_quantity(allocatable.get(resource, "0"))
            if have > 0:
                load += used.get(resource, Decimal(0)) / have
        fits.append((-preferred_score(pod, node), load, node["metadata"]["name"]))
    if not fits:
        return None, unschedulable_message(len(nodes), reasons)
    return min(fits)[2], ""
