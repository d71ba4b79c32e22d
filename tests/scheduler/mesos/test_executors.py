"""Which executor of ours runs where (scheduler/mesos/executors.py)."""

from __future__ import annotations

from mesobatch.scheduler.mesos.executors import Executors


def test_one_executor_per_agent_named_per_workflow() -> None:
    executors = Executors("wf")
    assert executors.on("a1") is None
    first = executors.for_launch("a1")
    assert first == "mesobatch-wf-1" and executors.for_launch("a1") == first
    assert executors.on("a1") == first
    assert executors.for_launch("a2") == "mesobatch-wf-2"


def test_a_lost_executor_gives_back_its_live_tasks_and_is_never_reused() -> None:
    executors = Executors("wf")
    old = executors.for_launch("a1")
    executors.launched(old, ["1.0", "2.0", "3.0"])
    executors.ended("2.0")
    assert executors.lost(old) == {"1.0", "3.0"}
    assert executors.on("a1") is None
    new = executors.for_launch("a1")
    assert new != old
    executors.launched(new, ["4.0"])
    assert executors.lost(old) == set()  # a late FAILURE of the old one loses nothing new
    assert executors.on("a1") == new


def test_a_lost_agent_gets_a_new_executor_and_a_framework_error_loses_every_task() -> None:
    executors = Executors("wf")
    ex1, ex2 = executors.for_launch("a1"), executors.for_launch("a2")
    executors.launched(ex1, ["1.0"])
    executors.launched(ex2, ["2.0", "3.0"])
    executors.agent_lost("a1")
    assert executors.on("a1") is None and executors.for_launch("a1") not in (ex1, ex2)
    assert executors.all_lost() == ["1.0", "2.0", "3.0"]
    assert executors.all_lost() == []
