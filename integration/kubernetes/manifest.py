"""The batch/v1 Job of one job (pure): what the Job and its pod template say, from the
job's spec, the backend's options and where the emulated offer placed it."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ...executor.process_spec import build_environment
from ...scheduler.core.jobs import JobSpec
from .options import JsonDict, KubernetesOptions

#: labels on every Job and pod of a run: the run's tag, the job's id, the Job's name
RUN_LABEL = "mesobatch.io/run"
JOB_ID_LABEL = "mesobatch.io/job-id"
NAME_LABEL = "mesobatch.io/job"
#: the job's own name (free text: an annotation, not a label)
TITLE_ANNOTATION = "mesobatch.io/title"
HOSTNAME_LABEL = "kubernetes.io/hostname"
CONTAINER = "job"
GPU = "nvidia.com/gpu"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the emulated offer put a job: on the spot nodes or on the others, and
    never on the ignored nodes."""

    spot: bool = False
    excluded_nodes: tuple[str, ...] = ()


def job_name(run_tag: str, task_id: str) -> str:
    """The Job's name: the run's tag and the task id ("12.1-<core tag>": job 12, try
    1), lower-case and within a label value's 63 characters."""
    base = re.sub(r"[^a-z0-9]+", "-", task_id.split("-", 1)[0].lower()).strip("-")
    return f"{run_tag}-{base}"[:63].rstrip("-")


def run_selector(run_tag: str) -> str:
    """The label selector of every Job and pod of this run."""
    return f"{RUN_LABEL}={run_tag}"


def _affinity(options: KubernetesOptions, placement: Placement) -> JsonDict | None:
    """Spot nodes for the spot pool, the others otherwise; never an ignored node.
    Node-selector terms are ORed, expressions within one ANDed."""
    by_key: dict[str, list[str]] = {}
    for key, value in options.kubernetes_spot_node_labels:
        by_key.setdefault(key, []).append(value)
    avoid = [{"key": HOSTNAME_LABEL, "operator": "NotIn",
              "values": sorted(placement.excluded_nodes)}] if placement.excluded_nodes else []
    if placement.spot:
        terms = [{"matchExpressions": [{"key": key, "operator": "In", "values": values},
                                       *avoid]}
                 for key, values in by_key.items()]
    else:
        exprs = [{"key": key, "operator": "NotIn", "values": values}
                 for key, values in by_key.items()] + avoid
        terms = [{"matchExpressions": exprs}] if exprs else []
    if not terms:
        return None
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": terms}}}


def _resources(spec: JobSpec) -> JsonDict:
    """Requests equal limits, in the units the emulated offers count (milli-cores, MiB),
    so what fits an offer fits the nodes the offer stands for."""
    res = spec.resources
    amounts: JsonDict = {}
    if res.cpus:
        amounts["cpu"] = f"{res.cpus}m"
    if res.mem:
        amounts["memory"] = f"{res.mem}Mi"
    if res.disk:
        amounts["ephemeral-storage"] = f"{res.disk}Mi"
    if res.gpus:
        amounts[GPU] = str(res.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _volumes(options: KubernetesOptions) -> tuple[list[JsonDict], list[JsonDict]]:
    volumes: list[JsonDict] = []
    mounts: list[JsonDict] = []
    for i, vol in enumerate(options.kubernetes_volumes):
        name = f"data-{i}"
        if vol.kind == "pvc":
            volumes.append({"name": name, "persistentVolumeClaim": {
                "claimName": vol.source, "readOnly": vol.read_only}})
        else:
            volumes.append({"name": name, "hostPath": {"path": vol.source}})
        mounts.append({"name": name, "mountPath": vol.mount_path, "readOnly": vol.read_only})
    return volumes, mounts


def owner_reference(pod: JsonDict) -> JsonDict:
    """A reference to the pod that owns the run's Jobs: when it is deleted, the garbage
    collector deletes them (and, through them, their pods)."""
    meta = pod["metadata"]
    return {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"],
            "controller": False, "blockOwnerDeletion": False}


def job_manifest(spec: JobSpec, *, name: str, run_tag: str, options: KubernetesOptions,
                 placement: Placement, owner: JsonDict | None = None) -> JsonDict:
    """The Job that runs ``spec``: one pod, never retried (backoffLimit 0: a retry is
    the scheduler's decision, with a reason), deleted by the cluster
    ``ttlSecondsAfterFinished`` after it ends, and with ``owner`` (an owner reference)
    when its owner is deleted."""
    env = build_environment({}, spec.environment, spec.job_environment, spec.cores)
    env.setdefault("MESOBATCH_JOB_ID", str(spec.job_id))
    container: JsonDict = {
        "name": CONTAINER, "image": options.kubernetes_image,
        "command": ["/bin/sh", "-c", spec.command],
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    if options.kubernetes_env_secrets:
        container["envFrom"] = [{"secretRef": {"name": name}}
                                for name in options.kubernetes_env_secrets]
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    if options.kubernetes_working_dir:
        container["workingDir"] = options.kubernetes_working_dir
    if options.kubernetes_security_context:
        container["securityContext"] = copy.deepcopy(options.kubernetes_security_context)
    volumes, mounts = _volumes(options)
    if mounts:
        container["volumeMounts"] = mounts
    tolerations: Sequence[JsonDict] = options.kubernetes_tolerations
    if placement.spot:
        tolerations = [*tolerations, *options.kubernetes_spot_tolerations]
    pod: JsonDict = {
        "restartPolicy": "Never",
        "containers": [container],
        "terminationGracePeriodSeconds": math.ceil(options.kill_grace_period),
        "enableServiceLinks": False,  # no variables for every service in the namespace
    }
    if spec.walltime:
        pod["activeDeadlineSeconds"] = max(1, math.ceil(spec.walltime))
    if options.kubernetes_service_account:
        pod["serviceAccountName"] = options.kubernetes_service_account
    if options.kubernetes_node_selector:
        pod["nodeSelector"] = dict(options.kubernetes_node_selector)
    if tolerations:
        pod["tolerations"] = copy.deepcopy(list(tolerations))
    affinity = _affinity(options, placement)
    if affinity:
        pod["affinity"] = affinity
    if volumes:
        pod["volumes"] = volumes
    labels = {RUN_LABEL: run_tag, JOB_ID_LABEL: str(spec.job_id), NAME_LABEL: name}
    annotations = {TITLE_ANNOTATION: spec.name[:1024]}
    metadata: JsonDict = {"name": name, "labels": labels, "annotations": annotations}
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": options.kubernetes_ttl_after_finished,
            "template": {"metadata": {"labels": dict(labels),
                                      "annotations": dict(annotations)},
                         "spec": pod},
        },
    }
