"""Compare event shapes with the recordings, ignoring ids, uuids, timestamps and amounts."""

from __future__ import annotations

from typing import Any

# Values that are semantics, not identity: kept verbatim in the skeleton.
KEEP = {
    "type",
    "state",
    "source",
    "reason",
    "role",
    "scheme",
    "path",
    "protocol",
    "version",
    "status",
}
_VALUE_TYPES = {"SCALAR", "RANGES", "SET", "TEXT"}


def skeleton(value: Any, key: str | None = None) -> Any:
    """Key order, nesting and semantic values; every other leaf becomes its type name."""
    if isinstance(value, dict):
        named = value.get("type") in _VALUE_TYPES  # resource and attribute names are semantic
        return [(k, v if (named and k == "name") else skeleton(v, k)) for k, v in value.items()]
    if isinstance(value, list):
        return [skeleton(v, key) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if key in KEEP else "<str>"
    if isinstance(value, float):
        return "<float>"
    if isinstance(value, int):
        return "<int>"
    return value
