"""Agent-side behaviour: fetcher, registration timeout, status update retries, environment."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.mesos import AgentSpec, MesosDouble
from tests.waiting import wait_for

from .wire_client import Http, Scheduler, executor_info, task_info

Make = Callable[..., Scheduler]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle.tar.gz"
    payload = b"hello from the bundle\n"
    with tarfile.open(bundle, "w:gz") as tar:
        info = tarfile.TarInfo("bundle/data.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    (tmp_path / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    return tmp_path


@pytest.fixture
def http_server(files: Path) -> Iterator[str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(files), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _sandbox(double: MesosDouble, executor_id: str) -> Path:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for process in double.state()["agent_processes"]:
            for executor in process["executors"]:
                if executor["executor_id"] == executor_id and executor["pid"]:
                    return Path(executor["directory"])
        time.sleep(0.02)
    raise TimeoutError(executor_id)


def test_fetcher_extracts_caches_and_counts(
    double: MesosDouble, scheduler_factory: Make, files: Path, http_server: str
) -> None:
    scheduler = scheduler_factory(double.master_address)
    uris = [
        {"value": f"{http_server}/bundle.tar.gz", "cache": True},
        {"value": f"file://{files}/tool.sh", "executable": True},
        {"value": f"{files}/bundle.tar.gz", "extract": False, "output_file": "copy.tgz"},
    ]
    for index in range(2):
        offer = scheduler.offers(timeout=10)[0]
        executor = executor_info(f"e-fetch{index}", uris=uris)
        scheduler.launch(
            offer, [task_info(f"t-fetch{index}", offer, executor)], filters={"refuse_seconds": 0}
        )
        sandbox = _sandbox(double, f"e-fetch{index}")
        scheduler.ack(scheduler.update(f"t-fetch{index}", "TASK_RUNNING", timeout=20))
        assert (sandbox / "bundle" / "data.txt").read_text() == "hello from the bundle\n"
        assert (sandbox / "bundle.tar.gz").exists()
        assert (sandbox / "tool.sh").stat().st_mode & 0o111
        assert (sandbox / "copy.tgz").exists() and not (sandbox / "copy").exists()
        scheduler.ack(scheduler.update(f"t-fetch{index}", "TASK_FINISHED", timeout=20))
    stats = double.fetch_stats()
    cached = f"{http_server}/bundle.tar.gz"
    assert stats["fetches"][cached] == 1  # cache: true -> downloaded once
    assert stats["cache_hits"][cached] == 1
    assert stats["bytes"][cached] == (files / "bundle.tar.gz").stat().st_size
    assert stats["fetches"][f"{files}/bundle.tar.gz"] == 2


def test_fetch_failure_fails_the_task(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    executor = executor_info("e-nofetch", uris=[{"value": "/no/such/file.tar.gz"}])
    scheduler.launch(offer, [task_info("t-nofetch", offer, executor)])
    failed = scheduler.update("t-nofetch", "TASK_FAILED", timeout=10)
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert failed["message"].startswith("Failed to launch container: Failed to fetch all URIs")
    scheduler.ack(failed)


def test_executor_registration_timeout(scheduler_factory: Make) -> None:
    with MesosDouble(agents=1, executor_registration_timeout=0.5) as double:
        scheduler = scheduler_factory(double.master_address)
        offer = scheduler.offers()[0]
        executor = executor_info("e-silent")
        executor["command"]["value"] = "exec sleep 60"
        scheduler.launch(offer, [task_info("t-silent", offer, executor)])
        failure = scheduler.subscription.next("FAILURE", timeout=5)
        assert failure["failure"]["status"] == 9  # SIGKILL of the never-subscribed executor
        failed = scheduler.update("t-silent", "TASK_FAILED", timeout=5)
        assert failed["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
        assert failed["message"] == "Executor did not register within 500ms"


def test_unacknowledged_update_is_retried_and_next_held(scheduler_factory: Make) -> None:
    with MesosDouble(agents=1, status_update_retry_base=0.3) as double:
        scheduler = scheduler_factory(double.master_address)
        offer = scheduler.offers()[0]
        scheduler.launch(offer, [task_info("t-retry", offer, executor_info("e-retry"))])
        first = scheduler.subscription.next_event(
            lambda e: e["type"] == "UPDATE" and e["update"]["status"]["state"] == "TASK_RUNNING", 20
        )
        second = scheduler.subscription.next_event(
            lambda e: (
                e["type"] == "UPDATE" and e["update"]["status"]["task_id"]["value"] == "t-retry"
            ),
            5,
        )
        # Not acknowledged: the same update again after the backoff; FINISHED is held back.
        assert second.event == first.event
        assert 0.25 < second.t - first.t < 0.9
        status = first.event["update"]["status"]
        scheduler.ack(status)
        finished = scheduler.update("t-retry", "TASK_FINISHED", timeout=5)
        scheduler.ack(finished)
        assert double.state()["agent_processes"][0]["status_updates_resent"] >= 1


def test_environment_priorities(files: Path) -> None:
    agents = [AgentSpec(executor_environment_variables={"FROM_AGENT": "a", "BOTH": "agent"})]
    with MesosDouble(
        agents=agents, executor_environment_variables={"PATH": "/bin:/usr/bin"}
    ) as double:
        scheduler = Scheduler(double.master_address)
        try:
            offer = scheduler.offers()[0]
            variables = [
                {"name": "BOTH", "value": "command"},
                {"name": "FROM_COMMAND", "value": "c"},
            ]
            executor = executor_info("e-env", environment={"variables": variables})
            # env.txt appears whole (a rename): the shell's redirection creates it empty first
            executor["command"]["value"] = "env > env.tmp && mv env.tmp env.txt; exec sleep 30"
            scheduler.launch(offer, [task_info("t-env", offer, executor)])
            sandbox = _sandbox(double, "e-env")
            wait_for((sandbox / "env.txt").exists)
            env = dict(
                line.split("=", 1)
                for line in (sandbox / "env.txt").read_text().splitlines()
                if "=" in line
            )
            assert (env["FROM_AGENT"], env["BOTH"], env["FROM_COMMAND"]) == ("a", "command", "c")
            assert env["PATH"] == "/bin:/usr/bin"
            assert env["MESOS_CHECKPOINT"] == "1"
        finally:
            scheduler.close()


def test_executor_api_errors(double: MesosDouble, scheduler_factory: Make) -> None:
    scheduler = scheduler_factory(double.master_address)
    offer = scheduler.offers()[0]
    executor = executor_info("e-api")
    executor["command"]["value"] = "exec sleep 30"
    scheduler.launch(offer, [task_info("t-api", offer, executor)])
    _sandbox(double, "e-api")
    agent = Http(double.agent_addresses[0])
    base = {"framework_id": {"value": scheduler.framework_id}, "executor_id": {"value": "e-api"}}
    response = agent.request(
        "/api/v1/executor", {**base, "type": "MESSAGE", "message": {"data": ""}}
    )
    assert (response.status, response.text) == (403, "Executor is not subscribed")
    response = agent.request("/api/v1/executor", {**base, "type": "HEARTBEAT"})
    assert response.status == 202
    response = agent.request("/api/v1/executor", {"type": "SUBSCRIBE", "subscribe": {}})
    assert (response.status, response.text) == (
        400,
        "Failed to convert JSON into Call protobuf: "
        "Missing required fields: executor_id, framework_id",
    )
    response = agent.request("/api/v1/executor", method="GET", content_type=None)
    assert response.status == 405
