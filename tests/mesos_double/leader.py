"""Where agents find the leading master.

Today the leader is always the in-process master; a ZooKeeper detector (``json.info_`` znodes,
smallest sequence wins) can implement the same interface later without touching the agents.
"""

from __future__ import annotations

from typing import Protocol


class LeaderDetector(Protocol):
    def leader(self) -> tuple[str, int] | None:
        """The leading master's ``(host, port)``, or None while no leader is known."""
        ...


class StaticLeader:
    """A detector that always names one master (standalone mode)."""

    def __init__(self, host: str, port: int) -> None:
        self.address: tuple[str, int] | None = (host, port)

    def leader(self) -> tuple[str, int] | None:
        return self.address
