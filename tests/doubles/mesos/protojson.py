"""JSON -> protobuf-shaped dict conversion with the error texts of stout's ``protobuf::parse``.

The result keeps the proto declaration order, drops unknown keys and unknown enum names, turns
doubles into floats, and fills the unset optional fields that Mesos renders with their default
(``shell: true``, ``extract: true``, ``checkpoint: false``...), so it can be echoed back exactly
as a real master or agent would render the message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .schema import ENUMS, MESSAGES
from .wire import b64decode_strict, b64encode


class ProtoError(ValueError):
    """Conversion failure; ``str()`` is the text Mesos puts after its prefix."""


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # s b d i u ? e m any
    ref: str
    required: bool
    repeated: bool
    default: Any
    has_default: bool


_DROP = object()
_ID_MESSAGES = frozenset(
    {
        "FrameworkID",
        "OfferID",
        "AgentID",
        "TaskID",
        "ExecutorID",
        "OperationID",
        "ResourceProviderID",
    }
)


@dataclass(frozen=True)
class _Message:
    by_name: dict[str, _Field]
    ordered: tuple[_Field, ...]
    index: dict[str, int]
    required: tuple[str, ...]
    has_defaults: bool


_COMPILED: dict[str, _Message] = {}


def _compile() -> None:
    for message, fields in MESSAGES.items():
        compiled = []
        for spec in fields:
            name, ftype, flags = spec[0], spec[1], spec[2]
            kind, _, ref = ftype.partition(":")
            compiled.append(
                _Field(
                    name=name,
                    kind=kind,
                    ref=ref,
                    required="r" in flags,
                    repeated="*" in flags,
                    default=spec[3] if len(spec) > 3 else None,
                    has_default=len(spec) > 3,
                )
            )
        _COMPILED[message] = _Message(
            by_name={f.name: f for f in compiled},
            ordered=tuple(compiled),
            index={f.name: i for i, f in enumerate(compiled)},
            required=tuple(f.name for f in compiled if f.required),
            has_defaults=any(f.has_default for f in compiled),
        )


_compile()


def parse(value: Any, message: str) -> dict[str, Any]:
    """Convert a decoded JSON value into message ``message``; raise ProtoError like stout."""
    if not isinstance(value, dict):
        raise ProtoError("Expecting a JSON object")
    state = [False]
    result = _parse_message(value, message, state)
    if state[0]:
        missing: list[str] = []
        _find_missing(result, message, "", missing)
        raise ProtoError("Missing required fields: " + ", ".join(missing))
    return result


def _parse_message(obj: dict[str, Any], message: str, missing: list[bool]) -> dict[str, Any]:
    spec = _COMPILED[message]
    by_name = spec.by_name
    parsed: dict[str, Any] = {}
    for key, value in obj.items():
        field = by_name.get(key)
        if field is None or value is None:
            continue
        if isinstance(value, list):
            if not field.repeated:
                raise ProtoError(f"Not expecting a JSON array for field '{key}'")
            items = []
            for item in value:
                if item is None:
                    continue
                converted = _convert(field, item, missing)
                if converted is not _DROP:
                    items.append(converted)
            if items:
                parsed[key] = items
            continue
        converted = _convert(field, value, missing)
        if converted is _DROP:
            continue
        parsed[key] = [converted] if field.repeated else converted
    for name in spec.required:
        if name not in parsed:
            missing[0] = True
    if spec.has_defaults:
        out: dict[str, Any] = {}
        for field in spec.ordered:
            if field.name in parsed:
                out[field.name] = parsed[field.name]
            elif field.has_default:
                out[field.name] = field.default
        return out
    if len(parsed) > 1:
        index = spec.index
        keys = list(parsed)
        ordered = sorted(keys, key=index.__getitem__)
        if ordered != keys:
            return {k: parsed[k] for k in ordered}
    return parsed


def _convert(field: _Field, value: Any, missing: list[bool]) -> Any:
    kind = field.kind
    name = field.name
    if kind == "m":
        # Fast path for the many {"value": "..."} ids in every call.
        if (
            field.ref in _ID_MESSAGES
            and type(value) is dict
            and len(value) == 1
            and type(value.get("value")) is str
        ):
            return value
        if not isinstance(value, dict):
            raise ProtoError(f"Not expecting a JSON {_json_kind(value)} for field '{name}'")
        return _parse_message(value, field.ref, missing)
    if kind == "any":
        if not isinstance(value, dict):
            raise ProtoError(f"Not expecting a JSON {_json_kind(value)} for field '{name}'")
        return value
    if isinstance(value, dict):
        raise ProtoError(f"Not expecting a JSON object for field '{name}'")
    if isinstance(value, bool):
        if kind == "?":
            return value
        raise ProtoError(f"Not expecting a JSON boolean for field '{name}'")
    if isinstance(value, str):
        return _convert_string(field, value)
    if isinstance(value, (int, float)):
        if kind == "d":
            return float(value)
        if kind in ("i", "u"):
            return int(value)
        raise ProtoError(f"Not expecting a JSON number for field '{name}'")
    raise ProtoError(f"Not expecting a JSON value for field '{name}'")


def _convert_string(field: _Field, value: str) -> Any:
    kind = field.kind
    if kind == "s":
        return value
    if kind == "b":
        try:
            raw = b64decode_strict(value)
        except ValueError as exc:
            raise ProtoError(f"Failed to base64 decode bytes field '{field.name}': {exc}") from exc
        encoded = b64encode(raw)
        return value if encoded == value else encoded
    if kind == "e":
        if value in ENUMS[field.ref]:
            return value
        if field.required:
            raise ProtoError(f"Failed to find enum for '{value}'")
        return _DROP
    if kind == "d":
        if value in ("Infinity", "-Infinity"):
            return math.inf if value == "Infinity" else -math.inf
        try:
            return float(value)
        except ValueError:
            raise ProtoError(
                f"Failed to parse '{value}' as a JSON number for field '{field.name}'"
            ) from None
    if kind in ("i", "u"):
        try:
            return int(float(value))
        except ValueError:
            raise ProtoError(
                f"Failed to parse '{value}' as a JSON number for field '{field.name}'"
            ) from None
    if kind == "?":
        if value in ("true", "false"):
            return value == "true"
        raise ProtoError(f"Failed to parse '{value}' as a JSON boolean for field '{field.name}'")
    raise ProtoError(f"Not expecting a JSON string for field '{field.name}'")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _find_missing(obj: dict[str, Any], message: str, prefix: str, out: list[str]) -> None:
    """protobuf's FindInitializationErrors order: own fields first, then sub-messages."""
    ordered = _COMPILED[message].ordered
    for field in ordered:
        if field.required and field.name not in obj:
            out.append(prefix + field.name)
    for field in ordered:
        if field.kind != "m" or field.name not in obj:
            continue
        if field.repeated:
            for index, item in enumerate(obj[field.name]):
                _find_missing(item, field.ref, f"{prefix}{field.name}[{index}].", out)
        else:
            _find_missing(obj[field.name], field.ref, f"{prefix}{field.name}.", out)


def json_error_text(text: str, exc: ValueError) -> str:
    """picojson's message shape: ``syntax error at line N near: <rest of the line>``."""
    pos = getattr(exc, "pos", None)
    if pos is None:
        return f"syntax error at line 1 near: {text[:20]}"
    line = text.count("\n", 0, pos) + 1
    rest = text[pos + 1 :].split("\n", 1)[0]
    return f"syntax error at line {line} near: {rest}"
