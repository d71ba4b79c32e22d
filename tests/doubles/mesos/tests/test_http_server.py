"""The lean HTTP server: pipelining, chunked request bodies, 100-continue, unknown paths, stop."""

from __future__ import annotations

import asyncio
import json
import socket

from tests.doubles.mesos import MesosDouble
from tests.doubles.mesos.httpserver import HttpServer, Router


def _raw(address: str, payload: bytes, expect_responses: int) -> bytes:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"HTTP/1.1 ") < expect_responses or not data.endswith(b"\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_pipelined_chunked_and_continue(double: MesosDouble) -> None:
    body = json.dumps({"type": "GET_HEALTH"}).encode()
    plain = (
        b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    chunked = (
        b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    missing = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    data = _raw(double.master_address, plain + chunked + missing, 3)
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"HTTP/1.1 404 Not Found" in data
    assert data.count(b'{"type":"GET_HEALTH","get_health":{"healthy":true}}') == 2
    assert b"Server:" not in data

    host, _, port = double.master_address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\nDate: ")


def test_stop_closes_a_connection_accepted_but_not_yet_served() -> None:
    """A client that connected just before a restart sees the connection close at once.

    asyncio's own server leaves such a connection open and unanswered when it is closed
    between accept() and the task that makes the transport; a client then waits out its
    timeout (30 s for a restarting master under ZooKeeper).
    """

    async def scenario() -> bytes:
        server = HttpServer(Router())
        port = await server.start("127.0.0.1", 0)
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            server._accept()  # the loop's reader callback: accepted, transport task queued
            accepted = list(server._adopting.values())  # a reference, so only close() closes
            assert len(accepted) == 1
            await server.stop()  # before that task's first step
            await asyncio.sleep(0.05)
            assert accepted[0].fileno() == -1
            return await asyncio.to_thread(client.recv, 1)
        finally:
            client.close()

    assert asyncio.run(scenario()) == b""  # EOF, not a 5 s timeout


def test_accepted_connections_do_not_wait_for_delayed_acks() -> None:
    """TCP_NODELAY on every accepted connection, TLS or not (a response written in pieces
    would otherwise wait 40 ms for the client's delayed ACK: a 13x slower round trip)."""

    async def scenario() -> int:
        server = HttpServer(Router())
        port = await server.start("127.0.0.1", 0)
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            server._accept()
            (accepted,) = server._adopting.values()
            return accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            await server.stop()
            client.close()

    assert asyncio.run(scenario()) != 0
