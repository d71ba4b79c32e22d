"""The node's side: blobs fetched once, checked by hash, refused when they do not match."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesobatch.deploy.server import ResourceServer
from mesobatch.deploy.store import ResourceStore
from mesobatch.executor.executor import MesobatchExecutor
from mesobatch.executor.protocol import RESULT_ID_ENV, SHIP_ENV, TaskPayload, format_refs
from mesobatch.executor.shipping import HttpSource, NodeResources, ResourceError
from tests.executor.test_executor import RecordingDriver

TOKEN = "framework-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ResourceStore, ResourceServer]]:
    store = ResourceStore(str(tmp_path / "store"))
    server = ResourceServer(store, TOKEN)
    yield store, server
    server.close()


def url(server: ResourceServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def transfers(server: ResourceServer) -> dict[str, int]:
    """Transfers completed (the server counts one once its last byte is written, which
    may be just after the client has read it)."""
    deadline = time.monotonic() + 5
    while not server.stats().transfers and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.stats().transfers


def launch(executor: MesobatchExecutor, driver: RecordingDriver, task_id: str,
           env: dict[str, str], server: ResourceServer, token: str = TOKEN) -> dict[str, Any]:
    payload = TaskPayload(job_id=int(task_id), name="t", command="true", cores=1, env=env,
                          workflow_id="wf", resource_url=url(server), resource_token=token)
    executor.launchTask(driver, {"task_id": {"value": task_id}, "data": payload.encode()})
    return driver.wait_terminal(task_id)


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[tuple[MesobatchExecutor, RecordingDriver]]:
    ex = MesobatchExecutor(report_interval=60, kill_grace=1, sandbox=str(tmp_path / "sandbox"))
    driver = RecordingDriver()
    ex.registered(driver, {}, {}, {"hostname": "agent"})
    yield ex, driver
    ex.runner.close(grace=0.1)


def test_a_tampered_resource_fails_the_task_with_a_clear_message(
        served: tuple[ResourceStore, ResourceServer],
        executor: tuple[MesobatchExecutor, RecordingDriver]) -> None:
    store, server = served
    ex, driver = executor
    ref = store.put_bytes(b"the real call", "fn")
    blob = store.blob_path(ref.sha256)
    assert blob is not None
    Path(blob).write_bytes(b"the evil call")  # same size, other content
    rid = "cd" * 16
    store.expect_result(rid)
    update = launch(ex, driver, "1", {SHIP_ENV: format_refs([ref]), RESULT_ID_ENV: rid},
                    server)
    assert update["state"] == "TASK_FAILED"
    message = update["message"]
    assert "refused fn resource sha256:" + ref.sha256[:16] in message
    assert "tampered with or corrupted" in message
    assert driver.states("1") == ["TASK_FAILED"]  # it never ran
    # the caller learns why, through the result the executor sent back
    data = store.take_result(rid)
    assert data is not None and pickle.loads(data) == ("refused", message)
    assert not os.listdir(ex.resources.cache_dir)  # nothing unverified was kept


def test_a_request_without_the_token_fails_the_task(
        served: tuple[ResourceStore, ResourceServer],
        executor: tuple[MesobatchExecutor, RecordingDriver]) -> None:
    store, server = served
    ex, driver = executor
    ref = store.put_bytes(b"code", "pkg")
    update = launch(ex, driver, "2", {SHIP_ENV: format_refs([ref])}, server, token="wrong")
    assert update["state"] == "TASK_FAILED" and "HTTP 401" in update["message"]


def test_each_blob_is_fetched_once_per_node(
        served: tuple[ResourceStore, ResourceServer], tmp_path: Path) -> None:
    store, server = served
    ref = store.put_bytes(os.urandom(3 * 2**20), "obj")
    node = NodeResources(str(tmp_path / "cache"))
    source = HttpSource(url(server), TOKEN)
    first = node.blob(ref, source)
    assert node.blob(ref, source) == first
    assert Path(first).read_bytes() == Path(store.blob_path(ref.sha256) or "").read_bytes()
    assert transfers(server) == {ref.sha256: 1}
    other = NodeResources(str(tmp_path / "cache2"))
    wrong = type(ref)("obj", "0" * 64, ref.size)
    with pytest.raises(ResourceError, match="HTTP 404"):
        other.blob(wrong, source)


def test_a_planted_cache_file_is_not_trusted(
        served: tuple[ResourceStore, ResourceServer], tmp_path: Path) -> None:
    store, server = served
    ref = store.put_bytes(b"genuine", "obj")
    cache = tmp_path / "shared-cache"
    cache.mkdir()
    (cache / ref.sha256).write_bytes(b"planted")  # e.g. by another user of a shared cache
    path = NodeResources(str(cache)).blob(ref, HttpSource(url(server), TOKEN))
    assert Path(path).read_bytes() == b"genuine"
    assert transfers(server) == {ref.sha256: 1}
