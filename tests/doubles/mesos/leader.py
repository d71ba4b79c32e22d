"""Where agents find the leading master.

Standalone, the leader is always the in-process master (``StaticLeader``); with ``--zk`` it is
the member with the lowest ``json.info_`` sequence in ZooKeeper (``zk.ZooKeeperGroup``). Both
implement this interface, so the agents do not know which one they use.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class LeaderDetector(Protocol):
    @property
    def version(self) -> int:
        """Bumps each time a different master leads (or none does)."""
        ...

    def leader(self) -> tuple[str, int] | None:
        """The leading master's ``(host, port)``, or None while no leader is known."""
        ...

    def changed(self, version: int) -> asyncio.Future[None]:
        """A future done once the leader differs from the one at ``version``."""
        ...


class StaticLeader:
    """A detector that always names one master (standalone mode)."""

    version = 0

    def __init__(self, host: str, port: int) -> None:
        self.address: tuple[str, int] | None = (host, port)

    def leader(self) -> tuple[str, int] | None:
        return self.address

    def changed(self, version: int) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()  # never changes
