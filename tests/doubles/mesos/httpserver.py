"""A lean HTTP/1.1 server shaped like libprocess, on plain asyncio protocols.

It does exactly what the double needs and no more, because every request costs CPU the
benchmarks attribute to "Mesos": keep-alive and pipelined requests answered in order,
Content-Length and chunked request bodies, responses whose headers come out in libprocess'
order (``Date`` first, no ``Server``), RecordIO event streams where each record is one chunk,
and full-duplex chunked connections for the private agent link.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .wire import JsonDict, record

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024

REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

_date_cache: list[Any] = [0, b""]


def http_date() -> bytes:
    """RFC 7231 date, formatted once per second."""
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache[:] = [second, email.utils.formatdate(second, usegmt=True).encode()]
    date: bytes = _date_cache[1]
    return date


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    peer: Any = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None

    def encode(self) -> bytes:
        parts = [
            b"HTTP/1.1 %d %s\r\nDate: %s\r\n"
            % (self.status, REASONS[self.status].encode(), http_date())
        ]
        for key, value in self.headers:
            parts.append(f"{key}: {value}\r\n".encode())
        if self.content_type is not None:
            parts.append(b"Content-Type: %s\r\n" % self.content_type.encode())
        parts.append(b"Content-Length: %d\r\n\r\n" % len(self.body))
        parts.append(self.body)
        return b"".join(parts)


@dataclass
class StreamStart:
    """Answer with a chunked RecordIO stream; ``on_open`` gets the EventStream."""

    headers: list[tuple[str, str]]
    on_open: Callable[[EventStream], None]
    on_close: Callable[[EventStream, str], None]


@dataclass
class DuplexStart:
    """Answer 200 and turn the connection into a two-way chunked frame channel."""

    on_open: Callable[[Link], None]


Result = Response | StreamStart | DuplexStart
Handler = Callable[[Request], Result | Awaitable[Result]]


class Router:
    def __init__(self) -> None:
        self.exact: dict[str, Handler] = {}
        self.prefixes: list[tuple[str, Handler]] = []
        self.duplex: set[str] = set()
        self.fallback: Handler | None = None  # for paths no route matches (default: 404)

    def add(self, path: str, handler: Handler) -> None:
        self.exact[path] = handler

    def add_duplex(self, path: str, handler: Handler) -> None:
        """A route whose chunked request body stays open (answered with DuplexStart)."""
        self.exact[path] = handler
        self.duplex.add(path)

    def add_prefix(self, prefix: str, handler: Handler) -> None:
        self.prefixes.append((prefix, handler))

    def find(self, path: str) -> Handler | None:
        handler = self.exact.get(path)
        if handler is not None:
            return handler
        for prefix, candidate in self.prefixes:
            if path.startswith(prefix):
                return candidate
        return self.fallback


def text(status: int, body: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """libprocess error bodies are text/plain with a charset."""
    return Response(status, body.encode(), headers or [], "text/plain; charset=utf-8")


def not_found() -> Response:
    return Response(404)


class EventStream:
    """A chunked response where every RecordIO record is exactly one HTTP chunk.

    ``send`` never blocks; records queued in one loop iteration leave in one write. ``end``
    sends the terminating zero-length chunk; ``drop`` closes TCP without it (what a crash
    looks like to the client).
    """

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport
        self._pending: list[bytes] = []
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[str] = self._loop.create_future()
        self.events_sent = 0

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    def send(self, event: JsonDict) -> None:
        if self.closed.done():
            return
        data = record(event)
        self._pending.append(b"%x\r\n%s\r\n" % (len(data), data))
        self.events_sent += 1
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending or self.closed.done():
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if self._transport.is_closing():
            self._protocol.close_stream("connection lost")
            return
        self._transport.write(data)

    def end(self) -> None:
        if self.closed.done():
            return
        self._flush()
        if not self._transport.is_closing():
            self._transport.write(b"0\r\n\r\n")
            self._transport.close()
        self._protocol.close_stream("ended")

    def drop(self) -> None:
        if self.closed.done():
            return
        self._pending.clear()
        self._transport.close()
        self._protocol.close_stream("dropped")


class Link:
    """One end of a two-way chunked channel carrying JSON arrays of messages."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.on_message: Callable[[JsonDict], None] = lambda message: None
        self.on_close: Callable[[], None] = lambda: None
        self._outbox: list[JsonDict] = []
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self.frames_sent = 0
        self.messages_sent = 0

    @property
    def closed(self) -> bool:
        return self._closed.done()

    def send(self, message: JsonDict) -> None:
        if self._closed.done():
            return
        self._outbox.append(message)
        self.messages_sent += 1
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        from .wire import dumps

        self._scheduled = False
        if not self._outbox or self._closed.done() or self.transport.is_closing():
            return
        data = dumps(self._outbox)
        self._outbox = []
        self.frames_sent += 1
        self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def feed(self, frame: bytes) -> None:
        from .wire import loads

        for message in loads(frame):
            self.on_message(message)

    def lost(self) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
            self.on_close()

    def close(self) -> None:
        self.transport.close()
        self.lost()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)


