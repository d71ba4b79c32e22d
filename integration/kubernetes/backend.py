"""The kubernetes backend: each job a batch/v1 Job, every pod of the run followed by one
watch, the cluster's room emulated as offers.

Threads, so that no request runs under the batch system's lock:
- a pool of ``--kubernetesApiThreads`` sends the creates, the deletes of killed jobs,
  and reads each ended pod's log into --logDir before its end is reported;
- the watcher lists this run's pods once, then watches them from the list's
  resourceVersion, resumes from the last version it saw, and lists again only on
  410 Gone (a pod that vanished meanwhile is LOST);
- the timer fails jobs whose pod the scheduler could not place for
  ``--kubernetesUnschedulableTimeout``.
The emulated offers are the ready nodes' allocatable resources (on-demand and spot
nodes apart), less what other pods request, or ``--kubernetesQuota``.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import logging
import os
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ...executor.protocol import log_path
from ...scheduler.backend import BackendContext, Post
from ...scheduler.contract import NodeInfo
from ...scheduler.core.events import Event, TaskLaunch, TaskStatus
from ...scheduler.core.jobs import JobSpec, Limits
from ...scheduler.core.resources import MIB, Resources
from ...scheduler.core.states import TaskState
from ..emulated import EmulatedBackend, EmulatedNode, LimitNames
from .api import Expired, KubeApi, KubeError, load_target
from .capacity import SPOT, NodeView, largest, pod_request, pools, read_node
from .manifest import (
    CONTAINER,
    NAME_LABEL,
    Placement,
    job_manifest,
    job_name,
    owner_reference,
    run_selector,
)
from .options import JsonDict, KubernetesOptions
from .pod_status import Phase, PodView, read_pod

log = logging.getLogger(__name__)

T = TypeVar("T")

#: tries of a request that failed for a passing reason, and the first pause between
#: where a pod's service account is mounted (in-cluster)
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
ATTEMPTS = 5
BACKOFF = 0.5


class Step(enum.Enum):
    WAITING = "waiting"  #: launched by the core, its Job not yet created
    CREATING = "creating"
    CREATED = "created"


@dataclass(slots=True)
class _Job:
    task_id: str
    spec: JobSpec
    name: str  #: the Job's name (and its pod's label)
    step: Step = Step.WAITING
    kill: bool = False  #: the core asked to kill it
    ending: bool = False  #: its end is decided, being reported (after its log is read)
    pod: str | None = None
    node: str | None = None
    request: Resources = field(default_factory=Resources)
    running_since: float | None = None  #: when the watch saw its container run
    #: when its Job's create was first sent (its container cannot have started before)
    sent_at: float | None = None
    created_at: float | None = None  #: when its Job was created
    last: PodView | None = None  #: what its pod said last
    #: seconds its pod has been unschedulable while no other pod of the run ran
    unschedulable_for: float | None = None
    pending: str | None = None  #: why it waits: the scheduler's words, or a waiting reason


def run_tag(workflow_id: str) -> str:
    """This run's tag, on every Job and pod: ``mb-`` + the workflow id's start + 4 random
    hex digits (two batch systems of one workflow see only their own)."""
    return f"mb-{re.sub(r'[^a-z0-9]', '', workflow_id.lower())[:8]}-{secrets.token_hex(2)}"


#: the resolution of a container's startedAt/finishedAt (RFC 3339, whole seconds)
STAMP_RESOLUTION = 1.0


def wall_time(sent_at: float | None, view: PodView, seen_end: float) -> float | None:
    """How long a pod's container ran, never less than it did (None if it did not run).

    Two upper bounds, the lesser taken: on this host's clock, from when the Job's create
    was sent to when the watch saw the end (a watch event is handled after it happened,
    so no time when the watch saw the pod bounds the start from below); on the node's
    clock, finishedAt - startedAt plus the stamps' resolution (both are truncated)."""
    if view.started is None:
        return None
    bounds = []
    if sent_at is not None:
        bounds.append(seen_end - sent_at)
    if view.finished is not None:
        bounds.append(view.finished - view.started + STAMP_RESOLUTION)
    return max(0.0, min(bounds)) if bounds else None


