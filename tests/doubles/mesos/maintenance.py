"""Maintenance schedule bookkeeping (operator UPDATE_MAINTENANCE_SCHEDULE, inverse offers)."""

from __future__ import annotations

from .wire import JsonDict, now


class Maintenance:
    def __init__(self) -> None:
        self.schedule: JsonDict = {}
        # (hostname, ip) -> framework_id -> {status, framework_id, timestamp}
        self.answers: dict[tuple[str, str], dict[str, JsonDict]] = {}

    @property
    def windows(self) -> list[JsonDict]:
        windows: list[JsonDict] = self.schedule.get("windows", [])
        return windows

    def set_schedule(self, schedule: JsonDict) -> None:
        self.schedule = schedule
        machines = {self._key(m) for w in self.windows for m in w.get("machine_ids", [])}
        self.answers = {k: v for k, v in self.answers.items() if k in machines}

    @staticmethod
    def _key(machine: JsonDict) -> tuple[str, str]:
        return (machine.get("hostname", ""), machine.get("ip", ""))

    def unavailability_for(self, hostname: str, ip: str) -> JsonDict | None:
        """Machines match only when both hostname and ip match the agent's."""
        for window in self.windows:
            for machine in window.get("machine_ids", []):
                if self._key(machine) == (hostname, ip):
                    unavailability: JsonDict = window["unavailability"]
                    return unavailability
        return None

    def machine_label(self, hostname: str, ip: str) -> str | None:
        if self.unavailability_for(hostname, ip) is None:
            return None
        return f"{hostname} ({ip})"

    def record_answer(self, hostname: str, ip: str, framework_id: str, answer: str) -> None:
        self.answers.setdefault((hostname, ip), {})[framework_id] = {
            "status": answer,
            "framework_id": {"value": framework_id},
            "timestamp": {"nanoseconds": int(now() * 1e9)},
        }

    def status(self) -> JsonDict:
        machines = []
        for window in self.windows:
            for machine in window.get("machine_ids", []):
                entry: JsonDict = {"id": machine}
                statuses = list(self.answers.get(self._key(machine), {}).values())
                if statuses:
                    entry["statuses"] = statuses
                machines.append(entry)
        return {"draining_machines": machines} if machines else {}
