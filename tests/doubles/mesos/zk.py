"""ZooKeeper leader election the way Mesos masters do it (kazoo).

A double process holds one ZooKeeper session. Its master contends by creating an
EPHEMERAL|SEQUENTIAL ``json.info_<10 digits>`` znode under the path, holding its MasterInfo as
compact JSON with sorted keys (recording 07); the member with the lowest sequence leads.
Every process watches the children of the path, so the same object is also the detector its
agents use to find the leading master (``leader.LeaderDetector``).

kazoo runs its own threads; everything it reports is handed to the asyncio loop with
``call_soon_threadsafe``, and all state below is read and written on that loop only.

When the leading master dies without closing its session (kill -9), its znode stays until the
ZooKeeper server expires the session (``session_timeout``, 10 s in Mesos), and until then every
other process keeps naming the dead master as the leader (surprise 24).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .wire import JsonDict

log = logging.getLogger(__name__)

LABEL = "json.info"
# A replicated-log cluster's replica group lives here; the double keeps its registry in it.
REGISTRY_NODE = "log_replicas"


@dataclass(frozen=True)
class ZkUrl:
    """``zk://[user:password@]host1:port1,host2:port2/path``."""

    hosts: str
    path: str
    credentials: str | None = None

    @classmethod
    def parse(cls, url: str) -> ZkUrl:
        if not url.startswith("zk://"):
            raise ValueError(f"expecting a zk:// URL, got {mask(url)!r}")
        rest = url[len("zk://") :]
        credentials = None
        at = rest.rfind("@")
        if at >= 0:
            credentials, rest = rest[:at], rest[at + 1 :]
            if ":" not in credentials:
                raise ValueError("expecting user:password before '@' in the ZooKeeper URL")
        hosts, slash, path = rest.partition("/")
        path = "/" + path.rstrip("/")
        if not hosts or not slash or path == "/":
            raise ValueError(f"expecting a (chroot) path in {mask(url)!r}")
        return cls(hosts, path, credentials)

    def masked(self) -> str:
        who = "***@" if self.credentials else ""
        return f"zk://{who}{self.hosts}{self.path}"