class _ChunkReader:
    """Incremental chunked-body parser; returns complete chunks (None = terminator)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes | None]:
        self.buffer += data
        out: list[bytes | None] = []
        while True:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return out
            size = int(bytes(self.buffer[:line_end]).split(b";", 1)[0], 16)
            end = line_end + 2 + size + 2
            if len(self.buffer) < end:
                return out
            chunk = bytes(self.buffer[line_end + 2 : line_end + 2 + size])
            del self.buffer[:end]
            out.append(chunk if size else None)


class _Protocol(asyncio.Protocol):
    """One server connection: requests in order, or a stream, or a duplex link."""

    def __init__(self, server: HttpServer, plain_only: bool = False) -> None:
        self.server = server
        self.plain_only = plain_only  # plain HTTP reaching a TLS server: private paths only
        self.transport: Any = None
        self.buffer = bytearray()
        self.busy = False
        self.mode = "request"  # request, stream, duplex
        self.stream: EventStream | None = None
        self.stream_start: StreamStart | None = None
        self.link: Link | None = None
        self.chunks: _ChunkReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.mode == "stream":
            self.close_stream("connection lost")
        elif self.mode == "duplex" and self.link is not None:
            self.link.lost()

    def data_received(self, data: bytes) -> None:
        if self.mode == "duplex":
            assert self.chunks is not None and self.link is not None
            for chunk in self.chunks.feed(data):
                if chunk is None:
                    self.transport.close()
                    return
                self.link.feed(chunk)
            return
        if self.mode == "stream":
            return  # a subscribed client has nothing more to say on this connection
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while self.mode == "request" and not self.busy and not self.transport.is_closing():
            parsed = self._parse()
            if parsed is None:
                return
            request, close = parsed
            self._dispatch(request, close)

    def _parse(self) -> tuple[Request, bool] | None:
        buffer = self.buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buffer) > MAX_HEAD:
                self._fail(431)
            return None
        try:
            lines = bytes(buffer[:head_end]).decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._fail(400)
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        start = head_end + 4
        path, _, query = target.partition("?")
        if self.plain_only and not path.startswith(self.server.plain_prefixes):
            # A TLS-only server cannot make sense of plain HTTP: the connection just ends.
            self.transport.close()
            return None
        if path in self.server.router.duplex:
            del buffer[:start]  # what follows is the first frames of the link
            # close: a refused link (a Response instead of DuplexStart) ends the connection.
            return Request(method, path, query, headers, b"", None), True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked_body(start)
            if body is None:
                return None
            payload, consumed = body
        else:
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY:
                self._fail(413)
                return None
            if len(buffer) < start + length:
                if headers.get("expect", "").lower() == "100-continue" and not getattr(
                    self, "_continued", False
                ):
                    self._continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return None
            payload = bytes(buffer[start : start + length])
            consumed = start + length
        self._continued = False
        del buffer[:consumed]
        connection = headers.get("connection", "").lower()
        close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        peer = self.transport.get_extra_info("peername")
        return Request(method, path, query, headers, payload, peer), close

    def _chunked_body(self, start: int) -> tuple[bytes, int] | None:
        buffer = self.buffer
        position = start
        parts: list[bytes] = []
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            try:
                size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
            except ValueError:
                self._fail(400)
                return None
            data_start = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", data_start)
                if trailer_end < 0:
                    return None
                return b"".join(parts), trailer_end + 2
            if len(buffer) < data_start + size + 2:
                return None
            parts.append(bytes(buffer[data_start : data_start + size]))
            position = data_start + size + 2

    def _fail(self, status: int) -> None:
        self.transport.write(Response(status).encode())
        self.transport.close()

    def _dispatch(self, request: Request, close: bool) -> None:
        handler = self.server.router.find(request.path)
        if handler is None:
            self._finish(not_found(), close)
            return
        try:
            result = handler(request)
        except Exception:
            log.exception("handler for %s failed", request.path)
            self._finish(Response(500), True)
            return
        if isinstance(result, (Response, StreamStart, DuplexStart)):
            self._finish(result, close)
            return
        self.busy = True
        task = asyncio.ensure_future(result)
        self.server.tasks.add(task)
        task.add_done_callback(lambda t: self._async_done(t, close))

    def _async_done(self, task: asyncio.Future[Result], close: bool) -> None:
        self.server.tasks.discard(task)
        self.busy = False
        if task.cancelled():
            self.transport.close()
            return
        error = task.exception()
        if error is not None:
            log.error("handler failed", exc_info=error)
            self._finish(Response(500), True)
            return
        self._finish(task.result(), close)
        self._process()

    def _finish(self, result: Result, close: bool) -> None:
        if self.transport.is_closing():
            return
        if isinstance(result, Response):
            self.transport.write(result.encode())
            if close:
                self.transport.close()
            return
        if isinstance(result, StreamStart):
            head = [b"HTTP/1.1 200 OK\r\nDate: %s\r\nTransfer-Encoding: chunked\r\n" % http_date()]
            head += [f"{k}: {v}\r\n".encode() for k, v in result.headers]
            self.transport.write(b"".join(head) + b"\r\n")
            self.mode = "stream"
            self.stream_start = result
            self.stream = EventStream(self)
            result.on_open(self.stream)
            return
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nDate: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % http_date()
        )
        self.mode = "duplex"
        self.chunks = _ChunkReader()
        self.link = Link(self.transport)
        result.on_open(self.link)
        leftover, self.buffer = bytes(self.buffer), bytearray()
        if leftover:
            self.data_received(leftover)

    def close_stream(self, reason: str) -> None:
        stream = self.stream
        if stream is None or stream.closed.done():
            return
        stream.closed.set_result(reason)
        if self.stream_start is not None:
            self.stream_start.on_close(stream, reason)


class HttpServer:
    """Plain HTTP, or TLS with plain HTTP still accepted for ``plain_prefixes``.

    In TLS mode each accepted connection's first byte is peeked, as libprocess does when
    it supports SSL downgrades: a TLS handshake (0x16) is served over TLS, anything else as
    plain HTTP restricted to the private paths (agent link, control API).
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self.connections: set[_Protocol] = set()
        self.tasks: set[asyncio.Future[Any]] = set()
        self._listener: socket.socket | None = None
        self._sniffing: set[socket.socket] = set()
        self._adopting: dict[asyncio.Task[None], socket.socket] = {}
        self._ssl: ssl.SSLContext | None = None
        self.plain_prefixes: tuple[str, ...] = ()
        self.port = 0

    async def start(
        self,
        host: str,
        port: int,
        ssl: ssl.SSLContext | None = None,
        plain_prefixes: tuple[str, ...] = (),
    ) -> int:
        # Our own listener rather than loop.create_server: asyncio's Server.close() between
        # accept() and its transport task leaves that connection open and unanswered (the
        # task fails on a closed server, silently), and a client of a restarting master
        # then waits out its whole timeout.
        self._ssl = ssl
        self.plain_prefixes = plain_prefixes
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(1024)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        asyncio.get_running_loop().add_reader(listener.fileno(), self._accept)
        self.port = int(listener.getsockname()[1])
        return self.port

    def _accept(self) -> None:
        assert self._listener is not None
        loop = asyncio.get_running_loop()
        for _ in range(64):
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors
                log.warning("accept failed: %s", exc)
                return
            conn.setblocking(False)
            # asyncio sets this only on sockets made with proto=IPPROTO_TCP, not ours (0):
            # without it a response written in pieces waits 40 ms for a delayed ACK.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is None:
                self._hand_over(conn, tls=False)
            else:
                self._sniffing.add(conn)
                loop.add_reader(conn.fileno(), self._sniff, conn)

    def _sniff(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        loop.remove_reader(conn.fileno())
        self._sniffing.discard(conn)
        if not first:
            conn.close()
            return
        self._hand_over(conn, tls=first == b"\x16")

    def _hand_over(self, conn: socket.socket, *, tls: bool) -> None:
        """Make a transport for ``conn``; until there is one, stop() closes the socket."""
        task = asyncio.get_running_loop().create_task(self._adopt(conn, tls=tls))
        self._adopting[task] = conn
        task.add_done_callback(self._adopted)

    def _adopted(self, task: asyncio.Task[None]) -> None:
        conn = self._adopting.pop(task)
        if task.cancelled():  # by stop(), maybe before its first step: nothing closed it
            conn.close()

    async def _adopt(self, conn: socket.socket, *, tls: bool) -> None:
        loop = asyncio.get_running_loop()
        plain_only = not tls and self._ssl is not None  # plain HTTP reaching a TLS server
        try:
            await loop.connect_accepted_socket(
                lambda: _Protocol(self, plain_only=plain_only),
                conn,
                ssl=self._ssl if tls else None,
                ssl_handshake_timeout=10.0 if tls else None,
            )
        except (OSError, asyncio.TimeoutError) as exc:  # ssl.SSLError is an OSError
            log.debug("connection setup failed: %s", exc)
            conn.close()

    async def stop(self) -> None:
        """Stop listening and drop every connection (streams end without a terminator)."""
        loop = asyncio.get_running_loop()
        if self._listener is not None:
            loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for conn in list(self._sniffing):
            loop.remove_reader(conn.fileno())
            conn.close()
        self._sniffing.clear()
        for adopting in list(self._adopting):
            adopting.cancel()  # _adopted() closes the socket
        for protocol in list(self.connections):
            if protocol.transport is not None:
                protocol.transport.close()
            protocol.connection_lost(None)
        for task in list(self.tasks):
            task.cancel()


class _ClientProtocol(asyncio.Protocol):
    """The agent's end of the link: POST with a chunked body, read the chunked answer."""

    def __init__(self, path: str, host: str) -> None:
        self.path = path
        self.host = host
        self.transport: Any = None
        self.head = bytearray()
        self.ready: asyncio.Future[Link] = asyncio.get_running_loop().create_future()
        self.link: Link | None = None
        self.chunks = _ChunkReader()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.transport.write(
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        if self.link is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(self.head[: self.head.find(b"\r\n")]).decode("latin-1")
            rest = bytes(self.head[end + 4 :])
            if status_line.split(" ")[1] != "200":
                self.transport.close()
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(status_line))
                return
            self.link = Link(self.transport)
            self.ready.set_result(self.link)
            data = rest
            if not data:
                return
        for chunk in self.chunks.feed(data):
            if chunk is None:
                self.transport.close()
                return
            self.link.feed(chunk)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("link refused"))
        if self.link is not None:
            self.link.lost()


async def open_link(host: str, port: int, path: str, timeout: float = 5.0) -> Link:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: _ClientProtocol(path, f"{host}:{port}"), host, port),
        timeout,
    )
    return await asyncio.wait_for(protocol.ready, timeout)
