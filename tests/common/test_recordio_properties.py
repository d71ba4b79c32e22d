"""Property tests of the RecordIO reader: any records in any chunking come out whole;
any bytes give records or RecordIOError, nothing else."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from mesobatch.common.recordio import RecordIOError, RecordIOReader, encode
from tests.properties import FAST


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@FAST
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(0, 10**6)))
def test_records_in_any_chunking_come_out_whole(records: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode(r) for r in records)
    reader = RecordIOReader()
    out = [r for chunk in chunked(wire, cuts) for r in reader.feed(chunk)]
    assert out == records and reader.pending == 0


@FAST
@given(st.binary(max_size=400), st.lists(st.integers(0, 10**6), max_size=6),
       st.integers(1, 1000))
def test_any_bytes_give_records_or_a_recordio_error(data: bytes, cuts: list[int],
                                                    max_record: int) -> None:
    reader = RecordIOReader(max_record=max_record)
    try:
        for chunk in chunked(data, cuts):
            for record in reader.feed(chunk):
                assert len(record) <= max_record
    except RecordIOError as e:
        assert str(e).startswith(("bad record length", "record of"))
