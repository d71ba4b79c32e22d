"""A job's CloudWatch log stream (``container.logStreamName``) copied into --logDir."""

from __future__ import annotations

from typing import Any

from .calls import Api, AwsError

#: GetLogEvents pages read at most per stream (10,000 events or 1 MB each)
MAX_PAGES = 1000


def copy_log(api: Api, group: str, stream: str, path: str) -> int:
    """Append the stream's events, oldest first, one line each, to ``path``; returns the
    lines written. GetLogEvents ends a stream by giving back the token it was sent.
    Raises AwsError (ResourceNotFoundException: no such stream) and OSError."""
    lines = 0
    token: str | None = None
    with open(path, "a", encoding="utf-8", errors="replace") as out:
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream,
                                      "startFromHead": True}
            if token is not None:
                kwargs["nextToken"] = token
            page = api.call(api.logs.get_log_events, **kwargs)
            events = page.get("events") or []
            out.writelines(f"{e.get('message', '')}\n" for e in events)
            lines += len(events)
            following = page.get("nextForwardToken")
            if not following or following == token or not events:
                break
            token = following
    return lines


def log_stream(job: Any) -> str | None:
    """The log stream of a JobDetail's last attempt (its container's, else the attempt's)."""
    def field(value: Any, key: str) -> Any:
        return value.get(key) if isinstance(value, dict) else None

    stream = field(field(job, "container"), "logStreamName")
    attempts = field(job, "attempts")
    if not stream and isinstance(attempts, list) and attempts:
        stream = field(field(attempts[-1], "container"), "logStreamName")
    return stream if isinstance(stream, str) and stream else None


__all__ = ["AwsError", "copy_log", "log_stream"]