class KubernetesBackend(EmulatedBackend):
    """Jobs as batch/v1 Jobs on a Kubernetes cluster."""

    name = "kubernetes"
    options_class = KubernetesOptions
    shared_log_dir = False  # logs come back through the API
    limit_names = LimitNames(cores="kubernetesQuota", memory="kubernetesQuota",
                             disk="kubernetesQuota", gpus="kubernetesQuota",
                             tasks="kubernetesQuota")

    def __init__(self, options: KubernetesOptions, post: Post,
                 context: BackendContext) -> None:
        super().__init__(options, post, context)
        self.options: KubernetesOptions = options
        self.api = KubeApi(load_target(options.kubernetes_config, options.kubernetes_context,
                                          options.kubernetes_namespace))
        self.namespace = self.api.namespace
        self.run_tag = run_tag(context.workflow_id)
        self.selector = run_selector(self.run_tag)
        self._lock = threading.Lock()  # the job table; never held during a request
        self._report_lock = threading.Lock()  # posts in decision order
        self._gone = threading.Condition(self._lock)  # live pods changed
        self._jobs: dict[str, _Job] = {}  # Job name -> job, until its end is reported
        self._by_task: dict[str, str] = {}  # task id -> Job name
        self._live_pods: set[str] = set()  # this run's pods the watch saw, not deleted
        self._excluded: set[str] = set()  # ignored nodes' names
        self._stop = threading.Event()
        self._fatal: str | None = None
        self.relists = 0  #: times the watch had to list again (410 Gone)
        self._nodes: list[NodeView] = []
        self._nodes_seen: list[NodeView] = []  # the last getNodes' nodes
        self._emulated: list[EmulatedNode] = []
        self._owner: JsonDict | None = None  # owner reference of the run's Jobs
        try:
            self._survey()
            self._owner = self._find_owner()
        except BaseException:
            self.api.close()
            raise
        self._pool = ThreadPoolExecutor(options.kubernetes_api_threads,
                                        thread_name_prefix="mesobatch-kubernetes-api")
        self._watcher = threading.Thread(target=self._watch_loop, daemon=True,
                                         name="mesobatch-kubernetes-watch")
        self._timer = threading.Thread(target=self._timer_loop, daemon=True,
                                       name="mesobatch-kubernetes-timer")
        self._synced = threading.Event()  # the first list is done

    # ------------------------------------------------------------------ the cluster
    def _survey(self) -> None:
        """Nodes and what other pods hold on them, once: the emulated nodes and the
        largest job. Without permission to list them, --kubernetesQuota must say."""
        quota = self.options.kubernetes_quota
        try:
            self._nodes = [read_node(n, self.options.kubernetes_spot_node_labels)
                           for n in self.api.list_nodes()]
        except KubeError as e:
            if e.code != 403:  # unreachable, refused credentials, ...: nothing will work
                raise RuntimeError(f"the Kubernetes API at {self.api.server} does not "
                                   f"answer as it should: {e}") from None
            if quota is None:
                raise RuntimeError(f"{e}; without nodes to count, give the room this run "
                                   "may use with --kubernetesQuota") from None
            log.warning("%s; counting --kubernetesQuota only", e)
        others: dict[str, tuple[Resources, int]] = {}
        if self._nodes:
            try:
                for pod in self.api.list_foreign_pods():
                    node = (pod.get("spec") or {}).get("nodeName")
                    if node:
                        used, count = others.get(node, (Resources(), 0))
                        others[node] = (used + pod_request(pod), count + 1)
            except KubeError as e:  # a namespaced account: count allocatable only
                log.info("not counting other pods' requests: %s", e)
        self._emulated = pools(self._nodes, others, quota)
        if not self._emulated:
            raise RuntimeError("no ready, schedulable node in the cluster to run jobs on "
                               "(or give --kubernetesQuota)")

    def _find_owner(self) -> JsonDict | None:
        """The owner reference for the run's Jobs: --kubernetesOwnerPod, else the
        leader's own pod when it runs in the namespace (the pod's name is its
        HOSTNAME), so that Jobs do not outlive a leader whose pod is deleted."""
        name = self.options.kubernetes_owner_pod
        guessed = name is None
        if guessed:
            in_cluster = os.path.exists(f"{SERVICE_ACCOUNT}/token") and \
                bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
            name = os.environ.get("HOSTNAME") if in_cluster else None
            if not name:
                return None
        assert name is not None
        try:
            pod = self.api.get_pod(name)
        except KubeError as e:
            if guessed:
                log.info("the Jobs get no owner: %s", e)
                return None
            raise RuntimeError(f"--kubernetesOwnerPod {name}: {e}") from None
        if pod is None:
            if guessed:
                return None
            raise RuntimeError(f"--kubernetesOwnerPod {name}: no pod of that name in "
                               f"namespace {self.namespace}")
        return owner_reference(pod)

    def emulated_nodes(self) -> Sequence[EmulatedNode]:
        return self._emulated

    def limits(self) -> Limits:
        """The largest job: the largest node's allocatable, within --kubernetesQuota and
        --maxCores/--maxMemory/--maxDisk. The message names the option that binds; none
        when it is the nodes' size (no option of ours makes a node bigger)."""
        quota = self.options.kubernetes_quota
        nodes = largest(self._nodes, None)
        both = largest(self._nodes, quota)
        base = super().limits()

        def bound(option_value: int | None, quota_value: int, node_value: int,
                  option: str) -> tuple[int, str]:
            if option_value is not None and option_value <= quota_value:
                return option_value, option
            return quota_value, "kubernetesQuota" if quota_value < node_value else ""
        cpus, cpus_option = bound(base.cpus, both.cpus, nodes.cpus, base.cpus_option)
        mem, mem_option = bound(base.mem, both.mem, nodes.mem, base.mem_option)
        disk, disk_option = bound(base.disk, both.disk, nodes.disk, base.disk_option)
        gpus, gpus_option = bound(None, both.gpus, nodes.gpus, "")
        return replace(base, cpus=cpus, mem=mem, disk=disk, gpus=gpus,
                       cpus_option=cpus_option, mem_option=mem_option,
                       disk_option=disk_option, gpus_option=gpus_option or None)

    def start(self) -> list[Event]:
        events = super().start()
        self._watcher.start()
        self._timer.start()
        atexit.register(self._atexit)
        return events

    # ------------------------------------------------------------------ launch and kill
    def launch_tasks(self, node: EmulatedNode, tasks: Sequence[TaskLaunch]) -> list[Event]:
        spot = node.agent_id == SPOT
        with self._lock:
            excluded = tuple(sorted(self._excluded))
            jobs = []
            for task in tasks:
                job = _Job(task.task_id, task.job, job_name(self.run_tag, task.task_id),
                           request=task.job.resources)
                self._jobs[job.name] = job
                self._by_task[task.task_id] = job.name
                jobs.append(job)
        placement = Placement(spot=spot, excluded_nodes=excluded)
        for job in jobs:
            self._submit(self._create, job, placement)
        return []

    def _create(self, job: _Job, placement: Placement) -> None:
        with self._lock:
            if job.kill:  # killed before its turn: never created
                self._forget(job)
                killed = True
            else:
                job.step = Step.CREATING
                killed = False
        if killed:
            self.tasks_ended([TaskStatus(job.task_id, TaskState.KILLED, time.time(),
                                         agent_id=self._agent(job))])
            return
        manifest = job_manifest(job.spec, name=job.name, run_tag=self.run_tag,
                                options=self.options, placement=placement,
                                owner=self._owner)
        job.sent_at = time.time()
        try:
            self._retry(lambda: self.api.create_job(manifest), ok=(409,))
        except KubeError as e:
            if e.code == 401 or (e.code == 403 and "exceeded quota" not in e.message):
                self._fatal = str(e)  # refused credentials or permissions: for every job
            self._end(job, TaskStatus(job.task_id, TaskState.ERROR, time.time(),
                                      message=str(e), agent_id=self._agent(job)))
            return
        with self._lock:
            job.step = Step.CREATED
            job.created_at = time.time()
            delete = job.kill and job.name in self._jobs
        if delete:
            self._delete(job)

    def kill_task(self, task_id: str) -> list[Event]:
        with self._lock:
            job = self._jobs.get(self._by_task.get(task_id, ""))
            if job is None or job.ending or job.kill:
                return []  # ended (its end reported, or about to be), or being killed
            job.kill = True
            if job.step is not Step.CREATED:
                return []  # _create sees the flag
        self._submit(self._delete, job)
        return []

    def _delete(self, job: _Job) -> None:
        """Delete a killed job's Job, its pod first (foreground); then it is KILLED. If
        the delete fails, the job stays watched and its own end is reported."""
        try:
            self._retry(lambda: self.api.delete_job(job.name, self.options.kill_grace_period))
        except KubeError as e:
            log.warning("cannot kill job %d: %s", job.spec.job_id, e)
            with self._lock:
                job.kill = False
                view = job.last  # it may have ended meanwhile, unreported
                finish = view is not None and view.phase is Phase.ENDED \
                    and not job.ending and job.name in self._jobs
                if finish:
                    job.ending = True
            if finish:
                assert view is not None
                self._finish(job, view, time.time())
            return
        self._end(job, TaskStatus(job.task_id, TaskState.KILLED, time.time(),
                                  agent_id=self._agent(job)))

    def task_alive(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._by_task

    def fatal_error(self) -> str | None:
        return self._fatal

    # ------------------------------------------------------------------ the watch
    def _watch_loop(self) -> None:
        version: str | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                if version is None:
                    pods, version = self.api.list_pods(self.selector)
                    self._resync(pods)
                    self._synced.set()
                for kind, pod in self.api.watch_pods(self.selector, version,
                                                     self.options.kubernetes_watch_timeout):
                    version = (pod.get("metadata") or {}).get("resourceVersion") or version
                    failures = 0
                    self._on_pod(pod, deleted=kind == "DELETED")
                    if self._stop.is_set():
                        return
            except Expired:
                self.relists += 1
                version = None
            except Exception as e:  # a failed request, or a surprise: list again soon
                if self._stop.is_set():
                    return
                failures += 1
                if isinstance(e, KubeError):
                    log.warning("kubernetes watch: %s (try %d)", e, failures)
                else:
                    log.exception("kubernetes watch: unexpected error; listing again")
                    version = None
                self._stop.wait(min(30.0, BACKOFF * 2 ** min(failures, 6)))

    def _resync(self, pods: list[dict[str, object]]) -> None:
        """After a (re)list: each pod's state as if it had changed, and jobs whose pod
        was seen but is no longer listed are LOST (it vanished while not watched)."""
        listed = set()
        for pod in pods:
            listed.add(self._on_pod(pod))
        with self._lock:
            self._live_pods &= listed
            vanished = [j for j in self._jobs.values()
                        if j.pod is not None and j.pod not in listed
                        and not j.ending and not j.kill]
            for job in vanished:
                job.ending = True
            self._gone.notify_all()
        for job in vanished:
            self._end(job, TaskStatus(job.task_id, TaskState.LOST, time.time(),
                                      message=f"pod {job.pod} vanished",
                                      agent_id=self._agent(job)))

    def _on_pod(self, pod: dict[str, object], deleted: bool = False) -> str:
        meta = pod.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        pod_name = str(meta.get("name", ""))
        labels = meta.get("labels") or {}
        view = read_pod(pod, deleted=deleted)
        now = time.time()
        running = ending = False
        with self._lock:
            if deleted:
                self._live_pods.discard(pod_name)
                self._gone.notify_all()
            else:
                self._live_pods.add(pod_name)
            name = labels.get(NAME_LABEL) if isinstance(labels, dict) else None
            job = self._jobs.get(name) if isinstance(name, str) else None
            if job is None or job.ending:
                return pod_name
            job.last = view
            if job.kill:  # its end is the kill's, unless the delete fails (_delete)
                return pod_name
            job.pod = pod_name
            job.node = view.node or job.node
            if view.phase is Phase.PENDING:
                job.pending = view.message if view.unschedulable else view.waiting_reason
                if not view.unschedulable:
                    job.unschedulable_for = None
                elif job.unschedulable_for is None:
                    job.unschedulable_for = 0.0
            elif view.phase is Phase.RUNNING:
                job.pending = job.unschedulable_for = None
                if job.running_since is None:
                    job.running_since = now
                    running = True
            elif view.phase is Phase.ENDED:
                job.ending = ending = True
        if running:
            with self._report_lock:
                if not job.ending:
                    self.tasks_ended([TaskStatus(job.task_id, TaskState.RUNNING, now,
                                                 agent_id=self._agent(job))])
        if ending:
            self._submit(self._finish, job, view, now)
        return pod_name

    def _finish(self, job: _Job, view: PodView, now: float) -> None:
        """Keep an ended pod's log, then report its end; a pod that cannot start (or a
        job that lost its pod) has its Job deleted."""
        if view.ran and job.pod is not None:
            self._keep_log(job)
        if view.state is TaskState.ERROR and not view.ran:
            try:
                self._retry(lambda: self.api.delete_job(job.name, 0))
            except KubeError as e:
                log.warning("cannot delete Job %s: %s", job.name, e)
        wall = wall_time(job.sent_at, view, now)
        assert view.state is not None
        self._end(job, TaskStatus(job.task_id, view.state, now, exit_code=view.exit_code,
                                  wall_time=wall, message=view.message,
                                  agent_id=self._agent(job), exit_reason=view.exit_reason))

    def _keep_log(self, job: _Job) -> None:
        assert job.pod is not None
        pod = job.pod
        try:
            with open(log_path(self.context.log_dir, job.spec.job_id, job.spec.name),
                      "a") as f:
                try:
                    self.api.copy_log(pod, CONTAINER, f)
                except KubeError as e:
                    f.write(f"mesobatch: {e}\n")
        except OSError as e:
            log.warning("cannot write the log of job %d: %s", job.spec.job_id, e)

    def _timer_loop(self) -> None:
        """Fail jobs whose pod the scheduler could not place, or whose Job made no pod,
        for too long (no request made but to say why a Job has no pod).

        The offers count the cluster as a whole, so a pod may fit the room left but no
        single node (one node's room is the other's). Such a pod is placed when a pod
        of the run ends: its time counts only while none of the run's pods runs."""
        limit = self.options.kubernetes_unschedulable_timeout
        last = time.time()
        while not self._stop.wait(1.0):
            now = time.time()
            step, last = now - last, now
            with self._lock:
                live = [j for j in self._jobs.values() if not j.ending and not j.kill]
                others_run = any(j.running_since is not None for j in live)
                for job in live:
                    if job.unschedulable_for is not None and not others_run:
                        job.unschedulable_for += step
                stuck = [j for j in live if j.unschedulable_for is not None
                         and j.unschedulable_for >= limit]
                podless = [j for j in live if j.pod is None and j.created_at is not None
                           and now - j.created_at >= limit]
                for job in stuck + podless:
                    job.ending = True
            for job in stuck:
                view = PodView(Phase.ENDED, state=TaskState.ERROR, message=(
                    f"the pod could not be scheduled for {limit:g} s "
                    f"(--kubernetesUnschedulableTimeout): {job.pending}"))
                self._submit(self._finish, job, view, now)
            for job in podless:
                self._submit(self._no_pod, job, limit)

    def _no_pod(self, job: _Job, limit: float) -> None:
        """A Job that made no pod in time: ERROR, quoting its warning events."""
        try:
            events = self.api.job_events(job.name)
            said = [f"{e.get('reason')}: {e.get('message')}" for e in events
                    if e.get("type") == "Warning"]
            why = "; ".join(dict.fromkeys(said)) or "no event says why"
        except KubeError as e:
            why = str(e)
        view = PodView(Phase.ENDED, state=TaskState.ERROR, message=(
            f"Job {job.name} made no pod in {limit:g} s "
            f"(--kubernetesUnschedulableTimeout): {why}"))
        self._finish(job, view, time.time())

    # ------------------------------------------------------------------ reporting
    def _agent(self, job: _Job) -> str:
        return job.node or self.name

    def _forget(self, job: _Job) -> bool:
        """(lock held) Remove a job from the table; False if it was gone already."""
        if self._jobs.pop(job.name, None) is None:
            return False
        self._by_task.pop(job.task_id, None)
        return True

    def _end(self, job: _Job, status: TaskStatus) -> None:
        """Report a job's end, once (the first decision wins)."""
        with self._report_lock:
            with self._lock:
                first = self._forget(job)
            if not first:
                return
            if status.message and status.state in (TaskState.LOST, TaskState.ERROR,
                                                   TaskState.FAILED):
                self._tell(job, status.message)
            self.tasks_ended([status])

    def _tell(self, job: _Job, message: str) -> None:
        s = job.spec
        log.warning("kubernetes job %d (%s, Job %s): %s", s.job_id, s.name, job.name,
                    message)
        try:
            with open(log_path(self.context.log_dir, s.job_id, s.name), "a") as f:
                f.write(f"mesobatch: {message}\n")
        except OSError:
            pass

    def _retry(self, call: Callable[[], T], ok: tuple[int, ...] = ()) -> T | None:
        """``call()``, tried again with backoff while it fails for a passing reason;
        a failure whose status is in ``ok`` counts as done (None)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call()
            except KubeError as e:
                if e.code in ok:
                    return None
                if not e.transient or attempt == ATTEMPTS or self._stop.is_set():
                    raise
                time.sleep(BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _submit(self, fn: Callable[..., object], job: _Job, *args: object) -> None:
        """Hand work on a job to the request pool; at shutdown (pool closed) it is
        dropped. Should the work fail unexpectedly, the job ends in ERROR rather than
        wait for ever."""
        def guarded() -> None:
            try:
                fn(job, *args)
            except Exception as e:
                log.exception("kubernetes backend: %s of job %d failed", fn.__name__,
                              job.spec.job_id)
                self._end(job, TaskStatus(job.task_id, TaskState.ERROR, time.time(),
                                          message=f"internal error: {e!r}",
                                          agent_id=self._agent(job)))
        with contextlib.suppress(RuntimeError):
            self._pool.submit(guarded)

    # ------------------------------------------------------------------ status and nodes
    def status_note(self) -> str | None:
        notes = [super().status_note() or ""]
        with self._lock:
            why = Counter(j.pending for j in self._jobs.values()
                          if j.pending and j.running_since is None and not j.ending)
        for reason, n in why.most_common(3):
            notes.append(f"{n} pod{'s' if n > 1 else ''} pending: {reason}")
        text = " ".join(n for n in notes if n)
        return text or None

    def node_infos(self, preemptible: bool | None, timeout: float | None
                   ) -> dict[str, NodeInfo] | None:
        try:
            nodes = [read_node(n, self.options.kubernetes_spot_node_labels)
                     for n in self.api.list_nodes()]
        except KubeError as e:
            log.warning("getNodes: %s", e)
            return {}
        with self._lock:
            self._nodes_seen = nodes
            ours: dict[str, list[Resources]] = {}
            for job in self._jobs.values():
                if job.node and job.step is Step.CREATED:
                    ours.setdefault(job.node, []).append(job.request)
        out: dict[str, NodeInfo] = {}
        for n in nodes:
            if not n.ready or (preemptible is not None and n.spot != preemptible):
                continue
            reqs = ours.get(n.name, [])
            cpu = sum(r.cpus for r in reqs) / 1000
            mem = sum(r.mem for r in reqs) * MIB
            total_cores = n.allocatable.cpus / 1000
            total_mem = n.allocatable.mem * MIB
            out[n.name] = NodeInfo(
                coresUsed=min(1.0, cpu / total_cores) if total_cores else 0.0,
                memoryUsed=min(1.0, mem / total_mem) if total_mem else 0.0,
                coresTotal=total_cores, memoryTotal=total_mem, requestedCores=cpu,
                requestedMemory=mem, workers=len(reqs),
                filtered=n.name in self._excluded)
        return out

    def _names(self, address: str) -> set[str]:
        """Node names an address stands for (a name, or an InternalIP)."""
        nodes = self._nodes_seen or self._nodes
        names = {n.name for n in nodes if address in (n.name, n.ip)}
        return names or {address}

    def node_in_use(self, address: str) -> bool | None:
        names = self._names(address)
        with self._lock:
            return any(j.node in names for j in self._jobs.values())

    def node_ignored(self, address: str, ignored: bool) -> None:
        names = self._names(address)
        with self._lock:
            if ignored:
                self._excluded |= names
            else:
                self._excluded -= names

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Delete every Job and pod of the run, and wait (bounded) until the watch sees
        the pods gone: nothing of the run is left in the namespace."""
        atexit.unregister(self._atexit)
        self._pool.shutdown(wait=True, cancel_futures=True)
        grace = self.options.kill_grace_period
        try:
            self._retry(lambda: self.api.delete_collections(self.selector, grace))
        except KubeError as e:
            log.warning("cannot delete this run's Jobs and pods (%s): %s", self.selector, e)
        deadline = time.monotonic() + grace + 15
        with self._lock:
            while self._live_pods and self._watcher.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._gone.wait(left)
            left_pods = sorted(self._live_pods)
        if left_pods:
            log.warning("pods of this run still there after shutdown: %s",
                        ", ".join(left_pods[:10]))
        self._stop.set()
        for thread in (self._watcher, self._timer):
            if thread.ident is not None:  # started
                thread.join(timeout=2)
        self.api.close()

    def _atexit(self) -> None:
        self._stop.set()
        with contextlib.suppress(KubeError):
            self.api.delete_collections(self.selector, 0)
