"""One kept-alive HTTP/1.1 connection for calls: requests written whole, answers parsed
by hand, several calls in flight at once (pipelined; Mesos's libprocess answers them in
order).

http.client builds each request from a header dict and parses every answer's headers
with the email package, on a fresh file object: about as much CPU as the rest of a
Mesos call. The calls' answers are small (202 and no body, or an error text), so a few
lines do it here.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Sequence

#: refuse answer heads longer than this (a broken server would otherwise eat memory)
MAX_HEAD = 64 * 1024


class ConnectionLost(Exception):
    """The connection ended or broke before a whole answer came."""


def host_and_port(netloc: str, default_port: int) -> tuple[str, int]:
    """"host:port", "[v6]:port" or a bare host -> (host, port)."""
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    if port and not port.isdigit():
        raise ConnectionLost(f"bad port in {netloc!r}")
    return host, int(port) if port else default_port


class CallConnection:
    """A connection to one server; not thread-safe (one per sending thread)."""

    def __init__(self, scheme: str, netloc: str, timeout: float | None,
                 context: ssl.SSLContext | None) -> None:
        host, port = host_and_port(netloc, 443 if scheme == "https" else 80)
        sock = socket.create_connection((host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                assert context is not None
                sock = context.wrap_socket(sock, server_hostname=host)
            elif timeout is not None:
                # The kernel keeps the timeout: a socket with a Python timeout polls
                # before every send and receive, a system call more each.
                sock.settimeout(None)
                seconds = int(timeout)
                limit = struct.pack("ll", seconds, int((timeout - seconds) * 1e6))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        except BaseException:
            sock.close()
            raise
        self.sock: socket.socket | None = sock
        self.scheme = scheme
        self.netloc = netloc
        self._buf = bytearray()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionLost("connection closed")
        try:
            self.sock.sendall(data)
        except BlockingIOError:  # SO_SNDTIMEO
            raise ConnectionLost("timed out") from None

    def _fill(self) -> None:
        if self.sock is None:
            raise ConnectionLost("connection closed")
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:  # SO_RCVTIMEO
            raise ConnectionLost("timed out") from None
        if not data:
            raise ConnectionLost("the server closed the connection")
        self._buf += data

    def read_answer(self) -> tuple[int, dict[str, str], bytes, bool]:
        """The next answer: (status, headers, body, whether the server will close)."""
        while True:
            status, headers, framing = self._read_head()
            if not 100 <= status < 200:
                break
        connection = framing.get("connection", "").lower()
        will_close = connection == "close" or (framing["version"] == "HTTP/1.0"
                                               and connection != "keep-alive")
        body = self._read_body(status, framing)
        if body is None:  # delimited by the end of the connection
            while True:
                try:
                    self._fill()
                except ConnectionLost:
                    break
            body, will_close = bytes(self._buf), True
            self._buf.clear()
        return status, headers, body, will_close

    def _read_head(self) -> tuple[int, dict[str, str], dict[str, str]]:
        """(status, headers as sent, the framing headers by lower-case name)."""
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > MAX_HEAD:
                raise ConnectionLost("answer head too long")
            self._fill()
        lines = buf[:end].decode("latin-1").split("\r\n")
        del buf[:end + 4]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ConnectionLost(f"not an HTTP answer: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        framing = {"version": parts[0]}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            headers[name] = value
            low = name.lower()
            if low in _FRAMING:
                framing[low] = value
        return int(parts[1]), headers, framing

    def _read_body(self, status: int, framing: dict[str, str]) -> bytes | None:
        buf = self._buf
        if status in (204, 304):
            return b""
        if "chunked" in framing.get("transfer-encoding", "").lower():
            return self._read_chunks()
        length = framing.get("content-length")
        if length is None:
            return None
        if not length.isdigit():
            raise ConnectionLost(f"bad Content-Length {length[:40]!r}")
        n = int(length)
        while len(buf) < n:
            self._fill()
        body = bytes(buf[:n])
        del buf[:n]
        return body

    def _read_chunks(self) -> bytes:
        buf = self._buf
        body = bytearray()
        while True:
            while (nl := buf.find(b"\r\n")) < 0:
                if len(buf) > MAX_HEAD:
                    raise ConnectionLost("chunk size line too long")
                self._fill()
            size_text = bytes(buf[:nl]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ConnectionLost(f"bad chunk size {size_text[:20]!r}") from None
            del buf[:nl + 2]
            if size == 0:  # the last chunk, then trailers up to an empty line
                while (end := buf.find(b"\r\n")) != 0:
                    if end > 0:
                        del buf[:end + 2]
                    else:
                        self._fill()
                del buf[:2]
                return bytes(body)
            while len(buf) < size + 2:
                self._fill()
            body += buf[:size]
            del buf[:size + 2]

_FRAMING = frozenset(("connection", "content-length", "transfer-encoding"))


def request(method: str, path: str, netloc: str, head: str, body: bytes) -> bytes:
    """A whole request: ``head`` holds the header lines (each ending in CRLF) beside
    Host and Content-Length."""
    return (f"{method} {path} HTTP/1.1\r\nHost: {netloc}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


def header_lines(headers: Sequence[tuple[str, str]]) -> str:
    """Header lines for ``request``; a value that could end the line early is refused."""
    out = []
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} holds a line break or a colon in its name")
        out.append(f"{name}: {value}\r\n")
    return "".join(out)


class Dechunker:
    """The payload of a chunked body, from its bytes in any pieces (a stream's events
    are read this way: http.client's chunked reading costs more than the events'
    own decoding)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # bytes of the current chunk still to come
        self._crlf = False  # the CRLF after a chunk's data is next
        self._trailers = False  # after the last chunk: trailer lines up to an empty one
        self.done = False  #: the body ended properly

    def feed(self, data: bytes) -> bytes:
        """Add bytes; the payload they complete. ValueError if they are not chunked."""
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        while not self.done:
            if self._left:
                take = min(self._left, len(buf) - pos)
                out += buf[pos:pos + take]
                pos += take
                self._left -= take
                if self._left:
                    break
                self._crlf = True
            if self._crlf:
                if len(buf) - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise ValueError("a chunk's data is not followed by CRLF")
                pos += 2
                self._crlf = False
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if len(buf) - pos > 4096:
                    raise ValueError("chunk size line too long")
                break
            line = bytes(buf[pos:nl])
            pos = nl + 2
            if self._trailers:
                self.done = not line
                continue
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ValueError(f"bad chunk size {size_text[:20]!r}") from None
            if size < 0:
                raise ValueError(f"bad chunk size {size_text[:20]!r}")
            if size == 0:
                self._trailers = True
            self._left = size
        del buf[:pos]
        return bytes(out)
