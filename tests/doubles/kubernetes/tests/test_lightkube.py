"""The double through lightkube, the client the kubernetes backend uses: jobs to completion
and failure, the exact status shapes, scheduling, watches with resourceVersion and 410 Gone,
selectors, deletion and the fault hooks. Objects are read through ``to_dict()`` (the JSON the
API answered) so that the assertions compare the wire shapes."""

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
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.operators import exists, in_, not_in
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Node, Pod
from lightkube.types import CascadeType

from tests.doubles.kubernetes import KubernetesDouble

from .conftest import BAD_IMAGE, job_manifest

JsonDict = dict[str, Any]


def d(obj: Any) -> JsonDict:
    """The object as the API's JSON."""
    data: JsonDict = obj.to_dict()
    return data


def http(client: Client) -> httpx.Client:
    """The httpx client lightkube builds from the kubeconfig (token, CA, server)."""
    config: SingleConfig = client.config
    return HttpClient(config, ConnectionParams())


def wait_job(client: Client, name: str, timeout: float = 30) -> JsonDict:
    """Watch the job until it has a Complete or Failed condition."""
    deadline = time.monotonic() + timeout
    for _, job in client.watch(Job, fields={"metadata.name": name}, server_timeout=int(timeout)):
        data = d(job)
        for cond in data.get("status", {}).get("conditions") or []:
            if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
                return data
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"job {name} did not finish")


def pods(client: Client, **labels: str) -> list[JsonDict]:
    selector: dict[str, Any] = dict(labels)
    return [d(p) for p in client.list(Pod, labels=selector)]


def only_pod(client: Client, job: str) -> JsonDict:
    found = pods(client, **{"job-name": job})
    assert len(found) == 1, [p["metadata"]["name"] for p in found]
    return found[0]


def conditions(obj: JsonDict) -> dict[str, JsonDict]:
    return {c["type"]: c for c in obj.get("status", {}).get("conditions") or []}


def terminated(pod: JsonDict) -> JsonDict:
    state: JsonDict = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


def events(client: Client, **fields: str) -> list[JsonDict]:
    return [d(e) for e in client.list(Event, namespace="default", fields=dict(fields))]


def test_job_succeeds_with_status_shapes_events_and_logs(double: KubernetesDouble,
                                                         client: Client) -> None:
    client.create(from_dict(job_manifest("ok", "print('hello from the pod')",
                                         labels={"run": "r1"}, ttlSecondsAfterFinished=600)))
    job = wait_job(client, "ok")
    conds = conditions(job)
    assert conds["Complete"]["reason"] == "CompletionsReached"
    assert conds["SuccessCriteriaMet"]["status"] == "True"
    status = job["status"]
    assert status["succeeded"] == 1 and "failed" not in status
    assert status["completionTime"] and status["startTime"]
    pod = only_pod(client, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert pod["metadata"]["labels"]["run"] == "r1"
    assert (terminated(pod)["exitCode"], terminated(pod)["reason"]) == (0, "Completed")
    assert "".join(client.log(pod["metadata"]["name"])) == "hello from the pod\n"
    reasons = {e["reason"] for e in events(client, **{
        "involvedObject.name": pod["metadata"]["name"]})}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons
    job_reasons = {e["reason"] for e in events(client, **{"involvedObject.kind": "Job"})}
    assert job_reasons >= {"SuccessfulCreate", "Completed"}


def test_failed_job_reports_exit_code_and_backoff_limit(client: Client) -> None:
    client.create(from_dict(job_manifest("bad", "import sys; sys.exit(3)")))
    job = wait_job(client, "bad")
    failed = conditions(job)["Failed"]
    assert (failed["reason"], failed["message"]) == (
        "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert conditions(job)["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 1
    pod = only_pod(client, "bad")
    assert pod["status"]["phase"] == "Failed"
    assert (terminated(pod)["exitCode"], terminated(pod)["reason"]) == (3, "Error")


def test_backoff_limit_retries_with_new_pods(client: Client) -> None:
    client.create(from_dict(job_manifest("retry", "import sys; sys.exit(1)", backoff_limit=1)))
    job = wait_job(client, "retry")
    assert conditions(job)["Failed"]["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 2
    assert len(pods(client, **{"job-name": "retry"})) == 2


def test_memory_limit_gives_oomkilled_137(client: Client) -> None:
    script = "x = bytearray(300 * 1024 * 1024); import time; time.sleep(30)"
    client.create(from_dict(job_manifest("oom", script, resources={
        "limits": {"memory": "100Mi", "cpu": "1"}})))
    job = wait_job(client, "oom")
    assert conditions(job)["Failed"]["reason"] == "BackoffLimitExceeded"
    state = terminated(only_pod(client, "oom"))
    assert (state["exitCode"], state["reason"]) == (137, "OOMKilled")


def test_job_active_deadline_fails_with_deadline_exceeded(double: KubernetesDouble,
                                                          client: Client) -> None:
    client.create(from_dict(job_manifest("slow", "import time; time.sleep(60)",
                                         activeDeadlineSeconds=1)))
    job = wait_job(client, "slow")
    failed = conditions(job)["Failed"]
    assert (failed["reason"], failed["message"]) == (
        "DeadlineExceeded", "Job was active longer than specified deadline")
    double.wait_for(lambda: not any(name.startswith("slow-") for name in double.process_ids()),
                    10)


def test_pod_active_deadline_and_unschedulable_message(double: KubernetesDouble,
                                                       client: Client) -> None:
    client.create(from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
        "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"],
                                 "resources": {"requests": {"memory": "100Gi"}}}]}}))

    def scheduled_condition() -> JsonDict | None:
        return conditions(d(client.get(Pod, "big"))).get("PodScheduled")

    scheduled: JsonDict = double.wait_for(scheduled_condition)
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["message"] == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {spot: true}, "
        "2 Insufficient memory.")
    failed = events(client, **{"involvedObject.name": "big", "reason": "FailedScheduling"})
    assert failed and failed[0]["message"] == scheduled["message"]
    assert failed[0]["type"] == "Warning"
    client.create(from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late"},
        "spec": {"activeDeadlineSeconds": 1, "restartPolicy": "Never",
                 "terminationGracePeriodSeconds": 1, "containers": [
                     {"name": "c", "image": "x",
                      "command": [sys.executable, "-c", "import time; time.sleep(60)"]}]}}))

    def ended() -> JsonDict | None:
        pod = d(client.get(Pod, "late"))
        return pod if pod["status"]["phase"] == "Failed" else None

    late: JsonDict = double.wait_for(ended)
    assert (late["status"]["reason"], late["status"]["message"]) == (
        "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")


