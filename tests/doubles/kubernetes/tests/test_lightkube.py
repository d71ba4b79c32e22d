"""The double through lightkube, the client the kubernetes backend uses: jobs to completion
and failure, the exact status shapes, scheduling, watches with resourceVersion and 410 Gone,
selectors, deletion and the fault hooks."""

from __future__ import annotations

import ssl
import sys
import time
from typing import Any

import httpx2 as httpx
import pytest
from lightkube import ApiError, Client
from lightkube.codecs import from_dict
from lightkube.config.client_adapter import Client as HttpClient
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Node, Pod
from lightkube.types import CascadeType

from tests.doubles.kubernetes import KubernetesDouble

from .conftest import BAD_IMAGE, job_manifest


def wait_job(client: Client, name: str, timeout: float = 30) -> Job:
    """Watch the job until it has a Complete or Failed condition."""
    deadline = time.monotonic() + timeout
    for _, job in client.watch(Job, fields={"metadata.name": name}, server_timeout=int(timeout)):
        for cond in (job.status.conditions if job.status else None) or []:
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                return job
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"job {name} did not finish")


def only_pod(client: Client, job: str) -> Pod:
    pods = list(client.list(Pod, labels={"job-name": job}))
    assert len(pods) == 1, [p.metadata.name for p in pods if p.metadata]
    return pods[0]


def conditions(obj: Any) -> dict[str, Any]:
    return {c.type: c for c in (obj.status.conditions or [])}


def test_job_succeeds_with_status_shapes_events_and_logs(double: KubernetesDouble,
                                                         client: Client) -> None:
    client.create(from_dict(job_manifest("ok", "print('hello from the pod')",
                                         labels={"run": "r1"}, ttlSecondsAfterFinished=600)))
    job = wait_job(client, "ok")
    conds = conditions(job)
    assert conds["Complete"].reason == "CompletionsReached"
    assert conds["SuccessCriteriaMet"].status == "True"
    assert job.status.succeeded == 1 and not job.status.failed
    assert job.status.completionTime is not None and job.status.startTime is not None
    pod = only_pod(client, "ok")
    assert pod.status.phase == "Succeeded"
    assert pod.metadata.ownerReferences[0].kind == "Job"
    assert pod.metadata.labels["run"] == "r1"
    terminated = pod.status.containerStatuses[0].state.terminated
    assert (terminated.exitCode, terminated.reason) == (0, "Completed")
    assert "".join(client.log(pod.metadata.name)) == "hello from the pod\n"
    reasons = {e.reason for e in client.list(Event, fields={
        "involvedObject.name": pod.metadata.name})}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons
    job_events = [e for e in client.list(Event, fields={"involvedObject.kind": "Job"})]
    assert {e.reason for e in job_events} >= {"SuccessfulCreate", "Completed"}


def test_failed_job_reports_exit_code_and_backoff_limit(client: Client) -> None:
    client.create(from_dict(job_manifest("bad", "import sys; sys.exit(3)")))
    job = wait_job(client, "bad")
    failed = conditions(job)["Failed"]
    assert (failed.reason, failed.message) == ("BackoffLimitExceeded",
                                               "Job has reached the specified backoff limit")
    assert conditions(job)["FailureTarget"].reason == "BackoffLimitExceeded"
    assert job.status.failed == 1
    pod = only_pod(client, "bad")
    assert pod.status.phase == "Failed"
    terminated = pod.status.containerStatuses[0].state.terminated
    assert (terminated.exitCode, terminated.reason) == (3, "Error")


def test_backoff_limit_retries_with_new_pods(client: Client) -> None:
    client.create(from_dict(job_manifest("retry", "import sys; sys.exit(1)", backoff_limit=1)))
    job = wait_job(client, "retry")
    assert conditions(job)["Failed"].reason == "BackoffLimitExceeded"
    assert job.status.failed == 2
    assert len(list(client.list(Pod, labels={"job-name": "retry"}))) == 2


def test_memory_limit_gives_oomkilled_137(client: Client) -> None:
    script = "x = bytearray(300 * 1024 * 1024); import time; time.sleep(30)"
    client.create(from_dict(job_manifest("oom", script, resources={
        "limits": {"memory": "100Mi", "cpu": "1"}})))
    job = wait_job(client, "oom")
    assert conditions(job)["Failed"].reason == "BackoffLimitExceeded"
    terminated = only_pod(client, "oom").status.containerStatuses[0].state.terminated
    assert (terminated.exitCode, terminated.reason) == (137, "OOMKilled")


