"""The Mesos adapter's state table (scheduler/mesos/states.py)."""

from __future__ import annotations

from mesobatch.scheduler.core.states import TaskState
from mesobatch.scheduler.mesos.states import MESOS_STATES, from_mesos

#: Mesos's terminal states (src/common/protobuf_utils.cpp isTerminalState)
MESOS_TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
                  "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}


def test_every_mesos_state_is_translated_and_terminal_exactly_where_mesos_says() -> None:
    assert len(MESOS_STATES) == 14
    for name, state in MESOS_STATES.items():
        assert from_mesos(name) is state
        assert state.terminal is (name in MESOS_TERMINAL), name
    assert from_mesos("TASK_RUNNING") is TaskState.RUNNING
    assert from_mesos("TASK_DROPPED") is TaskState.LOST


def test_unknown_names_are_unknown_never_a_crash() -> None:
    for name in ("TASK_FROM_THE_FUTURE", "", "task_running"):
        assert from_mesos(name) is TaskState.UNKNOWN
