"""The scheduler driver's wire behaviour: redirects, retries, heartbeats, and the
pymesos-shaped callback contract."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import addict
import pytest

import mesobatch
from mesobatch.common.recordio import encode
from mesobatch.scheduler.core.events import OffersReceived, TaskStatus
from mesobatch.scheduler.core.resources import Resources
from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.mesos.driver import DriverState, MesosSchedulerDriver
from mesobatch.scheduler.mesos.executors import Executors
from mesobatch.scheduler.mesos.framework import MesosFramework
from mesobatch.scheduler.mesos.interface import Scheduler
from mesobatch.scheduler.mesos.master import MasterAddressError, StaticMaster
from tests.waiting import wait_for

from .conftest import Cluster, job


def test_master_addresses() -> None:
    assert StaticMaster("m1:5050").url == "http://m1:5050"
    assert StaticMaster("m1").url == "http://m1:5050"
    assert StaticMaster("https://m1:443").url == "https://m1:443"
    for bad in ("m1:99999", "m1:port", "ftp://m1:5050", ""):
        with pytest.raises(MasterAddressError, match="invalid"):
            StaticMaster(bad)
    with pytest.raises(mesobatch.OptionError, match="invalid value 'm1:port' for --mesosMaster"):
        mesobatch.batch_system("mesos", mesosMaster="m1:port")


# ----------------------------------------------------------------------------- redirects


class Front:
    """A 'non-leading master': 503 for the first SUBSCRIBE, then 307 to the leader."""

    def __init__(self, leader: str) -> None:
        self.requests: list[str] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                front.requests.append(self.path)
                if len(front.requests) == 1:
                    self.send_response(503)
                    body = b"No leader elected"
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(307)
                self.send_header("Location", f"//{leader}/master/api/v1/scheduler")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_503_is_retried_and_307_followed_to_the_leader(cluster: Cluster) -> None:
    double = cluster.start()
    front = Front(double.master_address)
    try:
        bs = mesobatch.batch_system("mesos", mesosMaster=front.address, killGracePeriod=1)
        cluster.systems.append(bs)
        done = bs.issueBatchJob("true", job())
        info = bs.getUpdatedBatchJob(30)
        assert info is not None and info.jobID == done and info.exitStatus == 0
        assert front.requests == ["/api/v1/scheduler"] * 2  # 503, then 307; no more
    finally:
        front.close()


# ----------------------------------------------------------------------------- state


def closed_port() -> str:
    """An address nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_a_launch_that_never_reached_mesos_requeues_its_tasks() -> None:
    posted: list[Any] = []
    driver = MesosSchedulerDriver(Scheduler(), {"user": "u", "name": "n"},
                                  StaticMaster(closed_port()),
                                  post=lambda *events: posted.extend(events))
    try:
        driver.start()
        driver.declineOffer(["o0"])  # other calls are the core's to repeat: nothing posted
        driver.launchTasks(["o1"], [
            {"task_id": {"value": "7.0"}, "agent_id": {"value": "a1"}},
            {"task_id": {"value": "8.0"}, "agent_id": {"value": "a1"}}])
        assert wait_for(lambda: len(posted) >= 2, timeout=10)
    finally:
        driver.abort()
    assert [e.task_id for e in posted] == ["7.0", "8.0"]
    for event in posted:
        assert isinstance(event, TaskStatus) and event.state is TaskState.LOST
        assert event.never_started and event.agent_id == "a1"
        assert event.message == "launch not delivered: not subscribed"
    assert driver.state is DriverState.ABORTED and driver.join() is DriverState.ABORTED