def mask(url: str) -> str:
    """The URL with any credentials replaced by ``***``."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}***@{tail}" if sep else f"***@{tail}"


def znode_data(info: JsonDict) -> bytes:
    """MasterInfo as Mesos writes it to ZooKeeper: compact JSON with sorted keys.

    QUOTA_V2 renders as ``{"type": "QUOTA_V2"}`` here, unlike the v1 stream (surprise 6).
    """
    capabilities = [c if c else {"type": "QUOTA_V2"} for c in info.get("capabilities", [])]
    return json.dumps(
        {**info, "capabilities": capabilities}, sort_keys=True, separators=(",", ":")
    ).encode()


def sequence(child: str) -> int | None:
    """The member sequence of a child znode (``json.info_0000000003`` -> 3), None otherwise."""
    label, sep, number = child.rpartition("_")
    if not sep or not label or not number.isdigit():
        return None
    return int(number)


def leader_address(info: JsonDict) -> tuple[str, int] | None:
    """Where a MasterInfo says the master listens: address, then pid, then hostname + port."""
    address = info.get("address")
    if isinstance(address, dict) and address.get("ip") and address.get("port"):
        return str(address["ip"]), int(address["port"])
    pid = info.get("pid")
    if isinstance(pid, str) and "@" in pid:
        host, _, port = pid.rpartition("@")[2].rpartition(":")
        if host and port.isdigit():
            return host, int(port)
    if info.get("hostname") and info.get("port"):
        return str(info["hostname"]), int(info["port"])
    return None


class ZooKeeperGroup:
    """This process's ZooKeeper session: contender for its master, detector for its agents."""

    def __init__(
        self, url: str, session_timeout: float = 10.0, connect_timeout: float = 15.0
    ) -> None:
        self.url = ZkUrl.parse(url)
        self.session_timeout = session_timeout
        self.connect_timeout = connect_timeout
        self.version = 0  # bumps each time the leading member changes
        self.children: list[str] = []
        self.leader_node: str | None = None
        self.leader_info: JsonDict | None = None
        self.own_node: str | None = None
        self.own_info: JsonDict | None = None
        self.session_losses = 0
        # Called on the loop when the leader changes and when this member's znode is lost.
        self.on_change: Callable[[], None] = lambda: None
        self.on_candidacy_lost: Callable[[], None] = lambda: None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._data: dict[str, JsonDict | None] = {}
        self._fetching: str | None = None
        self._creating = False
        self._stopped = False
        self._leading_seen = False
        self._writer: ThreadPoolExecutor | None = None  # registry writes, one at a time, in order
        # The registry znode's version this master read or last wrote (-1: no znode yet);
        # None: it has not read the registry, so it may not write it.
        self._registry_version: int | None = None

    # -- detector ----------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """This process's master holds the lowest sequence."""
        return self._leading_seen

    def leader(self) -> tuple[str, int] | None:
        return leader_address(self.leader_info) if self.leader_info is not None else None

    def changed(self, version: int) -> asyncio.Future[None]:
        """A future done once the leading member differs from the one at ``version``."""
        loop = asyncio.get_running_loop()
        if version != self.version:
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        if self._waiter is None or self._waiter.done():
            self._waiter = loop.create_future()
        return self._waiter

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        from kazoo.client import KazooClient
        from kazoo.recipe.watchers import ChildrenWatch

        self._loop = asyncio.get_running_loop()
        auth = [("digest", self.url.credentials)] if self.url.credentials else None
        client = KazooClient(
            hosts=self.url.hosts,
            timeout=self.session_timeout,
            auth_data=auth,
            connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 2, "max_delay": 1.0},
            command_retry={"max_tries": 3, "delay": 0.05, "backoff": 2, "max_delay": 1.0},
        )
        self._client = client
        loop = self._loop

        def connect() -> None:
            client.start(timeout=self.connect_timeout)
            client.ensure_path(self.url.path, acl=self._acl())
            client.add_listener(self._state_listener)
            ChildrenWatch(client, self.url.path, self._children_listener)

        try:
            await loop.run_in_executor(None, connect)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await loop.run_in_executor(None, self._close_client)
            raise RuntimeError(
                f"cannot reach ZooKeeper at {self.url.masked()} within "
                f"{self.connect_timeout:g} s: {type(exc).__name__}"
            ) from None

    async def stop(self) -> None:
        """Close the session: this member's znode goes at once (a clean shutdown)."""
        self._stopped = True
        if self._client is not None and self._loop is not None:
            await self._loop.run_in_executor(None, self._close_client)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()

    # -- registry (--registry=replicated_log) ------------------------------------------------------
    async def load_registry(self) -> JsonDict | None:
        """The registry the leading master last wrote (None: none yet)."""
        from kazoo.exceptions import NoNodeError

        assert self._loop is not None and self._client is not None
        path = f"{self.url.path}/{REGISTRY_NODE}"
        await self.flush_registry()  # our own writes first
        try:
            data, stat = await self._loop.run_in_executor(None, self._client.get, path)
        except NoNodeError:
            self._registry_version = -1
            return None
        self._registry_version = stat.version
        loaded: JsonDict | None = json.loads(data) if data else None
        return loaded

    async def flush_registry(self) -> None:
        """Wait until the registry writes queued so far have landed (or failed)."""
        if self._writer is not None and self._loop is not None:
            await self._loop.run_in_executor(self._writer, lambda: None)

    def save_registry(self, registry: JsonDict) -> None:
        """Write the registry in the background (in order with earlier writes).

        Writes are conditional on the version this master read or wrote last, like the
        replicated log refusing a deposed leader's writes: a master that lost leadership
        without knowing it yet cannot overwrite its successor's registry.
        """
        if self._client is None or self._stopped:
            return
        from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError

        client = self._client
        path = f"{self.url.path}/{REGISTRY_NODE}"
        data = json.dumps(registry, sort_keys=True, separators=(",", ":")).encode()

        def write() -> None:
            version = self._registry_version
            if version is None:
                return
            try:
                if version < 0:
                    client.create(path, data, acl=self._acl(), makepath=True)
                    self._registry_version = 0
                else:
                    self._registry_version = client.set(path, data, version=version).version
            except (BadVersionError, NodeExistsError):
                self._registry_version = None
                log.error(
                    "the registry in %s was written by another master; this one no longer "
                    "writes it", self.url.masked(),
                )
            except KazooException as exc:
                log.warning("writing the registry to %s failed: %s", self.url.masked(), exc)

        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zk-registry")
        self._writer.submit(write)

    def _close_client(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)  # a clean stop lands its last registry write
            self._writer = None
        client = self._client
        if client is None:
            return
        with contextlib.suppress(Exception):
            client.stop()
        with contextlib.suppress(Exception):
            client.close()

    def _acl(self) -> list[Any] | None:
        """With credentials, nodes are world-readable and the creator's (like Mesos)."""
        if not self.url.credentials:
            return None
        from kazoo.security import CREATOR_ALL_ACL, READ_ACL_UNSAFE

        return [*READ_ACL_UNSAFE, *CREATOR_ALL_ACL]

    # -- contender -------------------------------------------------------------------------------
    async def contend(self, info: JsonDict) -> None:
        """Offer this master: an ephemeral sequential znode holding ``info``."""
        self.own_info = info
        self.own_node = None
        await self._create()

    async def withdraw(self) -> None:
        """Leave the group (the master is going down): delete this member's znode."""
        own_id = self.own_info.get("id") if self.own_info is not None else None
        nodes = {self.own_node} | {n for n, i in self._data.items() if i and i.get("id") == own_id}
        self.own_node, self.own_info = None, None
        if self._client is None:
            return
        from kazoo.exceptions import KazooException

        assert self._loop is not None
        for node in nodes - {None}:
            with contextlib.suppress(KazooException):
                await self._loop.run_in_executor(
                    None, self._client.delete, f"{self.url.path}/{node}"
                )

    async def _create(self) -> None:
        if self._creating or self.own_info is None or self._stopped:
            return
        from kazoo.exceptions import KazooException

        assert self._loop is not None
        info = self.own_info
        self._creating = True
        try:
            created: str = await self._loop.run_in_executor(
                None,
                lambda: self._client.create(
                    f"{self.url.path}/{LABEL}_",
                    znode_data(info),
                    acl=self._acl(),
                    ephemeral=True,
                    sequence=True,
                    makepath=True,
                ),
            )
        except KazooException as exc:
            log.warning("contending in %s failed (%s); retrying", self.url.masked(),
                        type(exc).__name__)
            self._loop.call_later(0.5, self._retry_create)
            return
        finally:
            self._creating = False
        if self.own_info is not info:
            return  # withdrawn meanwhile
        self.own_node = created.rsplit("/", 1)[1]
        self._elect(self.children, force=True)

    def _retry_create(self) -> None:
        if self.own_node is None and self.own_info is not None and not self._stopped:
            asyncio.get_running_loop().create_task(self._create())

    # -- kazoo callbacks (kazoo threads) ---------------------------------------------------------
    def _children_listener(self, children: list[str]) -> bool | None:
        if self._stopped or self._loop is None:
            return False
        self._loop.call_soon_threadsafe(self._elect, list(children), False)
        return None

    def _state_listener(self, state: str) -> None:
        if self._loop is not None and not self._stopped:
            self._loop.call_soon_threadsafe(self._session_state, state)

    # -- on the loop ------------------------------------------------------------------------------
    def _session_state(self, state: str) -> None:
        if state == "LOST":
            # The session expired: our ephemeral znode is gone with it.
            self.session_losses += 1
            if self.own_node is not None:
                self.own_node = None
                self.on_candidacy_lost()
        elif state == "CONNECTED":
            self._retry_create()

    def _elect(self, children: list[str], force: bool) -> None:
        if self._stopped:
            return
        self.children = children
        members = self._members(children)
        if not members:
            self._set_leader(None, None)
            return
        node = members[0][1]
        if node == self.leader_node and not force:
            return
        if node == self.own_node:
            self._set_leader(node, self.own_info)
        elif node in self._data:
            self._set_leader(node, self._data[node])
        elif self._fetching != node:
            self._fetching = node
            self._client.get_async(f"{self.url.path}/{node}").rawlink(
                lambda result: self._loop.call_soon_threadsafe(  # type: ignore[union-attr]
                    self._fetched, node, result
                )
            )

    def _fetched(self, node: str, result: Any) -> None:
        if self._fetching == node:
            self._fetching = None
        try:
            data, _ = result.get_nowait()
        except Exception:  # the node went away (NoNodeError) or the connection dropped
            if not self._stopped and self._loop is not None:
                self._loop.call_later(0.2, lambda: self._elect(self.children, True))
            return
        info: JsonDict | None = None
        label = node.rpartition("_")[0]
        if label == LABEL:
            try:
                info = json.loads(data)
            except ValueError:
                log.warning("leading znode %s holds no JSON MasterInfo", node)
        else:
            log.warning("leading znode %s is not a %s_ member", node, LABEL)
        self._data[node] = info
        if (
            info is not None
            and self.own_info is not None
            and self.own_node is None
            and info.get("id") == self.own_info.get("id")
        ):
            self.own_node = node  # our create succeeded though its answer was lost
        members = self._members(self.children)
        if members and members[0][1] == node:
            self._set_leader(node, info)

    def _set_leader(self, node: str | None, info: JsonDict | None) -> None:
        own = self.own_info
        leading = node is not None and (
            node == self.own_node
            # a znode of ours whose create answer was lost to a connection drop
            or (info is not None and own is not None and info.get("id") == own.get("id"))
        )
        if (node, info, leading) == (self.leader_node, self.leader_info, self._leading_seen):
            return
        self.leader_node = node
        self.leader_info = info
        self._leading_seen = leading
        self.version += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._waiter = None
        self.on_change()

    def registry_store(self) -> ZooKeeperRegistryStore:
        return ZooKeeperRegistryStore(self)

    @staticmethod
    def _members(children: list[str]) -> list[tuple[int, str]]:
        """(sequence, child) of the group members, lowest first; other children ignored."""
        return sorted((s, c) for c in children if (s := sequence(c)) is not None)

    def introspect(self) -> JsonDict:
        return {
            "url": self.url.masked(),
            "session_timeout": self.session_timeout,
            "node": self.own_node,
            "members": [c for _, c in self._members(self.children)],
            "leader_node": self.leader_node,
            "leading": self.leading,
            "session_losses": self.session_losses,
        }


class ZooKeeperRegistryStore:
    """``registry.RegistryStore`` in ZooKeeper, shared by every master of the cluster."""

    def __init__(self, group: ZooKeeperGroup) -> None:
        self.group = group

    async def load(self) -> JsonDict | None:
        return await self.group.load_registry()

    def save(self, registry: JsonDict) -> None:
        self.group.save_registry(registry)