def test_job_active_deadline_fails_with_deadline_exceeded(double: KubernetesDouble,
                                                          client: Client) -> None:
    client.create(from_dict(job_manifest("slow", "import time; time.sleep(60)",
                                         activeDeadlineSeconds=1)))
    job = wait_job(client, "slow")
    failed = conditions(job)["Failed"]
    assert (failed.reason, failed.message) == ("DeadlineExceeded",
                                               "Job was active longer than specified deadline")
    double.wait_for(lambda: not double.process_ids().get(job.metadata.name), 10)


def test_pod_active_deadline_and_unschedulable_message(double: KubernetesDouble,
                                                       client: Client) -> None:
    pod = from_dict({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
                     "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"],
                                              "resources": {"requests": {"memory": "100Gi"}}}]}})
    client.create(pod)
    got = double.wait_for(lambda: (p := client.get(Pod, "big")) and
                          "PodScheduled" in conditions(p) and p)
    scheduled = conditions(got)["PodScheduled"]
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
    assert scheduled.message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {spot: true}, "
        "2 Insufficient memory.")
    events = list(client.list(Event, fields={"involvedObject.name": "big",
                                             "reason": "FailedScheduling"}))
    assert events and events[0].message == scheduled.message and events[0].type == "Warning"
    deadline = from_dict({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late"},
                          "spec": {"activeDeadlineSeconds": 1, "restartPolicy": "Never",
                                   "terminationGracePeriodSeconds": 1, "containers": [
                                       {"name": "c", "image": "x",
                                        "command": [sys.executable, "-c",
                                                    "import time; time.sleep(60)"]}]}})
    client.create(deadline)
    ended = double.wait_for(
        lambda: (p := client.get(Pod, "late")).status.phase == "Failed" and p)
    assert (ended.status.reason, ended.status.message) == (
        "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")


def test_spot_taints_affinity_and_hostname_anti_affinity(client: Client) -> None:
    spot = {"tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{
                    "key": "node.kubernetes.io/lifecycle", "operator": "In",
                    "values": ["spot"]}]}]}}}}
    avoid = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{
            "key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["node-a"]}]}]}}}}
    gpu = {"nodeSelector": {"node.kubernetes.io/lifecycle": "spot"}}
    client.create(from_dict(job_manifest("on-spot", "pass", pod=spot)))
    client.create(from_dict(job_manifest("not-a", "pass", pod=avoid)))
    client.create(from_dict(job_manifest("gpu", "pass", pod=gpu, resources={
        "limits": {"nvidia.com/gpu": "1"}})))
    for name in ("on-spot", "not-a"):
        wait_job(client, name)
    assert only_pod(client, "on-spot").spec.nodeName == "spot-c"
    assert only_pod(client, "not-a").spec.nodeName == "node-b"
    pending = Client.get(client, Pod, only_pod(client, "gpu").metadata.name)
    message = conditions(pending)["PodScheduled"].message
    assert message == ("0/3 nodes are available: 1 node(s) had untolerated taint {spot: true}, "
                       "2 node(s) didn't match Pod's node affinity/selector.")


def test_pods_that_cannot_start_wait_with_the_kubelet_reason(double: KubernetesDouble,
                                                             client: Client) -> None:
    client.create(from_dict(job_manifest("pull", "pass", image=BAD_IMAGE)))
    secret_env = {"containers": [{"name": "main", "image": "x", "command": ["true"], "env": [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]}]}
    client.create(from_dict(job_manifest("conf", "pass", pod=secret_env)))

    def waiting(job: str) -> Any:
        pods = list(client.list(Pod, labels={"job-name": job}))
        state = pods and pods[0].status.containerStatuses and \
            pods[0].status.containerStatuses[0].state.waiting
        return state if state and state.reason not in ("ContainerCreating", "ErrImagePull") \
            else None

    pull = double.wait_for(lambda: waiting("pull"))
    assert (pull.reason, pull.message) == ("ImagePullBackOff",
                                           f'Back-off pulling image "{BAD_IMAGE}"')
    conf = double.wait_for(lambda: waiting("conf"))
    assert (conf.reason, conf.message) == ("CreateContainerConfigError", 'secret "db" not found')
    client.create(from_dict({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                             "stringData": {"pw": "s3cret"}, "data": {"pw": "czNjcmV0"}}))
    assert conditions(wait_job(client, "conf"))["Complete"].status == "True"


def test_watch_resumes_from_resource_version_and_answers_410_when_too_old(
        double: KubernetesDouble, client: Client) -> None:
    listed = client.list(Pod, labels={"run": "w"})
    assert list(listed) == []
    version = listed.resourceVersion
    client.create(from_dict(job_manifest("w1", "pass", labels={"run": "w"})))
    wait_job(client, "w1")
    seen = []
    for kind, pod in client.watch(Pod, labels={"run": "w"}, resource_version=version):
        seen.append((kind, pod.status.phase))
        if pod.status.phase == "Succeeded":
            break
    assert seen[0] == ("ADDED", "Pending") and seen[-1] == ("MODIFIED", "Succeeded")
    double.compact()
    with pytest.raises(ApiError) as caught:
        next(iter(client.watch(Pod, labels={"run": "w"}, resource_version=version)))
    assert caught.value.status.code == 410 and caught.value.status.reason == "Expired"
    # the raw stream: HTTP 200, then one ERROR event holding the Status
    config = KubeConfig.from_file(str(double.kubeconfig)).get()
    with HttpClient(config, ConnectionParams()) as http:
        response = http.get("/api/v1/namespaces/default/pods",
                            params={"watch": "1", "resourceVersion": version})
    assert response.status_code == 200
    event = response.json()
    assert event["type"] == "ERROR"
    oldest = double.call(lambda c: c.store.oldest_rv)
    assert event["object"] == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {version} ({oldest})",
        "reason": "Expired", "code": 410}


