"""Wire-level helpers shared by the master and the agents: JSON, RecordIO, ids, durations.

Mesos renders JSON compactly, with doubles always carrying a fraction (``15.0``) and the
proto field order; callers build dicts in that order and these helpers only serialise.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# Compact JSON as Mesos renders it; orjson (when installed) renders the same bytes faster.
dumps: Callable[[Any], bytes] = _stdlib_dumps
loads: Callable[[bytes | str], Any] = json.loads
try:
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    dumps = orjson.dumps
    loads = orjson.loads

JsonDict = dict[str, Any]

_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def record(event: JsonDict) -> bytes:
    """One RecordIO record: decimal byte length, LF, the JSON bytes (no trailing newline)."""
    body = dumps(event)
    return b"%d\n%s" % (len(body), body)


class RecordIODecoder:
    """Incremental RecordIO decoder (records may span chunks; chunks may hold several)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                return out
            size = int(self._buffer[:newline])
            end = newline + 1 + size
            if len(self._buffer) < end:
                return out
            out.append(bytes(self._buffer[newline + 1 : end]))
            del self._buffer[:end]


if sys.version_info >= (3, 11):

    def _strict_b64(text: str) -> bytes:
        return binascii.a2b_base64(text, strict_mode=True)

else:  # pragma: no cover - Python 3.10

    def _strict_b64(text: str) -> bytes:
        return base64.b64decode(text, validate=True)


def b64decode_strict(text: str) -> bytes:
    """Decode like stout: stop at '=', skip whitespace, reject other non-alphabet characters."""
    try:  # canonical input (the common case) takes the C path
        return _strict_b64(text)
    except (binascii.Error, ValueError, TypeError):
        pass
    kept: list[str] = []
    for char in text:
        if char == "=":
            break
        if char.isspace():
            continue
        if char not in _B64_ALPHABET:
            raise ValueError(f"Invalid character '{char}'")
        kept.append(char)
    body = "".join(kept)
    if len(body) % 4 == 1:  # stout drops a dangling sextet
        body = body[:-1]
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error as exc:  # pragma: no cover - alphabet already checked
        raise ValueError(str(exc)) from exc


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def is_valid_uuid_bytes(raw: bytes) -> bool:
    """stout's UUID::fromBytes: 16 bytes whose version nibble names a known UUID version."""
    return len(raw) == 16 and 1 <= raw[6] >> 4 <= 5


def new_uuid_b64() -> str:
    return b64encode(uuid.uuid4().bytes)


def new_uuid() -> str:
    return str(uuid.uuid4())


def now() -> float:
    return time.time()


def format_duration(seconds: float) -> str:
    """Render like stout's Duration (``5secs``, ``1mins``, ``15mins``, ``500ms``)."""
    units = (
        (7 * 86400.0, "weeks"),
        (86400.0, "days"),
        (3600.0, "hrs"),
        (60.0, "mins"),
        (1.0, "secs"),
        (1e-3, "ms"),
        (1e-6, "us"),
    )
    for size, name in units:
        if seconds >= size:
            return f"{_trim(seconds / size)}{name}"
    return f"{_trim(seconds * 1e9)}ns"


def _trim(value: float) -> str:
    text = f"{value:.6g}"
    return text


def format_scalar(value: float) -> str:
    """Scalars in Mesos' text form: three-decimal precision, no trailing ``.0``."""
    text = f"{round(value, 3):.15g}"
    return text


def ip_as_uint32(ip: str) -> int:
    """MasterInfo.ip: the network-order address read as a little-endian uint32."""
    parts = [int(p) for p in ip.split(".")]
    return parts[0] | parts[1] << 8 | parts[2] << 16 | parts[3] << 24
