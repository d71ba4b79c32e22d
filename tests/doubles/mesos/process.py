"""Run the double as a separate process and drive its hooks over the control API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]


class ControlClient:
    """Blocking client of ``/__double__/*`` (stdlib only, usable from any process)."""

    def __init__(self, master_address: str, timeout: float = 30.0) -> None:
        self.base = f"http://{master_address}/__double__"
        self.timeout = timeout

    def _request(self, path: str, body: dict[str, Any] | None, retry_for: float) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        deadline = time.monotonic() + retry_for
        while True:
            request = urllib.request.Request(
                self.base + path,
                data=data,
                method="POST" if data is not None else "GET",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except (ConnectionError, urllib.error.URLError) as exc:
                if isinstance(exc, urllib.error.HTTPError) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def state(self, retry_for: float = 5.0) -> dict[str, Any]:
        state: dict[str, Any] = self._request("/state", None, retry_for)
        return state

    def hook(self, name: str, retry_for: float = 5.0, **args: Any) -> Any:
        return self._request("/" + name, args, retry_for)["result"]

    def kill_executor(
        self, executor_id: str, framework_id: str | None = None, signal: int = 9
    ) -> bool:
        return bool(
            self.hook(
                "kill_executor", executor_id=executor_id, framework_id=framework_id, signal=signal
            )
        )

    def lose_agent(
        self, agent: int | str = 0, restart_after: float | None = None, wait: bool = False
    ) -> list[dict[str, Any]] | None:
        """kill -9 of the agent and its executor processes (with ``wait``: what was killed)."""
        killed: list[dict[str, Any]] | None = self.hook(
            "lose_agent", agent=agent, restart_after=restart_after, wait=wait
        )
        return killed

    def kill_random_executor(
        self,
        agent: int | str | None = None,
        framework_id: str | None = None,
        signal: int = 9,
        seed: int | None = None,
    ) -> dict[str, Any] | None:
        """kill -9 of a running executor picked at random: its ids, agent, pid and the pids
        of its container just before (``tree``); None when no executor runs."""
        killed: dict[str, Any] | None = self.hook(
            "kill_random_executor",
            agent=agent,
            framework_id=framework_id,
            signal=signal,
            seed=seed,
        )
        return killed

    def kill_process(self, signal: int = 9) -> int:
        """kill -9 of the double's whole process (e.g. the leading master's); returns its pid."""
        pid: int = self.hook("kill_process", signal=signal)
        return pid

    def framework_counters(self, framework_id: str | None = None) -> dict[str, Any]:
        """Per framework id (or of one): calls, events, UPDATE events by state, executor
        calls and UPDATEs by state, events to executors, tasks launched (``traffic``)."""
        counters: dict[str, Any] = self._request("/framework_counters", None, 5.0)
        if framework_id is not None:
            return dict(counters.get(framework_id, {}))
        return counters

    def warnings(self) -> dict[str, Any]:
        """The master's executor-resource warnings: counts and the latest texts."""
        warnings: dict[str, Any] = self._request("/warnings", None, 5.0)
        return warnings

    def restart_agent(
        self, agent: int | str = 0, downtime: float = 0.0, wait: bool = False
    ) -> None:
        self.hook("restart_agent", agent=agent, downtime=downtime, wait=wait)

    def drop_subscription(self, framework_id: str | None = None) -> list[str]:
        dropped: list[str] = self.hook("drop_subscription", framework_id=framework_id)
        return dropped

    def restart_master(self, downtime: float = 0.0) -> None:
        self.hook("restart_master", downtime=downtime)

    def leader(self, retry_for: float = 5.0) -> str | None:
        """``host:port`` of the master this process's master believes leads."""
        leader: str | None = self.state(retry_for)["master"]["leader"]
        return leader

    def elected(self, retry_for: float = 5.0) -> bool:
        return bool(self.state(retry_for)["master"]["elected"])

    def mark_agent_unreachable(self, agent: int | str = 0) -> None:
        self.hook("mark_agent_unreachable", agent=agent)


class DoubleProcess:
    """``python -m tests.doubles.mesos`` as a child process; ``with DoubleProcess(...) as d``."""

    def __init__(
        self, *args: str, agents: int = 1, port: int = 0, python: str = sys.executable
    ) -> None:
        self.argv = [
            python,
            "-m",
            "tests.doubles.mesos",
            "--port",
            str(port),
            "--agents",
            str(agents),
            *args,
        ]
        self.process: subprocess.Popen[str] | None = None
        self.master_address = ""
        self.agent_addresses: list[str] = []
        self.agent_ids: list[str] = []
        self.control: ControlClient | None = None

    def start(self, timeout: float = 60.0) -> DoubleProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            words = line.split()
            if words[:1] == ["master"]:
                self.master_address = words[1]
            elif words[:1] == ["agent"]:
                self.agent_ids.append(words[1])
                self.agent_addresses.append(words[2])
            elif words[:1] == ["ready"]:
                break
            if time.monotonic() > deadline:
                break
        if not self.master_address:
            self.stop()
            raise RuntimeError("the Mesos double did not start")
        self.control = ControlClient(self.master_address)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> float:
        """Signal the whole double (kill -9 by default) and reap it; returns ``time.time()``
        of the signal. Its executors, in their own process groups, are left running."""
        assert self.process is not None
        killed_at = time.time()
        self.process.send_signal(sig)
        self.process.wait(30)
        return killed_at

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> DoubleProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_leader(
    processes: list[DoubleProcess], timeout: float = 30.0, exclude: DoubleProcess | None = None
) -> DoubleProcess:
    """The process whose master is elected, once one is (and all others agree on it)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in processes if p.alive and p is not exclude and p.control is not None]
        states = {}
        for process in alive:
            assert process.control is not None
            with contextlib.suppress(OSError):
                states[process.master_address] = process.control.state(retry_for=0)["master"]
        leaders = [p for p in alive if states.get(p.master_address, {}).get("elected")]
        if len(leaders) == 1:
            address = leaders[0].master_address
            if all(state["leader"] == address for state in states.values()):
                return leaders[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no agreed leader among {[p.master_address for p in alive]}")
        time.sleep(0.02)
