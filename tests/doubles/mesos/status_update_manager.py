"""The agent's task status update manager: per-task ordered, acknowledged, retried delivery.

One stream per (framework, task). Only the head of a stream is in flight; the next update is
held until the scheduler acknowledges the head. An unacknowledged head is re-sent with
exponential backoff (10 s doubling to 10 min in Mesos). While the agent has no master the
manager is paused; on (re-)registration every head is flushed (twice, as a real agent does).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .schema import TERMINAL_STATES
from .wire import JsonDict, b64decode_strict

Forward = Callable[[str, JsonDict], None]


@dataclass
class _Stream:
    framework_id: str
    task_id: str
    checkpoint: bool
    pending: deque[tuple[bytes, JsonDict]] = field(default_factory=deque)
    acknowledged: set[bytes] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None
    backoff: float = 0.0
    terminated: bool = False


class StatusUpdateManager:
    def __init__(
        self, forward: Forward, retry_base: float = 10.0, retry_max: float = 600.0
    ) -> None:
        self._forward = forward
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._streams: dict[tuple[str, str], _Stream] = {}
        self.paused = True
        self.resent = 0

    def update(self, framework_id: str, status: JsonDict, checkpoint: bool) -> None:
        """Accept an update (duplicates by uuid are ignored); forward it if it is the head."""
        key = (framework_id, status["task_id"]["value"])
        stream = self._streams.get(key)
        if stream is None:
            stream = _Stream(framework_id, key[1], checkpoint)
            self._streams[key] = stream
        uuid = b64decode_strict(status["uuid"])
        if uuid in stream.acknowledged or any(u == uuid for u, _ in stream.pending):
            return
        if status["state"] in TERMINAL_STATES:
            stream.terminated = True
        stream.pending.append((uuid, status))
        if len(stream.pending) == 1:
            self._send_head(stream, reset=True)

    def acknowledge(self, framework_id: str, task_id: str, uuid_b64: str) -> tuple[bool, bool]:
        """Apply a scheduler ACK; return (matched the head, task stream finished)."""
        stream = self._streams.get((framework_id, task_id))
        if stream is None or not stream.pending:
            return False, False
        uuid = b64decode_strict(uuid_b64)
        if stream.pending[0][0] != uuid:
            return False, False
        stream.pending.popleft()
        stream.acknowledged.add(uuid)
        self._cancel(stream)
        if stream.pending:
            self._send_head(stream, reset=True)
            return True, False
        if stream.terminated:
            del self._streams[(framework_id, task_id)]
            return True, True
        return True, False

    def pending(self, framework_id: str, task_id: str) -> list[JsonDict]:
        stream = self._streams.get((framework_id, task_id))
        return [status for _, status in stream.pending] if stream is not None else []

    def has_pending(self, framework_id: str, task_id: str) -> bool:
        stream = self._streams.get((framework_id, task_id))
        return stream is not None and bool(stream.pending)

    def pause(self) -> None:
        self.paused = True
        for stream in self._streams.values():
            self._cancel(stream)

    def resume(self, times: int = 1, framework_id: str | None = None) -> None:
        """Flush every stream's head ``times`` times (re-registration flushes twice)."""
        self.paused = False
        for stream in list(self._streams.values()):
            if framework_id is not None and stream.framework_id != framework_id:
                continue
            if stream.pending:
                for _ in range(times):
                    self._send_head(stream, reset=True)

    def drop_framework(self, framework_id: str) -> None:
        for key in [k for k in self._streams if k[0] == framework_id]:
            self._cancel(self._streams.pop(key))

    def drop_uncheckpointed(self) -> None:
        for key in [k for k, s in self._streams.items() if not s.checkpoint]:
            self._cancel(self._streams.pop(key))

    def _send_head(self, stream: _Stream, *, reset: bool) -> None:
        if self.paused or not stream.pending:
            return
        if reset:
            stream.backoff = self.retry_base
        self._forward(stream.framework_id, stream.pending[0][1])
        self._cancel(stream)
        loop = asyncio.get_running_loop()
        stream.timer = loop.call_later(stream.backoff, self._retry, stream)

    def _retry(self, stream: _Stream) -> None:
        stream.timer = None
        if self.paused or not stream.pending:
            return
        self.resent += 1
        stream.backoff = min(stream.backoff * 2, self.retry_max)
        self._send_head(stream, reset=False)

    @staticmethod
    def _cancel(stream: _Stream) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