class Refusing:
    """A master that answers every SUBSCRIBE with 401."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b"Authentication required"
                self.send_response(401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_refused_framework_fails_for_good_and_stays_failed() -> None:
    master = Refusing()
    errors: list[str] = []

    class Recorder(Scheduler):
        def error(self, driver: Any, message: str) -> None:
            errors.append(message)

    driver = MesosSchedulerDriver(Recorder(), {"user": "u", "name": "n"},
                                  StaticMaster(master.address))
    assert driver.state.name == "CREATED"  # (no narrowing: the state moves on)
    try:
        driver.start()
        assert driver.join() is DriverState.FAILED
        assert driver.last_error is not None and "HTTP 401" in driver.last_error
        assert errors == [driver.last_error]
        driver.stop()  # a final state is never overwritten
        driver.abort()
        assert driver.state is DriverState.FAILED
    finally:
        driver.abort()
        master.close()


# ----------------------------------------------------------------------------- heartbeats


class SilentMaster:
    """Answers SUBSCRIBE with SUBSCRIBED (heartbeat every 0.1 s) and then says nothing."""

    def __init__(self) -> None:
        self.subscribes = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            conn.recv(65536)
            self.subscribes += 1
            event = json.dumps({"type": "SUBSCRIBED", "subscribed": {
                "framework_id": {"value": "fw-1"}, "heartbeat_interval_seconds": 0.1}}).encode()
            record = encode(event)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         b"Mesos-Stream-Id: s-1\r\nContent-Type: application/json\r\n\r\n"
                         + f"{len(record):x}\r\n".encode() + record + b"\r\n")

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_silent_stream_is_dropped_after_missed_heartbeats_and_resubscribed() -> None:
    master = SilentMaster()
    seen: list[str] = []

    class Recorder(Scheduler):
        def registered(self, driver: Any, frameworkId: Any, masterInfo: Any) -> None:
            seen.append("registered")

        def reregistered(self, driver: Any, masterInfo: Any) -> None:
            seen.append("reregistered")

        def disconnected(self, driver: Any) -> None:
            seen.append("disconnected")

    driver = MesosSchedulerDriver(Recorder(), {"user": "u", "name": "n"},
                                  StaticMaster(master.address))
    try:
        driver.start()
        assert wait_for(lambda: master.subscribes >= 2, timeout=10)
        # the master counts the SUBSCRIBE as it arrives; the callback comes after
        assert wait_for(lambda: len(seen) >= 3, timeout=10)
        assert seen[:3] == ["registered", "disconnected", "reregistered"]
        assert driver.framework_id == "fw-1"  # re-subscribed with the saved id
    finally:
        driver.abort()
        master.close()


# ----------------------------------------------------------------------------- pymesos shapes


def test_callbacks_accept_pymesos_addict_messages() -> None:
    posted: list[Any] = []
    framework = MesosFramework(lambda *events: posted.extend(events), Executors("wf"),
                               None, Resources(mem=32))
    offer = addict.Dict({
        "id": {"value": "o1"}, "agent_id": {"value": "a1"}, "hostname": "h1",
        "url": {"address": {"ip": "10.0.0.7", "port": 5051}},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024.0}},
                      {"name": "disk", "type": "SCALAR", "scalar": {"value": 2048.0},
                       "role": "other"}],
        "attributes": [{"name": "Preemptible", "type": "TEXT", "text": {"value": "YES"}}],
    })
    framework.resourceOffers(None, [offer])  # type: ignore[arg-type]
    framework.statusUpdate(None, addict.Dict({  # type: ignore[arg-type]
        "task_id": {"value": "3.0"}, "state": "TASK_DROPPED",
        "reason": "REASON_INVALID_OFFERS", "agent_id": {"value": "a1"}}))
    (offers, status) = posted
    assert isinstance(offers, OffersReceived)
    (o,) = offers.offers
    assert (o.agent_id, o.hostname, o.ip, o.preemptible) == ("a1", "h1", "10.0.0.7", True)
    assert o.resources == Resources(cpus=2000, mem=1024, disk=0)  # disk of another role
    assert o.executor_overhead == Resources(mem=32)
    assert isinstance(status, TaskStatus) and status.state is TaskState.LOST
    assert status.never_started
