"""Options of the kubernetes backend and the parsers of their values (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...scheduler.options import (
    CommonOptions,
    OptionError,
    opt,
    parse_count,
    parse_path,
    parse_seconds,
    parse_str,
)
from .quantity import milli, to_int

JsonDict = dict[str, Any]

#: labels that mark spot (preemptible) nodes on the common clouds and autoscalers
SPOT_LABELS = (
    ("node.kubernetes.io/lifecycle", "spot"),
    ("cloud.google.com/gke-spot", "true"),
    ("cloud.google.com/gke-preemptible", "true"),
    ("eks.amazonaws.com/capacityType", "SPOT"),
    ("karpenter.sh/capacity-type", "spot"),
    ("kubernetes.azure.com/scalesetpriority", "spot"),
)
#: the taints those clouds put on spot nodes (GKE and AKS taint them; EKS does not)
SPOT_TOLERATIONS: tuple[JsonDict, ...] = (
    {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true",
     "effect": "NoSchedule"},
    {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
     "effect": "NoSchedule"},
)

# RFC 1123 label and DNS subdomain (names), and the label-key syntax
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"({_DNS_LABEL}(\.{_DNS_LABEL})*/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_QUOTA_KEYS = ("cpu", "memory", "ephemeral-storage", "nvidia.com/gpu", "pods")
_VOLUME_KINDS = ("pvc", "hostPath")


@dataclass(frozen=True, slots=True)
class Volume:
    """A PersistentVolumeClaim or a host path mounted into every job's container."""

    kind: str  #: "pvc" or "hostPath"
    source: str  #: the claim's name, or the path on the node
    mount_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Quota:
    """What this run's pods may request at once; None: not limited by the quota."""

    cpu_milli: int | None = None
    memory: int | None = None  #: bytes
    ephemeral_storage: int | None = None  #: bytes
    gpus: int | None = None
    pods: int | None = None


def parse_name(value: Any) -> str:
    text = parse_str(value)
    if not _NAME.fullmatch(text) or len(text) > 253:
        raise ValueError("expected a Kubernetes name: lower-case letters, digits, '-' and "
                         "'.', starting and ending with a letter or digit")
    return text


def parse_names(value: Any) -> tuple[str, ...]:
    """``name,name2`` (or a list) as Kubernetes names."""
    items = value if isinstance(value, list | tuple) else parse_str(value).split(",")
    return tuple(parse_name(str(item).strip()) for item in items if str(item).strip())


def parse_labels(value: Any) -> tuple[tuple[str, str], ...]:
    """``key=value,key2=value2`` (or a mapping) as label pairs."""
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        text = parse_str(value).strip()
        pairs = []
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, sep, val = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not key=value; expected labels as "
                                 "key=value,key2=value2")
            pairs.append((key.strip(), val.strip()))
    for key, val in pairs:
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a label key: expected [prefix/]name of letters, "
                             "digits, '-', '_' and '.'")
        if not _LABEL_VALUE.fullmatch(val):
            raise ValueError(f"{val!r} is not a label value: expected up to 63 letters, "
                             "digits, '-', '_' and '.'")
    return tuple(pairs)


