"""Shared pieces of the property tests (hypothesis): modest, reproducible settings for
CI, strategies for JSON values of any shape, and a watch on uncaught thread errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: the whole property suite must take well under a minute on 2 cores: few examples,
#: derandomized (the same examples on every run, so CI never flakes), no example
#: database written into the checkout
FAST = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=10)  # examples that start processes

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**60),
                    st.floats(), st.text(max_size=20))
#: any JSON value (NaN and Infinity included, as Python's json module reads them)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=6)


def mesos_id() -> st.SearchStrategy[Any]:
    """Mostly well-formed {"value": ...} ids, sometimes anything."""
    return st.one_of(st.builds(lambda v: {"value": v}, st.text(min_size=1, max_size=8)),
                     json_values)


@contextmanager
def no_thread_errors() -> Iterator[list[str]]:
    """Collects exceptions that escape any thread meanwhile (the caller asserts none)."""
    errors: list[str] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        errors.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: "
                      f"{args.exc_value}")

    threading.excepthook = hook
    try:
        yield errors
    finally:
        threading.excepthook = previous
