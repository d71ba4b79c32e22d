"""The scheduler's resource server: blobs out to the nodes, function results back in.

    GET  /blobs/<sha256>               a blob                     bearer token
    GET  /public/<sha256>/<file name>  a public blob (the bundle) no token
    PUT  /results/<32 hex digits>      a function job's outcome   bearer token
    PUT  /logs/<job id>-<name>.log     a job's output (Mesos)     bearer token
    GET  /health                       "ok" (for check-agent)     no token

The token is per framework and reaches the executor inside its tasks' TaskInfo.data,
never the agent's command line or environment. A path holding ``..`` (raw or encoded)
is refused outright; any other path is only ever matched against the patterns above,
so nothing outside the store can be named. Uploads are refused over the store's size
limit, before their body is read, and accepted only for results a call waits for.

The server is one asyncio event loop in a thread of its own (selector-based, from the
standard library): an idle connection costs a socket and a few objects, no thread.
Connections are capped (MAX_CONNECTIONS, and a quarter of the process's descriptor
limit, so the scheduler's own files never run short); at the cap the connection that
has waited longest without sending a request is closed to make room, and when none is
idle a newcomer gets 503. A request's head must arrive whole within ``head_timeout``
(slow senders cannot hold a slot), and every read or write of a body must progress
within ``io_timeout``. Blobs go out with sendfile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http.client
import io
import logging
import os
import re
import resource
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .store import ResourceStore, ResourceTooLarge, UnexpectedResult

log = logging.getLogger(__name__)

_BLOB = re.compile(r"/blobs/([0-9a-f]{64})")
_PUBLIC = re.compile(r"/public/([0-9a-f]{64})/[A-Za-z0-9._-]+")
_RESULT = re.compile(r"/results/([0-9a-f]{32})")
#: what protocol.log_file_name makes
_LOG = re.compile(r"/logs/([0-9]{1,19}-[A-Za-z0-9_.-]{1,60}\.log)")
_LENGTH = re.compile(r"[0-9]{1,19}")  # no sign, no '_', no spaces: int() takes all three

#: the most connections served at once (fewer when the descriptor limit is low)
MAX_CONNECTIONS = 256
MAX_HEAD = 64 * 1024  #: request line and headers
_CHUNK = 1 << 20
_SEND_CHUNK = 8 << 20
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
            413: "Content Too Large", 431: "Request Header Fields Too Large",
            501: "Not Implemented", 503: "Service Unavailable"}


def connection_cap(limit: int | None = None) -> int:
    """MAX_CONNECTIONS, or a quarter of the soft descriptor limit if that is lower."""
    if limit is None:
        limit = MAX_CONNECTIONS
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limit
    return max(8, min(limit, soft // 4))


@dataclass
class TransferStats:
    """Completed blob transfers and bytes sent, per sha256 of the blobs still stored
    (a deleted blob's counts go with it), and totals."""

    transfers: dict[str, int] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    results: int = 0
    total_transfers: int = 0
    total_bytes: int = 0

    def sent(self, digest: str, size: int) -> None:
        self.transfers[digest] = self.transfers.get(digest, 0) + 1
        self.bytes_sent[digest] = self.bytes_sent.get(digest, 0) + size
        self.total_transfers += 1
        self.total_bytes += size

    def forget(self, digest: str) -> None:
        self.transfers.pop(digest, None)
        self.bytes_sent.pop(digest, None)


class _Close(Exception):
    """End this connection (the answer, if any, was sent)."""


@dataclass
class _Conn:
    writer: asyncio.StreamWriter
    idle_since: float | None  #: waiting for a request since; None while one is served


class ResourceServer:
    """Serves a store over HTTP on a port of its own, from a thread of its own."""

    def __init__(self, store: ResourceStore, token: str, host: str = "127.0.0.1",
                 port: int = 0, *, max_connections: int | None = None,
                 head_timeout: float = 10.0, io_timeout: float = 30.0) -> None:
        if not token:
            raise ValueError("the resource server needs a token")
        self.store = store
        self._token = f"Bearer {token}".encode()
        self.max_connections = connection_cap(max_connections)
        self.head_timeout = head_timeout
        self.io_timeout = io_timeout
        self._stats = TransferStats()
        #: where PUT /logs/ writes, and the largest log it takes (None: refused)
        self.log_dir: str | None = None
        self.max_log_size = 0
        self._stats_lock = threading.Lock()
        self._conns: dict[asyncio.StreamWriter, _Conn] = {}
        store.on_delete.append(self._forget)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=128)
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, sock=sock, limit=MAX_HEAD))
        self._port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="mesobatch-resources", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._port

    def connections(self) -> int:
        """Connections open now (at most max_connections)."""
        return len(self._conns)

    def stats(self) -> TransferStats:
        with self._stats_lock:
            s = self._stats
            return TransferStats(dict(s.transfers), dict(s.bytes_sent), s.refused, s.results,
                                 s.total_transfers, s.total_bytes)

    def _forget(self, digest: str) -> None:
        with self._stats_lock:
            self._stats.forget(digest)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(ValueError):
            self.store.on_delete.remove(self._forget)

        async def stop() -> None:
            self._server.close()
            for conn in list(self._conns.values()):
                conn.writer.transport.abort()
            await self._server.wait_closed()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    # ------------------------------------------------------------------ connections
    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        """Make room for a new connection: close the one idle longest if at the cap."""
        if len(self._conns) < self.max_connections:
            return True
        idle = [c for c in self._conns.values() if c.idle_since is not None]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since or 0.0)
        oldest.writer.transport.abort()
        del self._conns[oldest.writer]
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        if not self._admit(writer):
            writer.write(_response(503, "too many connections", close=True))
            writer.transport.close()
            return
        conn = self._conns[writer] = _Conn(writer, time.monotonic())
        peer = writer.get_extra_info("peername")
        try:
            while True:
                conn.idle_since = time.monotonic()
                head = await self._head(reader, writer)
                conn.idle_since = None
                if head is None:
                    return
                keep = await self._request(head, reader, writer, peer)
                if not keep:
                    return
        except _Close:
            pass
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            log.debug("%s: connection ended: %s", peer, type(e).__name__)
        except Exception:
            log.exception("resource server: request from %s failed", peer)
        finally:
            self._conns.pop(writer, None)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # a client that does not read gets nothing more
            else:
                writer.transport.close()

    async def _head(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                    ) -> bytes | None:
        """The next request's head, or None when the client is done (or too slow)."""
        try:
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.head_timeout)
        except asyncio.IncompleteReadError:
            return None  # closed between requests
        except asyncio.TimeoutError:
            return None  # idle too long, or too slow to send a head
        except asyncio.LimitOverrunError:
            await self._send(writer, _response(431, "request head too large", close=True))
            return None

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.io_timeout)

    # ------------------------------------------------------------------ requests
    async def _request(self, head: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, peer: object) -> bool:
        """Answer one request; whether the connection may carry another."""
        line, _, rest = head.partition(b"\r\n")
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._send(writer, _response(400, "bad request line", close=True))
            return False
        method, target, version = parts
        try:
            headers = http.client.parse_headers(io.BytesIO(rest))
        except http.client.HTTPException:
            await self._send(writer, _response(400, "bad headers", close=True))
            return False
        connection = (headers.get("Connection") or "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        status, keep = await self._route(method, target, headers, reader, writer, keep)
        log.debug("%s %s %s %s", peer, method, urlsplit(target).path[:100], status)
        return keep

    def _authorised(self, headers: http.client.HTTPMessage) -> bool:
        given = (headers.get("Authorization") or "").encode("utf-8", "replace")
        return hmac.compare_digest(given, self._token)

    def _refused(self) -> None:
        with self._stats_lock:
            self._stats.refused += 1

    async def _answer(self, writer: asyncio.StreamWriter, status: int, text: str,
                      keep: bool, head_only: bool = False) -> tuple[int, bool]:
        await self._send(writer, _response(status, text, close=not keep, head_only=head_only))
        return status, keep

    async def _route(self, method: str, target: str, headers: http.client.HTTPMessage,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bool
                     ) -> tuple[int, bool]:
        """(status, whether the connection may carry another request: not after an
        answer that left a request body unread)."""
        path = urlsplit(target).path
        if ".." in path or ".." in unquote(path) or "\\" in unquote(path):
            self._refused()
            return await self._answer(writer, 400, "path refused", False)
        has_body = "Content-Length" in headers or "Transfer-Encoding" in headers
        if method in ("GET", "HEAD"):
            if has_body and headers.get("Content-Length") != "0":
                return await self._answer(writer, 400, "unexpected body", False)
            return await self._get(path, headers, writer, keep, method == "HEAD")
        if method == "PUT":
            return await self._put(path, headers, reader, writer, keep)
        return await self._answer(writer, 405, "method not allowed", keep and not has_body)

    async def _get(self, path: str, headers: http.client.HTTPMessage,
                   writer: asyncio.StreamWriter, keep: bool, head_only: bool
                   ) -> tuple[int, bool]:
        if path == "/health":
            return await self._answer(writer, 200, "ok", keep, head_only)
        if m := _PUBLIC.fullmatch(path):
            digest = m.group(1)
            if not self.store.is_public(digest):
                return await self._answer(writer, 404, "no such public resource", keep,
                                          head_only)
        elif m := _BLOB.fullmatch(path):
            if not self._authorised(headers):
                self._refused()
                return await self._answer(writer, 401, "a valid bearer token is required",
                                          keep, head_only)
            digest = m.group(1)
        else:
            return await self._answer(writer, 404, "not found", keep, head_only)
        blob = self.store.blob_path(digest)
        try:
            f = open(blob, "rb") if blob is not None else None  # noqa: SIM115
        except OSError:
            f = None
        if f is None:
            return await self._answer(writer, 404, "no such resource", keep, head_only)
        with f:
            size = f.seek(0, 2)
            await self._send(writer, _head(200, size, "application/octet-stream",
                                           close=not keep))
            if head_only:
                return 200, keep
            loop = asyncio.get_running_loop()
            offset = 0
            while offset < size:
                count = min(_SEND_CHUNK, size - offset)
                if writer.transport.is_closing():
                    raise _Close  # the client hung up
                try:
                    # No fallback: the native call fails at its first write only when the
                    # peer is gone, and asyncio's fallback copy can then wait for ever on
                    # a transport whose reading it paused (so it never sees the reset).
                    offset += await asyncio.wait_for(
                        loop.sendfile(writer.transport, f, offset, count, fallback=False),
                        self.io_timeout)
                except asyncio.SendfileNotAvailableError:
                    raise _Close from None  # the client reset the connection
                except RuntimeError:  # "Transport is closing": the client hung up
                    if writer.transport.is_closing():
                        raise _Close from None
                    raise
        with self._stats_lock:
            self._stats.sent(digest, size)
        return 200, keep

    async def _put(self, path: str, headers: http.client.HTTPMessage,
                   reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bool
                   ) -> tuple[int, bool]:
        m = _RESULT.fullmatch(path)
        log_name = m_log.group(1) if (m_log := _LOG.fullmatch(path)) else None
        if m is None and (log_name is None or self.log_dir is None):
            return await self._answer(writer, 404, "not found", False)
        if not self._authorised(headers):
            self._refused()
            return await self._answer(writer, 401, "a valid bearer token is required", False)
        if "Transfer-Encoding" in headers:
            return await self._answer(writer, 411, "Content-Length required (no chunked "
                                      "bodies)", False)
        text = headers.get("Content-Length") or ""
        if not _LENGTH.fullmatch(text) or len(headers.get_all("Content-Length") or []) > 1:
            self._refused()
            return await self._answer(writer, 411 if not text else 400,
                                      "Content-Length must be one whole number of bytes",
                                      False)
        length = int(text)
        if m is None:
            assert log_name is not None and self.log_dir is not None
            return await self._put_log(log_name, self.log_dir, length, reader, writer, keep)
        try:
            upload = self.store.receive_result(m.group(1), length)
        except ResourceTooLarge as e:
            self._refused()
            return await self._answer(writer, 413, str(e), False)  # the body stays unread
        except UnexpectedResult as e:
            self._refused()
            return await self._answer(writer, 404, str(e), False)
        with upload:
            left = length
            while left > 0:
                chunk = await asyncio.wait_for(reader.read(min(_CHUNK, left)),
                                               self.io_timeout)
                if not chunk:
                    raise _Close  # the client went away; the result may come again
                upload.write(chunk)
                left -= len(chunk)
            upload.commit()
        with self._stats_lock:
            self._stats.results += 1
        return await self._answer(writer, 201, "stored", keep)


    async def _put_log(self, name: str, log_dir: str, length: int,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       keep: bool) -> tuple[int, bool]:
        """A job's log into ``log_dir`` (whole or not at all: renamed into place)."""
        if length > self.max_log_size:
            self._refused()
            return await self._answer(writer, 413, f"a log of {length} bytes is over the "
                                      f"limit of {self.max_log_size}", False)
        target = os.path.join(log_dir, name)
        part = f"{target}.part-{secrets.token_hex(4)}"
        try:
            with open(part, "wb") as f:
                left = length
                while left > 0:
                    chunk = await asyncio.wait_for(reader.read(min(_CHUNK, left)),
                                                   self.io_timeout)
                    if not chunk:
                        raise _Close  # the client went away; the log may come again
                    f.write(chunk)
                    left -= len(chunk)
            os.replace(part, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(part)
        return await self._answer(writer, 201, "stored", keep)


def _head(status: int, length: int, content_type: str, *, close: bool,
          extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: mesobatch-resources\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n{extra}"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def _response(status: int, text: str, *, close: bool, head_only: bool = False) -> bytes:
    body = (text + "\n").encode()
    extra = 'WWW-Authenticate: Bearer realm="mesobatch"\r\n' if status == 401 else ""
    return _head(status, len(body), "text/plain; charset=utf-8", close=close,
                 extra=extra) + (b"" if head_only else body)
