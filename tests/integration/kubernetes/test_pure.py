"""The kubernetes backend's pure parts: options, quantities, the Job manifest, reading pod
statuses (shapes from the Pod v1 API reference) and the capacity model."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

import pytest

from mesobatch.integration.kubernetes.backend import wall_time
from mesobatch.integration.kubernetes.capacity import (
    ON_DEMAND,
    SPOT,
    largest,
    pod_request,
    pools,
    read_node,
)
from mesobatch.integration.kubernetes.manifest import (
    RUN_LABEL,
    Placement,
    job_manifest,
    job_name,
)
from mesobatch.integration.kubernetes.options import (
    KubernetesOptions,
    Quota,
    Volume,
    parse_labels,
    parse_quota,
    parse_tolerations,
    parse_volumes,
)
from mesobatch.integration.kubernetes.pod_status import Phase, PodView, read_pod
from mesobatch.integration.kubernetes.quantity import milli, parse_quantity, to_int
from mesobatch.scheduler.contract import BatchJobExitReason
from mesobatch.scheduler.core.jobs import JobSpec, Shape
from mesobatch.scheduler.core.resources import Resources
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.options import OptionError, resolve

JsonDict = dict[str, Any]


def options(**kw: Any) -> KubernetesOptions:
    return resolve(KubernetesOptions, {"kubernetesImage": "python:3.12-slim", **kw})


def spec(cores: float = 1.5, mem: int = 512, disk: int = 100, gpus: int = 0,
         walltime: float | None = None, **kw: Any) -> JobSpec:
    return JobSpec(job_id=7, command="echo hi", name="toil job 7",
                   shape=Shape(False, Resources(int(cores * 1000), mem, disk, gpus)),
                   cores=cores, memory=mem * 2**20, disk=disk * 2**20, walltime=walltime,
                   environment=kw.get("environment", {"A": "1"}),
                   job_environment=kw.get("job_environment", {"B": "2"}))


# ----------------------------------------------------------------------------- quantities

@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2", Decimal(2)), ("4Gi", Decimal(4 * 2**30)),
    ("1.5", Decimal("1.5")), ("1e3", Decimal(1000)), ("2k", Decimal(2000)), (3, Decimal(3)),
])
def test_quantities(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "-1", "1Xi", "abc", None, True, float("nan")])
def test_bad_quantities_name_the_text(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(bad)


def test_milli_and_whole_round_up() -> None:
    assert milli("1500u") == 2 and milli("0.25") == 250 and to_int("1.5") == 2


# ----------------------------------------------------------------------------- options

def test_image_is_required() -> None:
    with pytest.raises(OptionError, match="--kubernetesImage is required"):
        resolve(KubernetesOptions, {})


def test_option_parsers() -> None:
    assert parse_labels("disk=ssd, zone=a") == (("disk", "ssd"), ("zone", "a"))
    assert parse_tolerations('[{"key": "gpu", "operator": "Exists", "effect": '
                             '"NoSchedule"}]') == ({"key": "gpu", "operator": "Exists",
                                                    "effect": "NoSchedule"},)
    assert parse_volumes("pvc:shared:/data,hostPath:/scratch:/scratch:ro") == (
        Volume("pvc", "shared", "/data"), Volume("hostPath", "/scratch", "/scratch", True))
    assert parse_quota("cpu=1500m,memory=2Gi,pods=3") == Quota(cpu_milli=1500,
                                                              memory=2 * 2**30, pods=3)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("kubernetesNodeSelector", "novalue", "not key=value"),
    ("kubernetesNodeSelector", "bad key!=x", "not a label key"),
    ("kubernetesTolerations", "{not json", "JSON"),
    ("kubernetesTolerations", '[{"key": "a", "colour": "red"}]', "not a toleration"),
    ("kubernetesTolerations", '[{"key": "a", "effect": "Sometimes"}]', "NoExecute"),
    ("kubernetesVolumes", "nfs:server:/data", "pvc:CLAIM"),
    ("kubernetesVolumes", "hostPath:relative:/data", "absolute"),
    ("kubernetesQuota", "cpus=2", "unknown quota resource 'cpus'"),
    ("kubernetesQuota", "cpu=lots", "invalid quantity"),
    ("kubernetesNamespace", "Not_A_Name", "Kubernetes name"),
    ("kubernetesSecurityContext", "[1]", "JSON object"),
])
def test_bad_options_name_the_option_and_what_is_allowed(name: str, value: str,
                                                         says: str) -> None:
    with pytest.raises(OptionError, match=f"--{name}") as e:
        options(**{name: value})
    assert says in str(e.value)


# ----------------------------------------------------------------------------- manifest

def container(manifest: JsonDict) -> JsonDict:
    c: JsonDict = manifest["spec"]["template"]["spec"]["containers"][0]
    return c


def test_job_manifest_fields() -> None:
    o = options(kubernetesServiceAccount="runner", kubernetesNodeSelector="disk=ssd",
                kubernetesTolerations='[{"key": "gpu", "operator": "Exists"}]',
                kubernetesSecurityContext='{"runAsUser": 1000}',
                kubernetesVolumes="pvc:shared:/data", kubernetesWorkingDir="/work",
                kubernetesTtlSecondsAfterFinished=60, killGracePeriod=2.5)
    m = job_manifest(spec(gpus=1, walltime=90.2), name="mb-x-7-0", run_tag="mb-x",
                     options=o, placement=Placement())
    assert m["apiVersion"] == "batch/v1" and m["kind"] == "Job"
    assert m["spec"]["backoffLimit"] == 0 and m["spec"]["ttlSecondsAfterFinished"] == 60
    labels = {RUN_LABEL: "mb-x", "mesobatch.io/job-id": "7", "mesobatch.io/job": "mb-x-7-0"}
    assert m["metadata"]["labels"] == labels
    assert m["spec"]["template"]["metadata"]["labels"] == labels
    pod = m["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["activeDeadlineSeconds"] == 91
    assert pod["serviceAccountName"] == "runner" and pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["terminationGracePeriodSeconds"] == 3
    assert pod["volumes"] == [{"name": "data-0", "persistentVolumeClaim": {
        "claimName": "shared", "readOnly": False}}]
    c = container(m)
    assert c["image"] == "python:3.12-slim" and c["command"] == ["/bin/sh", "-c", "echo hi"]
    assert c["workingDir"] == "/work" and c["securityContext"] == {"runAsUser": 1000}
    assert c["volumeMounts"] == [{"name": "data-0", "mountPath": "/data", "readOnly": False}]
    amounts = {"cpu": "1500m", "memory": "512Mi", "ephemeral-storage": "100Mi",
               "nvidia.com/gpu": "1"}
    assert c["resources"] == {"requests": amounts, "limits": amounts}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env == {"A": "1", "B": "2", "OMP_NUM_THREADS": "2", "MESOBATCH_JOB_ID": "7"}


def test_env_from_secrets() -> None:
    o = options(kubernetesEnvSecrets="aws-creds, tokens")
    c = container(job_manifest(spec(), name="n", run_tag="t", options=o,
                               placement=Placement()))
    assert c["envFrom"] == [{"secretRef": {"name": "aws-creds"}},
                            {"secretRef": {"name": "tokens"}}]
    with pytest.raises(OptionError, match="--kubernetesEnvSecrets"):
        options(kubernetesEnvSecrets="Bad_Name")


def test_spot_placement_and_ignored_nodes() -> None:
    o = options(kubernetesSpotNodeLabels="lifecycle=spot,pool=cheap",
                kubernetesSpotTolerations='[{"key": "spot", "operator": "Exists"}]')
    avoid = {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["a", "b"]}
    spot = job_manifest(spec(), name="n", run_tag="t", options=o,
                        placement=Placement(spot=True, excluded_nodes=("b", "a")))
    pod = spot["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert terms == [  # any spot label, and never an ignored node
        {"matchExpressions": [{"key": "lifecycle", "operator": "In", "values": ["spot"]},
                              avoid]},
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["cheap"]}, avoid]}]
    assert pod["tolerations"] == [{"key": "spot", "operator": "Exists"}]
    other = job_manifest(spec(), name="n", run_tag="t", options=o, placement=Placement())
    pod = other["spec"]["template"]["spec"]
    assert "tolerations" not in pod
    assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"] == [{"matchExpressions": [
            {"key": "lifecycle", "operator": "NotIn", "values": ["spot"]},
            {"key": "pool", "operator": "NotIn", "values": ["cheap"]}]}]


def test_job_names_are_valid_kubernetes_names() -> None:
    assert job_name("mb-abc-12ef", "12.3-RunTag_X") == "mb-abc-12ef-12-3"
    assert len(job_name("mb-" + "a" * 60, "123456.1")) <= 63


# ----------------------------------------------------------------------------- pod status

def pod(phase: str, *, container: JsonDict | None = None, conditions: list[JsonDict] | None
        = None, reason: str | None = None, message: str | None = None,
        node: str | None = "node-a") -> JsonDict:
    status: JsonDict = {"phase": phase, "conditions": conditions or []}
    if container is not None:
        status["containerStatuses"] = [{"name": "job", "ready": False, "restartCount": 0,
                                        "image": "i", "imageID": "", **container}]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    spec: JsonDict = {"containers": [{"name": "job"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": "p"}, "spec": spec, "status": status}


def terminated(code: int, reason: str, **kw: Any) -> JsonDict:
    return {"state": {"terminated": {"exitCode": code, "reason": reason,
                                     "startedAt": "2026-01-01T00:00:00Z",
                                     "finishedAt": "2026-01-01T00:00:03Z", **kw}}}


def test_exit_codes() -> None:
    ok = read_pod(pod("Succeeded", container=terminated(0, "Completed")))
    assert (ok.phase, ok.state, ok.exit_code) == (Phase.ENDED, TaskState.FINISHED, 0)
    assert ok.finished is not None and ok.started is not None
    assert ok.finished - ok.started == 3
    bad = read_pod(pod("Failed", container=terminated(7, "Error")))
    assert (bad.state, bad.exit_code, bad.exit_reason) == (TaskState.FAILED, 7, None)


def test_oom_and_deadline() -> None:
    oom = read_pod(pod("Failed", container=terminated(137, "OOMKilled")))
    assert (oom.state, oom.exit_code, oom.exit_reason) == (
        TaskState.FAILED, 137, BatchJobExitReason.MEMLIMIT)
    late = read_pod(pod("Failed", reason="DeadlineExceeded",
                        message="Pod was active on the node longer than the specified "
                                "deadline", container=terminated(137, "Error")))
    assert late.exit_reason == BatchJobExitReason.MAXJOBDURATION
    assert "DeadlineExceeded" in late.message


@pytest.mark.parametrize("reason", ["EvictionByEvictionAPI", "PreemptionByScheduler",
                                    "DeletionByTaintManager"])
def test_disruption_is_lost(reason: str) -> None:
    cond = {"type": "DisruptionTarget", "status": "True", "reason": reason,
            "message": "Eviction API: evicting"}
    view = read_pod(pod("Failed", conditions=[cond], container=terminated(143, "Error")))
    assert view.state is TaskState.LOST and reason in view.message


def test_node_loss_and_kubelet_eviction_are_lost() -> None:
    assert read_pod(pod("Failed", container=terminated(137, "ContainerStatusUnknown"))
                    ).state is TaskState.LOST
    assert read_pod(pod("Failed", reason="Evicted", message="low on ephemeral-storage")
                    ).state is TaskState.LOST


def test_a_pod_that_failed_because_it_was_deleted_is_lost() -> None:
    gone = pod("Failed", container=terminated(143, "Error"))
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:04Z"
    view = read_pod(gone)
    assert view.state is TaskState.LOST and "deleted while it ran (exit 143)" in view.message


def test_deleted_while_running_is_lost() -> None:
    running = pod("Running", container={"state": {"running": {
        "startedAt": "2026-01-01T00:00:00Z"}}})
    assert read_pod(running).phase is Phase.RUNNING
    gone = read_pod(running, deleted=True)
    assert gone.state is TaskState.LOST and "deleted" in gone.message


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "CreateContainerConfigError",
                                    "InvalidImageName"])
def test_a_pod_that_cannot_start_is_an_error_naming_why(reason: str) -> None:
    view = read_pod(pod("Pending", container={"state": {"waiting": {
        "reason": reason, "message": "details here"}}}))
    assert view.state is TaskState.ERROR and reason in view.message
    assert "details here" in view.message and not view.ran


def test_pull_errors_first_wait_for_the_backoff() -> None:
    view = read_pod(pod("Pending", container={"state": {"waiting": {"reason": "ErrImagePull"}}}))
    assert view.phase is Phase.PENDING and view.waiting_reason == "ErrImagePull"


def test_unschedulable_quotes_the_scheduler() -> None:
    said = "0/3 nodes are available: 3 Insufficient memory."
    view = read_pod(pod("Pending", node=None, conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": said}]))
    assert view.unschedulable and view.message == said and view.phase is Phase.PENDING


def test_start_error_is_an_error() -> None:
    view = read_pod(pod("Failed", container=terminated(128, "StartError",
                                                       message="exec: no such file")))
    assert view.state is TaskState.ERROR and "no such file" in view.message


def stamp(epoch: float) -> str:
    """An RFC 3339 stamp as the API writes a container's: whole seconds, truncated."""
    return datetime.datetime.fromtimestamp(math.floor(epoch), datetime.timezone.utc
                                           ).strftime("%Y-%m-%dT%H:%M:%SZ")


