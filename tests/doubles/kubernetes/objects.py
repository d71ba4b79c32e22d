"""Defaulting and validation at create time, and resource requests of pods.

Defaults are those the API reference lists for v1 Pod
(https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/), batch/v1 Job
(https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/), v1 Namespace
and v1 Node, plus the DefaultTolerationSeconds admission plugin (not-ready/unreachable
NoExecute tolerations of 300 s) and the Job controller's selector and pod-template labels
(https://kubernetes.io/docs/concepts/workloads/controllers/job/).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import errors
from .quantity import parse_quantity
from .resources import RESOURCES, ResourceType
from .store import JsonDict

RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage", "nvidia.com/gpu")


def container_requests(container: JsonDict) -> dict[str, Decimal]:
    """Requests, each defaulting to its limit as the API server defaults them."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = dict(limits)
    requests.update(resources.get("requests") or {})
    return {name: parse_quantity(value) for name, value in requests.items()}


def pod_requests(pod: JsonDict) -> dict[str, Decimal]:
    """Sum over containers, at least the largest init container, plus pod overhead."""
    total: dict[str, Decimal] = {}
    spec = pod.get("spec", {})
    for container in spec.get("containers") or []:
        for name, value in container_requests(container).items():
            total[name] = total.get(name, Decimal(0)) + value
    for container in spec.get("initContainers") or []:
        for name, value in container_requests(container).items():
            total[name] = max(total.get(name, Decimal(0)), value)
    for name, value in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, Decimal(0)) + parse_quantity(value)
    return total


def qos_class(pod: JsonDict) -> str:
    containers = pod.get("spec", {}).get("containers") or []
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = {**limits, **(resources.get("requests") or {})}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or parse_quantity(requests.get(name, limits[name])) != \
                    parse_quantity(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _validate_containers(rt: ResourceType, name: str, spec: JsonDict, prefix: str) -> None:
    containers = spec.get("containers")
    if not containers:
        raise errors.invalid(rt, name, [(f"{prefix}.containers", "Required value")])
    causes: list[tuple[str, str]] = []
    for index, container in enumerate(containers):
        where = f"{prefix}.containers[{index}]"
        if not container.get("name"):
            causes.append((f"{where}.name", "Required value"))
        if not container.get("image"):
            causes.append((f"{where}.image", "Required value"))
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            for resource, value in (resources.get(part) or {}).items():
                try:
                    parse_quantity(value)
                except ValueError as error:
                    causes.append((f"{where}.resources.{part}[{resource}]", str(error)))
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        for resource, value in requests.items():
            if resource in limits and parse_quantity(value) > parse_quantity(limits[resource]):
                causes.append((
                    f"{where}.resources.requests",
                    f'Invalid value: "{value}": must be less than or equal to {resource} limit '
                    f"of {limits[resource]}",
                ))
        gpu_req, gpu_lim = requests.get("nvidia.com/gpu"), limits.get("nvidia.com/gpu")
        if gpu_req is not None and (gpu_lim is None or parse_quantity(gpu_req) !=
                                    parse_quantity(gpu_lim)):
            causes.append((f"{where}.resources.requests[nvidia.com/gpu]",
                           f'Invalid value: "{gpu_req}": must be equal to nvidia.com/gpu limit '
                           f"of {gpu_lim or 0}"))
        for env_index, env in enumerate(container.get("env") or []):
            if not env.get("name"):
                causes.append((f"{where}.env[{env_index}].name", "Required value"))
    if causes:
        raise errors.invalid(rt, name, causes)


def _default_pod_spec(spec: JsonDict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute")
                   for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300})
    for container in spec.get("containers") or []:
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest and "@" not in tag
                             else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        resources = container.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for resource, value in limits.items():
                requests.setdefault(resource, value)


def prepare_pod(pod: JsonDict) -> None:
    rt = RESOURCES["pods"]
    name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
    spec = pod.setdefault("spec", {})
    _validate_containers(rt, name, spec, "spec")
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        raise errors.invalid(rt, name, [("spec.restartPolicy",
                                         f'Unsupported value: "{policy}": supported values: '
                                         '"Always", "OnFailure", "Never"')])
    _default_pod_spec(spec)
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod)}


def prepare_job(job: JsonDict) -> None:
    rt = RESOURCES["jobs"]
    meta = job["metadata"]
    name = meta.get("name") or meta.get("generateName", "")
    spec = job.setdefault("spec", {})
    template = spec.get("template")
    if not template:
        raise errors.invalid(rt, name, [("spec.template", "Required value")])
    pod_spec = template.setdefault("spec", {})
    _validate_containers(rt, name, pod_spec, "spec.template.spec")
    if pod_spec.get("restartPolicy") not in ("OnFailure", "Never"):
        raise errors.invalid(rt, name, [(
            "spec.template.spec.restartPolicy",
            'Required value: valid values: "OnFailure", "Never"'
            if not pod_spec.get("restartPolicy")
            else f'Unsupported value: "{pod_spec["restartPolicy"]}": supported values: '
            '"OnFailure", "Never"',
        )])
    for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished",
                  "completions", "parallelism"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0 or
                                  (field == "activeDeadlineSeconds" and value == 0)):
            raise errors.invalid(rt, name, [(f"spec.{field}",
                                             f"Invalid value: {value}: must be greater than "
                                             "or equal to 0" if field != "activeDeadlineSeconds"
                                             else f"Invalid value: {value}: must be greater "
                                             "than 0")])
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", None)
    if spec["manualSelector"] is None:
        spec.pop("manualSelector")
    _default_pod_spec(pod_spec)
    job["status"] = {}


def prepare_namespace(namespace: JsonDict) -> None:
    meta = namespace["metadata"]
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
    namespace["spec"] = {"finalizers": ["kubernetes"]}
    namespace["status"] = {"phase": "Active"}


def prepare(rt: ResourceType, obj: JsonDict) -> None:
    """Defaults and validation for a new object (raises ``errors.ApiError`` when invalid)."""
    if rt.plural == "pods":
        prepare_pod(obj)
    elif rt.plural == "jobs":
        prepare_job(obj)
    elif rt.plural == "namespaces":
        prepare_namespace(obj)


def labels_of(obj: JsonDict) -> dict[str, Any]:
    labels: dict[str, Any] = obj.get("metadata", {}).get("labels") or {}
    return labels
