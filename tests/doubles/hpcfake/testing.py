"""Running a fake's programs from tests: its bin/ first on PATH, a state directory of its
own, quick knobs, and bounded polls (never fixed sleeps)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .control import vanish
from .store import Store

ROOT = Path(__file__).resolve().parents[3]


class FakeCluster:
    """One fake cluster for one test: ``run(argv)`` runs a program of the fake."""

    def __init__(self, bin_dir: str, state_var: str, state_dir: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.state_var = state_var
        self.env = dict(os.environ)
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")
        self.env["PYTHONPATH"] = str(ROOT) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.env[state_var] = str(state_dir)
        self.env.update(env or {})

    def run(self, argv: list[str], *, input: str | None = None, cwd: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, input=input, capture_output=True, text=True, env=self.env,
                              cwd=cwd or str(self.state_dir), timeout=60, check=check)

    def vanish(self, job_id: str) -> list[str]:
        return vanish(Store(self.state_dir), lambda j: j["id"] == job_id)

    def stop(self) -> None:
        """Kill whatever the test left running (runners and jobs)."""
        store = Store(self.state_dir)
        with store.locked() as state:
            jobs = list(state["jobs"].values())
            state["jobs"] = {}
        for job in jobs:
            for key, group in (("pid", True), ("runner_pid", False)):
                pid = job.get(key)
                if pid:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        (os.killpg if group else os.kill)(int(pid), signal.SIGKILL)