def ended_pod(started: float, finished: float) -> PodView:
    return read_pod(pod("Succeeded", container={"state": {"terminated": {
        "exitCode": 0, "startedAt": stamp(started), "finishedAt": stamp(finished)}}}))


def test_wall_time_is_never_short() -> None:
    # every combination of a true run (this host's clock), the node's clock ahead or
    # behind, the create sent early or just in time, and the watch late or not; values
    # are exact in binary, so a shortfall of any size fails
    for start in (100.0, 100.25, 100.75, 100.875):
        for ran in (0.5, 0.125, 2.25):
            for node_ahead in (-0.875, 0.0, 0.875):
                for lead in (0.0, 4.0):
                    for lag in (0.0, 0.25):
                        view = ended_pod(start + node_ahead, start + ran + node_ahead)
                        wall = wall_time(start - lead, view, start + ran + lag)
                        assert wall is not None and ran <= wall <= ran + 2, (
                            start, ran, node_ahead, lead, lag, wall)


def test_wall_time_takes_the_lesser_bound() -> None:
    # the container ran 100.7 - 101.2 (stamps 100 and 101): on the node's clock at most 2 s
    view = ended_pod(100.7, 101.2)
    assert wall_time(40.0, view, 101.3) == 2.0  # a minute's image pull before it
    assert wall_time(100.5, view, 101.25) == pytest.approx(0.75)  # sent just before
    # a pod deleted while it ran has no finishedAt: this host's clock alone
    running = read_pod(pod("Running", container={"state": {"running": {
        "startedAt": stamp(100.7)}}}), deleted=True)
    assert wall_time(100.5, running, 103.0) == pytest.approx(2.5)
    # a container that never started ran for no known time
    assert wall_time(5.0, read_pod(pod("Pending")), 9.0) is None


