"""How a backend's nodes reach the scheduler's store: two variants.

- ``SharedDirectoryService``: the nodes read the store's directory themselves (the local
  backend; HPC clusters whose nodes share a filesystem). Nothing is served.
- ``HttpResourceService``: the store behind the resource server (deploy/server.py), on
  a port of its own, with a per-framework bearer token (Mesos agents).

Either way a node learns where to fetch from as ``location`` (a directory, or an
http:// URL) plus ``token``, and checks every blob against its sha256.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import socket
import tempfile

from .server import ResourceServer, TransferStats
from .store import DEFAULT_MAX_SIZE, ResourceStore


class ResourceService:
    """A store, and how the nodes of one backend get at it."""

    location: str  #: a directory the nodes can read, or the server's base URL
    token: str = ""

    def __init__(self, store: ResourceStore) -> None:
        self.store = store

    def public_url(self, sha256: str, file_name: str) -> str:
        """A URL for a public blob (for the Mesos fetcher); only HTTP services have one."""
        raise NotImplementedError(f"{type(self).__name__} serves nothing over HTTP")

    def stats(self) -> TransferStats:
        return TransferStats()

    def close(self) -> None:
        self.store.remove()


class SharedDirectoryService(ResourceService):
    """The nodes read the store's directory directly (same machine, or shared FS)."""

    def __init__(self, store: ResourceStore) -> None:
        super().__init__(store)
        self.location = store.root


class HttpResourceService(ResourceService):
    """The store served over HTTP to nodes that hold the token."""

    def __init__(self, store: ResourceStore, host: str, port: int = 0,
                 bind: str | None = None) -> None:
        super().__init__(store)
        self.token = secrets.token_urlsafe(32)
        self.server = ResourceServer(store, self.token, bind or host, port)
        shown = f"[{host}]" if ":" in host else host
        self.location = f"http://{shown}:{self.server.port}"

    def public_url(self, sha256: str, file_name: str) -> str:
        return f"{self.location}/public/{sha256}/{file_name}"

    def stats(self) -> TransferStats:
        return self.server.stats()

    def close(self) -> None:
        self.server.close()
        super().close()


def ram_scratch_dir() -> str | None:
    """RAM-backed /dev/shm when there is one: creating a file there costs microseconds,
    on a busy disk up to a millisecond (see the README on logs), and a function call
    writes two."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def scratch_store(max_size: int = DEFAULT_MAX_SIZE, base: str | None = None,
                  size_option: str = "maxResourceSize") -> ResourceStore:
    """A store in a new directory, removed when its service closes."""
    root = tempfile.mkdtemp(prefix="mesobatch-resources-", dir=base)
    return ResourceStore(root, max_size=max_size, size_option=size_option)


def address_towards(host: str, port: int) -> str:
    """This machine's address on the route to ``host`` (what a node there can reach us
    on, when it is near the master). No packet is sent: a UDP connect only picks the
    route."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return host
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect(sockaddr)
            return str(s.getsockname()[0])
    except OSError:
        return socket.gethostname()
