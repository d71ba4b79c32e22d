"""The master's HTTP API over TLS: verified with the test CA, refused without it."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.mesos import DoubleProcess, MesosDouble
from tests.services.tls import TlsFiles

from .wire_client import Http, Scheduler, executor_info, task_info


def _handshake(files: TlsFiles, server_hostname: str) -> None:
    """An in-memory TLS handshake between the files' server and a client trusting the CA."""
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = files.server_context().wrap_bio(server_in, server_out, server_side=True)
    client = files.client_context().wrap_bio(client_in, client_out, server_hostname=server_hostname)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("maker", ["cryptography", "openssl"])
def test_tls_helper_makes_a_verifiable_chain(maker: str, tmp_path: Path) -> None:
    if maker == "openssl" and shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    if maker == "cryptography":
        pytest.importorskip("cryptography")
    files = TlsFiles(tmp_path, tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "key.pem")
    if maker == "openssl":
        files._make_with_openssl(days=1)
    else:
        files._make_with_cryptography(days=1)
    for name in ("127.0.0.1", "localhost", "::1"):
        _handshake(files, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files, "example.org")


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsFiles]:
    files = TlsFiles.create()
    yield files
    files.remove()


@pytest.fixture
def tls_double(tls: TlsFiles) -> Iterator[MesosDouble]:
    with MesosDouble(
        agents=1, tls_cert=tls.server_cert, tls_key=tls.server_key, allocation_interval=0.2
    ) as double:
        yield double


def test_https_with_the_ca_runs_a_task(tls: TlsFiles, tls_double: MesosDouble) -> None:
    assert tls_double.master_url == f"https://{tls_double.master_address}"
    scheduler = Scheduler(tls_double.master_address, context=tls.client_context())
    try:
        assert scheduler.subscribed["type"] == "SUBSCRIBED"
        offer = scheduler.offers()[0]
        # Agents still reach the master over its private plain link, executors their agent.
        scheduler.launch(offer, [task_info("t-tls", offer, executor_info("e-tls"))])
        scheduler.ack(scheduler.update("t-tls", "TASK_RUNNING", timeout=20))
        scheduler.ack(scheduler.update("t-tls", "TASK_FINISHED", timeout=20))
        assert scheduler.call("REVIVE").status == 202
    finally:
        scheduler.close()
    state = tls_double.state()
    assert state["master"]["scheme"] == "https"
    assert state["frameworks"][scheduler.framework_id]["completed_tasks"] == {
        "t-tls": "TASK_FINISHED"
    }


def test_https_fails_without_the_ca(tls_double: MesosDouble) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        Http(tls_double.master_address, ssl.create_default_context()).request(
            "/api/v1", {"type": "GET_HEALTH"}
        )
    # The control API stays plain; the public API over plain HTTP just gets the door shut.
    plain = Http(tls_double.master_address)
    with pytest.raises((EOFError, ConnectionError)):
        plain.request("/api/v1/scheduler", {"type": "SUBSCRIBE"})
    assert Http(tls_double.master_address).request(
        "/__double__/state", method="GET", content_type=None
    ).status == 200


def test_cli_with_tls_and_credentials(tls: TlsFiles, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("p1 s1\n")
    with DoubleProcess(
        "--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key),
        "--credentials", str(credentials), "--allocation-interval", "0.2",
    ) as double:  # fmt: skip
        assert double.control is not None
        assert double.control.state()["master"]["scheme"] == "https"
        context = tls.client_context()
        wrong = Http(double.master_address, context).request(
            "/api/v1/scheduler",
            {"type": "SUBSCRIBE"},
            headers={"Authorization": "Basic " + base64.b64encode(b"p1:nope").decode()},
        )
        assert (wrong.status, wrong.text) == (401, "401 Unauthorized.")
        good = {"Authorization": "Basic " + base64.b64encode(b"p1:s1").decode()}
        scheduler = Scheduler(double.master_address, context=context, headers=good)
        try:
            assert scheduler.subscribed["type"] == "SUBSCRIBED"
            assert scheduler.offers()
            assert scheduler.call("SUPPRESS").status == 202
            frameworks = double.control.state()["frameworks"]
            assert frameworks[scheduler.framework_id]["principal"] == "p1"
        finally:
            scheduler.close()
        # Verification against "localhost" works too (the certificate names it).
        raw = Http(double.master_address, context)
        raw.host = "localhost"
        health = raw.request("/api/v1", {"type": "GET_HEALTH"})
        assert json.loads(health.body)["get_health"]["healthy"] is True
