"""Our executors on the agents: which one runs where, and which tasks it holds."""

from __future__ import annotations

import threading


class Executors:
    """One executor per agent at a time, named per workflow (thread-safe).

    Launches record their tasks here; a lost executor gives back the tasks it held, and
    the next launch on its agent gets a new executor id, so that a late FAILURE of the
    old one can never be confused with the new one.
    """

    def __init__(self, workflow_id: str) -> None:
        self._lock = threading.Lock()
        self._workflow_id = workflow_id
        self._on_agent: dict[str, str] = {}  # agent id -> our executor's id there
        self._tasks: dict[str, set[str]] = {}  # executor id -> its live task ids
        self._serial = 0

    def on(self, agent_id: str) -> str | None:
        """Our executor's id on an agent, if one runs (or was launched) there."""
        with self._lock:
            return self._on_agent.get(agent_id)

    def for_launch(self, agent_id: str) -> str:
        """The executor id to launch tasks on an agent with (a new one if none runs)."""
        with self._lock:
            executor_id = self._on_agent.get(agent_id)
            if executor_id is None:
                self._serial += 1
                executor_id = f"mesobatch-{self._workflow_id}-{self._serial}"
                self._on_agent[agent_id] = executor_id
            return executor_id

    def launched(self, executor_id: str, task_ids: list[str]) -> None:
        with self._lock:
            self._tasks.setdefault(executor_id, set()).update(task_ids)

    def ended(self, task_id: str) -> None:
        with self._lock:
            for tasks in self._tasks.values():
                tasks.discard(task_id)

    def lost(self, executor_id: str) -> set[str]:
        """The executor is gone: forget it; the live tasks it held."""
        with self._lock:
            for agent_id, running in list(self._on_agent.items()):
                if running == executor_id:
                    del self._on_agent[agent_id]
            return self._tasks.pop(executor_id, set())

    def agent_lost(self, agent_id: str) -> None:
        """The agent is gone: a launch there after it comes back starts a new executor."""
        with self._lock:
            self._on_agent.pop(agent_id, None)

    def all_lost(self) -> list[str]:
        """Every executor's live tasks, now given up (the framework has ended)."""
        with self._lock:
            tasks = sorted(t for held in self._tasks.values() for t in held)
            self._tasks.clear()
            return tasks
