"""Kubernetes resource quantities ("500m", "1.5", "512Mi", "2G", "1e3") as numbers.

Follows the Quantity description of the API reference
(https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_PATTERN = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity as a number (cpu in cores, memory in bytes); ValueError names bad input."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _PATTERN.match(value.strip())
    if match is None:
        raise ValueError(
            f"quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {value!r}"
        )
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as error:
        raise ValueError(f"bad quantity {value!r}") from error
    return number * _SUFFIXES[match.group(2)]


def format_cpu(cores: Decimal) -> str:
    """Cores as the API prints them: whole cores plain, else millicores."""
    if cores == cores.to_integral_value():
        return str(int(cores))
    return f"{int(cores * 1000)}m"


def format_bytes(count: Decimal) -> str:
    """Bytes with the largest binary suffix that divides them exactly."""
    whole = int(count)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if whole and whole % unit == 0:
            return f"{whole // unit}{suffix}"
    return str(whole)
