"""The scheduler's resource server: blobs out to the nodes, function results back in.

    GET  /blobs/<sha256>               a blob                     bearer token
    GET  /public/<sha256>/<file name>  a public blob (the bundle) no token
    PUT  /results/<32 hex digits>      a function job's outcome   bearer token
    GET  /health                       "ok" (for check-agent)     no token

The token is per framework and reaches the executor inside its tasks' TaskInfo.data,
never the agent's command line or environment. A path holding ``..`` (raw or encoded)
is refused outright; any other path is only ever matched against the patterns above,
so nothing outside the store can be named. Uploads are refused over the store's size
limit, before their body is read.
"""

from __future__ import annotations

import hmac
import http.server
import logging
import re
import shutil
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .store import ResourceStore, ResourceTooLarge

log = logging.getLogger(__name__)

_BLOB = re.compile(r"/blobs/([0-9a-f]{64})")
_PUBLIC = re.compile(r"/public/([0-9a-f]{64})/[A-Za-z0-9._-]+")
_RESULT = re.compile(r"/results/([0-9a-f]{32})")


@dataclass
class TransferStats:
    """Completed blob transfers and bytes sent, per sha256."""

    transfers: dict[str, int] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    results: int = 0

    def sent(self, digest: str, size: int) -> None:
        self.transfers[digest] = self.transfers.get(digest, 0) + 1
        self.bytes_sent[digest] = self.bytes_sent.get(digest, 0) + size


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "mesobatch-resources"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ helpers
    def _answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="mesobatch"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _path(self) -> str | None:
        """The request's path, or None (answered) if it tries to climb out."""
        path = urlsplit(self.path).path
        if ".." in path or ".." in unquote(path) or "\\" in unquote(path):
            self._refuse(400, "path refused")
            return None
        return path

    def _authorised(self) -> bool:
        expected = f"Bearer {self.server.token}".encode()
        given = self.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return True
        self._refuse(401, "a valid bearer token is required")
        return False

    def _refuse(self, status: int, text: str) -> None:
        with self.server.stats_lock:
            self.server.stats.refused += 1
        self._answer(status, text)

    # ------------------------------------------------------------------ methods
    def do_GET(self) -> None:
        path = self._path()
        if path is None:
            return
        if path == "/health":
            self._answer(200, "ok")
            return
        store = self.server.store
        if m := _PUBLIC.fullmatch(path):
            digest = m.group(1)
            if not store.is_public(digest):
                self._answer(404, "no such public resource")
                return
        elif m := _BLOB.fullmatch(path):
            if not self._authorised():
                return
            digest = m.group(1)
        else:
            self._answer(404, "not found")
            return
        blob = store.blob_path(digest)
        if blob is None:
            self._answer(404, "no such resource")
            return
        with open(blob, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            shutil.copyfileobj(f, self.wfile, 1 << 20)
        with self.server.stats_lock:
            self.server.stats.sent(digest, size)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        path = self._path()
        if path is None:
            return
        m = _RESULT.fullmatch(path)
        if m is None:
            self._answer(404, "not found")
            return
        if not self._authorised():
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, "Content-Length required")
            return
        try:
            self.server.store.write_result(m.group(1), self.rfile, length)
        except ResourceTooLarge as e:
            self.close_connection = True  # the body stays unread
            self._refuse(413, str(e))
            return
        except (OSError, EOFError) as e:
            self.close_connection = True
            self._answer(400, f"result not received: {e}")
            return
        with self.server.stats_lock:
            self.server.stats.results += 1
        self._answer(201, "stored")

    def do_POST(self) -> None:
        self._answer(405, "method not allowed")

    do_DELETE = do_POST


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    store: ResourceStore
    token: str
    stats: TransferStats
    stats_lock: threading.Lock


class ResourceServer:
    """Serves a store over HTTP on a port of its own, from a thread of its own."""

    def __init__(self, store: ResourceStore, token: str, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if not token:
            raise ValueError("the resource server needs a token")
        self._httpd = _Server((host, port), _Handler)
        self._httpd.store = store
        self._httpd.token = token
        self._httpd.stats = TransferStats()
        self._httpd.stats_lock = threading.Lock()
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                         kwargs={"poll_interval": 0.2},
                                         name="mesobatch-resources", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def stats(self) -> TransferStats:
        with self._httpd.stats_lock:
            s = self._httpd.stats
            return TransferStats(dict(s.transfers), dict(s.bytes_sent), s.refused, s.results)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
