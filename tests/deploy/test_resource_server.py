"""The resource server: blobs by hash for token holders, nothing else."""

from __future__ import annotations

import http.client
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesobatch.deploy.server import ResourceServer
from mesobatch.deploy.store import ResourceStore, ResourceTooLarge

TOKEN = "s3cret-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ResourceStore, ResourceServer]]:
    store = ResourceStore(str(tmp_path / "store"), max_size=1024)
    (tmp_path / "secret.txt").write_text("not for you")
    server = ResourceServer(store, TOKEN)
    yield store, server
    server.close()


def request(server: ResourceServer, method: str, path: str, token: str | None = TOKEN,
            body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if body is not None:
        headers["Content-Length"] = str(len(body))
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def test_a_blob_goes_to_token_holders_only(served: tuple[ResourceStore, ResourceServer]
                                           ) -> None:
    store, server = served
    ref = store.put_bytes(b"payload", "obj")
    assert request(server, "GET", f"/blobs/{ref.sha256}") == (200, b"payload")
    assert request(server, "GET", f"/blobs/{ref.sha256}", token=None)[0] == 401
    assert request(server, "GET", f"/blobs/{ref.sha256}", token="guess")[0] == 401
    assert request(server, "GET", f"/blobs/{'0' * 64}")[0] == 404
    deadline = time.monotonic() + 5  # counted once the last byte is written
    while server.stats().refused < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = server.stats()
    assert stats.transfers == {ref.sha256: 1} and stats.bytes_sent == {ref.sha256: 7}
    assert stats.refused == 2


@pytest.mark.parametrize("path", [
    "/blobs/../secret.txt", "/blobs/%2e%2e/secret.txt", "/blobs/%2E%2E%2Fsecret.txt",
    "/../secret.txt", "/public/..%2f..%2fsecret.txt", "/results/../../secret.txt",
])
def test_dot_dot_is_refused_even_with_the_token(
        served: tuple[ResourceStore, ResourceServer], path: str) -> None:
    _, server = served
    status, body = request(server, "GET", path)
    assert status == 400 and b"path refused" in body
    assert request(server, "PUT", path, body=b"x")[0] == 400


def test_nothing_but_the_store_layout_is_served(
        served: tuple[ResourceStore, ResourceServer]) -> None:
    store, server = served
    ref = store.put_bytes(b"user code", "pkg")
    for path in ("/secret.txt", f"/blobs/{ref.sha256[:10]}", "/blobs/", "/tmp",
                 f"/blobs/{ref.sha256}/x", "/etc/passwd"):
        assert request(server, "GET", path)[0] == 404, path
    # a blob that is not public cannot be had without the token under /public/
    assert request(server, "GET", f"/public/{ref.sha256}/x.pyz", token=None)[0] == 404
    bundle = store.put_bytes(b"the executor", public=True)
    assert request(server, "GET", f"/public/{bundle.sha256}/x.pyz", token=None) == (
        200, b"the executor")
    assert request(server, "GET", "/health", token=None) == (200, b"ok\n")


def test_results_come_back_with_the_token_and_within_the_size_limit(
        served: tuple[ResourceStore, ResourceServer]) -> None:
    store, server = served
    rid = "ab" * 16
    store.expect_result(rid)
    assert request(server, "PUT", f"/results/{rid}", token=None, body=b"v")[0] == 401
    assert request(server, "PUT", f"/results/{rid}", body=b"value")[0] == 201
    assert request(server, "PUT", f"/results/{rid}", body=b"again")[0] == 404  # once
    assert store.take_result(rid) == b"value" and store.take_result(rid) is None
    store.expect_result(rid)
    assert request(server, "PUT", f"/results/{rid}", body=b"x" * 2048)[0] == 413
    assert request(server, "PUT", "/results/not-an-id", body=b"v")[0] == 404
    with pytest.raises(ResourceTooLarge, match="maxResourceSize"):
        store.put_bytes(b"x" * 2048)
    with pytest.raises(ValueError):
        store.write_result("../escape", io.BytesIO(b"x"), 1)


def test_the_store_is_content_addressed(tmp_path: Path) -> None:
    store = ResourceStore(str(tmp_path))
    a = store.put_bytes(b"same")
    b = store.put_bytes(b"same")
    (tmp_path / "f").write_bytes(b"same")
    c = store.put_file(str(tmp_path / "f"))
    assert a.sha256 == b.sha256 == c.sha256 and a.size == 4
    assert store.blob_path("../../etc/passwd") is None
    store.delete([a])
    assert store.blob_path(a.sha256) is None
