"""Test hooks no real command offers: make a job vanish, or end it for an admin's reason."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

from .runner import wake
from .store import FINISHED, HELD, PENDING, Job, Store

Match = Callable[[Job], bool]


def vanish(store: Store, match: Match) -> list[str]:
    """Forget the matching jobs everywhere (queue and history) and kill what runs.

    The vanished-job rule needs this: a job the system no longer knows at all, as after a
    controller that lost its state or accounting that never recorded the job."""
    gone: list[Job] = []
    with store.locked() as state:
        for table in ("jobs", "history"):
            for key, job in list(state.get(table, {}).items()):
                if match(job):
                    del state[table][key]
                    gone.append(job)
    for job in gone:
        if job.get("pid"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(job["pid"]), signal.SIGKILL)
        wake(job)
    return [j["id"] for j in gone]


def terminate(store: Store, match: Match, reason: str) -> list[str]:
    """End the matching jobs as the system would for ``reason`` (a running job is killed
    with its plan for that reason; a waiting one ends at once)."""
    hit: list[Job] = []
    with store.locked() as state:
        for job in state["jobs"].values():
            if not match(job) or job["state"] == FINISHED:
                continue
            if job["state"] in (PENDING, HELD):
                job.update(state=FINISHED, end_time=time.time(), kill_reason=reason)
            else:
                job["kill_requested"] = reason
            hit.append(job)
    for job in hit:
        wake(job)
    return [j["id"] for j in hit]
