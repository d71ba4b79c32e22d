"""AWS Batch's resources and job state machine, running each job attempt as a local process.

Follows the AWS Batch API Reference (https://docs.aws.amazon.com/batch/latest/APIReference/:
SubmitJob, DescribeJobs, JobDetail, AttemptDetail, ContainerDetail, JobTimeout, RetryStrategy,
ComputeEnvironmentDetail, JobQueueDetail, JobDefinition) and the user guide's "Job states"
(https://docs.aws.amazon.com/batch/latest/userguide/job_states.html): SUBMITTED -> PENDING
(dependencies) -> RUNNABLE (waiting for vCPUs in a compute environment of the queue, up to
its ``maxvCpus``) -> STARTING -> RUNNING -> SUCCEEDED or FAILED, back to RUNNABLE for another
attempt while ``retryStrategy.attempts`` allows. Status reasons are those AWS Batch writes:
"Essential container in task exited", "Job attempt duration exceeded timeout" ("Job
timeouts" in the user guide), "Host EC2 (instance i-...) terminated." and the container reason
"OutOfMemoryError: Container killed due to memory usage" ("Troubleshooting AWS Batch").
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..memory import session_rss

JsonDict = dict[str, Any]
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
ESSENTIAL_EXIT = "Essential container in task exited"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
LOG_GROUP = "/aws/batch/job"


class ClientError(Exception):
    """A ClientException (HTTP 400) or another modelled error."""

    def __init__(self, message: str, code: str = "ClientException", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def millis() -> int:
    return int(time.time() * 1000)


@dataclass
class Options:
    region: str = "us-east-1"
    account: str = "123456789012"
    state_delay: float = 0.05  # time spent in SUBMITTED, PENDING and STARTING
    minimum_timeout: int = 60
    memory_poll_interval: float = 0.1
    unmanaged_vcpus: int = 256
    inherit_environment: bool = True
    stop_grace: float = 2.0  # SIGTERM, then SIGKILL after this (ECS: 30 s)


@dataclass
class LogStream:
    name: str
    created: int = field(default_factory=millis)
    events: list[JsonDict] = field(default_factory=list)

    def add(self, line: str) -> None:
        now = millis()
        self.events.append({"timestamp": now, "message": line, "ingestionTime": now})


@dataclass
class Attempt:
    instance: str
    task_arn: str
    container_instance_arn: str
    log_stream: str
    started_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None

    def detail(self) -> JsonDict:
        container: JsonDict = {"containerInstanceArn": self.container_instance_arn,
                               "taskArn": self.task_arn, "logStreamName": self.log_stream,
                               "networkInterfaces": []}
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        if self.reason is not None:
            container["reason"] = self.reason
        detail: JsonDict = {"container": container}
        for key, value in (("startedAt", self.started_at), ("stoppedAt", self.stopped_at),
                           ("statusReason", self.status_reason)):
            if value is not None:
                detail[key] = value
        return detail


@dataclass
class Job:
    id: str
    name: str
    arn: str
    queue: JsonDict
    definition: JsonDict
    container: JsonDict  # the effective ContainerDetail inputs (image, command, env, ...)
    vcpus: Decimal
    memory: int
    gpus: int
    timeout: int | None
    retry: JsonDict
    depends_on: list[JsonDict]
    tags: dict[str, str]
    parameters: dict[str, str]
    propagate_tags: bool
    created_at: int = field(default_factory=millis)
    status: str = "SUBMITTED"
    status_reason: str | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    entered: float = field(default_factory=time.monotonic)
    attempts: list[Attempt] = field(default_factory=list)
    current: Attempt | None = None
    environment_name: str | None = None
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    kill_reason: str | None = None  # why the double stopped the process
    is_cancelled: bool = False
    is_terminated: bool = False
    spot: bool = False

    def set_status(self, status: str, reason: str | None = None) -> None:
        self.status = status
        self.entered = time.monotonic()
        if reason is not None:
            self.status_reason = reason

    def detail(self) -> JsonDict:
        container = dict(self.container)
        last = self.attempts[-1] if self.attempts else None
        running = self.current
        source = running or last
        if source is not None:
            container.update({"containerInstanceArn": source.container_instance_arn,
                              "taskArn": source.task_arn, "logStreamName": source.log_stream,
                              "networkInterfaces": []})
            if source.exit_code is not None and running is None:
                container["exitCode"] = source.exit_code
            if source.reason is not None and running is None:
                container["reason"] = source.reason
        detail: JsonDict = {
            "jobArn": self.arn, "jobName": self.name, "jobId": self.id,
            "jobQueue": self.queue["jobQueueArn"], "status": self.status,
            "attempts": [a.detail() for a in self.attempts],
            "createdAt": self.created_at, "retryStrategy": self.retry,
            "dependsOn": self.depends_on,
            "jobDefinition": self.definition["jobDefinitionArn"],
            "parameters": self.parameters, "container": container, "tags": self.tags,
            "propagateTags": self.propagate_tags, "platformCapabilities": ["EC2"],
            "eksAttempts": [], "isCancelled": self.is_cancelled,
            "isTerminated": self.is_terminated,
        }
        if self.timeout is not None:
            detail["timeout"] = {"attemptDurationSeconds": self.timeout}
        for key, value in (("statusReason", self.status_reason), ("startedAt", self.started_at),
                           ("stoppedAt", self.stopped_at)):
            if value is not None:
                detail[key] = value
        return detail

    def summary(self) -> JsonDict:
        summary: JsonDict = {"jobArn": self.arn, "jobId": self.id, "jobName": self.name,
                             "createdAt": self.created_at, "status": self.status,
                             "jobDefinition": self.definition["jobDefinitionArn"]}
        for key, value in (("statusReason", self.status_reason), ("startedAt", self.started_at),
                           ("stoppedAt", self.stopped_at)):
            if value is not None:
                summary[key] = value
        last = self.attempts[-1] if self.attempts else None
        if last is not None and self.status in ("SUCCEEDED", "FAILED"):
            container: JsonDict = {}
            if last.exit_code is not None:
                container["exitCode"] = last.exit_code
            if last.reason is not None:
                container["reason"] = last.reason
            summary["container"] = container
        return summary


def requirement(requirements: list[JsonDict], kind: str) -> str | None:
    for item in requirements:
        if item.get("type") == kind:
            return str(item.get("value"))
    return None


class Batch:
    """Compute environments, job queues, job definitions, jobs and their log streams."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.environments: dict[str, JsonDict] = {}
        self.queues: dict[str, JsonDict] = {}
        self.definitions: dict[str, list[JsonDict]] = {}
        self.jobs: dict[str, Job] = {}
        self.logs: dict[tuple[str, str], LogStream] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.Task[None] | None = None

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:batch:{self.options.region}:{self.options.account}:{kind}/{name}"

    # -- compute environments and queues --------------------------------------------------------
    def _lookup(self, table: dict[str, JsonDict], key: str, name_field: str,
                arn_field: str) -> JsonDict | None:
        if key in table:
            return table[key]
        for item in table.values():
            if item[arn_field] == key or item[name_field] == key:
                return item
        return None

    def environment(self, key: str) -> JsonDict | None:
        return self._lookup(self.environments, key, "computeEnvironmentName",
                            "computeEnvironmentArn")

    def queue(self, key: str) -> JsonDict | None:
        return self._lookup(self.queues, key, "jobQueueName", "jobQueueArn")

    def create_environment(self, request: JsonDict) -> JsonDict:
        name = request.get("computeEnvironmentName") or ""
        kind = request.get("type")
        if kind not in ("MANAGED", "UNMANAGED"):
            raise ClientError(f"Invalid type {kind!r}: one of MANAGED, UNMANAGED")
        if name in self.environments:
            raise ClientError(f"Object already exists: compute environment {name}")
        resources = request.get("computeResources")
        if kind == "MANAGED" and not resources:
            raise ClientError("computeResources must be specified for a MANAGED compute "
                              "environment")
        arn = self.arn("compute-environment", name)
        detail: JsonDict = {
            "computeEnvironmentName": name, "computeEnvironmentArn": arn,
            "ecsClusterArn": f"arn:aws:ecs:{self.options.region}:{self.options.account}:"
                             f"cluster/AWSBatch-{name}-{uuid.uuid4()}",
            "tags": request.get("tags") or {}, "type": kind,
            "state": request.get("state") or "ENABLED", "status": "VALID",
            "statusReason": "ComputeEnvironment Healthy",
            "serviceRole": request.get("serviceRole") or
            f"arn:aws:iam::{self.options.account}:role/aws-service-role/batch.amazonaws.com/"
            "AWSServiceRoleForBatch",
            "containerOrchestrationType": "ECS", "uuid": str(uuid.uuid4()),
        }
        if resources:
            detail["computeResources"] = {"minvCpus": 0, "desiredvCpus": 0, **resources}
        if kind == "UNMANAGED":
            detail["unmanagedvCpus"] = request.get("unmanagedvCpus",
                                                   self.options.unmanaged_vcpus)
        self.environments[name] = detail
        return {"computeEnvironmentName": name, "computeEnvironmentArn": arn}

    def update_environment(self, request: JsonDict) -> JsonDict:
        env = self.environment(request.get("computeEnvironment", ""))
        if env is None:
            raise ClientError(f"{request.get('computeEnvironment')} does not exist")
        if "state" in request:
            env["state"] = request["state"]
        if "unmanagedvCpus" in request:
            env["unmanagedvCpus"] = request["unmanagedvCpus"]
        for key, value in (request.get("computeResources") or {}).items():
            env.setdefault("computeResources", {})[key] = value
        self.kick()
        return {"computeEnvironmentName": env["computeEnvironmentName"],
                "computeEnvironmentArn": env["computeEnvironmentArn"]}

    def capacity(self, env: JsonDict) -> Decimal:
        if env["type"] == "UNMANAGED":
            return Decimal(env.get("unmanagedvCpus", self.options.unmanaged_vcpus))
        return Decimal(str(env["computeResources"].get("maxvCpus", 0)))

    def used(self, env: JsonDict) -> Decimal:
        return sum((j.vcpus for j in self.jobs.values()
                    if j.environment_name == env["computeEnvironmentName"]
                    and j.status in ("STARTING", "RUNNING")), Decimal(0))

    def create_queue(self, request: JsonDict) -> JsonDict:
        name = request.get("jobQueueName") or ""
        if name in self.queues:
            raise ClientError(f"Object already exists: job queue {name}")
        order = request.get("computeEnvironmentOrder") or []
        if not order:
            raise ClientError("computeEnvironmentOrder must not be empty")
        for entry in order:
            env = self.environment(entry.get("computeEnvironment", ""))
            if env is None:
                raise ClientError(f"computeEnvironment {entry.get('computeEnvironment')} "
                                  "does not exist")
            entry["computeEnvironment"] = env["computeEnvironmentArn"]
        arn = self.arn("job-queue", name)
        self.queues[name] = {
            "jobQueueName": name, "jobQueueArn": arn, "state": request.get("state") or "ENABLED",
            "status": "VALID", "statusReason": "JobQueue Healthy",
            "priority": int(request.get("priority", 1)), "computeEnvironmentOrder": order,
            "tags": request.get("tags") or {}, "jobStateTimeLimitActions":
                request.get("jobStateTimeLimitActions") or [], "jobQueueType": "ECS_EC2",
        }
        return {"jobQueueName": name, "jobQueueArn": arn}

    def update_queue(self, request: JsonDict) -> JsonDict:
        queue = self.queue(request.get("jobQueue", ""))
        if queue is None:
            raise ClientError(f"{request.get('jobQueue')} does not exist")
        for key in ("state", "priority", "computeEnvironmentOrder"):
            if key in request:
                queue[key] = request[key]
        self.kick()
        return {"jobQueueName": queue["jobQueueName"], "jobQueueArn": queue["jobQueueArn"]}

    # -- job definitions ------------------------------------------------------------------------
    def register_definition(self, request: JsonDict) -> JsonDict:
        name = request.get("jobDefinitionName") or ""
        if request.get("type") not in ("container", "multinode"):
            raise ClientError("type must be one of: container, multinode")
        properties = request.get("containerProperties")
        if not properties or not properties.get("image"):
            raise ClientError("containerProperties.image must be specified")
        timeout = (request.get("timeout") or {}).get("attemptDurationSeconds")
        if timeout is not None and timeout < self.options.minimum_timeout:
            raise ClientError(f"timeout.attemptDurationSeconds must be at least "
                              f"{self.options.minimum_timeout} seconds")
        revisions = self.definitions.setdefault(name, [])
        revision = len(revisions) + 1
        arn = self.arn("job-definition", f"{name}:{revision}")
        definition: JsonDict = {
            "jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision,
            "status": "ACTIVE", "type": request["type"],
            "parameters": request.get("parameters") or {},
            "containerProperties": {"volumes": [], "environment": [], "mountPoints": [],
                                    "ulimits": [], "resourceRequirements": [], "secrets": [],
                                    **properties},
            "tags": request.get("tags") or {}, "propagateTags": bool(request.get("propagateTags")),
            "platformCapabilities": request.get("platformCapabilities") or ["EC2"],
            "containerOrchestrationType": "ECS",
        }
        for key in ("retryStrategy", "timeout"):
            if request.get(key):
                definition[key] = request[key]
        revisions.append(definition)
        return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision}

    def definition(self, key: str) -> JsonDict | None:
        if key.startswith("arn:"):
            for revisions in self.definitions.values():
                for item in revisions:
                    if item["jobDefinitionArn"] == key:
                        return item
            return None
        name, _, revision = key.partition(":")
        revisions = self.definitions.get(name) or []
        if revision:
            return next((d for d in revisions if str(d["revision"]) == revision), None)
        active = [d for d in revisions if d["status"] == "ACTIVE"]
        return active[-1] if active else None

    def describe_definitions(self, request: JsonDict) -> list[JsonDict]:
        found: list[JsonDict] = []
        keys = request.get("jobDefinitions") or []
        for key in keys:
            item = self.definition(key)
            if item is not None:
                found.append(item)
        if not keys:
            for name, revisions in sorted(self.definitions.items()):
                if request.get("jobDefinitionName") in (None, name):
                    found.extend(revisions)
        status = request.get("status")
        return [d for d in found if status in (None, d["status"])]

    def deregister_definition(self, request: JsonDict) -> JsonDict:
        item = self.definition(request.get("jobDefinition", ""))
        if item is None:
            raise ClientError(f"Job definition {request.get('jobDefinition')} does not exist")
        item["status"] = "INACTIVE"
        return {}

    # -- jobs -----------------------------------------------------------------------------------
    def submit(self, request: JsonDict) -> JsonDict:
        name = request.get("jobName") or ""
        if not name or len(name) > 128 or not (name[0].isalnum() and all(
                c.isalnum() or c in "-_" for c in name)):
            raise ClientError(f"Invalid jobName {name!r}: up to 128 letters, numbers, hyphens "
                              "and underscores, starting with a letter or number")
        if request.get("arrayProperties") or request.get("nodeOverrides"):
            raise ClientError("array and multi-node jobs are not supported by this double")
        queue = self.queue(request.get("jobQueue", ""))
        if queue is None:
            raise ClientError(f"Job queue {request.get('jobQueue')} does not exist")
        definition = self.definition(request.get("jobDefinition", ""))
        if definition is None or definition["status"] != "ACTIVE":
            raise ClientError(f"Job definition {request.get('jobDefinition')} does not exist "
                              "or is not ACTIVE")
        properties = definition["containerProperties"]
        overrides = request.get("containerOverrides") or {}
        requirements = {r["type"]: r for r in properties.get("resourceRequirements") or []}
        for item in overrides.get("resourceRequirements") or []:
            requirements[item["type"]] = item
        req_list = list(requirements.values())
        vcpus = requirement(req_list, "VCPU") or overrides.get("vcpus") or properties.get("vcpus")
        memory = requirement(req_list, "MEMORY") or overrides.get("memory") or \
            properties.get("memory")
        if vcpus is None or memory is None:
            raise ClientError("Job must specify both VCPU and MEMORY (resourceRequirements)")
        if int(memory) < 4:
            raise ClientError("Invalid memory: at least 4 MiB")
        env = {e["name"]: e["value"] for e in properties.get("environment") or []}
        env.update({e["name"]: e["value"] for e in overrides.get("environment") or []})
        timeout = (request.get("timeout") or definition.get("timeout") or {}).get(
            "attemptDurationSeconds")
        if timeout is not None and timeout < self.options.minimum_timeout:
            raise ClientError(f"timeout.attemptDurationSeconds must be at least "
                              f"{self.options.minimum_timeout} seconds")
        retry = request.get("retryStrategy") or definition.get("retryStrategy") or {"attempts": 1}
        attempts = int(retry.get("attempts", 1))
        if not 1 <= attempts <= 10:
            raise ClientError("retryStrategy.attempts must be between 1 and 10")
        parameters = {**definition.get("parameters", {}), **(request.get("parameters") or {})}
        command = overrides.get("command") or properties.get("command") or []
        command = [self._substitute(str(part), parameters) for part in command]
        for dep in request.get("dependsOn") or []:
            if dep.get("jobId") not in self.jobs:
                raise ClientError(f"Dependent job {dep.get('jobId')} does not exist")
        job_id = str(uuid.uuid4())
        tags = dict(request.get("tags") or {})
        if request.get("propagateTags") or definition.get("propagateTags"):
            tags = {**definition.get("tags", {}), **tags}
        container: JsonDict = {
            "image": properties["image"], "command": command,
            "volumes": properties.get("volumes", []),
            "environment": [{"name": k, "value": v} for k, v in env.items()],
            "mountPoints": properties.get("mountPoints", []), "ulimits": [],
            "resourceRequirements": req_list, "secrets": properties.get("secrets", []),
        }
        for key in ("jobRoleArn", "executionRoleArn", "user", "privileged", "linuxParameters",
                    "logConfiguration", "readonlyRootFilesystem"):
            if key in properties:
                container[key] = properties[key]
        job = Job(
            id=job_id, name=name, arn=self.arn("job", job_id), queue=queue,
            definition=definition, container=container, vcpus=Decimal(str(vcpus)),
            memory=int(memory), gpus=int(requirement(req_list, "GPU") or 0), timeout=timeout,
            retry=retry, depends_on=request.get("dependsOn") or [], tags=tags,
            parameters=parameters, propagate_tags=bool(request.get("propagateTags")),
        )
        self.jobs[job_id] = job
        self.kick()
        return {"jobArn": job.arn, "jobName": name, "jobId": job_id}

    @staticmethod
    def _substitute(part: str, parameters: dict[str, str]) -> str:
        for key, value in parameters.items():
            part = part.replace(f"Ref::{key}", value)
        return part

    def describe_jobs(self, ids: list[str]) -> list[JsonDict]:
        if len(ids) > 100:
            raise ClientError(f"Too many job ids in the request: {len(ids)} (at most 100)")
        found = []
        for key in ids:
            job = self.jobs.get(key) or next((j for j in self.jobs.values() if j.arn == key),
                                             None)
            if job is not None:
                found.append(job.detail())
        return found

    def list_jobs(self, request: JsonDict) -> tuple[list[JsonDict], str | None]:
        queue = self.queue(request.get("jobQueue", ""))
        if queue is None:
            raise ClientError("jobQueue is required (array and multi-node listings are not "
                              "supported by this double)")
        jobs = [j for j in self.jobs.values() if j.queue is queue]
        filters = request.get("filters") or []
        if filters:
            for item in filters:
                values = item.get("values") or []
                if item.get("name") == "JOB_NAME":
                    jobs = [j for j in jobs if any(fnmatch.fnmatchcase(j.name, v)
                                                   for v in values)]
                elif item.get("name") == "AFTER_CREATED_AT":
                    jobs = [j for j in jobs if j.created_at > int(values[0])]
                elif item.get("name") == "BEFORE_CREATED_AT":
                    jobs = [j for j in jobs if j.created_at < int(values[0])]
                elif item.get("name") == "JOB_DEFINITION":
                    jobs = [j for j in jobs if any(
                        v in (j.definition["jobDefinitionArn"],
                              j.definition["jobDefinitionName"]) for v in values)]
        else:
            status = request.get("jobStatus") or "RUNNING"
            jobs = [j for j in jobs if j.status == status]
        jobs.sort(key=lambda j: j.created_at)
        start = int(request.get("nextToken") or 0)
        size = int(request.get("maxResults") or 100)
        page = jobs[start:start + size]
        token = str(start + size) if start + size < len(jobs) else None
        return [j.summary() for j in page], token

    def terminate(self, job_id: str, reason: str, cancel_only: bool) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            raise ClientError(f"Job {job_id} does not exist")
        if job.status in ("SUCCEEDED", "FAILED"):
            return
        if job.status in ("SUBMITTED", "PENDING", "RUNNABLE"):
            job.is_cancelled = cancel_only
            job.is_terminated = not cancel_only
            job.set_status("FAILED", reason)
            job.stopped_at = millis()
            self.kick()
            return
        if cancel_only:
            return  # CancelJob leaves STARTING and RUNNING jobs alone
        job.is_terminated = True
        job.kill_reason = reason
        self._stop(job, graceful=True)

    # -- the engine -----------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._ticker = loop.create_task(self._tick_forever())

    def kick(self) -> None:
        if self.loop is not None:
            self.loop.call_soon(self.advance)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.state_delay / 2 or 0.01)
            self.advance()

    async def stop_all(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for job in self.jobs.values():
            if job.process is not None and job.process.returncode is None:
                job.kill_reason = job.kill_reason or "double stopped"
                self._signal(job, signal.SIGKILL)
        tasks = [j.task for j in self.jobs.values() if j.task is not None and not j.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def advance(self) -> None:
        """Move every job as far as its state allows now."""
        delay = self.options.state_delay
        now = time.monotonic()
        for job in self.jobs.values():
            if job.status == "SUBMITTED" and now - job.entered >= delay:
                job.set_status("PENDING")
            if job.status == "PENDING" and now - job.entered >= delay:
                deps = [self.jobs.get(d.get("jobId", "")) for d in job.depends_on]
                if any(d is not None and d.status == "FAILED" for d in deps):
                    job.set_status("FAILED", "Dependent Job failed")
                    job.stopped_at = millis()
                elif all(d is None or d.status == "SUCCEEDED" for d in deps):
                    job.set_status("RUNNABLE")
            if job.status == "STARTING" and now - job.entered >= delay and job.task is None:
                assert self.loop is not None
                job.task = self.loop.create_task(self._run(job))
        runnable = [j for j in self.jobs.values()
                    if j.status == "RUNNABLE" and now - j.entered >= delay]
        runnable.sort(key=lambda j: (-int(j.queue["priority"]), j.created_at))
        for job in runnable:
            if job.queue["state"] != "ENABLED":
                continue
            for entry in sorted(job.queue["computeEnvironmentOrder"],
                                key=lambda e: int(e.get("order", 0))):
                env = self.environment(entry["computeEnvironment"])
                if env is None or env["state"] != "ENABLED":
                    continue
                if self.used(env) + job.vcpus <= self.capacity(env):
                    self._place(job, env)
                    break

    def _place(self, job: Job, env: JsonDict) -> None:
        job.environment_name = env["computeEnvironmentName"]
        job.spot = (env.get("computeResources") or {}).get("type") in ("SPOT", "FARGATE_SPOT")
        cluster = env["ecsClusterArn"].rsplit("/", 1)[-1]
        prefix = f"arn:aws:ecs:{self.options.region}:{self.options.account}"
        task_id = uuid.uuid4().hex
        stream = f"{job.definition['jobDefinitionName']}/default/{task_id}"
        job.current = Attempt(
            instance=f"i-{uuid.uuid4().hex[:17]}", task_arn=f"{prefix}:task/{cluster}/{task_id}",
            container_instance_arn=f"{prefix}:container-instance/{cluster}/{uuid.uuid4().hex}",
            log_stream=stream)
        self.logs[(LOG_GROUP, stream)] = LogStream(stream)
        job.kill_reason = None
        job.set_status("STARTING")
        job.status_reason = None

    def _environment(self, job: Job) -> dict[str, str]:
        env = dict(os.environ) if self.options.inherit_environment else {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update({e["name"]: e["value"] for e in job.container["environment"]})
        env.update({"AWS_BATCH_JOB_ID": job.id, "AWS_BATCH_JOB_ATTEMPT": str(len(job.attempts)
                                                                           + 1),
                    "AWS_BATCH_JQ_NAME": job.queue["jobQueueName"],
                    "AWS_BATCH_CE_NAME": job.environment_name or ""})
        return env

    async def _run(self, job: Job) -> None:
        attempt = job.current
        assert attempt is not None
        stream = self.logs[(LOG_GROUP, attempt.log_stream)]
        began = millis()  # as ECS: the container's start, before its process runs
        try:
            job.process = await asyncio.create_subprocess_exec(
                *job.container["command"], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                env=self._environment(job), start_new_session=True)
        except (OSError, ValueError) as error:
            attempt.reason = ("CannotStartContainerError: Error response from daemon: failed to "
                              f"create task for container: {error}")
            attempt.status_reason = "Task failed to start"
            self._attempt_over(job, attempt, "Task failed to start")
            return
        attempt.started_at = began
        job.started_at = job.started_at or attempt.started_at
        job.set_status("RUNNING")
        if job.kill_reason is not None:  # terminated while STARTING
            self._stop(job, graceful=True)
        reader = asyncio.ensure_future(self._read(job.process, stream))
        watchdog = asyncio.ensure_future(self._watch(job))
        code = await job.process.wait()
        await reader
        watchdog.cancel()
        attempt.exit_code = 128 - code if code < 0 else code
        if job.kill_reason == OOM_REASON:
            attempt.reason = OOM_REASON
            attempt.exit_code = 137
        if job.kill_reason == "host":
            attempt.exit_code = None
            reason = f"Host EC2 (instance {attempt.instance}) terminated."
        elif job.kill_reason == TIMEOUT_REASON:
            reason = TIMEOUT_REASON
        elif job.kill_reason is not None and job.is_terminated:
            reason = job.kill_reason
        else:
            reason = ESSENTIAL_EXIT
        # a user's TerminateJob reason is the job's; the attempt still saw its container exit
        attempt.status_reason = ESSENTIAL_EXIT if reason == job.kill_reason and \
            job.is_terminated else reason
        self._attempt_over(job, attempt, reason)

    async def _read(self, process: asyncio.subprocess.Process, stream: LogStream) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            stream.add(raw.decode(errors="replace").rstrip("\n"))

    async def _watch(self, job: Job) -> None:
        """Memory watchdog and attempt timeout."""
        started = time.monotonic()
        limit = job.memory * 1024 * 1024
        while job.process is not None and job.process.returncode is None:
            await asyncio.sleep(self.options.memory_poll_interval)
            if job.kill_reason is not None:
                continue
            if job.timeout is not None and time.monotonic() - started >= job.timeout:
                job.kill_reason = TIMEOUT_REASON
                self._stop(job, graceful=True)
            elif session_rss(job.process.pid) > limit:
                job.kill_reason = OOM_REASON
                self._signal(job, signal.SIGKILL)

    def _signal(self, job: Job, sig: int) -> None:
        if job.process is not None and job.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.process.pid, sig)

    def _stop(self, job: Job, graceful: bool) -> None:
        """docker stop: SIGTERM, SIGKILL after the grace period."""
        if job.status == "STARTING" and job.process is None:
            return  # the runner notices kill_reason once the process exists
        self._signal(job, signal.SIGTERM if graceful else signal.SIGKILL)
        if graceful and self.loop is not None:
            self.loop.call_later(self.options.stop_grace, self._signal, job, signal.SIGKILL)

    def _attempt_over(self, job: Job, attempt: Attempt, reason: str) -> None:
        attempt.stopped_at = millis()
        job.attempts.append(attempt)
        job.current = None
        job.process = None
        job.task = None
        job.stopped_at = attempt.stopped_at
        succeeded = attempt.exit_code == 0 and job.kill_reason is None
        if succeeded:
            job.set_status("SUCCEEDED", ESSENTIAL_EXIT)
        elif not job.is_terminated and self._retry(job, attempt, reason):
            job.stopped_at = None
            job.set_status("RUNNABLE")
            job.status_reason = None
        else:
            job.set_status("FAILED", reason)
        job.environment_name = job.environment_name if job.status != "RUNNABLE" else None
        self.kick()

    @staticmethod
    def _retry(job: Job, attempt: Attempt, reason: str) -> bool:
        if len(job.attempts) >= int(job.retry.get("attempts", 1)):
            return False
        for rule in job.retry.get("evaluateOnExit") or []:
            checks = [
                ("onStatusReason", reason), ("onReason", attempt.reason or ""),
                ("onExitCode", "" if attempt.exit_code is None else str(attempt.exit_code)),
            ]
            if all(fnmatch.fnmatchcase(value, rule[key]) for key, value in checks if key in rule):
                return str(rule.get("action", "")).upper() == "RETRY"
        return True

    # -- fault hooks ----------------------------------------------------------------------------
    def lose_host(self, job_id: str) -> str:
        """The EC2 instance under the job goes away (spot reclaim or host failure)."""
        job = self.jobs.get(job_id)
        if job is None or job.current is None or job.process is None:
            raise ValueError(f"job {job_id} is not running")
        job.kill_reason = "host"
        self._signal(job, signal.SIGKILL)
        return job.current.instance

    def reclaim_spot(self) -> list[str]:
        """Every running job on a SPOT compute environment loses its host."""
        lost = [j.id for j in self.jobs.values()
                if j.spot and j.process is not None and j.status == "RUNNING"]
        for job_id in lost:
            self.lose_host(job_id)
        return lost

    # -- CloudWatch Logs ------------------------------------------------------------------------
    def get_log_events(self, request: JsonDict) -> JsonDict:
        group = request.get("logGroupName") or request.get("logGroupIdentifier") or ""
        stream = self.logs.get((group, request.get("logStreamName", "")))
        if stream is None:
            raise ClientError("The specified log stream does not exist.",
                              "ResourceNotFoundException")
        events = stream.events
        limit = int(request.get("limit") or 10000)
        token = request.get("nextToken")
        if request.get("startTime") is not None:
            events = [e for e in events if e["timestamp"] >= int(request["startTime"])]
        if request.get("endTime") is not None:
            events = [e for e in events if e["timestamp"] < int(request["endTime"])]
        if token:
            direction, _, position = token.partition("/")
            index = int(position)
            if direction == "f":
                start, end = index, min(index + limit, len(events))
            else:
                start, end = max(0, index - limit), index
        elif request.get("startFromHead"):
            start, end = 0, min(limit, len(events))
        else:
            start, end = max(0, len(events) - limit), len(events)
        return {"events": events[start:end], "nextForwardToken": f"f/{end:056d}",
                "nextBackwardToken": f"b/{start:056d}"}