# ----------------------------------------------------------------------------- capacity

def node(name: str, cpu: str = "4", memory: str = "8Gi", *, ready: str = "True",
         unschedulable: bool = False, labels: dict[str, str] | None = None,
         gpu: str | None = None) -> JsonDict:
    alloc = {"cpu": cpu, "memory": memory, "ephemeral-storage": "10Gi", "pods": "110"}
    if gpu:
        alloc["nvidia.com/gpu"] = gpu
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": alloc,
                       "conditions": [{"type": "Ready", "status": ready}],
                       "addresses": [{"type": "InternalIP", "address": f"10.0.0.{len(name)}"}]}}


def test_pools_split_spot_nodes_and_subtract_other_pods() -> None:
    spot = (("lifecycle", "spot"),)
    nodes = [read_node(n, spot) for n in (
        node("a"), node("b", cpu="2", gpu="1"), node("s", labels={"lifecycle": "spot"}),
        node("down", ready="False"), node("cordoned", unschedulable=True))]
    other = {"spec": {"containers": [{"resources": {"requests": {"cpu": "500m",
                                                                 "memory": "1Gi"}}}]}}
    assert pod_request(other) == Resources(500, 1024, 0, 0)
    made = pools(nodes, {"a": (pod_request(other), 1)}, None)
    by_id = {p.agent_id: p for p in made}
    assert by_id[ON_DEMAND].capacity.resources == Resources(5500, 15 * 1024, 20 * 1024, 1)
    assert by_id[ON_DEMAND].capacity.max_tasks == 219 and not by_id[ON_DEMAND].preemptible
    assert by_id[SPOT].capacity.resources == Resources(4000, 8192, 10240, 0)
    assert by_id[SPOT].preemptible
    assert largest(nodes, None) == Resources(4000, 8192, 10240, 1)


def test_a_quota_is_one_pool_of_its_size() -> None:
    nodes = [read_node(node("a"), ())]
    (only,) = pools(nodes, {}, Quota(cpu_milli=1000, pods=2))
    assert only.capacity.resources == Resources(1000, 8192, 10240, 0)
    assert only.capacity.max_tasks == 2
    assert largest(nodes, Quota(cpu_milli=1000)) == Resources(1000, 8192, 10240, 0)
    # no node to see (listing nodes forbidden): the quota alone
    (blind,) = pools([], {}, Quota(cpu_milli=3000, memory=2**30))
    assert blind.capacity.resources is not None
    assert blind.capacity.resources.cpus == 3000 and blind.capacity.resources.mem == 1024
