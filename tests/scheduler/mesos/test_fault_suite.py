"""The fault suite in CI (issue 10): 100 jobs per fault kind on the Mesos double with a
real ZooKeeper, faults at random moments (tests/fault_suite.py; bench/faults.py runs
1,000). Every kind: no job lost, none reported twice, none reported that never ran, no
task started twice, no process of a LOST job (or of a killed scheduler's job) still
running once it should be gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fault_suite import KINDS, run_kind, table

# the run gives up at 240 s and says what it saw, before pytest-timeout (300 s) would
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", KINDS)
def test_no_job_lost_doubled_or_left_running(kind: str, tmp_path: Path) -> None:
    result = run_kind(kind, 100, tmp_path, seed=KINDS.index(kind), timeout=240)
    shown = table([result]) + f"\nthe scheduler's log: {tmp_path / 'scheduler.log'}"
    assert result.notes == [], shown
    assert result.faults >= 1, shown
    assert (result.reported_once, result.never_reported, result.reported_twice) == (
        100, 0, 0), shown
    assert result.reported_never_started == 0, shown
    assert result.started_twice == 0, shown
    assert result.lost_still_running == 0, shown
    assert result.orphans_of_killed_scheduler == 0, shown
