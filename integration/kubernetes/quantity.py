"""Kubernetes resource quantities ("500m", "1.5", "512Mi", "2G", "1e3") as numbers, as the
API reference's Quantity describes them."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_PATTERN = re.compile(r"([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)(?:[eE]([+-]?[0-9]+))?"
                      r"(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)")


def parse_quantity(text: object) -> Decimal:
    """A non-negative quantity's value; ValueError names the text and the syntax."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"invalid quantity {text!r}: expected a number >= 0")
        return Decimal(str(text))
    if not isinstance(text, str):
        raise ValueError(f"invalid quantity {text!r}: expected a string like 500m, 2 or 4Gi")
    m = _PATTERN.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"invalid quantity {text!r}: expected a number >= 0 with an optional "
                         "suffix (m, k, M, G, T, Ki, Mi, Gi, Ti, ...), like 500m, 2 or 4Gi")
    try:
        value = Decimal(m.group(1)) * _SUFFIXES[m.group(3)]
        if m.group(2):
            value *= Decimal(10) ** int(m.group(2))
    except (InvalidOperation, OverflowError):
        raise ValueError(f"invalid quantity {text!r}: out of range") from None
    return value


def milli(text: object) -> int:
    """A cpu quantity in millicores (rounded up, as the API server does)."""
    return math.ceil(parse_quantity(text) * 1000)


def to_int(text: object) -> int:
    """A quantity as a whole number (bytes, devices, pods), rounded up."""
    return math.ceil(parse_quantity(text))
