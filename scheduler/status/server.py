"""The HTTP server of the status page, /api/status and /metrics (threads of its own)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .metrics import CONTENT_TYPE_LATEST
from .page import render_page
from .recorder import Recorder
from .snapshot import Snapshot

log = logging.getLogger(__name__)


class Bodies:
    """The page and the JSON document of the latest snapshot, each made once: clients
    within a snapshot's life (half a second) get the same bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[str, tuple[Snapshot, bytes]] = {}

    def page(self, snap: Snapshot) -> bytes:
        return self._get("page", snap)

    def json(self, snap: Snapshot) -> bytes:
        return self._get("json", snap)

    def _get(self, kind: str, snap: Snapshot) -> bytes:
        with self._lock:
            made = self._made.get(kind)
            if made is not None and made[0] is snap:
                return made[1]
            body = (render_page(snap) if kind == "page"
                    else json.dumps(snap.to_json(), separators=(",", ":"))).encode()
            self._made[kind] = (snap, body)
            return body


class StatusServer:
    """Serves one recorder's snapshots on ``address``:``port`` (0: a free port)."""

    def __init__(self, recorder: Recorder, address: str = "127.0.0.1", port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"recorder": recorder, "bodies": Bodies()})
        try:
            self._server = ThreadingHTTPServer((address, port), handler)
        except OSError as e:
            raise OSError(e.errno, f"cannot serve the status page on {address}:{port}: "
                          f"{e.strerror}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.5},
                                        name="mesobatch-status-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The page's address; a wildcard bind is named by this host's name."""
        host = str(self._server.server_address[0])
        if host in ("0.0.0.0", "::", ""):
            import socket  # noqa: PLC0415

            host = socket.getfqdn()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    recorder: Recorder
    bodies: Bodies
    server_version = "mesobatch-status"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8",
                           self.bodies.page(self.recorder.snapshot()))
            elif path == "/api/status":
                self._send(200, "application/json",
                           self.bodies.json(self.recorder.snapshot()))
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, self.recorder.metrics.exposition())
            else:
                self._send(404, "text/plain; charset=utf-8",
                           b"not found: try /, /api/status or /metrics\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            log.exception("status page request %s", path)
            self._send(500, "text/plain; charset=utf-8", b"internal error\n")

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("status page: " + format, *args)
