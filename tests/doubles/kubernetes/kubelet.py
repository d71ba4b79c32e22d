"""A pretend kubelet: runs each bound pod's containers as local processes (the image is
ignored, except that a configured bad image name fails to pull) and reports their status
with the shapes of the v1 Pod reference
(https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#PodStatus)
and "Pod Lifecycle" (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/).

Limits it honours: ``limits.memory`` by a watchdog over the resident memory of the container's
session, children included (SIGKILL, ``OOMKilled``, exit code 137, as the kernel's cgroup OOM
killer gives), the
pod's ``activeDeadlineSeconds`` (phase Failed, reason ``DeadlineExceeded``) and graceful
deletion (SIGTERM, then SIGKILL after the grace period). A container whose command cannot be
executed ends as ``StartError`` (exit code 128); missing Secrets or ConfigMaps referenced by
``env``/``envFrom`` keep it waiting in ``CreateContainerConfigError``; an image named in
``bad_images`` waits in ``ErrImagePull`` then ``ImagePullBackOff``. Only restartPolicy Never
semantics are run: containers are not restarted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..memory import session_rss
from .controllers import set_condition
from .quantity import parse_quantity
from .resources import RESOURCES
from .selectors import field_value
from .store import JsonDict, now, parse_time

if TYPE_CHECKING:
    from .cluster import Cluster

PODS = RESOURCES["pods"]
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` references; ``$$`` escapes a dollar."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))
    return _VAR.sub(replace, text)


@dataclass
class ContainerRun:
    name: str
    spec: JsonDict
    log: Path
    process: asyncio.subprocess.Process | None = None
    container_id: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    memory_limit: int | None = None


@dataclass
class PodRun:
    uid: str
    namespace: str
    name: str
    node: str
    sandbox: Path
    containers: list[ContainerRun] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    grace: float = 30.0
    lost: bool = False
    deadline_exceeded: bool = False
    task: asyncio.Task[None] | None = None


class Kubelet:
    """Every node's kubelet, one object; pods are tracked by uid."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.runs: dict[str, PodRun] = {}
        cluster.registry.on_pod_deleting = self.pod_deleting

    # -- entry points from the control plane ----------------------------------------------------
    def pod_bound(self, pod: JsonDict) -> None:
        meta = pod["metadata"]
        if meta["uid"] in self.runs:
            return
        sandbox = self.cluster.options.work_dir / "pods" / \
            f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        sandbox.mkdir(parents=True, exist_ok=True)
        run = PodRun(meta["uid"], meta["namespace"], meta["name"], pod["spec"]["nodeName"],
                     sandbox)
        for spec in pod["spec"]["containers"]:
            limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
            run.containers.append(ContainerRun(
                spec["name"], spec, sandbox / f"{spec['name']}.log",
                memory_limit=int(parse_quantity(limit)) if limit else None))
        self.runs[run.uid] = run
        run.task = self.cluster.loop.create_task(self._run(run))

    def pod_deleting(self, pod: JsonDict) -> None:
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None:
            return
        run.grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        run.stop.set()

    def log_of(self, uid: str, container: str) -> ContainerRun | None:
        run = self.runs.get(uid)
        if run is None:
            return None
        for item in run.containers:
            if item.name == container:
                return item
        return None

    def kill_node(self, node: str) -> list[PodRun]:
        """The node is gone: its processes die with it and nobody reports their end."""
        lost = []
        for run in self.runs.values():
            if run.node == node and not run.lost:
                run.lost = True
                lost.append(run)
                for container in run.containers:
                    self._signal(container, signal.SIGKILL)
                run.stop.set()
        return lost

    async def stop_all(self) -> None:
        for run in list(self.runs.values()):
            run.lost = True
            for container in run.containers:
                self._signal(container, signal.SIGKILL)
            run.stop.set()
        tasks = [r.task for r in self.runs.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # -- status writing -------------------------------------------------------------------------
    def _write(self, run: PodRun, edit: Callable[[JsonDict], None]) -> JsonDict | None:
        if run.lost:
            return None
        pod = self.cluster.store.get(PODS, run.namespace, run.name)
        if pod is None or pod["metadata"]["uid"] != run.uid:
            return None
        return self.cluster.store.mutate(PODS, run.namespace, run.name, edit)

    def _event(self, run: PodRun, event_type: str, reason: str, message: str,
               container: str | None = None) -> None:
        pod = self.cluster.store.get(PODS, run.namespace, run.name)
        if pod is None or run.lost:
            return
        path = f"spec.containers{{{container}}}" if container else None
        self.cluster.events.record(pod, event_type, reason, message, "kubelet", run.node, path)

    @staticmethod
    def _image(container: ContainerRun) -> str:
        return str(container.spec.get("image", ""))

    def _waiting(self, run: PodRun, reasons: dict[str, tuple[str, str | None]],
                 sandbox_ready: bool) -> None:
        def edit(pod: JsonDict) -> None:
            status = pod["status"]
            status["phase"] = "Pending"
            status["hostIP"] = "127.0.0.1"
            status["hostIPs"] = [{"ip": "127.0.0.1"}]
            if sandbox_ready:
                status["podIP"] = self._pod_ip(run)
                status["podIPs"] = [{"ip": status["podIP"]}]
            status.setdefault("startTime", now())
            names = " ".join(c.name for c in run.containers)
            set_condition(pod, "PodReadyToStartContainers", "True" if sandbox_ready else "False")
            set_condition(pod, "Initialized", "True")
            set_condition(pod, "Ready", "False", "ContainersNotReady",
                          f"containers with unready status: [{names}]")
            set_condition(pod, "ContainersReady", "False", "ContainersNotReady",
                          f"containers with unready status: [{names}]")
            self._order_conditions(pod)
            statuses = []
            for container in run.containers:
                reason, message = reasons[container.name]
                waiting: JsonDict = {"reason": reason}
                if message:
                    waiting["message"] = message
                statuses.append({
                    "name": container.name, "state": {"waiting": waiting}, "lastState": {},
                    "ready": False, "restartCount": 0, "image": self._image(container),
                    "imageID": "", "started": False,
                })
            status["containerStatuses"] = statuses
        self._write(run, edit)

    @staticmethod
    def _order_conditions(pod: JsonDict) -> None:
        order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                 "PodScheduled", "DisruptionTarget"]
        pod["status"]["conditions"].sort(
            key=lambda c: order.index(c["type"]) if c["type"] in order else len(order))

    @staticmethod
    def _pod_ip(run: PodRun) -> str:
        value = int(run.uid.replace("-", "")[:4], 16)
        return f"10.244.{value >> 8}.{(value & 0xFF) or 1}"

    def _container_status(self, container: ContainerRun) -> JsonDict:
        image = self._image(container)
        status: JsonDict = {
            "name": container.name, "lastState": {}, "restartCount": 0, "image": image,
            "imageID": f"{image}@sha256:{uuid.uuid5(uuid.NAMESPACE_URL, image).hex * 2}",
            "containerID": container.container_id,
        }
        if container.exit_code is None:
            status["state"] = {"running": {"startedAt": container.started_at}}
            status["ready"] = True
            status["started"] = True
        else:
            terminated: JsonDict = {
                "exitCode": container.exit_code, "reason": container.reason,
                "startedAt": container.started_at or None,
                "finishedAt": container.finished_at, "containerID": container.container_id,
            }
            if container.message:
                terminated["message"] = container.message
            if not container.container_id:
                terminated.pop("containerID")
                status.pop("containerID")
            status["state"] = {"terminated": terminated}
            status["ready"] = False
            status["started"] = False
        return status

    # -- the pod's life -------------------------------------------------------------------------
    async def _run(self, run: PodRun) -> None:
        try:
            await self._life(run)
        finally:
            for container in run.containers:
                self._signal(container, signal.SIGKILL)
            self.runs.pop(run.uid, None)

    async def _wait_stop(self, run: PodRun, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run.stop.wait(), timeout)
        return run.stop.is_set()

    async def _life(self, run: PodRun) -> None:
        options = self.cluster.options
        self._waiting(run, {c.name: ("ContainerCreating", None) for c in run.containers}, False)
        if await self._wait_stop(run, options.container_create_delay):
            self._never_started(run)
            return
        bad = [c for c in run.containers if options.is_bad_image(self._image(c))]
        if bad:
            await self._pull_failure(run, bad)
            return
        while True:
            problems = {c.name: self._resolve_env(run, c)[1] for c in run.containers}
            if not any(problems.values()):
                break
            self._waiting(run, {
                name: ("CreateContainerConfigError", problem) if problem
                else ("ContainerCreating", None) for name, problem in problems.items()
            }, True)
            for name, problem in problems.items():
                if problem:
                    self._event(run, "Warning", "Failed", f"Error: {problem}", name)
            if await self._wait_stop(run, options.config_retry_interval):
                self._never_started(run)
                return
        for container in run.containers:
            self._event(run, "Normal", "Pulled",
                        f'Container image "{self._image(container)}" already present on machine',
                        container.name)
            await self._start(run, container)
        self._write(run, self._running_status(run))
        await self._supervise(run)
        self._finished(run)

    async def _pull_failure(self, run: PodRun, bad: list[ContainerRun]) -> None:
        reasons: dict[str, tuple[str, str | None]] = {
            c.name: ("ContainerCreating", None) for c in run.containers}
        for container in bad:
            image = self._image(container)
            message = (f'failed to pull and unpack image "{image}": failed to resolve reference '
                       f'"{image}": {image}: not found')
            reasons[container.name] = ("ErrImagePull", message)
            self._event(run, "Normal", "Pulling", f'Pulling image "{image}"', container.name)
            self._event(run, "Warning", "Failed",
                        f'Failed to pull image "{image}": {message}', container.name)
            self._event(run, "Warning", "Failed", "Error: ErrImagePull", container.name)
        self._waiting(run, reasons, True)
        if await self._wait_stop(run, self.cluster.options.image_pull_backoff_delay):
            self._never_started(run)
            return
        for container in bad:
            image = self._image(container)
            reasons[container.name] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            self._event(run, "Normal", "BackOff", f'Back-off pulling image "{image}"',
                        container.name)
            self._event(run, "Warning", "Failed", "Error: ImagePullBackOff", container.name)
        self._waiting(run, reasons, True)
        await run.stop.wait()
        self._never_started(run)

    def _never_started(self, run: PodRun) -> None:
        """Deleted before its containers ran: the kubelet ends it as Failed."""
        for container in run.containers:
            if container.exit_code is None:
                container.exit_code = 137
                container.reason = "ContainerStatusUnknown"
                container.message = "The container could not be located when the pod was " \
                                    "terminated"
                container.finished_at = now()
        self._finished(run)

    def _resolve_env(self, run: PodRun, container: ContainerRun) -> tuple[dict[str, str],
                                                                           str | None]:
        store = self.cluster.store
        pod = store.get(PODS, run.namespace, run.name) or {}
        env: dict[str, str] = {}

        def lookup(kind: str, name: str, key: str | None, optional: bool) -> tuple[Any, str | None]:
            rt = RESOURCES["secrets" if kind == "Secret" else "configmaps"]
            obj = store.get(rt, run.namespace, name)
            if obj is None:
                return None, None if optional else f'{kind.lower()} "{name}" not found'
            data: dict[str, str] = dict(obj.get("data") or {})
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                data.update(obj.get("stringData") or {})
            if key is None:
                return data, None
            if key not in data:
                return None, None if optional else \
                    f"couldn't find key {key} in {kind} {run.namespace}/{name}"
            return data[key], None

        for source in container.spec.get("envFrom") or []:
            for kind, ref_key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                ref = source.get(ref_key)
                if ref:
                    data, problem = lookup(kind, ref["name"], None, bool(ref.get("optional")))
                    if problem:
                        return env, problem
                    for key, value in (data or {}).items():
                        env[source.get("prefix", "") + key] = value
        for item in container.spec.get("env") or []:
            name = item["name"]
            source = item.get("valueFrom")
            if source is None:
                env[name] = expand(str(item.get("value", "")), env)
                continue
            if "secretKeyRef" in source or "configMapKeyRef" in source:
                kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
                ref = source["secretKeyRef" if kind == "Secret" else "configMapKeyRef"]
                value, problem = lookup(kind, ref["name"], ref["key"], bool(ref.get("optional")))
                if problem:
                    return env, problem
                if value is not None:
                    env[name] = str(value)
            elif "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                match = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
                if match:
                    env[name] = str((pod.get("metadata", {}).get(match.group(1)) or {}).get(
                        match.group(2), ""))
                else:
                    env[name] = field_value(pod, path) or ""
            elif "resourceFieldRef" in source:
                ref = source["resourceFieldRef"]
                part, _, resource = ref["resource"].partition(".")
                value = ((container.spec.get("resources") or {}).get(part) or {}).get(resource)
                if value is None:
                    env[name] = "0"
                else:
                    divisor = parse_quantity(ref.get("divisor", "1"))
                    amount = parse_quantity(value) / divisor
                    env[name] = str(int(-(-amount // 1)))
        return env, None

    async def _start(self, run: PodRun, container: ContainerRun) -> None:
        options = self.cluster.options
        env = dict(os.environ) if options.inherit_environment else {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update({"HOSTNAME": run.name, "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                    "KUBERNETES_SERVICE_PORT": str(self.cluster.port)})
        resolved, _ = self._resolve_env(run, container)
        env.update(resolved)
        argv = [expand(str(a), env) for a in
                (container.spec.get("command") or []) + (container.spec.get("args") or [])]
        workdir = container.spec.get("workingDir")
        cwd = workdir if workdir and Path(workdir).is_dir() else str(run.sandbox)
        container.container_id = f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}"
        container.started_at = now()
        log = container.log.open("ab")
        try:
            if not argv:
                raise FileNotFoundError("no command specified")
            container.process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                cwd=cwd, start_new_session=True)
        except OSError as error:
            container.exit_code = 128
            container.reason = "StartError"
            container.message = (
                "failed to create containerd task: failed to create shim task: OCI runtime "
                f"create failed: runc create failed: unable to start container process: exec: "
                f'"{argv[0] if argv else ""}": {error.strerror or error}: unknown')
            container.finished_at = now()
            self._event(run, "Warning", "Failed", f"Error: {container.message}", container.name)
        else:
            self._event(run, "Normal", "Created", f"Created container: {container.name}",
                        container.name)
            self._event(run, "Normal", "Started", f"Started container {container.name}",
                        container.name)
        finally:
            log.close()

    def _running_status(self, run: PodRun) -> Callable[[JsonDict], None]:
        def edit(pod: JsonDict) -> None:
            status = pod["status"]
            all_running = all(c.exit_code is None for c in run.containers)
            status["phase"] = "Running"
            status["podIP"] = self._pod_ip(run)
            status["podIPs"] = [{"ip": status["podIP"]}]
            set_condition(pod, "PodReadyToStartContainers", "True")
            if all_running:
                set_condition(pod, "Ready", "True")
                set_condition(pod, "ContainersReady", "True")
            self._order_conditions(pod)
            status["containerStatuses"] = [self._container_status(c) for c in run.containers]
        return edit

    @staticmethod
    def _signal(container: ContainerRun, sig: int) -> None:
        process = container.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    async def _supervise(self, run: PodRun) -> None:
        options = self.cluster.options
        pod = self.cluster.store.get(PODS, run.namespace, run.name) or {}
        deadline_seconds = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        start = parse_time(pod.get("status", {}).get("startTime") or now())
        waiters = {asyncio.ensure_future(c.process.wait()): c for c in run.containers
                   if c.process is not None}
        kill_at: float | None = None
        while waiters:
            done, _ = await asyncio.wait(waiters, timeout=options.memory_poll_interval,
                                         return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                container = waiters.pop(future)
                self._exited(container)
                if not run.stop.is_set() and waiters:
                    self._write(run, self._running_status(run))
            for container in waiters.values():
                if container.memory_limit and container.process is not None and \
                        session_rss(container.process.pid) > container.memory_limit:
                    container.reason = "OOMKilled"
                    self._signal(container, signal.SIGKILL)
            if deadline_seconds is not None and not run.stop.is_set() and \
                    time.time() - start >= int(deadline_seconds):
                run.deadline_exceeded = True
                run.grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
                self._event(run, "Normal", "DeadlineExceeded",
                            "Pod was active on the node longer than the specified deadline")
                run.stop.set()
            if run.stop.is_set() and kill_at is None:
                kill_at = time.monotonic() + run.grace
                for container in waiters.values():
                    self._event(run, "Normal", "Killing",
                                f"Stopping container {container.name}", container.name)
                    self._signal(container, signal.SIGTERM if run.grace > 0 else signal.SIGKILL)
            if kill_at is not None and time.monotonic() >= kill_at:
                for container in waiters.values():
                    self._signal(container, signal.SIGKILL)

    @staticmethod
    def _exited(container: ContainerRun) -> None:
        process = container.process
        assert process is not None and process.returncode is not None
        code = process.returncode
        container.exit_code = 128 - code if code < 0 else code
        container.finished_at = now()
        if container.reason == "OOMKilled":
            container.exit_code = 137
        elif container.exit_code == 0:
            container.reason = "Completed"
        else:
            container.reason = "Error"

    def _finished(self, run: PodRun) -> None:
        def edit(pod: JsonDict) -> None:
            status = pod["status"]
            failed = any(c.exit_code != 0 for c in run.containers)
            status["phase"] = "Failed" if failed or run.deadline_exceeded else "Succeeded"
            if run.deadline_exceeded:
                status["reason"] = "DeadlineExceeded"
                status["message"] = "Pod was active on the node longer than the specified deadline"
            status.setdefault("startTime", now())
            set_condition(pod, "PodReadyToStartContainers", "False")
            set_condition(pod, "Ready", "False", "PodCompleted")
            set_condition(pod, "ContainersReady", "False", "PodCompleted")
            self._order_conditions(pod)
            status["containerStatuses"] = [self._container_status(c) for c in run.containers]
        self._write(run, edit)