def test_spot_taints_affinity_and_hostname_anti_affinity(double: KubernetesDouble,
                                                         client: Client) -> None:
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
    assert only_pod(client, "on-spot")["spec"]["nodeName"] == "spot-c"
    assert only_pod(client, "not-a")["spec"]["nodeName"] == "node-b"

    def message() -> str | None:
        return conditions(only_pod(client, "gpu")).get("PodScheduled", {}).get("message")

    assert double.wait_for(message) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {spot: true}, "
        "2 node(s) didn't match Pod's node affinity/selector.")


def test_pods_that_cannot_start_wait_with_the_kubelet_reason(double: KubernetesDouble,
                                                             client: Client) -> None:
    client.create(from_dict(job_manifest("pull", "pass", image=BAD_IMAGE)))
    secret_env = {"containers": [{"name": "main", "image": "x", "command": ["true"], "env": [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]}]}
    client.create(from_dict(job_manifest("conf", "pass", pod=secret_env)))

    def waiting(job: str) -> JsonDict | None:
        found = pods(client, **{"job-name": job})
        statuses = found[0]["status"].get("containerStatuses") if found else None
        state: JsonDict | None = statuses[0]["state"].get("waiting") if statuses else None
        if state and state["reason"] not in ("ContainerCreating", "ErrImagePull"):
            return state
        return None

    pull = double.wait_for(lambda: waiting("pull"))
    assert (pull["reason"], pull["message"]) == ("ImagePullBackOff",
                                                 f'Back-off pulling image "{BAD_IMAGE}"')
    conf = double.wait_for(lambda: waiting("conf"))
    assert (conf["reason"], conf["message"]) == ("CreateContainerConfigError",
                                                 'secret "db" not found')
    client.create(from_dict({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                             "data": {"pw": "czNjcmV0"}}))
    assert conditions(wait_job(client, "conf"))["Complete"]["status"] == "True"


def test_watch_resumes_from_resource_version_and_answers_410_when_too_old(
        double: KubernetesDouble, client: Client) -> None:
    listed = client.list(Pod, labels={"run": "w"})
    assert list(listed) == []
    version = listed.resourceVersion
    client.create(from_dict(job_manifest("w1", "pass", labels={"run": "w"})))
    wait_job(client, "w1")
    seen = []
    for kind, pod in client.watch(Pod, labels={"run": "w"}, resource_version=version):
        phase = d(pod)["status"]["phase"]
        seen.append((kind, phase))
        if phase == "Succeeded":
            break
    assert seen[0] == ("ADDED", "Pending") and seen[-1] == ("MODIFIED", "Succeeded")
    double.compact()
    with pytest.raises(ApiError) as caught:
        next(iter(client.watch(Pod, labels={"run": "w"}, resource_version=version)))
    assert caught.value.status.code == 410 and caught.value.status.reason == "Expired"
    # the raw stream: HTTP 200, then one ERROR event holding the Status
    with http(client) as raw:
        response = raw.get("/api/v1/namespaces/default/pods",
                           params={"watch": "1", "resourceVersion": version})
    assert response.status_code == 200
    event = response.json()
    assert event["type"] == "ERROR"
    oldest = double.call(lambda c: c.store.oldest_rv)
    assert event["object"] == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {version} ({oldest})",
        "reason": "Expired", "code": 410}


