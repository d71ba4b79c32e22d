from mesobatch.scheduler.core.resources import (
    MIB,
    Resources,
    bytes_to_mib,
    cores_to_milli,
    format_mib,
    offered_cpus_to_milli,
    offered_mb_to_mib,
)


def test_tenth_of_a_core_packs_twenty_times_into_two_cores() -> None:
    # Toil's float arithmetic fitted only 19 (0.1 * 20 > 2.0 after rounding error).
    job = Resources(cpus=cores_to_milli(0.1))
    assert job.count_in(Resources(cpus=offered_cpus_to_milli(2.0))) == 20
    assert job.count_in(Resources(cpus=offered_cpus_to_milli(0.3))) == 3


def test_requests_round_up_and_offers_round_down() -> None:
    assert cores_to_milli(0.1) == 100
    assert cores_to_milli(0.0001) == 1
    assert cores_to_milli(1.0005) == 1001
    assert offered_cpus_to_milli(0.1 + 0.2) == 300  # float error does not cost a milli-core
    assert offered_cpus_to_milli(1.9994) == 1999
    assert bytes_to_mib(1) == 1
    assert bytes_to_mib(MIB) == 1
    assert bytes_to_mib(MIB + 1) == 2
    assert offered_mb_to_mib(15974.4) == 15974


def test_count_in_uses_every_dimension() -> None:
    node = Resources(cpus=8000, mem=4096, disk=100, gpus=1)
    assert Resources(cpus=1000, mem=1024).count_in(node) == 4
    assert Resources(cpus=1000, gpus=1).count_in(node) == 1
    assert Resources(cpus=1000, disk=101).count_in(node) == 0


def test_arithmetic_and_fit() -> None:
    a = Resources(1000, 1024, 10, 1)
    assert a + a == Resources(2000, 2048, 20, 2)
    assert (a + a) - a == a
    assert a.times(3) == Resources(3000, 3072, 30, 3)
    assert a.fits_in(a) and not (a + a).fits_in(a)
    assert a.max(Resources(5, 5000, 0, 0)) == Resources(1000, 5000, 10, 1)


def test_describe() -> None:
    assert Resources(1000, 2048, 512).describe() == "1 core, 2.0 GiB memory, 512 MiB disk"
    assert Resources(500, 100, 0, 2).describe() == "0.5 cores, 100 MiB memory, 0 MiB disk, 2 GPUs"
    assert format_mib(15974) == "15.6 GiB"
