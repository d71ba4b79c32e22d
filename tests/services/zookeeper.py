"""Real ZooKeeper servers for tests: Debian's `zookeeper` package, started by hand.

No systemd here, and a package never starts its own daemon, so tests start
QuorumPeerMain themselves, on free loopback ports in a temporary directory:
one standalone server, or a three-node ensemble whose members can be killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CLASSPATH = ":".join([
    "/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar",
    # without the two logging jars ZooKeeper writes no log at all
    "/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar",
])


def installed() -> bool:
    return shutil.which("java") is not None and os.path.exists("/usr/share/java/zookeeper.jar")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def four_letters(port: int, word: str, timeout: float = 1.0) -> str:
    """A four-letter-word command (ruok, srvr, ...); '' when the server does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data.decode(errors="replace")
    except OSError:
        return ""


def mode(port: int) -> str:
    """"standalone", "leader", "follower", or "" when down or not serving."""
    for line in four_letters(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return ""


@dataclass
class Server:
    number: int
    client_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.directory / "server.out", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            ["java", "-Xmx256m", f"-Dzookeeper.log.dir={self.directory}",
             "-Dzookeeper.root.logger=INFO,ROLLINGFILE", "-cp", CLASSPATH,
             "org.apache.zookeeper.server.quorum.QuorumPeerMain",
             str(self.directory / "zoo.cfg")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class ZooKeeper:
    """One server (``ZooKeeper.standalone()``) or an ensemble (``ZooKeeper.ensemble(3)``)."""

    servers: list[Server]
    root: Path
    _owned: bool = field(default=True)

    @classmethod
    def standalone(cls, tick_ms: int = 2000) -> ZooKeeper:
        return cls._make(1, tick_ms)

    @classmethod
    def ensemble(cls, size: int = 3, tick_ms: int = 500) -> ZooKeeper:
        return cls._make(size, tick_ms)

    @classmethod
    def _make(cls, size: int, tick_ms: int) -> ZooKeeper:
        if not installed():
            raise RuntimeError("ZooKeeper is not installed: apt-get install zookeeper")
        root = Path(tempfile.mkdtemp(prefix="mesobatch-zk-"))
        ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
        servers = []
        for n, (client, _, _) in enumerate(ports, 1):
            d = root / f"s{n}"
            (d / "data").mkdir(parents=True)
            lines = [f"tickTime={tick_ms}", "initLimit=10", "syncLimit=5",
                     f"dataDir={d / 'data'}", f"clientPort={client}",
                     "clientPortAddress=127.0.0.1", "admin.enableServer=false",
                     "4lw.commands.whitelist=ruok,srvr,stat,mntr,envi"]
            if size > 1:
                (d / "data" / "myid").write_text(f"{n}\n")
                lines += [f"server.{m}=127.0.0.1:{q}:{e}"
                          for m, (_, q, e) in enumerate(ports, 1)]
            (d / "zoo.cfg").write_text("\n".join(lines) + "\n")
            servers.append(Server(n, client, d))
        zk = cls(servers, root)
        for s in servers:
            s.start()
        zk.wait_serving()
        return zk

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{s.client_port}" for s in self.servers)

    def url(self, path: str = "/mesos", credentials: str | None = None) -> str:
        who = f"{credentials}@" if credentials else ""
        return f"zk://{who}{self.hosts}{path}"

    def wait_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        alive = [s for s in self.servers if s.alive]
        while time.monotonic() < deadline:
            modes = [mode(s.client_port) for s in alive]
            if all(modes) and (len(self.servers) == 1 or "leader" in modes):
                return
            time.sleep(0.1)
        raise RuntimeError(f"ZooKeeper did not start; see {self.root}")

    def leader(self) -> Server:
        for s in self.servers:
            if s.alive and mode(s.client_port) == "leader":
                return s
        raise RuntimeError("the ensemble has no leader")

    def stop(self) -> None:
        for s in self.servers:
            s.kill(signal.SIGTERM)
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ZooKeeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