def test_watch_bookmarks_and_list_paging(double: KubernetesDouble, client: Client) -> None:
    for index in range(5):
        client.create(from_dict({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": f"page-{index}"}}))
    with http(client) as raw:
        first = raw.get("/api/v1/namespaces/default/configmaps", params={"limit": "2"}).json()
        assert [i["metadata"]["name"] for i in first["items"]] == ["page-0", "page-1"]
        assert first["metadata"]["remainingItemCount"] == 3
        rest = raw.get("/api/v1/namespaces/default/configmaps",
                       params={"limit": "10", "continue": first["metadata"]["continue"]}).json()
        assert [i["metadata"]["name"] for i in rest["items"]] == ["page-2", "page-3", "page-4"]
        assert "continue" not in rest["metadata"]
        watch = raw.get("/api/v1/namespaces/default/configmaps", params={
            "watch": "true", "resourceVersion": first["metadata"]["resourceVersion"],
            "allowWatchBookmarks": "true", "timeoutSeconds": "1"})
    assert watch.status_code == 200
    assert watch.text == ""  # nothing changed and the 60 s bookmark interval did not pass
    assert {d(b)["metadata"]["name"] for b in client.list(ConfigMap)} >= {"page-0", "page-4"}


def test_label_selectors(client: Client) -> None:
    for name, labels in (("s1", {"tier": "a", "run": "x"}), ("s2", {"tier": "b", "run": "x"}),
                         ("s3", {"tier": "c"})):
        client.create(from_dict({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": name, "labels": labels}}))

    def names(**selector: Any) -> list[str]:
        return sorted(d(c)["metadata"]["name"] for c in client.list(ConfigMap, labels=selector))

    assert names(tier="a") == ["s1"]
    assert names(tier=not_in(["a"])) == ["s2", "s3"]
    assert names(tier=in_(["a", "c"])) == ["s1", "s3"]
    assert names(run=exists()) == ["s1", "s2"]
    with http(client) as raw:
        got = raw.get("/api/v1/namespaces/default/configmaps",
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
    # lightkube's deletecollection has no label selector: send the request it would build
    with http(client) as raw:
        for path in ("/apis/batch/v1/namespaces/default/jobs",
                     "/api/v1/namespaces/default/pods"):
            response = raw.delete(path, params={"labelSelector": "run=del",
                                                "propagationPolicy": "Background"})
            assert response.status_code == 200, response.text
    assert double.requests() == {("deletecollection", "jobs"): 1,
                                 ("deletecollection", "pods"): 1}
    double.wait_for(lambda: not pods(client, run="del"), 15)
    assert not list(client.list(Job, labels={"run": "del"}))
    assert [d(j)["metadata"]["name"] for j in client.list(Job)] == ["keep"]
    client.deletecollection(Job, cascade=CascadeType.BACKGROUND)
    double.wait_for(lambda: not pods(client) and not double.process_ids(), 15)


def test_foreground_delete_keeps_the_job_until_its_pods_are_gone(double: KubernetesDouble,
                                                                 client: Client) -> None:
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), sys.exit(143)))\n"
              "time.sleep(60)")
    client.create(from_dict(job_manifest("fg", script)))
    double.wait_for(lambda: double.process_ids().get(only_pod(client, "fg")["metadata"]["name"]))
    client.delete(Job, "fg", cascade=CascadeType.FOREGROUND)
    job = d(client.get(Job, "fg"))
    assert job["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in job["metadata"]["finalizers"]
    double.wait_for(lambda: not list(client.list(Job)) and not pods(client), 15)


def test_default_job_delete_orphans_pods(double: KubernetesDouble, client: Client) -> None:
    client.create(from_dict(job_manifest("orph", "import time; time.sleep(60)")))
    pod = double.wait_for(lambda: pods(client, **{"job-name": "orph"}))[0]
    client.delete(Job, "orph")
    double.wait_for(lambda: not list(client.list(Job)))
    left = d(client.get(Pod, pod["metadata"]["name"]))
    assert not left["metadata"].get("ownerReferences")
    assert left["status"]["phase"] in ("Pending", "Running")
    client.delete(Pod, pod["metadata"]["name"], grace_period=0)


def test_ttl_after_finished_removes_job_and_pods(double: KubernetesDouble,
                                                 client: Client) -> None:
    client.create(from_dict(job_manifest("ttl", "pass", ttlSecondsAfterFinished=1)))
    wait_job(client, "ttl")
    double.wait_for(lambda: not list(client.list(Job)) and not pods(client), 15)


def test_eviction_preemption_and_node_loss_set_disruption_target(double: KubernetesDouble,
                                                                 client: Client) -> None:
    for name in ("ev", "pre", "lost"):
        client.create(from_dict(job_manifest(name, "import time; time.sleep(60)",
                                             labels={"run": "dis"})))

    def running() -> dict[str, JsonDict] | None:
        found = {p["metadata"]["labels"]["job-name"]: p for p in pods(client, run="dis")
                 if p["status"]["phase"] == "Running"}
        return found if len(found) == 3 else None

    by_job: dict[str, JsonDict] = double.wait_for(running)
    listed = client.list(Pod, labels={"run": "dis"})
    assert len(list(listed)) == 3
    version = listed.resourceVersion
    double.evict_pod(by_job["ev"]["metadata"]["name"])
    double.preempt_pod(by_job["pre"]["metadata"]["name"])
    node = by_job["lost"]["spec"]["nodeName"]
    assert by_job["lost"]["metadata"]["name"] in double.lose_node(node)
    reasons: dict[str, str] = {}
    for _, obj in client.watch(Pod, labels={"run": "dis"}, resource_version=version):
        pod = d(obj)
        target = conditions(pod).get("DisruptionTarget")
        if target is not None:
            reasons[pod["metadata"]["labels"]["job-name"]] = target["reason"]
        if len(reasons) == 3:
            break
    assert reasons == {"ev": "EvictionByEvictionAPI", "pre": "PreemptionByScheduler",
                       "lost": "DeletionByTaintManager"}
    node_obj = d(client.get(Node, node))
    assert {t["key"] for t in node_obj["spec"]["taints"]} == {"node.kubernetes.io/unreachable"}
    assert [c["status"] for c in node_obj["status"]["conditions"] if c["type"] == "Ready"] == \
        ["Unknown"]


def test_eviction_subresource(double: KubernetesDouble, client: Client) -> None:
    client.create(from_dict(job_manifest("evapi", "import time; time.sleep(60)")))
    name: str = double.wait_for(lambda: [p["metadata"]["name"] for p in pods(client)
                                         if p["status"]["phase"] == "Running"])[0]
    with http(client) as raw:
        response = raw.post(f"/api/v1/namespaces/default/pods/{name}/eviction", json={
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
    assert response.status_code == 201
    target = conditions(d(client.get(Pod, name)))["DisruptionTarget"]
    assert target["reason"] == "EvictionByEvictionAPI"


def test_errors_are_status_objects_and_auth_is_required(double: KubernetesDouble,
                                                        client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.get(Job, "nope")
    status = missing.value.status
    assert (status.code, status.reason, status.message) == (
        404, "NotFound", 'jobs.batch "nope" not found')
    client.create(from_dict(job_manifest("dup", "pass")))
    with pytest.raises(ApiError) as dup:
        client.create(from_dict(job_manifest("dup", "pass")))
    assert (dup.value.status.code, dup.value.status.reason) == (409, "AlreadyExists")
    bad = job_manifest("bad-policy", "pass")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiError) as invalid:
        client.create(from_dict(bad))
    assert invalid.value.status.code == 422
    assert "spec.template.spec.restartPolicy" in (invalid.value.status.message or "")
    assert double.ca_file is not None
    context = ssl.create_default_context(cafile=str(double.ca_file))
    response = httpx.get(f"{double.url}/api/v1/pods", verify=context)
    assert response.status_code == 401 and response.json()["reason"] == "Unauthorized"


def test_kubeconfig_context_and_namespace(double: KubernetesDouble) -> None:
    config = KubeConfig.from_file(str(double.kubeconfig)).get(context_name="double")
    assert config is not None and config.namespace == "default"
    assert Client(config).get(Node, "node-a").metadata is not None


def test_request_counter_by_verb_and_resource(double: KubernetesDouble, client: Client) -> None:
    double.reset_requests()
    client.create(from_dict(job_manifest("count", "pass")))
    wait_job(client, "count")
    assert len(pods(client)) == 1
    counts = double.requests()
    assert counts[("create", "jobs")] == 1
    assert counts[("watch", "jobs")] >= 1
    assert counts[("list", "pods")] == 1
    assert double.request_count(resource="pods") == 1
