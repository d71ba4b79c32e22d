from mesobatch.scheduler.core.queue import JobQueue

from .helpers import GIB, job


def test_shapes_in_toil_priority_order() -> None:
    q = JobQueue()
    specs = [
        job(1, GIB, preemptible=True),
        job(1, 2 * GIB),
        job(2, GIB),
        job(1, GIB, 2 * GIB),
        job(1, GIB),
    ]
    for s in specs:
        q.push(s)
    order = [shape for shape, _ in q.shapes()]
    # non-preemptible first; then larger memory, cores, disk
    assert order == [specs[1].shape, specs[2].shape, specs[3].shape, specs[4].shape,
                     specs[0].shape]


def test_fifo_within_a_shape_and_counts() -> None:
    q = JobQueue()
    a, b, c = job(job_id=101), job(job_id=102), job(job_id=103)
    for s in (a, b, c):
        q.push(s)
    assert len(q) == 3 and dict(q.shapes()) == {a.shape: 3}
    assert [s.job_id for s in q.take(a.shape, 2)] == [101, 102]
    assert [s.job_id for s in q.take(a.shape, 5)] == [103]
    assert len(q) == 0 and list(q.shapes()) == []


def test_remove_is_immediate_and_skipped_when_taking() -> None:
    q = JobQueue()
    a, b, c = job(job_id=201), job(job_id=202), job(job_id=203)
    for s in (a, b, c):
        q.push(s)
    assert q.remove(202) and not q.remove(202) and not q.remove(999)
    assert 202 not in q and len(q) == 2
    assert [s.job_id for s in q.take(a.shape, 3)] == [201, 203]


def test_push_front_puts_a_job_back_at_the_head() -> None:
    q = JobQueue()
    a, b = job(job_id=301), job(job_id=302)
    q.push(a)
    q.push(b)
    taken = q.take(a.shape, 1)
    q.push_front(taken[0])
    assert [s.job_id for s in q.take(a.shape, 2)] == [301, 302]


def test_removed_then_pushed_again_is_taken_once() -> None:
    q = JobQueue()
    a = job(job_id=401)
    q.push(a)
    q.remove(401)
    q.push(a)
    assert [s.job_id for s in q.take(a.shape, 5)] == [401]
