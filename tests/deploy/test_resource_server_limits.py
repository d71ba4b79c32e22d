"""The resource server under hostile clients (issue 17): idle and slow connections are
capped and timed out without a thread each, bad Content-Length and unexpected results
are refused, a client that hangs up is no error, and transfer counts do not grow with
every call."""

from __future__ import annotations

import http.client
import os
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mesobatch
from mesobatch.deploy.server import ResourceServer
from mesobatch.deploy.store import ResourceStore
from tests.doubles.mesos import AgentSpec, MesosDouble

TOKEN = "t0ken"
IDLE = 2000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ResourceStore, ResourceServer]]:
    store = ResourceStore(str(tmp_path / "store"), max_size=1024)
    server = ResourceServer(store, TOKEN, head_timeout=1.0, io_timeout=2.0)
    yield store, server
    server.close()


def raw(server: ResourceServer, data: bytes) -> bytes:
    """Send raw bytes; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


@pytest.mark.parametrize("length, status", [
    (b"-1", b"400"), (b"1_0", b"400"), (b"5 5", b"400"), (b"+5", b"400"), (b"0x5", b"400"),
    (b"5, 5", b"400"), (b"", b"411")])
def test_a_content_length_that_is_not_a_plain_number_is_refused(
        served: tuple[ResourceStore, ResourceServer], length: bytes, status: bytes) -> None:
    store, server = served
    rid = "ab" * 16
    store.expect_result(rid)
    answer = raw(server, b"PUT /results/" + rid.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: " + length
                 + b"\r\n\r\nhello world")
    assert answer.startswith(b"HTTP/1.1 " + status), answer
    assert store.take_result(rid) is None


def test_a_result_nobody_waits_for_is_refused(
        served: tuple[ResourceStore, ResourceServer]) -> None:
    store, server = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for i in range(3):
        rid = f"{i:032x}"
        conn.request("PUT", f"/results/{rid}", body=b"junk",
                     headers={"Authorization": f"Bearer {TOKEN}"})
        r = conn.getresponse()
        assert (r.status, r.read()) == (404, f"no result is expected under {rid}\n".encode())
        conn.close()
    assert os.listdir(store.result_dir) == []


def test_a_client_that_hangs_up_is_no_error(
        tmp_path: Path, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    store = ResourceStore(str(tmp_path / "store"))
    server = ResourceServer(store, TOKEN)
    try:
        ref = store.put_bytes(os.urandom(32 << 20))
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port)) as s:
                s.sendall(f"GET /blobs/{ref.sha256} HTTP/1.1\r\nAuthorization: Bearer "
                          f"{TOKEN}\r\n\r\n".encode())
                s.recv(1000)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00"
                             b"\x00\x00")  # reset, not FIN: the server's next send fails
        deadline = time.monotonic() + 10
        while server.connections() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.connections() == 0
    finally:
        server.close()
    assert "Traceback" not in capfd.readouterr().err
    assert [r for r in caplog.records if r.levelno >= 30] == []


def test_slow_and_idle_connections_are_closed_after_the_head_timeout(
        served: tuple[ResourceStore, ResourceServer]) -> None:
    _, server = served
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"GET /health HTTP/1.1\r\n")  # ... and the rest never comes
    try:
        for s in [*idle, slow]:
            s.settimeout(10)
            assert s.recv(100) == b""  # closed by the server within head_timeout (1 s)
        assert server.connections() == 0
    finally:
        for s in [*idle, slow]:
            s.close()


ATTACKER = textwrap.dedent("""
    import resource, socket, sys
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
    held, failed = [], 0
    for _ in range(n):
        try:
            held.append(socket.create_connection((host, port), timeout=5))
        except OSError:
            failed += 1
    print(len(held), failed, flush=True)
    sys.stdin.read()  # hold them all until told to go
""")


@pytest.fixture
def low_fd_limit() -> Iterator[int]:
    """This process's descriptor limit at a common default (1024), as when the issue
    was seen: 2,000 connections would exhaust it if each took a descriptor here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = min(1024, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    yield limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_2000_idle_connections_while_jobs_keep_coming(low_fd_limit: int) -> None:
    double = MesosDouble(agents=[AgentSpec(resources="cpus:2;mem:2080;disk:4096")]).start()
    try:
        with mesobatch.FunctionExecutor("mesos", mesosMaster=double.master_address,
                                        killGracePeriod=1, maxCores=2, maxMemory="2G",
                                        maxDisk="4G") as ex:
            service = ex.batch_system.resource_service()
            server = service.server  # type: ignore[attr-defined]
            assert server.max_connections <= low_fd_limit // 4
            assert ex.submit(pow, 2, 10).result(timeout=60) == 1024
            threads = threading.active_count()
            host, port = service.location.rsplit("/", 1)[1].rsplit(":", 1)
            attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, host, port, str(IDLE)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
            try:
                futures = []
                for i in range(30):  # submitted while the connections pile up
                    futures.append(ex.submit(pow, i, 2))
                    time.sleep(0.02)
                assert attacker.stdout is not None
                held, _failed = map(int, attacker.stdout.readline().split())
                assert held > low_fd_limit  # more than this process could hold
                futures += [ex.submit(pow, i, 3) for i in range(30)]  # with all held
                assert [f.result(timeout=120) for f in futures] == (
                    [i**2 for i in range(30)] + [i**3 for i in range(30)])
                assert threading.active_count() <= threads + 5  # no thread per connection
                assert server.connections() <= server.max_connections
                assert len(os.listdir("/proc/self/fd")) < low_fd_limit - 200
            finally:
                attacker.communicate("", timeout=30)
            stats = service.stats()
            # counts go with the blobs (each call's is deleted once it is done): what is
            # left is the executor bundle, still stored
            assert len(stats.transfers) <= 1 and stats.total_transfers >= 61
            assert all(service.store.blob_path(d) for d in stats.transfers)
    finally:
        double.stop()
