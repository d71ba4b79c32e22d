"""Compact JSON for the hot messages, through orjson where it is installed (about a tenth
of the json module's CPU) and the standard library otherwise: the executor runs from its
bundle with the standard library alone, so orjson is never required.

Both paths give the same answers: what orjson refuses and json takes (a lone surrogate
in a string, escaped surrogates in a document) goes through json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _json_encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


try:
    import orjson

    def encode(body: Mapping[str, Any]) -> bytes:
        try:
            return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return _json_encode(body)

    def decode(data: bytes | str) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)

    #: which implementation is in use, for tests and diagnostics
    IMPLEMENTATION = "orjson"
except ImportError:  # tested in a subprocess that blocks orjson
    def encode(body: Mapping[str, Any]) -> bytes:
        return _json_encode(body)

    def decode(data: bytes | str) -> Any:
        return json.loads(data)

    IMPLEMENTATION = "json"
