"""Where the leading Mesos master is: a fixed address, or (zk://) ZooKeeper."""

from __future__ import annotations

import re
from collections.abc import Callable


class MasterAddressError(ValueError):
    """A --mesosMaster value that is not an address we understand."""


class MasterDetector:
    """Tells the driver the leading master's base URL and when it changes."""

    def start(self, on_change: Callable[[], None]) -> None:
        """Begin watching; call ``on_change`` whenever the leader changes."""

    def stop(self) -> None: ...

    def leader(self) -> str | None:
        """``scheme://host:port`` of the leading master, or None when there is none."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where we look, for messages (never with credentials)."""
        raise NotImplementedError


_HOSTPORT = re.compile(r"^(?:(https?)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?/?$")


class StaticMaster(MasterDetector):
    """``host:port``, ``http://host:port`` or ``https://host:port`` (port default 5050).

    With several masters behind one address, a non-leader answers 307 and the driver
    follows it to the leader."""

    def __init__(self, address: str) -> None:
        m = _HOSTPORT.match(address.strip())
        if not m:
            raise MasterAddressError(
                f"invalid Mesos master address {address!r}: expected host:port, "
                "http(s)://host:port or zk://host:2181[,host:2181]/path")
        scheme, host, port = m.group(1) or "http", m.group(2), m.group(3) or "5050"
        if not 0 < int(port) < 65536:
            raise MasterAddressError(f"invalid port {port} in Mesos master address {address!r}")
        self.url = f"{scheme}://{host}:{port}"

    def leader(self) -> str | None:
        return self.url

    def describe(self) -> str:
        return self.url


def detector_for(address: str, *, tls: bool = False, zk_timeout: float = 10.0,
                 zk_credentials: str | None = None) -> MasterDetector:
    """The detector for a --mesosMaster value."""
    if address.startswith("zk://"):
        from .zookeeper import ZooKeeperMaster  # noqa: PLC0415  (kazoo loads only here)

        return ZooKeeperMaster(address, scheme="https" if tls else "http",
                               timeout=zk_timeout, credentials=zk_credentials)
    if tls and "://" not in address:
        address = f"https://{address}"
    return StaticMaster(address)
