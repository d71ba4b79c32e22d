"""The HTTP transport of the Mesos v1 APIs: JSON calls on kept-alive connections, and
RecordIO event streams (against the scripted agent endpoint, and against a server
written by hand for what a well-behaved server never does)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesobatch.common.http_calls import Dechunker
from mesobatch.common.json_codec import decode, encode
from mesobatch.common.transport import Transport, TransportError
from tests.executor.agent_endpoint import EXECUTOR_ID, FRAMEWORK_ID, AgentEndpoint
from tests.services.tls import TlsFiles

IDS = {"framework_id": {"value": FRAMEWORK_ID}, "executor_id": {"value": EXECUTOR_ID}}
MESSAGE = {"type": "MESSAGE", **IDS, "message": {"data": "aGk="}}


class HandWritten:
    """Answers each request with the next of ``answers`` (raw bytes), on loopback; with
    ``close`` it closes the connection after each answer."""

    def __init__(self, answers: list[bytes], *, close: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.answers = list(answers)
        self.close = close
        self.tls = tls
        self.connections = 0
        self.closed = threading.Semaphore(0)  #: released as each connection is closed
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:" \
                   f"{self._listener.getsockname()[1]}/api/v1/executor"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                while self.answers:
                    request = self._read_request(conn)
                    if request is None:
                        return
                    self.requests.append(request)
                    conn.sendall(self.answers.pop(0))
                    if self.close:
                        return
        except OSError:
            return
        finally:
            self.closed.release()

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def stop(self) -> None:
        self._listener.close()


def accepted(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n" + extra + b"\r\n"


def chunked(*chunks: bytes, end: bool = True) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body + (b"0\r\n\r\n" if end else b""))


def record(event: dict[str, Any]) -> bytes:
    data = json.dumps(event).encode()
    return b"%d\n%s" % (len(data), data)


@pytest.fixture
def agent() -> Iterator[AgentEndpoint]:
    with AgentEndpoint() as endpoint:
        yield endpoint


def url(agent: AgentEndpoint) -> str:
    return f"http://127.0.0.1:{agent.port}/api/v1/executor"


def test_calls_are_exact_json_on_one_connection_per_thread(agent: AgentEndpoint) -> None:
    http = Transport(authorization="Bearer t")
    for _ in range(3):
        answer = http.post(url(agent), MESSAGE)
        assert answer.status == 202 and answer.body == b""
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(http.post(url(agent), MESSAGE).status))
    thread.start()
    thread.join()
    assert other == [202]
    assert agent.peers[0] == agent.peers[1] == agent.peers[2] != agent.peers[3]
    headers = agent.headers[0]
    assert headers["content-type"] == "application/json"  # Mesos: no charset suffix
    assert headers["accept"] == "application/json" and headers["authorization"] == "Bearer t"
    http.close()


def test_an_error_answer_comes_back_whole(agent: AgentEndpoint) -> None:
    answer = Transport().post(url(agent), {"type": "UPDATE", **IDS})
    assert answer.status == 400 and "update" in answer.text


def test_an_idle_connection_the_server_closed_is_replaced_before_use() -> None:
    server = HandWritten([accepted(), accepted()], close=True)
    try:
        http = Transport()
        assert http.post(server.url, MESSAGE).status == 202
        assert server.closed.acquire(timeout=10)  # the kept connection is closed now
        assert http.post(server.url, MESSAGE).status == 202  # not an error: a fresh one
        assert server.connections == 2
        assert json.loads(server.requests[0].partition(b"\r\n\r\n")[2]) == MESSAGE
    finally:
        server.stop()


def test_a_connection_the_server_will_close_is_not_kept() -> None:
    server = HandWritten([accepted(b"Connection: close\r\n"), accepted()])
    try:
        http = Transport()
        http.post(server.url, MESSAGE)
        http.post(server.url, MESSAGE)
        assert server.connections == 2
    finally:
        server.stop()


def test_no_answer_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens there once closed
    with pytest.raises(TransportError):
        Transport(timeout=5).post(f"http://127.0.0.1:{port}/api/v1/executor", MESSAGE)
    server = HandWritten([b""], close=True)  # read, then closed without an answer
    try:
        with pytest.raises(TransportError):
            Transport(timeout=5).post(server.url, MESSAGE)
    finally:
        server.stop()


def test_stream_records_are_whole_whatever_the_chunking() -> None:
    one, two, three = (record({"type": "HEARTBEAT", "n": i}) for i in range(3))
    server = HandWritten([chunked(one[:3], one[3:] + two[:5], two[5:] + three)])
    try:
        stream = Transport().stream(server.url, {"type": "SUBSCRIBE"})
        assert stream.status == 200 and stream.answer is None
        assert [e["n"] for e in stream.events()] == [0, 1, 2]  # then the stream ended
    finally:
        server.stop()


def test_a_stream_cut_off_or_silent_too_long_is_a_transport_error() -> None:
    server = HandWritten([chunked(record({"type": "HEARTBEAT"}), end=False)], close=True)
    try:
        events = Transport().stream(server.url, {"type": "SUBSCRIBE"}).events()
        assert next(events)["type"] == "HEARTBEAT"
        with pytest.raises(TransportError):
            next(events)
    finally:
        server.stop()
    server = HandWritten([chunked(end=False)])
    try:
        stream = Transport().stream(server.url, {"type": "SUBSCRIBE"}, read_timeout=0.2)
        with pytest.raises(TransportError):
            next(stream.events())
        stream.close()
    finally:
        server.stop()


def test_a_refused_subscription_comes_back_as_its_answer(agent: AgentEndpoint) -> None:
    agent.refuse_subscribe = 503
    stream = Transport().stream(url(agent), {"type": "SUBSCRIBE", **IDS, "subscribe": {}})
    assert stream.answer is not None and stream.answer.status == 503
    assert stream.answer.text == "refused by the test"


def test_close_from_another_thread_ends_a_blocked_read(agent: AgentEndpoint) -> None:
    stream = Transport().stream(url(agent), {"type": "SUBSCRIBE", **IDS, "subscribe": {}})
    agent.wait_for(lambda: agent.streams_opened == 1)
    agent.send({"type": "HEARTBEAT"})
    failures: list[BaseException] = []
    got: list[dict[str, Any]] = []
    first = threading.Event()

    def read() -> None:
        try:
            for event in stream.events():
                got.append(event)
                first.set()
        except TransportError as e:
            failures.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    assert first.wait(10)
    stream.close()
    stream.close()  # twice is harmless
    reader.join(10)
    assert not reader.is_alive()
    assert got == [{"type": "HEARTBEAT"}] and len(failures) == 1


def test_https_verifies_against_the_given_bundle(tmp_path: Path) -> None:
    tls = TlsFiles.create(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    server = HandWritten([accepted(), accepted(), accepted()], tls=context)
    try:
        assert Transport(ca_bundle=str(tls.ca_cert)).post(server.url, MESSAGE).status == 202
        assert Transport(verify=False).post(server.url, MESSAGE).status == 202
        with pytest.raises(TransportError):  # the system's CAs do not know ours
            Transport().post(server.url, MESSAGE)
    finally:
        server.stop()


def test_calls_written_at_once_are_answered_in_order_on_one_connection(
        agent: AgentEndpoint) -> None:
    http = Transport()
    calls = [{"type": "MESSAGE", **IDS, "message": {"data": f"{i:04d}"}} for i in range(40)]
    calls[7] = {"type": "UPDATE", **IDS}  # refused (no update): its answer in its place
    answers, error = http.post_many(url(agent), calls)
    assert error is None
    assert [a.status for a in answers] == [400 if i == 7 else 202 for i in range(40)]
    assert "update" in answers[7].text
    assert [c["message"]["data"] for c in agent.of("MESSAGE")] == \
        [f"{i:04d}" for i in range(40) if i != 7]
    assert len(set(agent.peers)) == 1
    assert http.post(url(agent), MESSAGE).status == 202 and len(set(agent.peers)) == 1
    http.close()


def test_calls_whose_answers_did_not_come_are_told_apart() -> None:
    server = HandWritten([accepted(b"Connection: close\r\n")], close=True)
    try:
        answers, error = Transport().post_many(server.url, [MESSAGE] * 3)
        assert [a.status for a in answers] == [202] and error is not None
    finally:
        server.stop()


def test_deliver_tells_each_call_whether_it_was_answered() -> None:
    server = HandWritten([accepted(b"Connection: close\r\n")], close=True)
    calls = [{**MESSAGE, "mine": i} for i in range(3)]
    answered: list[tuple[int, int]] = []
    lost: list[tuple[int, str]] = []
    try:
        Transport().deliver(server.url, calls, lambda c, a: answered.append((c["mine"], a.status)),
                            lambda c, why: lost.append((c["mine"], why)),
                            bodies=[MESSAGE] * 3)
    finally:
        server.stop()
    assert answered == [(0, 202)]
    assert [i for i, _ in lost] == [1, 2] and all(why for _, why in lost)
    # nobody listening: every call is lost, none answered
    nobody: list[str] = []
    Transport().deliver(server.url, calls, lambda c, a: answered.append((c["mine"], a.status)),
                        lambda c, why: nobody.append(why))
    assert len(nobody) == 3 and len(answered) == 1


@pytest.mark.parametrize(("raw", "status", "body"), [
    (b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n"
     b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n", 400, b"hello world"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 409 Conflict\r\nContent-Length: 3\r\n\r\nabc",
     409, b"abc"),
    (b"HTTP/1.0 503 Service Unavailable\r\n\r\nrecovering", 503, b"recovering"),
])
def test_answers_are_read_however_their_body_is_framed(raw: bytes, status: int,
                                                         body: bytes) -> None:
    server = HandWritten([raw], close=True)
    try:
        answer = Transport(timeout=5).post(server.url, MESSAGE)
        assert (answer.status, answer.body) == (status, body)
    finally:
        server.stop()


@pytest.mark.parametrize("raw", [b"SMTP ready\r\n\r\n",
                                 b"HTTP/1.1 202 Accepted\r\nContent-Length: x\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
def test_a_garbled_answer_is_a_transport_error(raw: bytes) -> None:
    server = HandWritten([raw], close=True)
    try:
        with pytest.raises(TransportError):
            Transport(timeout=5).post(server.url, MESSAGE)
    finally:
        server.stop()


def test_a_header_value_that_would_end_its_line_is_refused(agent: AgentEndpoint) -> None:
    with pytest.raises(ValueError, match="Mesos-Stream-Id"):
        Transport().post(url(agent), MESSAGE, {"Mesos-Stream-Id": "s\r\nX-Evil: 1"})
    assert agent.calls == []


def test_a_chunked_body_comes_out_whole_however_it_is_cut() -> None:
    body = (b"3\r\nabc\r\n10;ext=1\r\n" + bytes(range(16)) + b"\r\n1\r\n\n\r\n"
            b"0\r\nX-Trailer: t\r\n\r\n")
    for cut in range(len(body) + 1):
        for step in (1, 5, len(body)):
            dechunker = Dechunker()
            pieces = [body[:cut]] + [body[i:i + step] for i in range(cut, len(body), step)]
            out = b"".join(dechunker.feed(p) for p in pieces)
            assert out == b"abc" + bytes(range(16)) + b"\n" and dechunker.done
    for bad in (b"zz\r\n", b"3\r\nabcXY", b"-1\r\n"):
        with pytest.raises(ValueError):
            Dechunker().feed(bad)


def test_what_only_the_json_module_takes_still_goes_through() -> None:
    body = {"type": "MESSAGE", "bad": "\udcff"}  # a lone surrogate
    assert encode(body) == json.dumps(body, separators=(",", ":")).encode()
    assert decode(encode(body)) == body


def test_a_server_that_never_answers_is_a_transport_error_after_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        port = silent.getsockname()[1]
        with pytest.raises(TransportError, match="timed out"):
            Transport(timeout=0.3).post(f"http://127.0.0.1:{port}/api/v1/executor", MESSAGE)
