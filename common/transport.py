"""HTTP for the Mesos v1 APIs: JSON calls and RecordIO event streams.

Calls go out on connections of http_calls.py (requests written whole, answers parsed
by hand, several in flight at once): a call costs a fraction of what http.client
(~100 µs of CPU) or urllib3 (~250 µs) takes, and calls are most of a scheduler's and
an executor's CPU per task. Streams use http.client. Standard library only, which keeps
the executor free of dependencies. Each thread keeps its own persistent connection per
endpoint.

Mesos compares Content-Type by exact string ("application/json"; a charset suffix
gets 415), answers 202 with an empty body to calls, and streams SUBSCRIBE events as
chunked RecordIO, each record one chunk.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .http_calls import CallConnection, ConnectionLost, Dechunker, header_lines, request
from .json_codec import decode, encode
from .recordio import RecordIOReader

JSON = "application/json"


class TransportError(Exception):
    """The request did not get an HTTP answer (connection refused, reset, timeout)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace").strip()




def _dropped(conn: CallConnection) -> bool:
    """Did the server close this idle keep-alive connection? (Then a request on it would
    fail without having been read, so it is safe to open a fresh one first.)"""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)  # an idle connection has nothing to read unless it was closed


class Transport:
    """Persistent HTTP/1.1 connections to Mesos endpoints (http or https)."""

    def __init__(self, *, ca_bundle: str | None = None, verify: bool = True,
                 authorization: str | None = None, timeout: float = 75.0,
                 maxsize: int = 4) -> None:
        self._context: ssl.SSLContext | None = None
        self._ssl_args = (ca_bundle, verify)
        self._auth = authorization
        self.timeout = timeout
        self._local = threading.local()
        self._heads: dict[tuple[tuple[str, str], ...], str] = {}  # header lines by extras

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            ca_bundle, verify = self._ssl_args
            context = ssl.create_default_context(cafile=ca_bundle)
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._context = context
        return self._context

    def _connect(self, scheme: str, netloc: str, timeout: float | None
                 ) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=timeout, context=self._ssl())
        return http.client.HTTPConnection(netloc, timeout=timeout)

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        h = {"Content-Type": JSON, "Accept": JSON}
        if self._auth:
            h["Authorization"] = self._auth
        if extra:
            h.update(extra)
        return h

    def _call_head(self, extra: Mapping[str, str] | None) -> str:
        key = tuple(extra.items()) if extra else ()
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 64:  # stream ids change with each subscription
                self._heads.clear()
            head = self._heads[key] = header_lines(list(self._headers(extra).items()))
        return head

    def _conn(self, url: str) -> tuple[CallConnection, str, dict[tuple[str, str],
                                                                  CallConnection]]:
        """This thread's kept connection to ``url``'s server (a fresh one if the server
        closed it), the path, and the thread's pool."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        pool: dict[tuple[str, str], CallConnection] = self._local.__dict__.setdefault(
            "calls", {})
        conn = pool.get(key)
        if conn is not None and _dropped(conn):
            conn.close()
            conn = None
        if conn is None:
            try:
                conn = CallConnection(parts.scheme, parts.netloc, self.timeout,
                                      self._ssl() if parts.scheme == "https" else None)
            except (OSError, ConnectionLost) as e:
                raise TransportError(str(e) or type(e).__name__) from e
            pool[key] = conn
        return conn, parts.path or "/", pool

    def post(self, url: str, body: Mapping[str, Any],
             headers: Mapping[str, str] | None = None) -> Answer:
        """One call; its whole answer. Raises TransportError if no answer came."""
        answers, error = self.post_many(url, [body], headers)
        if error is not None:
            raise TransportError(error)
        return answers[0]

    def post_many(self, url: str, bodies: Sequence[Mapping[str, Any]],
                  headers: Mapping[str, str] | None = None) -> tuple[list[Answer], str | None]:
        """Calls written at once on one connection, their answers read in order: the
        answers that came, and why the others did not (None if all came). A call
        without an answer may or may not have reached the server."""
        if not bodies:
            return [], None
        conn, path, pool = self._conn(url)
        head = self._call_head(headers)
        answers: list[Answer] = []
        will_close = False
        try:
            conn.send(b"".join(request("POST", path, conn.netloc, head, encode(body))
                               for body in bodies))
            for _ in bodies:
                status, answer_headers, data, will_close = conn.read_answer()
                answers.append(Answer(status, answer_headers, data))
                if will_close:
                    break
        except (OSError, ConnectionLost) as e:
            conn.close()
            pool.pop((conn.scheme, conn.netloc), None)
            return answers, str(e) or type(e).__name__
        if len(answers) < len(bodies) or will_close:
            conn.close()
            pool.pop((conn.scheme, conn.netloc), None)
        if len(answers) < len(bodies):
            return answers, "the server closed the connection"
        return answers, None

    def deliver(self, url: str, calls: Sequence[Mapping[str, Any]],
                on_answer: Callable[[Any, Answer], None],
                on_lost: Callable[[Any, str], None],
                headers: Mapping[str, str] | None = None,
                bodies: Sequence[Mapping[str, Any]] | None = None) -> None:
        """post_many() of ``calls`` (sent as ``bodies`` if given: the calls without
        what only we need), then ``on_answer(call, answer)`` for each call answered and
        ``on_lost(call, why)`` for each of the others, in order."""
        try:
            answers, error = self.post_many(url, calls if bodies is None else bodies, headers)
        except TransportError as e:
            answers, error = [], str(e)
        for call, answer in zip(calls, answers, strict=False):  # answers: a prefix
            on_answer(call, answer)
        for call in calls[len(answers):]:
            on_lost(call, error or "no answer")

    def stream(self, url: str, body: Mapping[str, Any],
               headers: Mapping[str, str] | None = None,
               read_timeout: float | None = None) -> EventStream:
        """Open a SUBSCRIBE stream on a connection of its own. Non-200 answers come
        back whole in ``answer``."""
        parts = urlsplit(url)
        conn = self._connect(parts.scheme, parts.netloc, 10.0)
        try:
            conn.request("POST", parts.path or "/", body=encode(body),
                         headers=self._headers(headers))
            if conn.sock is not None:
                conn.sock.settimeout(read_timeout)
            r = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise TransportError(str(e) or type(e).__name__) from e
        return EventStream(conn, r)

    def close(self) -> None:
        for conn in getattr(self._local, "calls", {}).values():
            conn.close()


def _ended(_: int) -> bytes:
    return b""


class EventStream:
    """A subscription: decoded events until the connection ends."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse
                 ) -> None:
        self._conn = conn
        self._sock = conn.sock
        self._r = response
        self.status = response.status
        self.headers: Mapping[str, str] = dict(response.getheaders())
        self.answer: Answer | None = None
        self._closing = threading.Lock()
        self._closed = False
        if self.status != 200:
            try:
                body = response.read()
            except (OSError, http.client.HTTPException):
                body = b""
            self.answer = Answer(self.status, self.headers, body)
            self.close()

    def events(self) -> Iterator[dict[str, Any]]:
        """Events in order. Ends when the server ends the stream; raises TransportError
        if the connection breaks or the read times out."""
        reader = RecordIOReader()
        # A chunked stream (as Mesos sends) is read raw and de-chunked here
        dechunker = Dechunker() if self._r.chunked else None
        read: Callable[[int], bytes] = (self._r.fp.read1 if dechunker is not None
                                        else self._r.read1)
        try:
            while True:
                data = read(65536)
                if not data:
                    if self._closed:
                        raise TransportError("stream closed")
                    if dechunker is not None and not dechunker.done:
                        raise TransportError("the stream was cut off")
                    return
                if dechunker is not None:
                    data = dechunker.feed(data)
                    if dechunker.done:
                        read = _ended
                for record in reader.feed(data):
                    yield decode(record)
        except (OSError, http.client.HTTPException, ValueError, RecursionError) as e:
            # RecursionError: JSON nested too deep to decode; the stream is unusable
            raise TransportError(str(e) or type(e).__name__) from e
        except AttributeError as e:  # closed from another thread under the read
            if not self._closed:
                raise
            raise TransportError("stream closed") from e

    def close(self) -> None:
        """Stop the stream; safe from another thread while events() blocks, and twice."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked elsewhere
        self._conn.close()
