"""The double as a separate process: CLI output, control API hooks, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.doubles.mesos import DoubleProcess
from tests.processes import running

from .wire_client import Http, Scheduler, executor_info, task_info

REPO = Path(__file__).resolve().parents[4]


def test_cli_control_api_and_cleanup() -> None:
    with DoubleProcess(
        "--allocation-interval", "0.2", "--agent-attributes", "rack:r1", agents=2
    ) as double:
        assert double.master_address.startswith("127.0.0.1:")
        assert len(double.agent_addresses) == 2
        control = double.control
        assert control is not None
        state = control.state()
        assert len(state["agents"]) == 2
        scheduler = Scheduler(double.master_address)
        offers = scheduler.offers()
        assert {o["attributes"][0]["text"]["value"] for o in offers} == {"r1"}
        offer = offers[0]
        scheduler.launch(offer, [task_info("t-proc", offer, executor_info("e-proc"), mode="run")])
        scheduler.ack(scheduler.update("t-proc", "TASK_RUNNING", timeout=20))
        pids = control.state()["executor_pids"]
        pid = next(iter(pids.values()))
        assert running(pid)
        assert control.kill_executor("e-proc") is True
        failure = scheduler.subscription.next("FAILURE", timeout=10)
        assert failure["failure"]["status"] == 35072
        scheduler.ack(scheduler.update("t-proc", "TASK_FAILED", timeout=5))
        # A second executor, then SIGTERM: nothing the double started may survive.
        offer = scheduler.offers(timeout=10)[0]
        scheduler.launch(offer, [task_info("t-left", offer, executor_info("e-left"), mode="run")])
        scheduler.ack(scheduler.update("t-left", "TASK_RUNNING", timeout=20))
        left = control.state()["executor_pids"]
        assert control.drop_subscription() == [scheduler.framework_id]
        scheduler.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(running(p) for p in left.values()):
        time.sleep(0.05)
    assert not [p for p in left.values() if running(p)]


def test_control_restart_master_in_background() -> None:
    # Fast mode: the agent re-registers at once, not after its 75 s ping timeout.
    with DoubleProcess("--fast-agent-reregistration", agents=1) as double:
        control = double.control
        assert control is not None
        before = control.state()["master"]["id"]
        control.restart_master(downtime=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                state = control.state(retry_for=5)
            except OSError:
                continue
            if state["master"]["id"] != before and state["agents"]:
                break
            time.sleep(0.05)
        assert state["master"]["id"] != before and len(state["agents"]) == 1


def test_cli_sigint_prints_and_exits() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.doubles.mesos", "--port", "0", "--agents", "1"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(3)]
    assert lines[0].startswith("master 127.0.0.1:")
    assert lines[1].startswith("agent ") and lines[2].strip() == "ready"
    address = lines[0].split()[1]
    assert Http(address).request("/api/v1", {"type": "GET_HEALTH"}).status == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    process.stdout.close()
