"""The mesos backend: Mesos offers into the core, the core's actions out as calls."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence

from ...deploy.resources import HttpResourceService
from ...executor.protocol import LOG_NOTE_ROOM, b64encode
from ..backend import Backend, BackendContext, Post
from ..core.events import (
    Action,
    Decline,
    Disconnected,
    Event,
    KillTask,
    Launch,
    Reconcile,
    Revive,
    Suppress,
    TaskStatus,
)
from ..core.resources import MIB, Resources, cores_to_milli
from ..core.scheduler import CoreConfig
from ..core.states import TaskState
from .driver import DriverState, MesosSchedulerDriver
from .executors import Executors
from .framework import MesosFramework
from .interface import Message
from .master import detector_for
from .messages import (
    executor_info,
    executor_runs,
    framework_info,
    offer_entries,
    scalar,
    take,
    task_info,
)
from .names import MesosNames
from .options import MesosOptions, read_secret
from .shipping import executor_launch, start_resource_service

log = logging.getLogger(__name__)

#: a launched task that has said nothing for this long is reconciled explicitly
#: (CoreConfig.launch_reconcile_seconds): long enough for a slow fetch (a task Mesos
#: knows is answered with its state, which costs one message), short beside a job
LAUNCH_RECONCILE_SECONDS = 30.0

_TAG_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_run_tag(length: int = 6) -> str:
    """A random tag for one run of the scheduler (36**6, about 2.2e9, values): task and
    executor ids carry it, so a scheduler restarted with the same framework id never
    names a task or executor as the earlier run did while the earlier one may still
    live (Mesos refuses duplicate task ids). Should two runs draw the same tag, the
    refusal (TASK_ERROR "Task has duplicate ID") puts the job back in the queue under
    a new id."""
    return "".join(secrets.choice(_TAG_ALPHABET) for _ in range(length))


class MesosBackend(Backend):
    name = "mesos"
    cleans_workers = True  # the executor removes the workflow's directory at SHUTDOWN
    options_class = MesosOptions
    batch_system_extras = (MesosNames,)
    options: MesosOptions

    def __init__(self, options: MesosOptions, post: Post,
                 context: BackendContext) -> None:
        super().__init__(options, post, context)
        self._service: HttpResourceService | None = None
        self._service_lock = threading.Lock()
        self.executor_resources = Resources(
            cpus=cores_to_milli(options.mesos_executor_cpus),
            mem=-(-options.mesos_executor_memory // MIB))
        self.run_tag = new_run_tag()
        self.executors = Executors(f"{context.workflow_id}-{self.run_tag}")
        self.framework = MesosFramework(
            post, self.executors, options.mesos_role, self.executor_resources,
            context.log_dir if options.mesos_max_log_size else None)
        self.framework_info = framework_info(
            user=options.mesos_user or "nobody", name=options.mesos_name,
            role=options.mesos_role, failover_timeout=options.mesos_failover_timeout,
            checkpoint=options.mesos_checkpoint, hostname=socket.gethostname(),
            framework_id=options.mesos_framework_id, principal=options.mesos_principal,
            webui_url=context.status_url,
        )
        zk_credentials = (read_secret(options.zk_credentials_file, "zkCredentialsFile")
                          if options.zk_credentials_file else None)
        self.detector = detector_for(options.mesos_endpoint, tls=options.mesos_tls,
                                     zk_timeout=options.zk_timeout,
                                     zk_credentials=zk_credentials)
        authorization = None
        if options.mesos_principal and options.mesos_secret_file:
            secret = read_secret(options.mesos_secret_file, "mesosSecretFile")
            token = b64encode(f"{options.mesos_principal}:{secret}".encode())
            authorization = f"Basic {token}"
        self.driver = MesosSchedulerDriver(
            self.framework, self.framework_info, self.detector, authorization=authorization,
            ca_bundle=options.mesos_ca_bundle, verify=options.mesos_tls_verify,
            post=self._undelivered)
        # The bundle is offered from the resource server, and logs come back to it, so
        # that starts now with them.
        try:
            launch = executor_launch(options, self.resource_service()
                                     if options.uses_bundle() else None)
            if options.mesos_max_log_size:
                self.resource_service()
        except BaseException:
            self.shutdown_resources()
            raise
        self.executor_command = launch.command
        self.executor_uris = launch.uris
        self.executor_env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "MESOBATCH_REPORT_INTERVAL": f"{options.mesos_node_report_interval:g}",
            "MESOBATCH_KILL_GRACE": f"{options.kill_grace_period:g}",
            "MESOBATCH_AGENT_LOSS_TIMEOUT": f"{options.mesos_agent_loss_timeout:g}secs",
        }
        self._roles = [options.mesos_role] if options.mesos_role else None

    def resource_service(self) -> HttpResourceService:
        """The resource server agents fetch shipped code from (started on first use)."""
        with self._service_lock:
            if self._service is None:
                self._service = start_resource_service(self.options)
                if self.options.mesos_max_log_size:  # PUT /logs/ into --logDir
                    self._service.server.log_dir = self.context.log_dir
                    self._service.server.max_log_size = (self.options.mesos_max_log_size
                                                         + LOG_NOTE_ROOM)
                atexit.register(self.shutdown_resources)  # a store left behind otherwise
            return self._service

    def core_config(self) -> CoreConfig:
        o = self.options
        return CoreConfig(offer_hold_seconds=o.mesos_offer_hold,
                          decline_refuse_seconds=o.mesos_decline_filter,
                          unreachable_timeout=o.mesos_unreachable_timeout,
                          launch_reconcile_seconds=LAUNCH_RECONCILE_SECONDS,
                          run_tag=self.run_tag)

    def start(self) -> list[Event]:
        self.driver.start()
        return [Disconnected(time.time(), "not yet subscribed")]

    def fatal_error(self) -> str | None:
        d = self.driver
        return d.last_error if d.state is DriverState.FAILED else None

    def status_note(self) -> str | None:
        d = self.driver
        fatal = self.fatal_error()
        if fatal:
            return f"Mesos ended this framework: {fatal}."
        if d.state is DriverState.SUBSCRIBED:
            return d.malformed_note()
        where = self.detector.describe()
        why = f" ({d.last_error})" if d.last_error else ""
        return f"Not connected to the Mesos master at {where}{why}."

    # ------------------------------------------------------------------ actions
    def execute(self, actions: Sequence[Action]) -> list[Event]:
        events: list[Event] = []
        for action in actions:
            if isinstance(action, Launch):
                events.extend(self._launch(action))
            elif isinstance(action, Decline):
                self.driver.declineOffer(list(action.offer_ids),
                                         {"refuse_seconds": action.refuse_seconds})
            elif isinstance(action, KillTask):
                self.driver.killTask(action.task_id, action.agent_id,
                                     self.options.kill_grace_period)
            elif isinstance(action, Suppress):
                self.driver.suppressOffers(self._roles)
            elif isinstance(action, Revive):
                self.driver.reviveOffers(self._roles)
            elif isinstance(action, Reconcile):
                self.driver.reconcileTasks([
                    {"task_id": {"value": t}, **({"agent_id": {"value": a}} if a else {})}
                    for t, a in action.tasks])
        return events

    def _launch(self, action: Launch) -> list[Event]:
        entries = offer_entries(action.offers)
        executor_id = self.executors.for_launch(action.agent_id)
        if not all(executor_runs(o) for o in action.offers):
            # its first launch there takes its cpus and memory from the offer
            with contextlib.suppress(ValueError):
                take(entries, self.executor_resources)
        # Mesos wants every launch on one executor to carry the same ExecutorInfo, byte
        # for byte, resources included, whether the executor runs already or not.
        executor = executor_info(executor_id, None, self.executor_command, self.executor_env,
                                 self.executor_resource_entries(),
                                 uris=self.executor_uris,
                                 grace=self.options.kill_grace_period + 5)
        service = self._service  # tasks fetch shipped code there, with its token
        tasks: list[Message] = []
        events: list[Event] = []
        now = time.time()
        for launch in action.tasks:
            try:
                resources = take(entries, launch.job.resources)
            except ValueError as e:  # the core's arithmetic and the offer disagree
                events.append(TaskStatus(launch.task_id, TaskState.LOST, now, message=str(e),
                                         never_started=True))
                continue
            tasks.append(task_info(launch, action.agent_id, resources, executor,
                                   self.context.workflow_id, self.options.kill_grace_period,
                                   resource_url=service.location if service else "",
                                   resource_token=service.token if service else "",
                                   log_cap=self.options.mesos_max_log_size,
                                   enforce_memory=self.options.enforce_memory))
        self.executors.launched(executor_id, [t["task_id"]["value"] for t in tasks])
        self.driver.launchTasks(list(action.offer_ids), tasks,
                                {"refuse_seconds": action.refuse_seconds})
        return events

    def executor_resource_entries(self) -> list[Message]:
        """The ExecutorInfo's resources (no cpus entry with --mesosExecutorCpus 0: Mesos
        takes no zero-valued resource)."""
        r = self.executor_resources
        cpus = [scalar("cpus", r.cpus / 1000)] if r.cpus else []
        return [*cpus, scalar("mem", float(r.mem))]

    def _undelivered(self, *events: Event) -> None:
        """The driver's events for launches that never reached Mesos (its own thread):
        those tasks never ran on our executor."""
        for event in events:
            if isinstance(event, TaskStatus):
                self.executors.ended(event.task_id)
        self.post(*events)

    def shutdown(self) -> None:
        self.driver.stop(failover=False)
        self.shutdown_resources()

    def shutdown_resources(self) -> None:
        with self._service_lock:
            if self._service is not None:
                self._service.close()
                self._service = None
                atexit.unregister(self.shutdown_resources)
