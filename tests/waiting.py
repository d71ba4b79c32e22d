"""The tests' one bounded poll: for state no event announces (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | Literal[False] | None], timeout: float = 60.0,
             interval: float = 0.02) -> T:
    """``predicate()``'s first true value, polled every ``interval`` s; fails the test
    (AssertionError naming the last value) when none comes within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s; last: {value!r}"[:2000])
        time.sleep(interval)
