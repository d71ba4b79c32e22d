"""A job's output back to the scheduler's log directory (Mesos: the sandbox may be out
of the user's reach). A small log rides in the task's result; a larger one goes to the
resource server before the result, so a job is reported only once its log is there.
Over the cap, the tail is kept behind a line saying how much was dropped."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: logs up to this size ride in the status update (base64 in TaskResult.log)
INLINE_MAX = 4096


def dropped_note(dropped: int) -> bytes:
    return f"[mesobatch: the first {dropped} bytes of this log were dropped]\n".encode()


@dataclass(frozen=True, slots=True)
class CollectedLog:
    """A job's log as read after its end."""

    size: int  #: bytes the job wrote
    body: bytes  #: what goes back: all of it, or the note and the last ``cap`` bytes

    @property
    def inline(self) -> bool:
        return len(self.body) <= INLINE_MAX


def collect(path: str, cap: int) -> CollectedLog | None:
    """The log at ``path``, capped to its last ``cap`` bytes; None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - cap)
            f.seek(start)
            tail = f.read(cap)
    except OSError:
        return None
    return CollectedLog(size, (dropped_note(start) if start else b"") + tail)
