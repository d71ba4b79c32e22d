"""Packs: how many jobs go in one, what a pack asks for, and the pack script run by a
real /bin/sh (its jobs together, each with its own records; a kill marker kills one job
and no other; a TERM to the pack reaches every job)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from mesobatch.integration.hpc.packing import PackRequest, jobs_per_pack, pack_request
from mesobatch.integration.hpc.wrapper import (
    KILL,
    job_script,
    pack_script,
    read_records,
    write_script,
)
from tests.processes import running
from tests.waiting import wait_for

MIB = 2**20


@pytest.mark.parametrize(("milli", "memory", "gpus", "most", "node_memory", "expected"), [
    (100, 16 * MIB, 0, 32, None, 10),  # ten 0.1-core jobs fill one CPU
    (300, 0, 0, 32, None, 3),
    (500, 0, 0, 32, None, 2),
    (600, 0, 0, 32, None, 1),  # two would take two CPUs anyway
    (1000, 0, 0, 32, None, 1),
    (10, 0, 0, 32, None, 32),  # at most --slurmPack
    (1, 0, 0, 0, None, 1),  # packing off
    (1, 0, 0, 1, None, 1),
    (100, 0, 1, 32, None, 1),  # GPUs are never shared
    (100, 400 * MIB, 0, 32, 1024 * MIB, 2),  # no more memory than the largest node
    (100, 2048 * MIB, 0, 32, 1024 * MIB, 1),
])
def test_jobs_per_pack(milli: int, memory: int, gpus: int, most: int,
                       node_memory: int | None, expected: int) -> None:
    assert jobs_per_pack(milli_cores=milli, memory=memory, gpus=gpus, most=most,
                         node_memory=node_memory) == expected


@pytest.mark.parametrize(("disk", "node_disk", "node_memory", "expected"), [
    (300 * MIB, 1024 * MIB, None, 3),  # no more disk than the largest node's TmpDisk
    (1024 * MIB, 1024 * MIB, None, 1),
    (2048 * MIB, 1024 * MIB, None, 1),  # one job alone is never refused here (limits is)
    (100 * MIB, 1024 * MIB, None, 10),  # the CPU is the bound
    (300 * MIB, None, None, 10),  # disk not asked for (--slurmDisk none), or TmpDisk unknown
    (0, 1024 * MIB, None, 10),  # the jobs ask for no disk
    (300 * MIB, 1024 * MIB, 40 * MIB, 2),  # the tighter of memory and disk
    (100 * MIB, 1024 * MIB, 400 * MIB, 10),
])
def test_jobs_per_pack_within_the_nodes_disk(disk: int, node_disk: int | None,
                                             node_memory: int | None, expected: int) -> None:
    assert jobs_per_pack(milli_cores=100, memory=16 * MIB, gpus=0, most=32,
                         node_memory=node_memory, disk=disk, node_disk=node_disk) == expected


def test_a_pack_asks_for_the_sum_with_cores_rounded_up_exactly() -> None:
    assert pack_request(milli_cores=100, memory=16 * MIB, disk=MIB, jobs=10) == PackRequest(
        cpus=1, memory=160 * MIB, disk=10 * MIB)
    assert pack_request(milli_cores=300, memory=0, disk=0, jobs=4).cpus == 2
    assert pack_request(milli_cores=1, memory=0, disk=0, jobs=1).cpus == 1


def make_pack(tmp_path: Path, commands: list[str], kill_grace: float = 5.0,
              kill_poll: float = 0.05) -> tuple[Path, list[str]]:
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    scripts, paths, ids = [], [], []
    for i, command in enumerate(commands):
        task = f"{i}.0"
        script = tmp_path / f"{task}.sh"
        write_script(str(script), job_script(
            title=f"job {i}", command=command, env={"N": str(i)}, log=str(tmp_path / f"{i}.log"),
            record=str(records / task), work_dir=str(tmp_path), kill_grace=kill_grace))
        scripts.append(str(script))
        paths.append(str(records / task))
        ids.append(task)
    pack = tmp_path / "pack.sh"
    write_script(str(pack), pack_script(scripts=scripts, records=paths, kill_poll=kill_poll,
                                        signalled=str(signalled(tmp_path))))
    return pack, ids


def signalled(tmp_path: Path) -> Path:
    return tmp_path / "records" / "pack 'x' $y.signalled"  # quoted, never re-parsed


def exits(tmp_path: Path, ids: list[str]) -> dict[str, int]:
    return {k: e.exit_code for k, e in read_records(str(tmp_path / "records"), set(),
                                                     set(ids))[1].items()}


def test_a_pack_runs_its_jobs_together_each_with_its_own_records_and_log(
        tmp_path: Path) -> None:
    # each job waits for the others' start records: they can only all end if they run
    # at the same time
    wait_all = ('for i in 0 1 2; do while [ ! -s records/$i.0.started ]; do sleep 0.01; '
                'done; done; echo "job $N"; exit $N')
    pack, ids = make_pack(tmp_path, [wait_all] * 3)
    done = subprocess.run([str(pack)], timeout=60, check=False)
    assert done.returncode == 0  # the records, not the pack, say how each job ended
    assert not signalled(tmp_path).exists()
    assert exits(tmp_path, ids) == {"0.0": 0, "1.0": 1, "2.0": 2}
    assert [(tmp_path / f"{i}.log").read_text() for i in range(3)] == [
        "job 0\n", "job 1\n", "job 2\n"]


def pids(tmp_path: Path, name: str) -> list[int]:
    return [int(p) for p in (tmp_path / name).read_text().split()]


def test_a_kill_marker_kills_its_job_alone_and_a_marked_job_never_starts(
        tmp_path: Path) -> None:
    pack, ids = make_pack(tmp_path, [
        # a shell with a child: the kill reaches its whole process group
        "echo $$ >pids0; sleep 60 & echo $! >>pids0; wait",
        "sleep 1; echo done",
        "echo never",
        # deaf to SIGTERM: killed after the grace period
        "trap '' TERM; echo $$ >pids3; sleep 60 & echo $! >>pids3; wait"],
        kill_grace=0.5)
    (tmp_path / "records" / f"2.0{KILL}").touch()  # killed before the pack started
    proc = subprocess.Popen([str(pack)])
    try:
        wait_for(lambda: all(p.exists() and len(p.read_text().split()) == 2
                             for p in (tmp_path / "pids0", tmp_path / "pids3")), timeout=30)
        for task in ("0.0", "3.0"):
            (tmp_path / "records" / f"{task}{KILL}").touch()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert exits(tmp_path, ids) == {"1.0": 0}  # killed jobs' wrappers died with them
    assert (tmp_path / "1.log").read_text() == "done\n"
    assert not (tmp_path / "records" / "2.0.started").exists()
    assert not (tmp_path / "2.log").exists()
    for pid in pids(tmp_path, "pids0") + pids(tmp_path, "pids3"):
        wait_for(lambda pid=pid: not running(pid), timeout=30)  # type: ignore[misc]


def test_a_term_while_the_jobs_start_starts_no_more_and_is_the_packs(tmp_path: Path) -> None:
    # A setsid of our own sends the pack its TERM as the pack starts job 0 (and lets
    # job 0 go only once the pack has taken the TERM): the pack must be trapping by then,
    # or it dies alone (-15) and its jobs' ends are never told as the pack's.
    real = shutil.which("setsid")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_script(str(bin_dir / "setsid"), f"""#!/bin/sh
