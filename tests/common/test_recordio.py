"""RecordIO framing of Mesos event streams (common/recordio.py)."""

from __future__ import annotations

import json

import pytest

from mesobatch.common.recordio import RecordIOError, RecordIOReader, encode, records


def test_recordio_records_split_across_and_packed_into_chunks() -> None:
    events = [{"type": "HEARTBEAT"}, {"type": "OFFERS", "x": "é" * 300}, {"type": "UPDATE"}]
    wire = b"".join(encode(json.dumps(e).encode()) for e in events)
    for size in (1, 2, 3, 7, 64, len(wire)):
        chunks = [wire[i:i + size] for i in range(0, len(wire), size)]
        assert [json.loads(r) for r in records(chunks)] == events
    reader = RecordIOReader()
    assert reader.feed(b"20\n{\"type\":\"HEARTB") == []
    assert reader.feed(b"EAT\"}20\n{\"type\":\"HEARTBEAT\"}") == [b'{"type":"HEARTBEAT"}'] * 2
    assert reader.pending == 0


@pytest.mark.parametrize("bad", [b"abc\n{}", b"9" * 30, b"-1\n"])
def test_recordio_rejects_garbage(bad: bytes) -> None:
    with pytest.raises(RecordIOError):
        RecordIOReader().feed(bad)
