"""A scripted agent executor endpoint, to drive the executor driver directly.

``POST /api/v1/executor`` as the Mesos executor HTTP API page describes it
(https://mesos.apache.org/documentation/latest/executor-http-api/): SUBSCRIBE is answered
200 with a RecordIO stream of JSON events, each record one chunk (the test sends the
events: SUBSCRIBED, LAUNCH, KILL, ACKNOWLEDGED, MESSAGE, SHUTDOWN, ...); every other
call is answered 202 Accepted, or with the status the test sets (503 while the agent
recovers). Each call is read and checked as the Mesos double's agent does
(tests/doubles/mesos/calls.py, executor_api.py) and recorded. It runs on the double's
libprocess-shaped HTTP server, on an event-loop thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from tests.doubles.mesos.calls import read_call
from tests.doubles.mesos.executor_api import validate_call
from tests.doubles.mesos.httpserver import (
    EventStream,
    HttpServer,
    Request,
    Response,
    Router,
    StreamStart,
    text,
)

JsonDict = dict[str, Any]
FRAMEWORK_ID = "fw-1"
EXECUTOR_ID = "mesobatch-executor"


class AgentEndpoint:
    """The endpoint on 127.0.0.1; thread-safe; ``with AgentEndpoint() as agent:``."""

    def __init__(self) -> None:
        self.answer = 202  #: the status for calls other than SUBSCRIBE
        self.refuse_subscribe: int | None = None  #: answer SUBSCRIBE with this status
        self.calls: list[JsonDict] = []  #: every call received, in order
        self.headers: list[dict[str, str]] = []  #: each call's request headers
        self.peers: list[Any] = []  #: each call's client address
        self.streams_opened = 0  #: subscriptions answered with a stream
        self._changed = threading.Condition()
        self._stream: EventStream | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="agent-endpoint")
        router = Router()
        router.add("/api/v1/executor", self._handle)
        self._server = HttpServer(router)

    def __enter__(self) -> AgentEndpoint:
        self._thread.start()
        self.port = self._run(self._server.start("127.0.0.1", 0))
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def env(self, **extra: str) -> dict[str, str]:
        """What an agent gives its executor (MESOS_* variables)."""
        return {"MESOS_FRAMEWORK_ID": FRAMEWORK_ID, "MESOS_EXECUTOR_ID": EXECUTOR_ID,
                "MESOS_AGENT_ENDPOINT": f"127.0.0.1:{self.port}", **extra}

    # ------------------------------------------------------------------ the test's side
    def send(self, event: JsonDict) -> None:
        """An event on the open subscription."""
        def send() -> None:
            assert self._stream is not None and self._stream.is_open, "not subscribed"
            self._stream.send(event)
        self._run_sync(send)

    def drop(self) -> None:
        """Close the subscription's connection without ending the stream (a crash)."""
        def drop() -> None:
            if self._stream is not None:
                self._stream.drop()
        self._run_sync(drop)

    def of(self, kind: str) -> list[JsonDict]:
        with self._changed:
            return [c for c in self.calls if c["type"] == kind]

    def wait_for(self, predicate: Callable[[], object], timeout: float = 10) -> None:
        """Wait until ``predicate()`` holds (checked whenever a call arrives)."""
        with self._changed:
            assert self._changed.wait_for(predicate, timeout), f"timed out; calls: {self.calls}"

    def subscribe_count(self) -> int:
        return len(self.of("SUBSCRIBE"))

    def subscribed(self, **body: JsonDict) -> JsonDict:
        """A SUBSCRIBED event."""
        return {"type": "SUBSCRIBED", "subscribed": {
            "executor_info": {"executor_id": {"value": EXECUTOR_ID}},
            "framework_info": {"id": {"value": FRAMEWORK_ID}, "name": "f", "user": "u"},
            "agent_info": {"hostname": "agent-host", "id": {"value": "agent-1"}}, **body}}

    # ------------------------------------------------------------------ the server's side
    def _handle(self, request: Request) -> Response | StreamStart:
        call = read_call(request, "ExecutorCall")
        if isinstance(call, Response):
            return call
        problem = validate_call(call)
        if problem is not None:
            return text(400, f"Failed to validate Executor::Call: {problem}")
        with self._changed:
            self.calls.append(call)
            self.headers.append(dict(request.headers))
            self.peers.append(request.peer)
            self._changed.notify_all()
        if call["type"] != "SUBSCRIBE":
            return Response(self.answer)
        if self.refuse_subscribe is not None:
            return text(self.refuse_subscribe, "refused by the test")

        def opened(stream: EventStream) -> None:
            with self._changed:
                self._stream = stream
                self.streams_opened += 1
                self._changed.notify_all()

        def closed(stream: EventStream, reason: str) -> None:
            if self._stream is stream:
                self._stream = None

        return StreamStart([("Content-Type", "application/json")], opened, closed)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def _run_sync(self, function: Callable[[], None]) -> None:
        async def call() -> None:
            function()
        self._run(call())
