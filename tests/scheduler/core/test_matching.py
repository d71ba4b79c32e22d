from mesobatch.scheduler.core.jobs import JobSpec
from mesobatch.scheduler.core.matching import pack
from mesobatch.scheduler.core.queue import JobQueue
from mesobatch.scheduler.core.resources import Resources

from .helpers import GIB, job


def _queue(*specs: JobSpec) -> JobQueue:
    q = JobQueue()
    for s in specs:
        q.push(s)
    return q


def test_packs_as_many_as_fit_by_every_resource() -> None:
    q = _queue(*[job(0.1, 100 * 2**20, 2**20) for _ in range(30)])
    chosen = pack(q, Resources(cpus=2000, mem=100_000, disk=100_000), False)
    assert len(chosen) == 20 and len(q) == 10
    q = _queue(*[job(0.1, GIB, 2**20) for _ in range(30)])
    assert len(pack(q, Resources(cpus=2000, mem=3 * 1024, disk=100), False)) == 3


def test_higher_priority_shapes_first_then_smaller_fill_the_rest() -> None:
    big = [job(2, 2 * GIB, 0) for _ in range(2)]
    small = [job(1, GIB // 2, 0) for _ in range(4)]
    q = _queue(*small, *big)
    chosen = pack(q, Resources(cpus=3000, mem=4096, disk=0), False)
    assert chosen[0].shape == big[0].shape  # larger memory first
    assert [s.shape for s in chosen].count(big[0].shape) == 1
    assert [s.shape for s in chosen].count(small[0].shape) == 1  # 1 core left


def test_preemptible_node_takes_only_preemptible_jobs() -> None:
    firm = job(1, GIB, 0)
    spot = job(1, GIB, 0, preemptible=True)
    q = _queue(firm, spot)
    chosen = pack(q, Resources(cpus=4000, mem=8192), True)
    assert chosen == [spot] and firm.job_id in q
    # and preemptible jobs may go anywhere
    q = _queue(spot)
    assert pack(q, Resources(cpus=4000, mem=8192), False) == [spot]


def test_gpus_are_whole_and_required() -> None:
    g = job(1, GIB, 0, gpus=1)
    q = _queue(g, job(1, GIB, 0, gpus=1))
    assert pack(q, Resources(cpus=8000, mem=8192), False) == []
    assert len(pack(q, Resources(cpus=8000, mem=8192, gpus=1), False)) == 1


def test_nothing_fits_leaves_queue_untouched() -> None:
    q = _queue(job(4, GIB))
    assert pack(q, Resources(cpus=2000, mem=100_000, disk=100_000), False) == []
    assert len(q) == 1


def test_a_task_count_limit_caps_the_pack_across_shapes() -> None:
    small = [job(0.1, 2**20, 0) for _ in range(5)]
    big = [job(1, GIB, 0) for _ in range(5)]
    q = _queue(*small, *big)
    room = Resources(cpus=100_000, mem=100_000)
    chosen = pack(q, room, False, max_tasks=3)
    assert len(chosen) == 3 and len(q) == 7
    assert all(s.shape == big[0].shape for s in chosen)  # priority order still holds
    assert len(pack(q, room, False, max_tasks=4)) == 4  # two big, then two small
    assert pack(q, room, False, max_tasks=0) == [] and len(q) == 3
    assert len(pack(q, room, False, max_tasks=None)) == 3
