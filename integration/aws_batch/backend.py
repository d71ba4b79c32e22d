"""The aws_batch backend: AWS Batch job queues as emulated agents.

Each queue (--awsBatchQueue, and --awsBatchSpotQueue as a preemptible one) is one
emulated agent whose cores are its compute environments' ``maxvCpus`` (or
--awsBatchMaxVcpus); AWS Batch places the jobs. No request runs under the batch
system's lock: a submitter thread sends SubmitJob (4 at once) and TerminateJob, a
poller thread asks DescribeJobs about every live job of the run, 100 per call, once per
--pollInterval, and a small pool copies each ended job's CloudWatch log into --logDir
before its end is reported.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ...executor.process_spec import build_environment
from ...executor.protocol import log_path
from ...scheduler.backend import BackendContext, Post
from ...scheduler.core.events import Event, TaskLaunch, TaskStatus
from ...scheduler.core.jobs import JobSpec, Limits
from ...scheduler.core.resources import offered_cpus_to_milli
from ...scheduler.core.states import TaskState
from ...scheduler.options import OptionError
from ..emulated import UNBOUNDED, Capacity, EmulatedNode, LimitNames
from ..submitted import Phase, SubmittingBackend, run_tag
from . import requests
from .calls import THROTTLING, Api, AwsError
from .logs import copy_log, log_stream
from .options import AwsBatchOptions
from .status import Observed, observe

log = logging.getLogger(__name__)

#: polls in a row a submitted job may be missing from DescribeJobs (AWS's reads are
#: eventually consistent just after SubmitJob) before it is reported LOST
VANISHED_POLLS = 5
#: failed polls in a row, for a reason that will not pass, before the backend is fatal
FATAL_POLLS = 5
#: threads copying logs of ended jobs (one GetLogEvents call per job, usually)
LOG_THREADS = 4
#: SubmitJob requests at once (AWS Batch's SubmitJob quota is about 50 a second)
SUBMIT_THREADS = 4
#: jobs submitted between two looks for kills in a long burst
SUBMIT_CHUNK = 16


@dataclass(slots=True)
class _Job:
    task_id: str
    spec: JobSpec
    queue: str
    phase: Phase = Phase.WAITING
    aws_id: str = ""
    kill: bool = False  #: the core asked to kill it
    cancelling: bool = False  #: a TerminateJob is queued or under way
    reported: TaskState | None = None  #: the last live state posted
    status: str = ""  #: AWS Batch's last word on it
    pending_reason: str | None = None
    missing: int = 0  #: polls in a row it was not in DescribeJobs' answer


class AwsBatchBackend(SubmittingBackend[_Job]):
    """AWS Batch queues as emulated agents; jobs run as AWS Batch container jobs."""

    name = "aws_batch"
    options_class = AwsBatchOptions
    shared_log_dir = False  # logs come back through CloudWatch, not a shared disk
    limit_names = LimitNames(cores="awsBatchMaxVcpus")

    def __init__(self, options: AwsBatchOptions, post: Post,
                 context: BackendContext) -> None:
        super().__init__(options, post, context)
        self.options: AwsBatchOptions = options
        self._stop = threading.Event()
        self.api = Api(options, self._stop)
        self.run_tag = run_tag(context.workflow_id)
        self.definition = ""  #: the job definition jobs are submitted with (ARN or name)
        self._capacity: dict[str, float] = {}  # queue -> vCPUs
        self._terminated: set[str] = set()  # AWS ids we asked to terminate
        self._failed_polls = 0
        self.polls = 0  #: rounds of DescribeJobs that answered
        self._logs = ThreadPoolExecutor(LOG_THREADS, thread_name_prefix="mesobatch-aws-logs")
        self._submits = ThreadPoolExecutor(SUBMIT_THREADS,
                                           thread_name_prefix="mesobatch-aws-submit")
        self._submitter = threading.Thread(target=self._submit_loop, daemon=True,
                                           name="mesobatch-aws_batch-submit")
        self._poller = threading.Thread(target=self._poll_loop, daemon=True,
                                        name="mesobatch-aws_batch-poll")
        try:
            self._discover()
        except BaseException:
            self._logs.shutdown(wait=False)
            self._submits.shutdown(wait=False)
            raise

    # ------------------------------------------------------------------ start
    def _discover(self) -> None:
        """The job definition, and each queue's vCPUs (limits() needs them before
        start()); a queue, definition or credentials AWS refuses fail here, at once."""
        o = self.options
        assert o.aws_batch_queue is not None
        try:
            self.definition = self._job_definition()
            for queue, option in ((o.aws_batch_queue, "awsBatchQueue"),
                                  (o.aws_batch_spot_queue, "awsBatchSpotQueue")):
                if queue:
                    vcpus = self._queue_vcpus(queue, option, o.aws_batch_max_vcpus is None)
                    self._capacity[queue] = o.aws_batch_max_vcpus or vcpus
        except AwsError as e:
            raise OptionError(f"cannot use AWS Batch in {self.api.region}: {e}") from None

    def start(self) -> list[Event]:
        events = super().start()
        self._submitter.start()
        self._poller.start()
        atexit.register(self._atexit)
        return events

    def _job_definition(self) -> str:
        """--awsBatchJobDefinition as given, or the one made for --awsBatchImage: found
        by its content-derived name if a run registered it before, else registered."""
        o = self.options
        if o.aws_batch_job_definition:
            found = self.api.call(self.api.batch.describe_job_definitions,
                                  jobDefinitions=[o.aws_batch_job_definition])
            if not [d for d in found["jobDefinitions"] if d.get("status") == "ACTIVE"]:
                raise OptionError(f"invalid value {o.aws_batch_job_definition!r} for "
                                  f"--awsBatchJobDefinition: no ACTIVE job definition of "
                                  f"that name in {self.api.region}")
            return o.aws_batch_job_definition
        assert o.aws_batch_image is not None
        props = requests.container_properties(o.aws_batch_image, o.aws_batch_job_role_arn)
        name = requests.definition_name(props)
        found = self.api.call(self.api.batch.describe_job_definitions,
                              jobDefinitionName=name, status="ACTIVE")
        if found["jobDefinitions"]:
            newest = max(found["jobDefinitions"], key=lambda d: d.get("revision", 0))
            return newest["jobDefinitionArn"]
        made = self.api.call(self.api.batch.register_job_definition,
                             **requests.register_definition(props))
        log.info("registered AWS Batch job definition %s for image %s",
                 made["jobDefinitionArn"], o.aws_batch_image)
        return made["jobDefinitionArn"]

    def _queue_vcpus(self, queue: str, option: str, needed: bool) -> float:
        """The vCPUs of a queue's compute environments (MANAGED: maxvCpus; UNMANAGED:
        unmanagedvCpus); the queue is checked even if its vCPUs are not ``needed``."""
        found = self.api.call(self.api.batch.describe_job_queues, jobQueues=[queue])
        if not found["jobQueues"]:
            raise OptionError(f"invalid value {queue!r} for --{option}: no such job queue "
                              f"in {self.api.region}")
        detail = found["jobQueues"][0]
        if detail.get("state") != "ENABLED" or detail.get("status") not in ("VALID", None):
            log.warning("AWS Batch job queue %s is %s/%s: its jobs wait", queue,
                        detail.get("state"), detail.get("status"))
        if not needed:
            return 0.0
        arns = [e["computeEnvironment"] for e in detail.get("computeEnvironmentOrder", [])]
        envs = self.api.call(self.api.batch.describe_compute_environments,
                             computeEnvironments=arns)["computeEnvironments"] if arns else []
        total = 0.0
        for env in envs:
            if env.get("state") != "ENABLED":
                continue
            if env.get("type") == "UNMANAGED":
                total += float(env.get("unmanagedvCpus") or 0)
            else:
                resources = env.get("computeResources")
                total += float(resources.get("maxvCpus") or 0) if resources else 0.0
        if total <= 0:
            raise OptionError(f"the compute environments of job queue {queue!r} (--{option}) "
                              "give no vCPUs (maxvCpus or unmanagedvCpus); say how many this "
                              "run may use with --awsBatchMaxVcpus")
        return total

    def emulated_nodes(self) -> Sequence[EmulatedNode]:
        spot = self.options.aws_batch_spot_queue
        return [EmulatedNode(f"aws_batch/{queue}", queue, "", Capacity(replace(
            UNBOUNDED, cpus=offered_cpus_to_milli(vcpus))), preemptible=queue == spot)
            for queue, vcpus in self._capacity.items()]

    def limits(self) -> Limits:
        """A job larger than every queue's vCPUs can never run: refused at issue."""
        limits = super().limits()
        largest = offered_cpus_to_milli(max(self._capacity.values(), default=0)) or None
        if largest is not None and (limits.cpus is None or largest < limits.cpus):
            limits = replace(limits, cpus=largest, cpus_option="awsBatchMaxVcpus")
        return limits

    # ------------------------------------------------------------------ core actions
    def new_job(self, task: TaskLaunch, node: EmulatedNode) -> _Job:
        return _Job(task.task_id, task.job, node.hostname)

    def agent_of(self, job: _Job) -> str:
        return f"aws_batch/{job.queue}"

    # ------------------------------------------------------------------ messages
    def status_note(self) -> str | None:
        notes = [super().status_note()]
        live, unsent = self._live_and_unsent()
        by_status = collections.Counter(j.status or "SUBMITTED" for j in live)
        if by_status:
            order = [*requests.ACTIVE, *sorted(set(by_status) - set(requests.ACTIVE))]
            counts = ", ".join(f"{by_status[s]} {s}" for s in order if by_status[s])
            reasons = collections.Counter(j.pending_reason for j in live
                                          if j.pending_reason and j.status == "RUNNABLE")
            why = "".join(f"; RUNNABLE because {r} ({n})" for r, n in reasons.most_common(3))
            notes.append(f"In AWS Batch: {counts}{why}.")
        if unsent:
            notes.append(f"{unsent} being submitted.")
        if self._fatal:
            notes.append(self._fatal)
        return " ".join(n for n in notes if n) or None

    # ------------------------------------------------------------------ submitter
    def _submit_loop(self) -> None:
        while True:
            with self._jobs_lock:
                while not (self._to_cancel or self._to_submit or self._stopping):
                    self._work_ready.wait()
                kills, self._to_cancel = self._to_cancel, []
                stopping = self._stopping
                batch = [] if kills or stopping else self._to_submit
                if batch:
                    self._to_submit = []
            if kills:
                self._terminate(kills)
            elif stopping:
                self._drop_unsubmitted()
                return
            for i in range(0, len(batch), SUBMIT_CHUNK):
                list(self._submits.map(self._submit, batch[i:i + SUBMIT_CHUNK]))
                with self._jobs_lock:
                    kills, self._to_cancel = self._to_cancel, []
                if kills:  # kills do not wait for the rest of a long burst
                    self._terminate(kills)

    def _submit(self, job: _Job) -> None:
        with self._jobs_lock:
            if job.task_id not in self._jobs:  # killed meanwhile, and reported so
                return
            if self._stopping:
                return  # dropped by _drop_unsubmitted
            job.phase = Phase.SUBMITTING
        s = job.spec
        env = build_environment({}, s.environment, s.job_environment, s.cores)
        env.setdefault("MESOBATCH_JOB_ID", str(s.job_id))
        request = requests.submit_job(
            s, env, run_tag=self.run_tag, workflow_id=self.context.workflow_id,
            queue=job.queue, definition=self.definition,
            attempts=self.options.aws_batch_attempts)
        try:
            answer = self.api.call(self.api.batch.submit_job, **request)
        except AwsError as e:
            self._end([(job, TaskStatus(job.task_id, TaskState.ERROR, time.time(),
                                        message=f"cannot submit to AWS Batch: {e}",
                                        agent_id=self.agent_of(job)))])
            return
        with self._jobs_lock:
            job.aws_id = answer["jobId"]
            job.phase = Phase.SUBMITTED
            if job.kill and job.task_id in self._jobs:
                self._queue_cancel(job)
            self._poll_ready.notify()

    def _terminate(self, jobs: list[_Job]) -> None:
        """TerminateJob each; an accepted one ends KILLED. One that fails for a passing
        reason stays watched (its end still comes) and the core asks again later."""
        done: list[_Job] = []
        for job in jobs:
            with self._jobs_lock:
                if job.task_id not in self._jobs:
                    continue
            try:
                self.api.call(self.api.batch.terminate_job, jobId=job.aws_id,
                              reason=requests.KILL_REASON)
            except AwsError as e:
                if e.code != "ClientException":  # ClientException: no such job any more
                    log.warning("cannot terminate AWS Batch job %s: %s", job.aws_id, e)
                    with self._jobs_lock:
                        job.cancelling = False
                    continue
            with self._jobs_lock:
                self._terminated.add(job.aws_id)
            done.append(job)
        now = time.time()
        self._end([(j, TaskStatus(j.task_id, TaskState.KILLED, now, agent_id=self.agent_of(j)))
                   for j in done])

    # ------------------------------------------------------------------ poller
    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            with self._jobs_lock:
                watched = [j for j in self._jobs.values() if j.phase is Phase.SUBMITTED
                           and not j.cancelling]
                if not watched:
                    if not self._stop.is_set():  # shutdown() sets it, then notifies
                        self._poll_ready.wait()
                    continue
            # the first look comes an interval after the submission, as later ones do
            if self._stop.wait(self.options.poll_interval):
                return
            try:
                self._poll()
            except Exception:  # a parser's bug must not stop the polling for good
                log.exception("the AWS Batch poll failed")

    def _poll(self) -> None:
        """One round: DescribeJobs for every job of the run still live, 100 per call."""
        with self._jobs_lock:
            watched = {j.aws_id: j for j in self._jobs.values()
                       if j.phase is Phase.SUBMITTED and not j.cancelling}
        details: dict[str, dict[str, Any]] = {}
        try:
            for chunk in requests.describe_chunks(list(watched)):
                answer = self.api.call(self.api.batch.describe_jobs, jobs=chunk)
                details.update((d["jobId"], dict(d)) for d in answer["jobs"])
        except AwsError as e:
            self._failed_polls += 1
            log.warning("DescribeJobs failed (%d in a row): %s", self._failed_polls, e)
            # refused credentials or permissions will not pass; throttling and lost
            # connections may
            if self._failed_polls >= FATAL_POLLS and e.code not in ("", "ClientException") \
                    and e.code not in THROTTLING:
                self._fatal = (f"AWS Batch's DescribeJobs has failed {self._failed_polls} "
                               f"times in a row: {e}")
            return
        self._failed_polls = 0
        self._fatal = None
        self.polls += 1
        now = time.time()
        live: list[TaskStatus] = []
        ended: list[tuple[_Job, Observed, dict[str, Any]]] = []
        vanished: list[tuple[_Job, TaskStatus]] = []
        for aws_id, job in watched.items():
            detail = details.get(aws_id)
            if detail is None:
                job.missing += 1
                if job.missing >= VANISHED_POLLS:
                    vanished.append((job, TaskStatus(
                        job.task_id, TaskState.LOST, now, agent_id=self.agent_of(job),
                        message=f"AWS Batch no longer knows job {aws_id} (missing from "
                                f"DescribeJobs {job.missing} times in a row)")))
                continue
            job.missing = 0
            seen = observe(detail)
            job.status, job.pending_reason = seen.status, seen.pending_reason
            if seen.state.terminal:
                ended.append((job, seen, detail))
            elif seen.state is not TaskState.UNKNOWN and seen.state is not job.reported:
                job.reported = seen.state
                live.append(TaskStatus(job.task_id, seen.state, now, message=seen.message,
                                       agent_id=self.agent_of(job)))
        self._end(vanished, live)
        for job, seen, detail in ended:
            with self._jobs_lock:
                job.cancelling = True  # not watched again while its log is copied
            self._logs.submit(self._finish, job, seen, log_stream(detail))

    def _finish(self, job: _Job, seen: Observed, stream: str | None) -> None:
        """Copy the job's log into --logDir, then report its end."""
        s = job.spec
        path = log_path(self.context.log_dir, s.job_id, s.name)
        note = seen.message
        if stream and not self._stop.is_set():
            try:
                copy_log(self.api, self.options.aws_batch_log_group, stream, path)
            except (AwsError, OSError) as e:
                note = f"{note}; " if note else ""
                note += f"cannot copy its log {stream}: {e}"
        if note and seen.state is not TaskState.FINISHED:
            log.warning("AWS Batch job %s (job %d, %s): %s", job.aws_id, s.job_id, s.name,
                        note)
            try:
                with open(path, "a") as f:
                    f.write(f"mesobatch: {note}\n")
            except OSError:
                pass
        self._end([(job, TaskStatus(job.task_id, seen.state, time.time(),
                                    exit_code=seen.exit_code, wall_time=seen.wall_time,
                                    message=seen.message, agent_id=self.agent_of(job),
                                    exit_reason=seen.exit_reason))])

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Terminate what is still in AWS Batch (the batch system killed every job before
        calling this, so those are queued), then, if a SubmitJob's answer was ever lost,
        any job of this run AWS Batch lists and we never knew (ListJobs pages through all
        the run's jobs, so only then), then stop."""
        self._stop_submitting()
        if self._submitter.is_alive():
            self._submitter.join(timeout=60)
        self._stop.set()  # no more retries or backoff: one try each from now on
        with self._jobs_lock:
            self._poll_ready.notify_all()
        if self._poller.is_alive():
            self._poller.join(timeout=60)
        self._logs.shutdown(wait=True, cancel_futures=True)
        self._submits.shutdown(wait=True)
        if self.api.uncertain["submit_job"]:  # a submission's answer was lost
            self._sweep()
        atexit.unregister(self._atexit)

    def _sweep(self) -> None:
        """Terminate every live job of this run that ListJobs shows and we did not."""
        for queue in self._capacity:
            token: str | None = None
            while True:
                more = {"nextToken": token} if token else {}
                try:
                    listed = self.api.call(self.api.batch.list_jobs, jobQueue=queue,
                                           filters=requests.run_jobs_filter(self.run_tag),
                                           **more)
                except AwsError as e:
                    log.warning("cannot list this run's jobs in %s: %s", queue, e)
                    break
                for summary in listed.get("jobSummaryList", []):
                    if summary.get("status") in requests.ACTIVE and \
                            summary["jobId"] not in self._terminated:
                        self._terminate_quietly(summary["jobId"])
                token = listed.get("nextToken")
                if not token:
                    break

    def _terminate_quietly(self, aws_id: str) -> None:
        try:
            self.api.call(self.api.batch.terminate_job, jobId=aws_id,
                          reason=requests.KILL_REASON)
            self._terminated.add(aws_id)
        except AwsError as e:
            log.warning("cannot terminate AWS Batch job %s: %s", aws_id, e)

    def _atexit(self) -> None:
        """The interpreter ends without shutdown(): take this run's jobs off AWS Batch."""
        self._stop.set()
        with self._jobs_lock:
            ids = [j.aws_id for j in self._jobs.values() if j.phase is Phase.SUBMITTED]
        for aws_id in ids:
            self._terminate_quietly(aws_id)

