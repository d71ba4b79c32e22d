"""Whether processes the tests started (or their jobs did) still run."""

from __future__ import annotations

import time
from pathlib import Path


def running(pid: int) -> bool:
    """Does ``pid`` run? A zombie waiting for its parent to reap it does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def still_running(pids: list[int]) -> list[int]:
    """Those of ``pids`` that run."""
    return [p for p in pids if running(p)]


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` s for every pid to stop running; those still running."""
    deadline = time.monotonic() + timeout
    while (left := still_running(pids)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return left
