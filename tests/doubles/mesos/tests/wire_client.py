"""A raw-socket HTTP/1.1 client for the tests: exact status lines, header order, chunk framing.

``Http.request`` returns what a recorder would store; ``Subscription`` reads a RecordIO stream
on a thread and keeps every event with its arrival time, so tests can assert timing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode()


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buffer += data

    def head(self) -> tuple[int, str, list[tuple[str, str]]]:
        while b"\r\n\r\n" not in self.buffer:
            self.fill()
        raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        _, status, reason = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers.append((key.strip(), value.strip()))
        return int(status), reason, headers

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def chunk(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            self.fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        size = int(line, 16)
        data = self.exactly(size + 2)[:size]
        return data if size else None


def connect(
    host: str, port: int, timeout: float, context: ssl.SSLContext | None
) -> socket.socket:
    """A TCP connection, TLS-wrapped (and verified against ``host``) when given a context."""
    sock = socket.create_connection((host, port), timeout=timeout)
    if context is None:
        return sock
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


class Http:
    """One keep-alive connection; ``request`` sends exactly the given headers."""

    def __init__(self, address: str, context: ssl.SSLContext | None = None) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.context = context
        self.sock: socket.socket | None = None
        self.reader: _Reader | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def request(
        self,
        path: str,
        body: Any = None,
        *,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        content_type: str | None = "application/json",
        timeout: float = 10.0,
        raw_headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        if self.sock is None:
            self.sock = connect(self.host, self.port, timeout, self.context)
            self.reader = _Reader(self.sock)
        assert self.reader is not None
        data = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if raw_headers is not None:
            lines += [
                f"{k}: {v}" for k, v in raw_headers if k.lower() not in ("host", "content-length")
            ]
        else:
            if content_type is not None:
                lines.append(f"Content-Type: {content_type}")
            for key, value in (headers or {}).items():
                lines.append(f"{key}: {value}")
        if method != "GET" or data:
            lines.append(f"Content-Length: {len(data)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        status, reason, response_headers = self.reader.head()
        length = int(dict((k.lower(), v) for k, v in response_headers).get("content-length", "0"))
        payload = self.reader.exactly(length)
        return Response(status, reason, response_headers, payload)


@dataclass
class Event:
    t: float
    record: bytes
    event: Json


@dataclass
class Subscription:
    """A streaming SUBSCRIBE (scheduler or executor) read on a background thread."""

    address: str
    path: str
    body: Json
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    error_body: bytes = b""
    events: list[Event] = field(default_factory=list)
    raw_chunks: list[bytes] = field(default_factory=list)
    closed: str | None = None
    t0: float = field(default_factory=time.monotonic)
    context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._cursor = 0
        self._taken: set[int] = set()
        host, _, port = self.address.rpartition(":")
        self.sock = connect(host, int(port), 10, self.context)
        data = json.dumps(self.body).encode()
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.address}",
            "Content-Type: application/json",
            "Accept: application/json",
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        lines.append(f"Content-Length: {len(data)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        self.sock.settimeout(None)
        self.reader = _Reader(self.sock)
        self.status, _, self.response_headers = self.reader.head()
        if self.status != 200:
            length = int(self.header("Content-Length") or 0)
            self.error_body = self.reader.exactly(length)
            self.closed = "not subscribed"
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def header(self, name: str) -> str | None:
        for key, value in self.response_headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def stream_id(self) -> str | None:
        return self.header("Mesos-Stream-Id")

    def _read(self) -> None:
        try:
            while True:
                chunk = self.reader.chunk()
                if chunk is None:
                    self.closed = "terminating chunk"
                    break
                self.raw_chunks.append(chunk)
                size_text, _, record = chunk.partition(b"\n")
                assert int(size_text) == len(record), "each chunk must hold exactly one record"
                event = Event(time.monotonic() - self.t0, record, json.loads(record))
                self.events.append(event)
                self._queue.put(event)
        except (EOFError, OSError) as exc:
            self.closed = f"eof: {exc}"
        finally:
            self._queue.put(None)

    def next(
        self, predicate: Callable[[Json], bool] | str | None = None, timeout: float = 10.0
    ) -> Json:
        """The first not yet returned event matching ``predicate`` (waiting for it).

        Events that do not match stay available to later calls, so a test can wait for an
        UPDATE without losing an OFFERS that arrived first.
        """
        if isinstance(predicate, str):
            wanted = predicate
            predicate = lambda e: e["type"] == wanted  # noqa: E731
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._cursor, len(self.events)):
                if index in self._taken:
                    continue
                event = self.events[index]
                if predicate is None or predicate(event.event):
                    self._taken.add(index)
                    while self._cursor in self._taken:
                        self._cursor += 1
                    return event.event
            if self.closed is not None:
                raise EOFError(f"stream closed ({self.closed}) before a matching event")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = [e.event["type"] for e in self.events]
                raise TimeoutError(f"no matching event; got {got}")
            try:
                self._queue.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue

    def next_event(self, predicate: Callable[[Json], bool] | str, timeout: float = 10.0) -> Event:
        event = self.next(predicate, timeout)
        for item in reversed(self.events):
            if item.event is event:
                return item
        raise AssertionError("unreachable")

    def of_type(self, kind: str) -> list[Json]:
        return [e.event for e in self.events if e.event["type"] == kind]

    def wait_closed(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while self.closed is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.closed is not None, "stream still open"
        return self.closed

    def close(self) -> None:
        # Shut the TCP socket down under any TLS layer (SSLSocket.shutdown would drop the TLS
        # object under the reader's feet), let the reader see EOF, and only then free the fd:
        # a reader still inside recv() would otherwise read the next connection's bytes.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        thread = getattr(self, "thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.sock.close()


class Scheduler:
    """A scheduler driven by the tests: one subscription plus a call connection."""

    def __init__(
        self,
        master: str,
        framework_info: Json | None = None,
        *,
        context: ssl.SSLContext | None = None,
        headers: dict[str, str] | None = None,
        framework_id: str | None = None,
        **subscribe: Any,
    ) -> None:
        """SUBSCRIBE to ``master`` (re-subscribe when ``framework_id`` is given); ``headers``
        (e.g. Authorization) go with every request."""
        self.master = master
        self.info = dict(framework_info or default_framework_info())
        self.headers = dict(headers or {})
        body: Json = {"type": "SUBSCRIBE", "subscribe": {"framework_info": self.info, **subscribe}}
        if framework_id is not None:
            self.info["id"] = {"value": framework_id}
            body["framework_id"] = {"value": framework_id}
        self.subscription = Subscription(
            master, "/api/v1/scheduler", body, headers=self.headers, context=context
        )
        self.http = Http(master, context)
        self.framework_id = ""
        if self.subscription.status == 200:
            first = self.subscription.next()
            if first["type"] == "SUBSCRIBED":
                self.framework_id = first["subscribed"]["framework_id"]["value"]
            self.subscribed = first

    @property
    def stream_id(self) -> str:
        return self.subscription.stream_id or ""

    def call(self, kind: str, body: Json | None = None, **extra: Any) -> Response:
        call: Json = {"framework_id": {"value": self.framework_id}, "type": kind}
        if body is not None:
            call[kind.lower()] = body
        call.update(extra)
        return self.http.request(
            "/api/v1/scheduler", call, headers={**self.headers, "Mesos-Stream-Id": self.stream_id}
        )

    def offers(self, timeout: float = 10.0) -> list[Json]:
        offers: list[Json] = self.subscription.next("OFFERS", timeout)["offers"]["offers"]
        return offers

    def update(
        self, task_id: str | None = None, state: str | None = None, timeout: float = 10.0
    ) -> Json:
        def match(event: Json) -> bool:
            if event["type"] != "UPDATE":
                return False
            status = event["update"]["status"]
            return (task_id is None or status["task_id"]["value"] == task_id) and (
                state is None or status["state"] == state
            )

        status: Json = self.subscription.next(match, timeout)["update"]["status"]
        return status

    def ack(self, status: Json) -> Response:
        return self.call(
            "ACKNOWLEDGE",
            {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]},
        )

    def launch(self, offer: Json, tasks: list[Json], filters: Json | None = None) -> Response:
        body: Json = {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
        }
        if filters is not None:
            body["filters"] = filters
        return self.call("ACCEPT", body)

    def close(self) -> None:
        self.subscription.close()
        self.http.close()


def default_framework_info(**overrides: Any) -> Json:
    info: Json = {
        "user": "root",
        "name": "double-test",
        "failover_timeout": 60,
        "checkpoint": True,
        "capabilities": [
            {"type": "MULTI_ROLE"},
            {"type": "PARTITION_AWARE"},
            {"type": "TASK_KILLING_STATE"},
            {"type": "GPU_RESOURCES"},
        ],
        "roles": ["*"],
    }
    info.update(overrides)
    return info


def executor_info(executor_id: str, **command: Any) -> Json:
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "sample_executor.py"
    return {
        "executor_id": {"value": executor_id},
        "type": "CUSTOM",
        "name": "sample-executor",
        "command": {"shell": True, "value": f"{sys.executable} {script}", **command},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
        ],
    }


def task_info(
    task_id: str, offer: Json, executor: Json, mode: str = "finish", cpus: float = 0.1
) -> Json:
    return {
        "name": f"task-{task_id}",
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}},
        ],
        "executor": executor,
        "data": base64.b64encode(mode.encode()).decode(),
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def new_uuid_b64() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode()
