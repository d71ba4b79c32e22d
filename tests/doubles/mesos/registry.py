"""The master's registry (``--registry``): the agents it admitted and those it marked unreachable.

Mesos 1.11 keeps a ``Registry`` (src/master/registry.proto: admitted ``slaves`` with their drain
info and deactivation, ``unreachable`` ids with the time they were marked, ``gone``, maintenance
``schedules``...) in the replicated log shared by the masters (``--registry=replicated_log``, the
default), or in memory (``--registry=in_memory``, lost with the master). A master that starts
or is elected recovers it (``Master::_recover``): admitted agents become *recovered* agents,
known but not registered, until they re-register or ``--agent_reregister_timeout`` (10 min)
marks them unreachable (``Master::recoveredSlavesTimeout``).

The double's registry holds the same facts as JSON (agents keep their whole AgentInfo, the
unreachable ones too, so that a restarted master can describe them). In one process it lives in
a ``MemoryStore`` that outlives master restarts; with ZooKeeper it is the data of the znode
``<path>/log_replicas``, where a real replicated-log cluster keeps its replica group, so that a
master elected in another process recovers what the dead leader wrote.
"""

from __future__ import annotations

import copy
from typing import Protocol

from .wire import JsonDict

IN_MEMORY = "in_memory"
REPLICATED_LOG = "replicated_log"
KINDS = (IN_MEMORY, REPLICATED_LOG)


class RegistryStore(Protocol):
    """Where a ``replicated_log`` registry survives the master."""

    async def load(self) -> JsonDict | None:
        """The last registry saved (None: nothing yet)."""
        ...

    def save(self, registry: JsonDict) -> None:
        """Replace the registry (fire and forget; only the leading master writes)."""
        ...


class MemoryStore:
    """A registry kept by the process, across restarts of its master."""

    def __init__(self) -> None:
        self.data: JsonDict | None = None
        self.writes = 0

    async def load(self) -> JsonDict | None:
        return copy.deepcopy(self.data)

    def save(self, registry: JsonDict) -> None:
        self.data = copy.deepcopy(registry)
        self.writes += 1


def empty() -> JsonDict:
    return {"agents": [], "unreachable": []}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"registry must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind
