"""Pure resource arithmetic for unreserved (``*``) resources, in Mesos' fixed-point form.

Scalars are kept in thousandths (Mesos rounds scalars to three decimals), ranges as sorted,
merged inclusive intervals, sets as frozensets. Reservations and other roles' resources are out
of scope for the double.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .wire import format_scalar

Ranges = tuple[tuple[int, int], ...]
Value = int | Ranges | frozenset[str]

DEFAULT_PORTS: Ranges = ((31000, 32000),)


class ResourceError(ValueError):
    """A resource or attribute string that cannot be parsed."""


class Resources:
    """An ordered bag of named resources: scalars (milli-units), ranges and sets."""

    __slots__ = ("items",)

    def __init__(self, items: dict[str, Value] | None = None) -> None:
        self.items: dict[str, Value] = items if items is not None else {}

    # -- construction -------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Resources:
        """Parse the agent flag syntax ``cpus:2;mem:4096;ports:[31000-32000];x:{a,b}``."""
        items: dict[str, Value] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            name, sep, value = part.partition(":")
            if not sep:
                raise ResourceError(f"Bad resource '{part}'")
            name = name.split("(", 1)[0].strip()
            value = value.strip()
            if value.startswith("["):
                items[name] = _parse_ranges(value)
            elif value.startswith("{"):
                items[name] = frozenset(v.strip() for v in value[1:-1].split(",") if v.strip())
            else:
                try:
                    items[name] = round(float(value) * 1000)
                except ValueError:
                    raise ResourceError(f"Bad scalar resource '{part}'") from None
        return cls(items)

    @classmethod
    def from_json(cls, resources: Iterable[dict[str, Any]]) -> Resources:
        out = cls()
        for resource in resources:
            kind = resource.get("type")
            name = resource["name"]
            if kind == "SCALAR":
                value: Value = round(resource.get("scalar", {}).get("value", 0.0) * 1000)
            elif kind == "RANGES":
                ranges = resource.get("ranges", {}).get("range", [])
                value = _normalize((int(r["begin"]), int(r["end"])) for r in ranges)
            elif kind == "SET":
                value = frozenset(resource.get("set", {}).get("item", []))
            else:
                continue
            out.add_item(name, value)
        return out

    def copy(self) -> Resources:
        return Resources(dict(self.items))

    # -- arithmetic -----------------------------------------------------------------
    def add_item(self, name: str, value: Value) -> None:
        current = self.items.get(name)
        if current is None:
            self.items[name] = value
        elif isinstance(current, int) and isinstance(value, int):
            self.items[name] = current + value
        elif isinstance(current, tuple) and isinstance(value, tuple):
            self.items[name] = _normalize((*current, *value))
        elif isinstance(current, frozenset) and isinstance(value, frozenset):
            self.items[name] = current | value

    def __add__(self, other: Resources) -> Resources:
        out = self.copy()
        for name, value in other.items.items():
            out.add_item(name, value)
        return out

    def __sub__(self, other: Resources) -> Resources:
        out = self.copy()
        for name, value in other.items.items():
            current = out.items.get(name)
            if current is None:
                continue
            remaining: Value
            if isinstance(current, int) and isinstance(value, int):
                remaining = current - value
                if remaining <= 0:
                    del out.items[name]
                    continue
            elif isinstance(current, tuple) and isinstance(value, tuple):
                remaining = _subtract_ranges(current, value)
                if not remaining:
                    del out.items[name]
                    continue
            elif isinstance(current, frozenset) and isinstance(value, frozenset):
                remaining = current - value
                if not remaining:
                    del out.items[name]
                    continue
            else:
                continue
            out.items[name] = remaining
        return out

    def contains(self, other: Resources) -> bool:
        for name, value in other.items.items():
            current = self.items.get(name)
            if current is None:
                if _is_empty(value):
                    continue
                return False
            if isinstance(value, int):
                if not isinstance(current, int) or current < value:
                    return False
            elif isinstance(value, tuple):
                if not isinstance(current, tuple) or _subtract_ranges(value, current):
                    return False
            elif not isinstance(current, frozenset) or not value <= current:
                return False
        return True

    def empty(self) -> bool:
        return all(_is_empty(v) for v in self.items.values())

    def scalar(self, name: str) -> float:
        value = self.items.get(name)
        return value / 1000 if isinstance(value, int) else 0.0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resources) and self.items == other.items

    def __hash__(self) -> int:  # pragma: no cover - resources are not used as keys
        return hash(tuple(sorted(self.items)))

    def __repr__(self) -> str:
        return f"Resources({self.format()})"

    # -- rendering ------------------------------------------------------------------
    def to_json(self, *, offer_order: bool = False) -> list[dict[str, Any]]:
        """Resource protos (no role); ``offer_order`` puts ranges and sets before scalars."""
        names = list(self.items)
        if offer_order:
            names.sort(key=lambda n: isinstance(self.items[n], int))
        out = []
        for name in names:
            value = self.items[name]
            if isinstance(value, int):
                out.append({"name": name, "type": "SCALAR", "scalar": {"value": value / 1000}})
            elif isinstance(value, tuple):
                ranges = [{"begin": b, "end": e} for b, e in value]
                out.append({"name": name, "type": "RANGES", "ranges": {"range": ranges}})
            else:
                out.append({"name": name, "type": "SET", "set": {"item": sorted(value)}})
        return out

    def format(self, *, allocated: bool = True, offer_order: bool = False) -> str:
        """Mesos' text form: ``cpus(allocated: *):2; ports(allocated: *):[31000-32000]``."""
        tag = "(allocated: *)" if allocated else ""
        names = list(self.items)
        if offer_order:
            names.sort(key=lambda n: isinstance(self.items[n], int))
        parts = []
        for name in names:
            value = self.items[name]
            if isinstance(value, int):
                text = format_scalar(value / 1000)
            elif isinstance(value, tuple):
                text = "[" + ", ".join(f"{b}-{e}" for b, e in value) + "]"
            else:
                text = "{" + ", ".join(sorted(value)) + "}"
            parts.append(f"{name}{tag}:{text}")
        return "; ".join(parts)


def with_role(resources: list[dict[str, Any]], *, multi_role: bool) -> list[dict[str, Any]]:
    """Offer rendering: MULTI_ROLE frameworks see role + allocation_info, others only role."""
    out = []
    for resource in resources:
        item = dict(resource)
        item["role"] = "*"
        if multi_role:
            item["allocation_info"] = {"role": "*"}
        out.append(item)
    return out


def with_allocation(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Task/executor resources as the master hands them to the agent (allocation_info set)."""
    out = []
    for resource in resources:
        if "allocation_info" in resource:
            out.append(resource)
            continue
        item = {k: v for k, v in resource.items() if k != "role"}
        item["allocation_info"] = {"role": "*"}
        out.append(_reorder_resource(item))
    return out


_RESOURCE_ORDER = [
    "provider_id",
    "name",
    "type",
    "scalar",
    "ranges",
    "set",
    "role",
    "allocation_info",
    "reservation",
    "reservations",
    "disk",
    "revocable",
    "shared",
]


def _reorder_resource(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in _RESOURCE_ORDER if k in item}


def parse_attributes(text: str) -> list[dict[str, Any]]:
    """``--attributes`` syntax: ``rack:abc;level:10;keys:[1000-1500];s:{a,b}``."""
    out: list[dict[str, Any]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = part.partition(":")
        if not sep:
            raise ResourceError(f"Bad attribute '{part}'")
        value = value.strip()
        if value.startswith("["):
            ranges = [{"begin": b, "end": e} for b, e in _parse_ranges(value)]
            out.append({"name": name, "type": "RANGES", "ranges": {"range": ranges}})
        elif value.startswith("{"):
            items = [v.strip() for v in value[1:-1].split(",") if v.strip()]
            out.append({"name": name, "type": "SET", "set": {"item": items}})
        else:
            try:
                number = float(value)
            except ValueError:
                out.append({"name": name, "type": "TEXT", "text": {"value": value}})
            else:
                out.append({"name": name, "type": "SCALAR", "scalar": {"value": number}})
    return out


def _parse_ranges(text: str) -> Ranges:
    body = text.strip()[1:-1]
    ranges = []
    for chunk in filter(None, (c.strip() for c in body.split(","))):
        begin, _, end = chunk.partition("-")
        ranges.append((int(begin), int(end or begin)))
    return _normalize(ranges)


def _normalize(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: list[list[int]] = []
    for begin, end in sorted(ranges):
        if merged and begin <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple((b, e) for b, e in merged)


def _subtract_ranges(left: Ranges, right: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    for begin, end in left:
        pieces = [(begin, end)]
        for rb, re_ in right:
            next_pieces = []
            for pb, pe in pieces:
                if re_ < pb or rb > pe:
                    next_pieces.append((pb, pe))
                    continue
                if rb > pb:
                    next_pieces.append((pb, rb - 1))
                if re_ < pe:
                    next_pieces.append((re_ + 1, pe))
            pieces = next_pieces
        out.extend(pieces)
    return tuple(out)


def _is_empty(value: Value) -> bool:
    return value == 0 if isinstance(value, int) else not value
