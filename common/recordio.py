"""RecordIO, the framing of Mesos event streams: ``<decimal length>\\n<bytes>`` repeated.

HTTP chunk boundaries have nothing to do with record boundaries: a record may span
chunks and a chunk may hold several records, so the reader buffers bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: refuse records larger than this (a corrupt length would otherwise eat memory)
MAX_RECORD = 64 * 1024 * 1024


class RecordIOError(ValueError):
    """The stream is not valid RecordIO."""


class RecordIOReader:
    """Feed bytes in any chunking; take out whole records."""

    def __init__(self, max_record: int = MAX_RECORD) -> None:
        self._buf = bytearray()
        self._need: int | None = None  # length of the record being read, once known
        self._max = max_record

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every record they completed, in order."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        while True:
            if self._need is None:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if len(buf) - pos > 20:  # a uint64 has at most 20 digits
                        raise RecordIOError(f"bad record length {bytes(buf[pos:pos + 20])!r}")
                    break
                digits = bytes(buf[pos:nl])
                if not digits.isdigit():
                    raise RecordIOError(f"bad record length {digits!r}")
                n = int(digits)
                if n > self._max:
                    raise RecordIOError(f"record of {n} bytes exceeds {self._max}")
                self._need = n
                pos = nl + 1
            if len(buf) - pos < self._need:
                break
            out.append(bytes(buf[pos:pos + self._need]))
            pos += self._need
            self._need = None
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a record."""
        return len(self._buf)


def records(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Records from an iterable of byte chunks."""
    reader = RecordIOReader()
    for chunk in chunks:
        yield from reader.feed(chunk)


def encode(record: bytes) -> bytes:
    return str(len(record)).encode() + b"\n" + record
