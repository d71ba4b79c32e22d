"""Batch systems for the shipping tests (shared with tests/integration)."""

from tests.systems import Make, Systems, make_bs, systems

__all__ = ["Make", "Systems", "make_bs", "systems"]
