"""The kubernetes backend against the Kubernetes double: how pods end and are reported,
placement, capacity, the one watch (and its 410 Gone), logs, kills and cleanup."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest
from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Pod, Secret

import mesobatch
from mesobatch import BatchJobExitReason
from tests.doubles.kubernetes import KubernetesDouble, NodeSpec
from tests.waiting import wait_for

from .conftest import BAD_IMAGE, SPOT, SPOT_TAINT, Make, job, pods_of, result

PY = sys.executable


def running_pod(double: KubernetesDouble, job_id: int) -> dict[str, Any]:
    pods = wait_for(lambda: [p for p in pods_of(double, job_id)
                         if p.get("status", {}).get("phase") == "Running"])
    assert pods, f"no running pod for job {job_id}"
    pod: dict[str, Any] = pods[0]
    return pod


def test_the_job_object_and_its_pod(make: Make, double: KubernetesDouble) -> None:
    bs = make(kubernetesServiceAccount="default", kubernetesTtlSecondsAfterFinished=30)
    job_id = bs.issueBatchJob("sleep 30", job(cores=0.5, memory=64 * 2**20, walltime=100))
    running_pod(double, job_id)
    (stored,) = [j for j in double.items("jobs")
                 if j["metadata"]["labels"]["mesobatch.io/job-id"] == str(job_id)]
    assert stored["spec"]["backoffLimit"] == 0
    assert stored["spec"]["ttlSecondsAfterFinished"] == 30
    pod_spec = stored["spec"]["template"]["spec"]
    assert pod_spec["activeDeadlineSeconds"] == 100
    assert pod_spec["serviceAccountName"] == "default"
    assert pod_spec["containers"][0]["resources"]["limits"] == {
        "cpu": "500m", "memory": "64Mi", "ephemeral-storage": "16Mi"}
    bs.killBatchJobs([job_id])


def test_oom_killed_is_memlimit(make: Make) -> None:
    bs = make()
    grab = f"{PY} -c \"b = bytearray(200 * 2**20); import time; time.sleep(30)\""
    job_id = bs.issueBatchJob(grab, job(memory=64 * 2**20))
    info = result(bs)
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.MEMLIMIT)
    assert info.exitStatus == 137


def test_walltime_is_maxjobduration(make: Make) -> None:
    bs = make()
    job_id = bs.issueBatchJob("sleep 60", job(walltime=1))
    info = result(bs)
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.MAXJOBDURATION)
    assert info.exitStatus != 0


@pytest.mark.parametrize("how", ["evict", "preempt", "lose_node"])
def test_disruption_is_lost_not_failed(make: Make, double: KubernetesDouble, how: str,
                                       tmp_path: Path) -> None:
    bs = make()
    job_id = bs.issueBatchJob("sleep 60", job())
    pod = running_pod(double, job_id)
    if how == "evict":
        double.evict_pod(pod["metadata"]["name"], grace=0)
    elif how == "preempt":
        double.preempt_pod(pod["metadata"]["name"])
    else:
        double.lose_node(pod["spec"]["nodeName"])
    info = result(bs)
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.LOST)
    (log,) = (tmp_path / "logs").glob(f"{job_id}-*")
    assert "pod disrupted" in log.read_text()


def test_an_image_that_cannot_be_pulled_is_an_error_naming_it(make: Make,
                                                             double: KubernetesDouble) -> None:
    bs = make(kubernetesImage=BAD_IMAGE)
    job_id = bs.issueBatchJob("true", job())
    info = result(bs)
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.ERROR)
    # its Job is deleted: it would pull for ever
    assert wait_for(lambda: not pods_of(double, job_id), 10)


@pytest.fixture
def unplaceable_nodes() -> list[NodeSpec]:
    return [NodeSpec(name="node-a", cpu="2", memory="2Gi", labels={"disk": "hdd"})]


def test_unschedulable_pods_are_explained_then_fail_after_the_timeout(
        make: Make, tmp_path: Path) -> None:
    bs = make(kubernetesNodeSelector="disk=ssd", kubernetesUnschedulableTimeout=2)
    job_id = bs.issueBatchJob("true", job())
    said = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector"
    assert wait_for(lambda: said in (bs.getSchedulingStatusMessage() or ""), 10), \
        bs.getSchedulingStatusMessage()
    info = result(bs)
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.ERROR)
    (log,) = (tmp_path / "logs").glob(f"{job_id}-*")
    assert "could not be scheduled for 2 s" in log.read_text() and said in log.read_text()


def test_a_job_that_makes_no_pod_fails_quoting_its_events(make: Make, tmp_path: Path
                                                          ) -> None:
    # the ServiceAccount admission refuses the Job's pod: the Job controller's FailedCreate
    bs = make(kubernetesServiceAccount="nobody", kubernetesUnschedulableTimeout=2)
    job_id = bs.issueBatchJob("true", job())
    info = result(bs)
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.ERROR)
    (log,) = (tmp_path / "logs").glob(f"{job_id}-*")
    text = log.read_text()
    assert "made no pod in 2 s" in text and "FailedCreate" in text
    assert 'serviceaccount "nobody" not found' in text


@pytest.mark.parametrize("nodes", [[NodeSpec(name="node-a", cpu="1", memory="2Gi"),
                                    NodeSpec(name="node-b", cpu="1", memory="2Gi")]])
def test_a_pod_that_fits_the_room_but_no_node_waits_for_the_run_s_pods(
        make: Make, double: KubernetesDouble) -> None:
    bs = make(kubernetesUnschedulableTimeout=1)
    first = [bs.issueBatchJob("sleep 3", job(cores=0.6)) for _ in range(2)]  # one per node
    assert {running_pod(double, i)["spec"]["nodeName"] for i in first} == {"node-a",
                                                                          "node-b"}
    # 0.8 cores are left in all, 0.4 on each node: unschedulable until one ends
    late = bs.issueBatchJob("true", job(cores=0.8))
    assert wait_for(lambda: "Insufficient cpu" in (bs.getSchedulingStatusMessage() or ""), 10)
    results = {r.jobID: r for r in (result(bs) for _ in range(3))}
    assert results[late].exitReason == BatchJobExitReason.FINISHED


def test_logs_land_in_the_log_dir(make: Make, tmp_path: Path) -> None:
    bs = make()
    job_id = bs.issueBatchJob("echo out; echo err >&2; exit 3", job())
    info = result(bs)
    assert (info.jobID, info.exitStatus) == (job_id, 3)
    (log,) = (tmp_path / "logs").glob(f"{job_id}-*")
    assert log.read_text().splitlines()[:2] == ["out", "err"]


def test_one_watch_and_a_relist_on_410(make: Make, double: KubernetesDouble) -> None:
    bs = make(kubernetesWatchTimeout=1)  # the server ends the watch every second
    first = [bs.issueBatchJob("sleep 0.2", job()) for _ in range(4)]
    done = {result(bs).jobID for _ in first}
    assert done == set(first)
    # Changes the watch does not see (not this run's pods), then the history is dropped:
    # the watch's last version is now too old, and resuming from it gets 410 Gone.
    client = Client(KubeConfig.from_file(str(double.kubeconfig)))
    for i in range(3):
        client.create(ConfigMap(metadata=ObjectMeta(name=f"other-{i}"), data={"a": "b"}))
    double.compact()
    backend: Any = bs._backend
    assert wait_for(lambda: backend.relists >= 1, 10)
    later = [bs.issueBatchJob("sleep 0.2", job()) for _ in range(4)]
    seen = [result(bs).jobID for _ in later]
    assert sorted(seen) == sorted(later) and bs.getUpdatedBatchJob(1) is None
    # at start one list of the cluster's pods (their requests hold room), then the
    # watch's first list and one list after the 410
    assert backend.relists == 1
    assert double.request_count("list", "pods") == 3
    assert double.request_count("get", "pods") == 0  # no request per pod for its state


def test_shutdown_leaves_nothing_in_the_namespace(make: Make, double: KubernetesDouble
                                                  ) -> None:
    bs = make()
    for _ in range(3):
        bs.issueBatchJob("sleep 60", job())
    bs.issueBatchJob("true", job())
    assert wait_for(lambda: len([p for p in double.items("pods")
                             if p["status"].get("phase") == "Running"]) == 3)
    bs.shutdown()
    assert double.items("jobs") == [] and double.items("pods") == []
    assert double.request_count("deletecollection") == 2  # Jobs, then pods


def test_a_kill_deletes_the_job_in_the_foreground(make: Make, double: KubernetesDouble
                                                  ) -> None:
    bs = make()
    job_id = bs.issueBatchJob("sleep 60", job())
    running_pod(double, job_id)
    bs.killBatchJobs([job_id])
    assert double.request_count("delete", "jobs") == 1
    assert wait_for(lambda: not pods_of(double, job_id), 10)
    assert bs.getUpdatedBatchJob(1) is None


@pytest.fixture
def spot_nodes() -> list[NodeSpec]:
    return [NodeSpec(name="node-a", cpu="1", memory="2Gi"),
            NodeSpec(name="spot-b", cpu="1", memory="2Gi", labels=SPOT, taints=[SPOT_TAINT])]


def spot_options() -> dict[str, str]:
    return {"kubernetesSpotTolerations": '[{"key": "spot", "operator": "Equal", '
                                         '"value": "true", "effect": "NoSchedule"}]'}


@pytest.mark.parametrize("nodes", [pytest.param(None, id="spot")], indirect=False)
def test_preemptible_jobs_go_to_spot_nodes_and_the_others_never(
        spot_nodes: list[NodeSpec], tmp_path: Path, nodes: Any) -> None:
    with KubernetesDouble(nodes=spot_nodes) as double:
        bs = mesobatch.batch_system("kubernetes", kubernetesConfig=str(double.kubeconfig),
                                    kubernetesImage="i", logDir=str(tmp_path),
                                    killGracePeriod=1, **spot_options())
        try:
            sure = [bs.issueBatchJob("sleep 30", job(cores=1)) for _ in range(2)]
            cheap = bs.issueBatchJob("sleep 30", job(cores=1, preemptible=True))
            assert running_pod(double, sure[0])["spec"]["nodeName"] == "node-a"
            assert running_pod(double, cheap)["spec"]["nodeName"] == "spot-b"
            # the second sure job waits for node-a rather than take the spot node
            assert sure[1] not in bs.getRunningBatchJobIDs() and not pods_of(double, sure[1])
            nodes_seen = bs.getNodes(preemptible=True)
            assert list(nodes_seen) == ["spot-b"] and nodes_seen["spot-b"].workers == 1
        finally:
            bs.shutdown()


@pytest.mark.parametrize("nodes", [[NodeSpec(name="node-a", cpu="1", memory="2Gi"),
                                    NodeSpec(name="node-b", cpu="1", memory="2Gi")]])
def test_ignore_node_keeps_new_pods_off_it(make: Make, double: KubernetesDouble) -> None:
    bs = make()
    bs.ignoreNode("node-a")
    ids = [bs.issueBatchJob("sleep 30", job(cores=0.25)) for _ in range(2)]
    assert {running_pod(double, i)["spec"]["nodeName"] for i in ids} == {"node-b"}
    assert not bs.nodeInUse("node-a") and bs.nodeInUse("node-b")
    node_a = double.get("nodes", "node-a", "")
    assert node_a is not None and node_a["spec"].get("unschedulable") is None  # not cordoned
    bs.killBatchJobs(ids)


def test_a_quota_limits_what_runs_at_once(make: Make, double: KubernetesDouble) -> None:
    bs = make(kubernetesQuota="cpu=500m")
    ids = [bs.issueBatchJob("sleep 30", job(cores=0.5)) for _ in range(3)]
    running_pod(double, ids[0])
    time.sleep(0.5)  # give a wrong second launch time to show
    assert len(double.items("jobs")) == 1
    message = bs.getSchedulingStatusMessage() or ""
    assert "2 jobs waiting, 1 running" in message and "kubernetesQuota" in message
    bs.killBatchJobs(ids)


def test_get_nodes_from_the_cluster(make: Make) -> None:
    bs = make()
    nodes = bs.getNodes()
    assert list(nodes) == ["node-a"]
    assert nodes["node-a"].coresTotal == 2 and nodes["node-a"].memoryTotal == 2 * 2**30


@pytest.mark.parametrize("nodes", [[NodeSpec(name="cpu-only", cpu="2", memory="2Gi"),
                                    NodeSpec(name="gpu-node", cpu="2", memory="2Gi", gpu=1)]])
def test_gpu_jobs_request_nvidia_gpus(make: Make, double: KubernetesDouble) -> None:
    bs = make()
    gpu = [{"kind": "gpu", "count": 1}]
    job_id = bs.issueBatchJob("sleep 30", job(accelerators=gpu))
    pod = running_pod(double, job_id)
    assert pod["spec"]["nodeName"] == "gpu-node"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    with pytest.raises(mesobatch.InsufficientSystemResources):  # no node has two
        bs.issueBatchJob("true", job(accelerators=[{"kind": "gpu", "count": 2}]))
    bs.killBatchJobs([job_id])


def test_an_unreachable_cluster_is_a_clear_error_at_start(tmp_path: Path,
                                                          double: KubernetesDouble) -> None:
    config = double.kubeconfig.read_text().replace(double.url, "https://127.0.0.1:9")
    (tmp_path / "kubeconfig").write_text(config)
    with pytest.raises(RuntimeError, match=r"Kubernetes API at https://127\.0\.0\.1:9 does "
                                           r"not answer.*cannot list nodes"):
        mesobatch.batch_system("kubernetes", kubernetesConfig=str(tmp_path / "kubeconfig"),
                               kubernetesImage="i")


def test_a_context_that_is_not_there_is_named(double: KubernetesDouble) -> None:
    with pytest.raises(RuntimeError, match="context 'elsewhere'"):
        mesobatch.batch_system("kubernetes", kubernetesConfig=str(double.kubeconfig),
                               kubernetesContext="elsewhere", kubernetesImage="i")


def test_a_kill_whose_delete_fails_still_frees_the_room_when_the_job_ends(
        make: Make, double: KubernetesDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesobatch.integration.kubernetes.api import KubeError

    bs = make()
    first = bs.issueBatchJob("sleep 1", job(cores=2))
    running_pod(double, first)
    backend: Any = bs._backend

    def refuse(name: str, grace: float) -> bool:
        time.sleep(2)  # the job ends while its kill is under way
        raise KubeError(f"cannot delete Job {name}", 403, "Forbidden", "not allowed")

    monkeypatch.setattr(backend.api, "delete_job", refuse)
    bs.killBatchJobs([first])  # refused: the job runs on, and ends by itself
    assert wait_for(lambda: not pods_of(double, first) or all(
        p["status"].get("phase") == "Succeeded" for p in pods_of(double, first)), 10)
    time.sleep(2.5)  # the refusal has come
    monkeypatch.undo()
    second = bs.issueBatchJob("true", job(cores=2))  # needs all the room the first held
    info = result(bs, 60)
    assert (info.jobID, info.exitStatus) == (second, 0)
    # the first's own end freed its room: the core did not have to kill it again
    assert double.request_count("delete", "jobs") == 0


def test_jobs_go_with_their_owner_pod(make: Make, double: KubernetesDouble) -> None:
    # the leader's pod: when it is deleted (the leader gone without a shutdown), the
    # garbage collector deletes the run's Jobs and their pods
    client = Client(KubeConfig.from_file(str(double.kubeconfig)))
    leader = client.create(cast(Pod, Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "leader"},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "i", "command": ["sleep", "60"]}]}})))
    assert leader.metadata is not None
    bs = make(kubernetesOwnerPod="leader")
    job_id = bs.issueBatchJob("sleep 60", job())
    running_pod(double, job_id)
    (stored,) = double.items("jobs")
    assert stored["metadata"]["ownerReferences"][0]["uid"] == leader.metadata.uid
    client.delete(Pod, "leader", grace_period=0)
    assert wait_for(lambda: double.items("jobs") == [] and pods_of(double, job_id) == [], 20)
    info = result(bs)  # its pod was taken away
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.LOST)


def test_an_owner_pod_that_is_not_there_is_named(make: Make) -> None:
    with pytest.raises(RuntimeError, match="--kubernetesOwnerPod nobody: no pod"):
        make(kubernetesOwnerPod="nobody")


@pytest.mark.parametrize(("options", "hint"), [
    ({}, None), ({"maxCores": 1}, "--maxCores"), ({"kubernetesQuota": "cpu=1500m"},
                                                  "--kubernetesQuota")])
def test_a_job_larger_than_any_node_is_refused_naming_what_binds(
        make: Make, options: dict[str, Any], hint: str | None) -> None:
    bs = make(**options)
    with pytest.raises(mesobatch.InsufficientSystemResources) as e:
        bs.issueBatchJob("true", job(cores=4))
    assert "requests 4 cores" in str(e.value)
    assert (hint in str(e.value)) if hint else "raise the limit" not in str(e.value)


def test_variables_from_a_secret_and_a_secret_that_is_not_there(
        make: Make, double: KubernetesDouble, tmp_path: Path) -> None:
    client = Client(KubeConfig.from_file(str(double.kubeconfig)))
    client.create(Secret(metadata=ObjectMeta(name="creds"),
                         stringData={"TOKEN": "s3cret", "MODE": "from-secret"}))
    bs = make(kubernetesEnvSecrets="creds")
    out = tmp_path / "seen"
    job_id = bs.issueBatchJob(f'echo "$TOKEN $MODE" > {out}', job(),
                              job_environment={"MODE": "own"})  # the job's own wins
    info = result(bs)
    assert (info.jobID, info.exitStatus) == (job_id, 0)
    assert out.read_text() == "s3cret own\n"
    (stored,) = double.items("jobs")
    assert "s3cret" not in str(stored)  # the value is in the Secret, not in the Job
    missing = make(kubernetesEnvSecrets="nowhere")
    job_id = missing.issueBatchJob("true", job())
    info = result(missing)
    assert (info.jobID, info.exitReason) == (job_id, BatchJobExitReason.ERROR)
    (log,) = (tmp_path / "logs").glob(f"{job_id}-*")
    assert "CreateContainerConfigError" in log.read_text()