def test_label_selectors(client: Client) -> None:
    for name, labels in (("s1", {"tier": "a", "run": "x"}), ("s2", {"tier": "b", "run": "x"}),
                         ("s3", {"tier": "c"})):
        client.create(from_dict({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": name, "labels": labels}}))
    from lightkube.operators import exists, in_, not_in
    from lightkube.resources.core_v1 import ConfigMap

    def names(**selector: Any) -> list[str]:
        return sorted(c.metadata.name for c in client.list(ConfigMap, labels=selector))

    assert names(tier="a") == ["s1"]
    assert names(tier=not_in(["a"])) == ["s2", "s3"]
    assert names(tier=in_(["a", "c"])) == ["s1", "s3"]
    assert names(run=exists()) == ["s1", "s2"]
    config = client.config
    with HttpClient(config, ConnectionParams()) as http:
        got = http.get("/api/v1/namespaces/default/configmaps",
                       params={"labelSelector": "tier!=a,!run"}).json()
    assert [i["metadata"]["name"] for i in got["items"]] == ["s3"]


def test_labelled_deletecollection_leaves_nothing(double: KubernetesDouble,
                                                  client: Client) -> None:
    for index in range(3):
        client.create(from_dict(job_manifest(f"d{index}", "import time; time.sleep(60)",
                                             labels={"run": "del"})))
    client.create(from_dict(job_manifest("keep", "import time; time.sleep(60)")))
    double.wait_for(lambda: len(double.process_ids()) == 4)
    double.reset_requests()
    # lightkube's deletecollection has no label selector: send the same request it builds
    with HttpClient(client.config, ConnectionParams()) as http:
        for path in ("/apis/batch/v1/namespaces/default/jobs",
                     "/api/v1/namespaces/default/pods"):
            response = http.delete(path, params={"labelSelector": "run=del",
                                                 "propagationPolicy": "Background"})
            assert response.status_code == 200, response.text
    assert double.requests() == {("deletecollection", "jobs"): 1,
                                 ("deletecollection", "pods"): 1}
    double.wait_for(lambda: not list(client.list(Pod, labels={"run": "del"})), 15)
    assert not list(client.list(Job, labels={"run": "del"}))
    assert [j.metadata.name for j in client.list(Job)] == ["keep"]
    client.deletecollection(Job, cascade=CascadeType.BACKGROUND)
    double.wait_for(lambda: not list(client.list(Pod)) and not double.process_ids(), 15)


def test_foreground_delete_keeps_the_job_until_its_pods_are_gone(double: KubernetesDouble,
                                                                 client: Client) -> None:
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), sys.exit(143)))\n"
              "time.sleep(60)")
    client.create(from_dict(job_manifest("fg", script)))
    double.wait_for(lambda: double.process_ids().get(only_pod(client, "fg").metadata.name))
    client.delete(Job, "fg", cascade=CascadeType.FOREGROUND)
    job = client.get(Job, "fg")
    assert job.metadata.deletionTimestamp is not None
    assert "foregroundDeletion" in job.metadata.finalizers
    double.wait_for(lambda: not list(client.list(Job)) and not list(client.list(Pod)), 15)


