"""The leading Mesos master, from ZooKeeper (kazoo).

Masters register as ephemeral sequential znodes ``json.info_<seq>`` under the path of
the ``zk://`` URL, holding their MasterInfo as JSON; the lowest sequence leads. We watch
the children and tell the driver whenever the leader changes (or there is none).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..log_secrets import credential_parts, hide_in_logs
from .master import MasterAddressError, MasterDetector

log = logging.getLogger(__name__)

_SEQ = re.compile(r"^json\.info_(\d+)$")


class ZooKeeperUnavailable(ConnectionError):
    """ZooKeeper did not answer in time (the message masks credentials)."""


@dataclass(frozen=True)
class ZkUrl:
    hosts: str  #: host:port[,host:port...]
    path: str  #: absolute, the chroot included
    credentials: str | None  #: "user:password" for digest auth

    def masked(self) -> str:
        who = "***@" if self.credentials else ""
        return f"zk://{who}{self.hosts}{self.path}"


def parse_zk_url(url: str) -> ZkUrl:
    """``zk://[user:pass@]host1:2181,host2:2181[/chroot]/path`` (credentials end at the
    last '@'; the path starts at the first '/' after the servers)."""
    if not url.startswith("zk://"):
        raise MasterAddressError(f"not a zk:// URL: {url!r}")
    rest = url[len("zk://"):]
    credentials = None
    at = rest.rfind("@")
    slash = rest.find("/", at + 1)
    if at >= 0:
        credentials, rest = rest[:at], rest[at + 1:]
        slash = rest.find("/")
    shown = ZkUrl(rest[:slash] if slash >= 0 else rest, "", credentials).masked()
    if slash < 0 or rest[slash:].rstrip("/") == "":
        raise MasterAddressError(
            f"invalid ZooKeeper URL {shown}: expecting a path after the servers, e.g. "
            "zk://host:2181/mesos")
    hosts, path = rest[:slash], rest[slash:].rstrip("/")
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise MasterAddressError(f"invalid ZooKeeper server {host!r} in "
                                     f"{ZkUrl(hosts, path, credentials).masked()}: expected "
                                     "host:port")
    if credentials is not None and ":" not in credentials:
        raise MasterAddressError("invalid ZooKeeper credentials in zk:// URL: expected "
                                 "user:password before '@'")
    return ZkUrl(hosts, path, credentials)


def master_address(info: Mapping[str, Any]) -> tuple[str, int]:
    """Where a MasterInfo says the master listens: address.ip/port, else the pid
    (master@ip:port), else hostname and port, else the legacy uint32 ip."""
    address = info.get("address") or {}
    if address.get("ip") and address.get("port"):
        return str(address["ip"]), int(address["port"])
    pid = str(info.get("pid", ""))
    m = re.fullmatch(r"[^@]*@([^:]+):(\d+)", pid)
    if m:
        return m.group(1), int(m.group(2))
    port = int(info.get("port", 5050))
    if info.get("hostname"):
        return str(info["hostname"]), port
    if "ip" in info:
        # in_addr.s_addr (network-order bytes) read as a native uint32 by the master
        return socket.inet_ntoa(struct.pack("=I", int(info["ip"]))), port
    raise ValueError("MasterInfo has no address, pid, hostname or ip")


def leading_child(children: list[str]) -> str | None:
    """The member with the lowest sequence number; other nodes (log_replicas, legacy
    binary info_ nodes) are skipped."""
    numbered = [(int(m.group(1)), c) for c in children if (m := _SEQ.match(c))]
    return min(numbered)[1] if numbered else None


class ZooKeeperMaster(MasterDetector):
    def __init__(self, url: str, *, scheme: str = "http", timeout: float = 10.0,
                 credentials: str | None = None) -> None:
        self.url = parse_zk_url(url)
        self.scheme = scheme
        self.timeout = timeout
        self._credentials = credentials or self.url.credentials
        self._leader: str | None = None
        self._member: str | None = None
        self._lock = threading.Lock()
        self._on_change: Callable[[], None] = lambda: None
        self._client: Any = None
        self._watching = False

    def describe(self) -> str:
        return self.url.masked()

    def leader(self) -> str | None:
        with self._lock:
            return self._leader

    def start(self, on_change: Callable[[], None]) -> None:
        from kazoo.client import KazooClient  # noqa: PLC0415
        from kazoo.handlers.threading import KazooTimeoutError  # noqa: PLC0415

        self._on_change = on_change
        auth = [("digest", self._credentials)] if self._credentials else None
        # kazoo logs the digest Auth request, credentials included: its logger masks them
        logger = hide_in_logs("kazoo.client", *credential_parts(self._credentials or ""))
        client = KazooClient(hosts=self.url.hosts, timeout=10.0, auth_data=auth,
                             read_only=True, logger=logger)
        try:
            client.start(timeout=self.timeout)
        except KazooTimeoutError:
            client.close()
            raise ZooKeeperUnavailable(
                f"cannot reach ZooKeeper at {self.describe()} within {self.timeout:g} s"
            ) from None
        self._client = client
        # The path may not exist yet (no master has started): wait for it to appear.
        client.DataWatch(self.url.path, self._path_changed)

    def _path_changed(self, data: Any, stat: Any) -> None:
        if stat is None:
            self._set(None, None)
            self._watching = False
            return
        if not self._watching:
            self._watching = True
            self._client.ChildrenWatch(self.url.path, self._children_changed)

    def _children_changed(self, children: list[str]) -> bool | None:
        member = leading_child(children)
        if member is None:
            self._set(None, None)
            return None
        try:
            data, _ = self._client.get(f"{self.url.path}/{member}")
            host, port = master_address(json.loads(data.decode("utf-8")))
        except Exception as e:  # a member that vanished or wrote something odd
            log.warning("cannot read the leading master from %s/%s: %s", self.describe(),
                        member, e)
            return None
        self._set(member, f"{self.scheme}://{host}:{port}")
        return None

    def _set(self, member: str | None, leader: str | None) -> None:
        with self._lock:
            changed = leader != self._leader
            self._member, self._leader = member, leader
        if changed:
            log.info("leading Mesos master: %s", leader or "none")
            self._on_change()

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.stop()
            finally:
                client.close()
