"""Process groups: signalling a group, and groups an ended task left members in."""

from __future__ import annotations

import os
import signal
import time

from mesobatch.executor.process_groups import LeftoverGroups, group_exists, signal_group
from mesobatch.executor.spawn import spawn

PATH = {"PATH": os.environ["PATH"]}


def leader(command: str) -> int:
    """A shell in a session (so a group) of its own, reaped once it exits."""
    pid = spawn("/bin/sh", ["/bin/sh", "-c", command], PATH,
                [("open", 0, os.devnull, os.O_RDONLY, 0),
                 ("open", 1, os.devnull, os.O_WRONLY, 0)])
    os.waitpid(pid, 0)
    return pid


def test_signalling_a_group_that_is_gone_is_no_error() -> None:
    pid = leader("exit 0")
    assert not group_exists(pid)
    signal_group(pid, signal.SIGKILL)


def test_leftover_groups_are_killed_until_gone() -> None:
    groups = LeftoverGroups()
    lone = leader("exit 0")
    groups.add(lone)  # no member left: nothing to remember
    left = leader("trap '' TERM; sleep 60 & exit 0")  # the sleep stays in the group
    assert group_exists(left)
    groups.add(left)
    assert groups.kill_until_gone(time.monotonic() + 10)
    assert not group_exists(left)


def test_a_deadline_already_passed_still_kills_once() -> None:
    groups = LeftoverGroups()
    left = leader("sleep 60 & exit 0")
    groups.add(left)
    groups.kill_until_gone(time.monotonic() - 1)
    deadline = time.monotonic() + 10
    while group_exists(left):  # the SIGKILL sent takes a moment to land
        assert time.monotonic() < deadline
        time.sleep(0.01)