def test_default_job_delete_orphans_pods(double: KubernetesDouble, client: Client) -> None:
    client.create(from_dict(job_manifest("orph", "import time; time.sleep(60)")))
    pod = double.wait_for(lambda: list(client.list(Pod, labels={"job-name": "orph"})))[0]
    client.delete(Job, "orph")
    double.wait_for(lambda: not list(client.list(Job)))
    left = client.get(Pod, pod.metadata.name)
    assert not left.metadata.ownerReferences and left.status.phase in ("Pending", "Running")
    client.delete(Pod, pod.metadata.name, grace_period=0)


def test_ttl_after_finished_removes_job_and_pods(double: KubernetesDouble,
                                                 client: Client) -> None:
    client.create(from_dict(job_manifest("ttl", "pass", ttlSecondsAfterFinished=1)))
    wait_job(client, "ttl")
    double.wait_for(lambda: not list(client.list(Job)) and not list(client.list(Pod)), 15)


def test_eviction_preemption_and_node_loss_set_disruption_target(double: KubernetesDouble,
                                                                 client: Client) -> None:
    for name in ("ev", "pre", "lost"):
        client.create(from_dict(job_manifest(name, "import time; time.sleep(60)",
                                             labels={"run": "dis"})))
    pods = double.wait_for(lambda: (p := {x.metadata.labels["job-name"]: x for x in client.list(
        Pod, labels={"run": "dis"}) if x.status.phase == "Running"}) and len(p) == 3 and p)
    listed = client.list(Pod, labels={"run": "dis"})
    assert len(list(listed)) == 3
    version = listed.resourceVersion
    double.evict_pod(pods["ev"].metadata.name)
    double.preempt_pod(pods["pre"].metadata.name)
    node = pods["lost"].spec.nodeName
    lost = double.lose_node(node)
    assert pods["lost"].metadata.name in lost
    reasons: dict[str, str] = {}
    for _, pod in client.watch(Pod, labels={"run": "dis"}, resource_version=version):
        target = conditions(pod).get("DisruptionTarget")
        if target is not None:
            reasons[pod.metadata.labels["job-name"]] = target.reason
        if len(reasons) == 3:
            break
    assert reasons == {"ev": "EvictionByEvictionAPI", "pre": "PreemptionByScheduler",
                       "lost": "DeletionByTaintManager"}
    node_obj = client.get(Node, node)
    assert {t.key for t in node_obj.spec.taints} == {"node.kubernetes.io/unreachable"}
    assert [c.status for c in node_obj.status.conditions if c.type == "Ready"] == ["Unknown"]


def test_eviction_subresource(double: KubernetesDouble, client: Client) -> None:
    client.create(from_dict(job_manifest("evapi", "import time; time.sleep(60)")))
    name = double.wait_for(lambda: [p.metadata.name for p in client.list(Pod)
                                    if p.status.phase == "Running"])[0]
    with HttpClient(client.config, ConnectionParams()) as http:
        response = http.post(f"/api/v1/namespaces/default/pods/{name}/eviction", json={
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
    assert response.status_code == 201
    assert conditions(client.get(Pod, name))["DisruptionTarget"].reason == \
        "EvictionByEvictionAPI"


def test_errors_are_status_objects_and_auth_is_required(double: KubernetesDouble,
                                                        client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.get(Job, "nope")
    assert (missing.value.status.code, missing.value.status.reason,
            missing.value.status.message) == (404, "NotFound", 'jobs.batch "nope" not found')
    client.create(from_dict(job_manifest("dup", "pass")))
    with pytest.raises(ApiError) as dup:
        client.create(from_dict(job_manifest("dup", "pass")))
    assert (dup.value.status.code, dup.value.status.reason) == (409, "AlreadyExists")
    bad = job_manifest("bad-policy", "pass")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiError) as invalid:
        client.create(from_dict(bad))
    assert invalid.value.status.code == 422
    assert "spec.template.spec.restartPolicy" in invalid.value.status.message
    assert double.ca_file is not None
    context = ssl.create_default_context(cafile=str(double.ca_file))
    response = httpx.get(f"{double.url}/api/v1/pods", verify=context)
    assert response.status_code == 401 and response.json()["reason"] == "Unauthorized"


def test_request_counter_by_verb_and_resource(double: KubernetesDouble, client: Client) -> None:
    double.reset_requests()
    client.create(from_dict(job_manifest("count", "pass")))
    wait_job(client, "count")
    list(client.list(Pod))
    counts = double.requests()
    assert counts[("create", "jobs")] == 1
    assert counts[("watch", "jobs")] >= 1
    assert counts[("list", "pods")] == 1
    assert double.request_count(resource="pods") == 1
