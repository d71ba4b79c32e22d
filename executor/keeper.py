"""The keeper: kills a runner's jobs when the runner dies, however it dies.

A job runs in a session of its own, so nothing takes it down with the process that
started it: not the Mesos posix launcher (which kills the executor's tree, and finds no
tree once the executor is gone), not a SIGKILL of the local backend's scheduler. The
keeper is a small process the runner starts in a session of its own too, its stdin the
read end of a pipe whose write end only the runner holds. The runner tells it each
job's process group as it starts (``+PGID``) and ends (``-PGID``); when the pipe ends,
the runner is gone, and the keeper sends SIGKILL to every group it still knows (a job
that traps SIGTERM, and the children it forked, included), repeats until they are gone,
and exits.

It has no thread and imports only the standard library's os and signal: it runs as a
script (``python -I -S keeper.py``), not as a part of the package. Signals that stop a
runner politely (SIGTERM, SIGINT, SIGHUP) are ignored here: the runner then kills its
jobs itself and closes the pipe, and only the pipe's end makes the keeper act.
"""

import os
import signal
import time

#: How long the keeper keeps killing groups that still have members (zombies count,
#: and a reparented zombie may wait for its reaper).
KILL_FOR = 2.0
_INTERVAL = 0.01


def kill_groups(groups: set[int], until: float) -> None:
    """SIGKILL each group until none is left or ``until`` (monotonic) has passed.

    A first SIGKILL already takes every member: a process forked while the signal is
    sent gets it too. Repeating covers a member that a ptrace or uninterruptible sleep
    held, and ends once the kernel says the groups are empty."""
    while groups:
        for pgid in list(groups):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:  # ESRCH: gone; EPERM: not ours any more
                groups.discard(pgid)
        if not groups or time.monotonic() >= until:
            return
        time.sleep(_INTERVAL)


def read_groups(fd: int) -> set[int]:
    """The groups watched when ``fd`` ends: ``+PGID`` adds, ``-PGID`` removes."""
    groups: set[int] = set()
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return groups
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            try:
                pgid = int(line[1:])
            except ValueError:
                continue  # nothing the runner writes: ignore rather than die
            if line[:1] == b"+" and pgid > 1:
                groups.add(pgid)
            elif line[:1] == b"-":
                groups.discard(pgid)


#: Ignored here; the runner starts the keeper with them blocked, so none is lost to
#: the moment before this script ignores them (a pending one is dropped then).
POLITE = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main() -> int:
    for sig in POLITE:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, POLITE)
    os.chdir("/")  # hold no sandbox or work directory open
    groups = read_groups(0)
    kill_groups(groups, time.monotonic() + KILL_FOR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
