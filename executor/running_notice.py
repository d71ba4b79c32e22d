"""TASK_RUNNING only for tasks that are still running a little after their start.

Each status update costs the agent, the master and the scheduler a round of messages and
an acknowledgement. A job that ends within a few tens of milliseconds is better told by
its terminal update alone (Mesos takes a terminal update with nothing before it), so
RUNNING waits ``delay`` seconds and is said only if the task still runs then.

One thread serves every task: the delay is the same for all, so the tasks come due in
the order they started (a FIFO, no heap), and it sleeps until the first is due.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

#: tasks coming due within this much of the first are told in the same wake-up
_COALESCE = 0.005


class RunningNotices:
    """Calls ``say(task_id)`` ``delay`` seconds after ``started(task_id)``; ``say``
    decides (under its own lock) whether the task still runs. ``delay`` 0: at once."""

    def __init__(self, say: Callable[[str], None], delay: float) -> None:
        self.delay = delay
        self._say = say
        self._due: deque[tuple[float, str]] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def started(self, task_id: str) -> None:
        if self.delay <= 0:
            self._say(task_id)
            return
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="running-notices",
                                                daemon=True)
                self._thread.start()
            self._due.append((time.monotonic() + self.delay, task_id))
            if len(self._due) == 1:  # the thread sleeps without a deadline
                self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (
                        not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._closed:
                    return
                horizon = time.monotonic() + _COALESCE
                due: list[str] = []
                while self._due and self._due[0][0] <= horizon:
                    due.append(self._due.popleft()[1])
            for task_id in due:
                self._say(task_id)
