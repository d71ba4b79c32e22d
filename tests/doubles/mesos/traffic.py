"""Per-framework message counters: what a framework and its executors send and receive.

The master counts, per framework id, the scheduler calls it accepted for processing (by type),
the events it wrote to the framework's subscription stream (by type) and, among them, the UPDATE
events by task state, and the tasks it launched. Each agent counts, per framework id, the calls
its executors made (by type), their UPDATE calls by task state, and the events it wrote to the
executors' streams. ``Cluster.state()["framework_counters"]`` merges what the processes's master
and agents counted; ``per_task`` turns one entry into figures per launched task (issue 16: status
updates and acknowledgements per task).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FIELDS = ("calls", "events", "updates", "executor_calls", "executor_updates", "executor_events")


def bump(table: dict[str, int], key: str, amount: int = 1) -> None:
    table[key] = table.get(key, 0) + amount


@dataclass
class FrameworkTraffic:
    """The counters of one framework id (one side: master or agent)."""

    calls: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    updates: dict[str, int] = field(default_factory=dict)  # UPDATE events by task state
    executor_calls: dict[str, int] = field(default_factory=dict)
    executor_updates: dict[str, int] = field(default_factory=dict)  # executor UPDATEs by state
    executor_events: dict[str, int] = field(default_factory=dict)
    tasks_launched: int = 0

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        bump(self.events, kind)
        if kind == "UPDATE":
            bump(self.updates, event["update"]["status"]["state"])

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: dict(getattr(self, name)) for name in FIELDS}
        out["tasks_launched"] = self.tasks_launched
        return out


def merge(into: dict[str, dict[str, Any]], framework_id: str, traffic: FrameworkTraffic) -> None:
    """Add one side's counters of ``framework_id`` to a ``framework_counters`` mapping."""
    entry = into.setdefault(framework_id, FrameworkTraffic().as_dict())
    for name in FIELDS:
        for key, value in getattr(traffic, name).items():
            bump(entry[name], key, value)
    entry["tasks_launched"] += traffic.tasks_launched


def per_task(counters: dict[str, Any], tasks: int | None = None) -> dict[str, float]:
    """Messages per launched task from one ``framework_counters`` entry.

    ``status_updates`` are the executors' UPDATE calls, ``update_events`` what reached the
    scheduler (retries and master-generated updates included), ``acknowledgements`` the
    scheduler's ACKNOWLEDGE calls. ``tasks`` defaults to the tasks the master launched.
    """
    launched = tasks if tasks is not None else counters.get("tasks_launched", 0)
    if not launched:
        return {}
    calls = counters.get("calls", {})

    def each(value: int) -> float:
        return value / launched

    return {
        "tasks": float(launched),
        "status_updates": each(sum(counters.get("executor_updates", {}).values())),
        "update_events": each(counters.get("events", {}).get("UPDATE", 0)),
        "acknowledgements": each(calls.get("ACKNOWLEDGE", 0)),
        "updates_and_acks": each(
            sum(counters.get("executor_updates", {}).values()) + calls.get("ACKNOWLEDGE", 0)
        ),
        "accept_calls": each(calls.get("ACCEPT", 0)),
        "decline_calls": each(calls.get("DECLINE", 0)),
        "revive_calls": each(calls.get("REVIVE", 0)),
        "suppress_calls": each(calls.get("SUPPRESS", 0)),
        "offers_events": each(counters.get("events", {}).get("OFFERS", 0)),
        "executor_acknowledged_events": each(
            counters.get("executor_events", {}).get("ACKNOWLEDGED", 0)
        ),
    }
