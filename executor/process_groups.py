"""Process groups: every task runs in a group of its own, so one signal to the group
reaches everything the task started; and the groups a task left members in when it
ended, which the runner kills until they are gone before it closes."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``; a group already gone is no error."""
    try:
        os.killpg(pgid, sig)
    except OSError as e:
        if e.errno not in (errno.ESRCH, errno.EPERM):
            raise


def group_exists(pgid: int) -> bool:
    """Does process group ``pgid`` still have a member (a zombie counts)?"""
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    return True


class LeftoverGroups:
    """Groups of ended tasks that still had members: killed, but maybe not gone yet.

    A group id is not handed out again while the group exists, so signalling the ids
    remembered here never reaches anybody else's processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()

    def add(self, pgid: int) -> None:
        """Remember ``pgid`` if it still has members (call once its leader is reaped)."""
        with self._lock:
            self._groups = {g for g in self._groups if group_exists(g)}
            if group_exists(pgid):
                self._groups.add(pgid)

    def kill_until_gone(self, deadline: float) -> bool:
        """SIGKILL the remembered groups until none is left or ``deadline`` (monotonic)
        passes; True if none is left. A bounded poll: their members are not our
        children, so nothing tells us when the last one is gone."""
        while True:
            with self._lock:
                self._groups = {g for g in self._groups if group_exists(g)}
                for g in self._groups:
                    signal_group(g, signal.SIGKILL)
                if not self._groups:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
