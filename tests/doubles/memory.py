"""Resident memory of process sessions, for the doubles' memory watchdogs.

Each job or container runs in its own session (``start_new_session=True``), so what it uses
is the sum over the processes of that session, children included. One pass over ``/proc``
answers for every watched session; passes are shared for ``max_age`` seconds, so a watchdog
over many jobs costs one scan per tick instead of one per job.
"""

from __future__ import annotations

import os
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")
_cache: list[tuple[float, dict[int, int]]] = [(0.0, {})]  # the last scan, shared by threads


def rss_by_session(max_age: float = 0.05) -> dict[int, int]:
    """Session id -> bytes resident, over all processes readable in /proc."""
    stamp, found = _cache[0]
    if time.monotonic() - stamp < max_age:
        return found
    totals: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # the command name (field 2) may hold spaces: split after its closing parenthesis
        fields = raw[raw.rfind(b")") + 2:].split()
        session, rss_pages = int(fields[3]), int(fields[21])
        totals[session] = totals.get(session, 0) + rss_pages * _PAGE
    _cache[0] = (time.monotonic(), totals)
    return totals


def session_rss(session: int, max_age: float = 0.05) -> int:
    return rss_by_session(max_age).get(session, 0)
