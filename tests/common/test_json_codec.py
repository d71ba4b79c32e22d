"""The JSON codec gives the same answers with orjson and with the standard library alone
(how the executor runs from its bundle on an agent)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from mesobatch.common import json_codec

SAMPLES: list[Any] = [
    {"type": "ACKNOWLEDGE", "acknowledge": {"uuid": "AAEC", "task_id": {"value": "7.0"}}},
    {"name": "caf\u00e9 \u2603", "cores": 0.1, "memory": 2 ** 40, "args": ["a", "b c", ""],
     "nested": {"none": None, "flag": True, "list": [1.5, -2, {"k": []}]}},
    {"lone surrogate": "\ud800"},  # json takes it, orjson refuses: must still encode
]

PROGRAM = """
import json, sys
sys.modules["orjson"] = None  # as on an agent without it
from mesobatch.common import json_codec
samples = json.loads(sys.stdin.read())
out = {"impl": json_codec.IMPLEMENTATION,
       "encoded": [json_codec.encode(s).decode() for s in samples],
       "decoded": [json_codec.decode(json_codec.encode(s)) for s in samples]}
print(json.dumps(out))
"""


def _round_trip_here() -> list[Any]:
    return [json_codec.decode(json_codec.encode(s)) for s in SAMPLES]


def test_every_sample_round_trips_with_the_installed_implementation() -> None:
    assert _round_trip_here() == SAMPLES


def test_the_standard_library_path_decodes_to_the_same_values() -> None:
    r = subprocess.run([sys.executable, "-c", PROGRAM], input=json.dumps(SAMPLES),
                       capture_output=True, text=True, check=True)
    out = json.loads(r.stdout)
    assert out["impl"] == "json"
    assert out["decoded"] == SAMPLES
    # what either side writes, the other reads to the same value
    assert [json_codec.decode(e.encode("utf-8", "surrogatepass")) for e in out["encoded"]
            ] == SAMPLES


def test_escaped_surrogates_are_read_as_json_reads_them() -> None:
    doc = b'{"s": "\\ud800x"}'
    assert json_codec.decode(doc) == json.loads(doc)
