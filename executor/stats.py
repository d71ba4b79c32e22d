"""Node statistics: psutil when installed, /proc otherwise (the executor bundle may run
on an agent that has nothing but python3)."""

from __future__ import annotations

import os


def cpu_count() -> float:
    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return float(os.cpu_count() or 1)


def cpu_load() -> float:
    """The one-minute load average as a fraction of the cores (0..1)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return 0.0
    return min(1.0, load / max(1.0, cpu_count()))


def memory() -> tuple[int, int]:
    """(used, total) bytes of memory."""
    try:
        import psutil  # noqa: PLC0415

        vm = psutil.virtual_memory()
        return int(vm.total - vm.available), int(vm.total)
    except ImportError:
        return _proc_meminfo()


def _proc_meminfo() -> tuple[int, int]:
    info: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                info[key] = int(parts[0]) * 1024
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0))
    return total - available, total
