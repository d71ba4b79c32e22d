"""Batch systems for the function tests (shared with tests/deploy)."""

from tests.systems import Make, Systems, make_bs, systems

__all__ = ["Make", "Systems", "make_bs", "systems"]
