"""The outbox the Mesos drivers' sender threads take their calls from."""

from __future__ import annotations

import threading

import pytest

from mesobatch.common.outbox import Outbox


def test_items_come_out_in_order_in_batches_then_none_once_closed() -> None:
    box: Outbox[int] = Outbox()
    for i in range(5):
        box.put(i)
    assert box.take(2) == [0, 1]
    assert box.take(10) == [2, 3, 4]
    box.put(5)
    box.close()
    assert box.take(10) == [5]  # what was put before close still comes out
    assert box.take(10) is None


@pytest.mark.parametrize("linger", [0.0, 0.001])
def test_a_put_from_another_thread_wakes_the_waiting_taker(linger: float) -> None:
    box: Outbox[int] = Outbox(linger)
    got: list[int] = []

    def consume() -> None:
        while (items := box.take(3)) is not None:
            got.extend(items)

    consumer = threading.Thread(target=consume)
    consumer.start()
    def produce(k: int) -> None:
        for i in range(1000):
            box.put(k * 1000 + i)

    producers = [threading.Thread(target=produce, args=(k,)) for k in range(3)]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    box.close()
    consumer.join(10)
    assert not consumer.is_alive()
    assert sorted(got) == [k * 1000 + i for k in range(3) for i in range(1000)]
    for k in range(3):  # each producer's items in its order
        mine = [x for x in got if x // 1000 == k]
        assert mine == sorted(mine)


def test_take_waiting_never_waits() -> None:
    box: Outbox[str] = Outbox()
    assert box.take_waiting() == []
    box.put("a")
    box.put("b")
    assert len(box) == 2 and box.take_waiting() == ["a", "b"] and len(box) == 0