def _json(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(f"expected {what} in JSON: {e}") from None


def parse_tolerations(value: Any) -> tuple[JsonDict, ...]:
    """A JSON list of tolerations as the pod spec takes them."""
    data = _json(value, "a list of tolerations")
    if not isinstance(data, list):
        raise ValueError('expected a JSON list of tolerations, like [{"key": "gpu", '
                         '"operator": "Exists", "effect": "NoSchedule"}]')
    out: list[JsonDict] = []
    for item in data:
        if not isinstance(item, dict) or not set(item) <= _TOLERATION_KEYS:
            raise ValueError(f"{json.dumps(item)} is not a toleration: expected an object "
                             f"with keys among {', '.join(sorted(_TOLERATION_KEYS))}")
        if item.get("operator", "Equal") not in ("Equal", "Exists"):
            raise ValueError(f"toleration operator {item['operator']!r}: expected Equal or "
                             "Exists")
        if item.get("effect") not in (None, "", *_EFFECTS):
            raise ValueError(f"toleration effect {item['effect']!r}: expected one of "
                             f"{', '.join(_EFFECTS)}")
        out.append(dict(item))
    return tuple(out)


def parse_security_context(value: Any) -> JsonDict:
    """A container securityContext as a JSON object."""
    data = _json(value, "a securityContext object")
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object, like {"runAsUser": 1000, '
                         '"allowPrivilegeEscalation": false}')
    return dict(data)


def parse_volumes(value: Any) -> tuple[Volume, ...]:
    """``pvc:CLAIM:/mount[:ro],hostPath:/node/path:/mount[:ro]``."""
    out: list[Volume] = []
    for item in filter(None, (p.strip() for p in parse_str(value).split(","))):
        parts = item.split(":")
        read_only = len(parts) == 4 and parts[3] == "ro"
        if len(parts) not in (3, 4) or (len(parts) == 4 and not read_only) \
                or parts[0] not in _VOLUME_KINDS or not parts[1] \
                or not parts[2].startswith("/"):
            raise ValueError(f"{item!r}: expected pvc:CLAIM:/mount/path or "
                             "hostPath:/node/path:/mount/path, with :ro for read-only")
        if parts[0] == "pvc":
            parse_name(parts[1])
        elif not parts[1].startswith("/"):
            raise ValueError(f"{item!r}: a hostPath must be absolute")
        out.append(Volume(parts[0], parts[1], parts[2], read_only))
    return tuple(out)


def parse_quota(value: Any) -> Quota:
    """``cpu=8,memory=32Gi,ephemeral-storage=100Gi,nvidia.com/gpu=2,pods=50``."""
    fields: dict[str, int] = {}
    items = value.items() if isinstance(value, Mapping) else (
        item.partition("=")[::2] for item in parse_str(value).split(",") if item.strip())
    for raw, amount in items:
        key = str(raw).strip()
        if key not in _QUOTA_KEYS:
            raise ValueError(f"unknown quota resource {key!r}: expected "
                             f"{', '.join(_QUOTA_KEYS)} as key=quantity")
        fields[key] = milli(amount) if key == "cpu" else to_int(amount)
    if not fields:
        raise ValueError("expected resources as key=quantity, like cpu=8,memory=32Gi")
    return Quota(cpu_milli=fields.get("cpu"), memory=fields.get("memory"),
                 ephemeral_storage=fields.get("ephemeral-storage"),
                 gpus=fields.get("nvidia.com/gpu"), pods=fields.get("pods"))


def parse_positive_int(value: Any) -> int:
    n = parse_count(value)
    if n < 1:
        raise ValueError("expected a whole number >= 1")
    return n


@dataclass(frozen=True)
class KubernetesOptions(CommonOptions):
    """Options of the kubernetes backend. The cluster is found the standard way: the
    in-cluster service account, else $KUBECONFIG or ~/.kube/config."""

    kubernetes_config: str | None = opt(
        "kubernetesConfig", parse=parse_path, metavar="FILE",
        help="kubeconfig file (default: the pod's service account in a cluster, else "
             "$KUBECONFIG, else ~/.kube/config)")
    kubernetes_context: str | None = opt(
        "kubernetesContext", parse=parse_str, metavar="NAME",
        help="kubeconfig context to use (default: its current context)")
    kubernetes_namespace: str | None = opt(
        "kubernetesNamespace", parse=parse_name, metavar="NAME",
        help="namespace of the jobs (default: the context's, else the service account's)")
    kubernetes_image: str | None = opt(
        "kubernetesImage", parse=parse_str, metavar="IMAGE",
        help="container image every job runs in (required); it must have /bin/sh and "
             "whatever the jobs run")
    kubernetes_service_account: str | None = opt(
        "kubernetesServiceAccount", parse=parse_name, metavar="NAME",
        help="service account of the jobs' pods (default: the namespace's default)")
    kubernetes_node_selector: tuple[tuple[str, str], ...] = opt(
        "kubernetesNodeSelector", parse=parse_labels, default=(), metavar="K=V,...",
        help="node labels the jobs' pods require, as key=value,key2=value2")
    kubernetes_tolerations: tuple[JsonDict, ...] = opt(
        "kubernetesTolerations", parse=parse_tolerations, default=(), metavar="JSON",
        help="tolerations of the jobs' pods, as a JSON list")
    kubernetes_security_context: JsonDict | None = opt(  # noqa: RUF009 (a field with option metadata)
        "kubernetesSecurityContext", parse=parse_security_context, metavar="JSON",
        help="securityContext of the jobs' containers, as a JSON object")
    kubernetes_env_secrets: tuple[str, ...] = opt(
        "kubernetesEnvSecrets", parse=parse_names, default=(), metavar="NAME,...",
        help="Secrets in the namespace whose keys become variables of every job (envFrom), "
             "so that credentials need not be in the Jobs' specs; setEnv and the job's own "
             "variables win")
    kubernetes_volumes: tuple[Volume, ...] = opt(
        "kubernetesVolumes", parse=parse_volumes, default=(), metavar="SPEC,...",
        help="volumes mounted into every job: pvc:CLAIM:/mount or hostPath:/path:/mount "
             "(append :ro for read-only), comma-separated")
    kubernetes_working_dir: str | None = opt(
        "kubernetesWorkingDir", parse=parse_str, metavar="DIR",
        help="working directory of the jobs' containers (default: the image's)")
    kubernetes_ttl_after_finished: int = opt(
        "kubernetesTtlSecondsAfterFinished", parse=parse_count, default=600,
        metavar="SECONDS",
        help="the cluster deletes a finished Job and its pod this long after it ends")
    kubernetes_unschedulable_timeout: float = opt(
        "kubernetesUnschedulableTimeout", parse=parse_seconds, default=600.0,
        metavar="SECONDS",
        help="a job whose Job makes no pod (quota, admission), or whose pod the scheduler "
             "cannot place while none of the run's pods runs, for this long fails, "
             "quoting why")
    kubernetes_spot_node_labels: tuple[tuple[str, str], ...] = opt(
        "kubernetesSpotNodeLabels", parse=parse_labels, default=SPOT_LABELS,
        metavar="K=V,...",
        help="a node with any of these labels is a spot node: preemptible jobs may go "
             "there, the others never do")
    kubernetes_spot_tolerations: tuple[JsonDict, ...] = opt(
        "kubernetesSpotTolerations", parse=parse_tolerations, default=SPOT_TOLERATIONS,
        metavar="JSON",
        help="tolerations preemptible jobs get for the spot nodes' taints, as a JSON list")
    kubernetes_quota: Quota | None = opt(  # noqa: RUF009 (a field with option metadata)
        "kubernetesQuota", parse=parse_quota, metavar="RES=QTY,...",
        help="what this run's pods may request at once, e.g. cpu=8,memory=32Gi,"
             "ephemeral-storage=100Gi,nvidia.com/gpu=1,pods=50 (default: the "
             "allocatable resources of the ready nodes, less other pods' requests)")
    kubernetes_owner_pod: str | None = opt(
        "kubernetesOwnerPod", parse=parse_name, metavar="NAME",
        help="a pod in the namespace this run's Jobs belong to: should it be deleted (the "
             "leader's pod gone), Kubernetes deletes them and their pods (default: the "
             "leader's own pod, when it runs in that namespace)")
    kubernetes_api_threads: int = opt(
        "kubernetesApiThreads", parse=parse_positive_int, default=4, metavar="N",
        help="API requests (create, delete, log) under way at once")
    kubernetes_watch_timeout: int = opt(
        "kubernetesWatchTimeout", parse=parse_positive_int, default=300, metavar="SECONDS",
        help="the server ends the pod watch after this long; it is resumed from the last "
             "resourceVersion")

    def validate(self) -> None:
        super().validate()
        if not self.kubernetes_image:
            raise OptionError("--kubernetesImage is required: the container image every "
                              "job runs in, e.g. python:3.12-slim")