case "$1" in */0.0.sh)
  kill -TERM $PPID
  n=0; while [ ! -e "$SIGNALLED" ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done;;
esac
exec {real} "$@"
""")
    pack, _ = make_pack(tmp_path, ["echo $$ >pids0; exec sleep 60",
                                     "echo $$ >pids1; exec sleep 60"], kill_grace=0.5)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "SIGNALLED": str(signalled(tmp_path))}
    proc = subprocess.Popen([str(pack)], env=env)
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert signalled(tmp_path).exists()  # its jobs' ends are the pack's
    assert not (tmp_path / "pids1").exists()  # job 1 never started
    assert not (tmp_path / "records" / "1.0.started").exists()
    if (tmp_path / "pids0").exists():  # job 0 may have started: it ended with the pack
        for pid in pids(tmp_path, "pids0"):
            wait_for(lambda pid=pid: not running(pid), timeout=30)  # type: ignore[misc]


def test_the_watcher_ends_with_a_pack_killed_outright(tmp_path: Path) -> None:
    pack, _ = make_pack(tmp_path, ["echo $$ >pids0; exec sleep 60"])
    proc = subprocess.Popen([str(pack)])
    try:
        wait_for((tmp_path / "pids0").exists, timeout=30)
        # the pack's child that runs the pack's own script: the kill-marker watcher
        watcher = wait_for(lambda: next(
            (c for c in psutil.Process(proc.pid).children()
             if c.cmdline()[-1:] == [str(pack)]), None), timeout=30)
        proc.kill()
        proc.wait(timeout=30)
        wait_for(lambda: not running(watcher.pid), timeout=30)
    finally:
        proc.kill()
        for pid in pids(tmp_path, "pids0"):  # the job, in its wrapper's group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            wait_for(lambda pid=pid: not running(pid), timeout=30)  # type: ignore[misc]


def test_a_term_to_the_pack_reaches_every_job(tmp_path: Path) -> None:
    pack, ids = make_pack(tmp_path, ["echo $$ >pids0; exec sleep 60",
                                     "echo $$ >pids1; exec sleep 60"], kill_grace=0.5)
    proc = subprocess.Popen([str(pack)])
    try:
        wait_for(lambda: (tmp_path / "pids0").exists() and (tmp_path / "pids1").exists()
                 and len(read_records(str(tmp_path / "records"), set(ids), set())[0]) == 2,
                 timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert exits(tmp_path, ids) == {}  # each wrapper ended its own group, itself last
    assert signalled(tmp_path).exists()  # its jobs' ends are the pack's
    for pid in pids(tmp_path, "pids0") + pids(tmp_path, "pids1"):
        wait_for(lambda pid=pid: not running(pid), timeout=30)  # type: ignore[misc]


def test_a_pack_needs_a_record_path_per_script() -> None:
    with pytest.raises(ValueError, match="one record path per script"):
        pack_script(scripts=["a", "b"], records=["r"], signalled="s")
