"""The HTTP face: AWS Batch's REST-JSON protocol (``POST /v1/<action>`` with a JSON body, errors
as ``x-amzn-ErrorType`` + ``{"message": ...}``) and CloudWatch Logs' JSON 1.1 protocol
(``POST /`` with ``X-Amz-Target: Logs_20140328.GetLogEvents``), both on one port, as botocore's
service models for ``batch`` (2016-08-10) and ``logs`` (2014-03-28) describe them. SigV4
signatures are accepted and not checked. Every request is counted by action.

Pages followed: AWS Batch API Reference, "Common Errors" and ``TooManyRequestsException``
(https://docs.aws.amazon.com/batch/latest/APIReference/CommonErrors.html), CloudWatch Logs API
Reference ``GetLogEvents``
(https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html).
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .batch import Batch, ClientError, JsonDict

ACTIONS = {
    "submitjob": "SubmitJob", "describejobs": "DescribeJobs", "listjobs": "ListJobs",
    "terminatejob": "TerminateJob", "canceljob": "CancelJob",
    "registerjobdefinition": "RegisterJobDefinition",
    "deregisterjobdefinition": "DeregisterJobDefinition",
    "describejobdefinitions": "DescribeJobDefinitions", "createjobqueue": "CreateJobQueue",
    "describejobqueues": "DescribeJobQueues", "updatejobqueue": "UpdateJobQueue",
    "deletejobqueue": "DeleteJobQueue",
    "createcomputeenvironment": "CreateComputeEnvironment",
    "describecomputeenvironments": "DescribeComputeEnvironments",
    "updatecomputeenvironment": "UpdateComputeEnvironment",
    "deletecomputeenvironment": "DeleteComputeEnvironment",
}


class Throttle:
    """Answer the next ``count`` requests (of one action, or any) with TooManyRequestsException."""

    def __init__(self) -> None:
        self.pending: Counter[str | None] = Counter()

    def hit(self, action: str) -> bool:
        for key in (action, None):
            if self.pending[key] > 0:
                self.pending[key] -= 1
                return True
        return False


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, headers=headers,
                        content_type=content_type)


class Server:
    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.requests: Counter[str] = Counter()
        self.throttle = Throttle()
        self.handlers: dict[str, Callable[[JsonDict], JsonDict]] = {
            "SubmitJob": batch.submit,
            "DescribeJobs": lambda r: {"jobs": batch.describe_jobs(list(r.get("jobs") or []))},
            "ListJobs": self._list_jobs,
            "TerminateJob": lambda r: self._stop(r, cancel=False),
            "CancelJob": lambda r: self._stop(r, cancel=True),
            "RegisterJobDefinition": batch.register_definition,
            "DeregisterJobDefinition": batch.deregister_definition,
            "DescribeJobDefinitions": lambda r: self._page(
                r, "jobDefinitions", batch.describe_definitions(r)),
            "CreateJobQueue": batch.create_queue,
            "UpdateJobQueue": batch.update_queue,
            "DescribeJobQueues": lambda r: self._page(r, "jobQueues", [
                q for q in batch.queues.values() if not r.get("jobQueues") or
                q["jobQueueName"] in r["jobQueues"] or q["jobQueueArn"] in r["jobQueues"]]),
            "DeleteJobQueue": self._delete_queue,
            "CreateComputeEnvironment": batch.create_environment,
            "UpdateComputeEnvironment": batch.update_environment,
            "DescribeComputeEnvironments": lambda r: self._page(r, "computeEnvironments", [
                e for e in batch.environments.values() if not r.get("computeEnvironments") or
                e["computeEnvironmentName"] in r["computeEnvironments"] or
                e["computeEnvironmentArn"] in r["computeEnvironments"]]),
            "DeleteComputeEnvironment": self._delete_environment,
            "GetLogEvents": batch.get_log_events,
        }

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    @staticmethod
    def _page(request: JsonDict, key: str, items: list[JsonDict]) -> JsonDict:
        start = int(request.get("nextToken") or 0)
        size = int(request.get("maxResults") or 100)
        result: JsonDict = {key: items[start:start + size]}
        if start + size < len(items):
            result["nextToken"] = str(start + size)
        return result

    def _list_jobs(self, request: JsonDict) -> JsonDict:
        summaries, token = self.batch.list_jobs(request)
        result: JsonDict = {"jobSummaryList": summaries}
        if token is not None:
            result["nextToken"] = token
        return result

    def _stop(self, request: JsonDict, cancel: bool) -> JsonDict:
        if not request.get("jobId") or not request.get("reason"):
            raise ClientError("jobId and reason are required")
        self.batch.terminate(request["jobId"], request["reason"], cancel)
        return {}

    def _delete_queue(self, request: JsonDict) -> JsonDict:
        queue = self.batch.queue(request.get("jobQueue", ""))
        if queue is None:
            raise ClientError(f"{request.get('jobQueue')} does not exist")
        del self.batch.queues[queue["jobQueueName"]]
        return {}

    def _delete_environment(self, request: JsonDict) -> JsonDict:
        env = self.batch.environment(request.get("computeEnvironment", ""))
        if env is None:
            raise ClientError(f"{request.get('computeEnvironment')} does not exist")
        del self.batch.environments[env["computeEnvironmentName"]]
        return {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/__double__/"):
            return await self.control(request, request.path[len("/__double__/"):])
        target = request.headers.get("X-Amz-Target")
        if target is not None:
            action = target.rpartition(".")[2]
            json_protocol = True
        elif request.path.startswith("/v1/tags/"):
            action = {"GET": "ListTagsForResource", "POST": "TagResource",
                      "DELETE": "UntagResource"}.get(request.method, "")
            json_protocol = False
        else:
            action = ACTIONS.get(request.path.rstrip("/").rsplit("/", 1)[-1], "")
            json_protocol = False
        self.requests[action or request.path] += 1
        raw = await request.read()
        try:
            if self.throttle.hit(action):
                raise ClientError("Too Many Requests", "TooManyRequestsException", 429)
            body = json.loads(raw) if raw.strip() else {}
            if action in ("ListTagsForResource", "TagResource", "UntagResource"):
                result = self._tags(request, action, body)
            elif action in self.handlers:
                result = self.handlers[action](body)
            else:
                raise ClientError(f"Unknown operation {target or request.path}",
                                  "UnknownOperationException", 404)
        except ClientError as error:
            if json_protocol:
                return _json({"__type": error.code, "message": str(error)}, error.status,
                             content_type="application/x-amz-json-1.1")
            return _json({"message": str(error)}, error.status,
                         headers={"x-amzn-ErrorType": f"{error.code}:"})
        if json_protocol:
            return _json(result, content_type="application/x-amz-json-1.1")
        return _json(result)

    def _tags(self, request: web.Request, action: str, body: JsonDict) -> JsonDict:
        arn = urllib.parse.unquote(request.path[len("/v1/tags/"):])
        target: dict[str, str] | None = None
        for job in self.batch.jobs.values():
            if job.arn == arn:
                target = job.tags
        for table in (self.batch.queues, self.batch.environments):
            for item in table.values():
                if arn in (item.get("jobQueueArn"), item.get("computeEnvironmentArn")):
                    target = item.setdefault("tags", {})
        for revisions in self.batch.definitions.values():
            for definition in revisions:
                if definition["jobDefinitionArn"] == arn:
                    target = definition["tags"]
        if target is None:
            raise ClientError(f"Resource {arn} does not exist")
        if action == "TagResource":
            target.update(body.get("tags") or {})
        elif action == "UntagResource":
            for key in request.query.getall("tagKeys", []):
                target.pop(key, None)
        return {"tags": dict(target)} if action == "ListTagsForResource" else {}

    async def control(self, request: web.Request, action: str) -> web.StreamResponse:
        args: JsonDict = {}
        if request.method == "POST":
            raw = await request.read()
            args = json.loads(raw) if raw.strip() else {}
        try:
            if action == "requests":
                return _json({"requests": dict(self.requests),
                              "total": sum(self.requests.values())})
            if action == "reset-requests":
                self.requests.clear()
                return _json({"ok": True})
            if action == "throttle":
                self.throttle.pending[args.get("action")] += int(args.get("count", 1))
                return _json({"ok": True})
            if action == "lose-host":
                return _json({"ok": True, "instance": self.batch.lose_host(args["jobId"])})
            if action == "reclaim-spot":
                return _json({"ok": True, "jobs": self.batch.reclaim_spot()})
        except (KeyError, ValueError) as error:
            return _json({"ok": False, "error": str(error)}, 400)
        return _json({"ok": False, "error": f"unknown control action {action!r}"}, 404)
