"""Memory limits by a cgroup v2 per task: detection, set-up and each task's cgroup
against a fake hierarchy in a temporary directory (files, no kernel), the runner using
it end to end, and the real thing where this machine has it."""

from __future__ import annotations

import os
import queue
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesobatch.executor import cgroups
from mesobatch.executor.cgroups import Cgroups, oom_kills, own_cgroup, set_up
from mesobatch.executor.runner import ProcessSpec, TaskExit, TaskRunner
from mesobatch.executor.task_start import Ending, outcome

MIB = 2**20
HYBRID = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_own_cgroup_in_a_hybrid_a_unified_and_a_bind_mounted_hierarchy() -> None:
    assert own_cgroup(HYBRID, "4:memory:/x\n0::/user.slice/run\n") == (
        "/sys/fs/cgroup/unified/user.slice/run")
    assert own_cgroup(UNIFIED, "0::/\n") == "/sys/fs/cgroup"
    bound = "50 1 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert own_cgroup(bound, "0::/docker/abc/jobs\n") == "/sys/fs/cgroup/jobs"
    assert own_cgroup(bound, "0::/elsewhere\n") is None  # not inside what is mounted
    assert own_cgroup(HYBRID.replace("cgroup2 cgroup2", "tmpfs tmpfs"), "0::/\n") is None
    assert own_cgroup(UNIFIED, "4:memory:/x\n") is None  # v1 only


def test_memory_events_oom_kills() -> None:
    assert oom_kills("low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 1\n") == 1
    assert oom_kills("low 0\nmax 0\n") == 0


def fake_host(root: Path, controllers: str, subtree: str = "",
              mountinfo: str = UNIFIED, path: str = "/service") -> Path:
    """/proc/self and a v2 hierarchy under ``root``, our cgroup at ``path``."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mountinfo").write_text(mountinfo)
    (root / "proc/self/cgroup").write_text(f"4:memory:/v1\n0::{path}\n")
    own = root / "sys/fs/cgroup" / path.strip("/")
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text(controllers + "\n")
    (own / "cgroup.subtree_control").write_text(subtree + "\n")
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return own


def test_no_memory_controller_in_v2_means_the_watchdog(tmp_path: Path) -> None:
    own = fake_host(tmp_path, "hugetlb pids")
    found = set_up(str(tmp_path), 4242)
    assert found.parent is None and "no memory controller" in found.why
    assert "watchdog" in found.describe()
    assert sorted(p.name for p in own.iterdir()) == [
        "cgroup.controllers", "cgroup.procs", "cgroup.subtree_control"]  # untouched


def test_no_v2_hierarchy_or_no_proc_means_the_watchdog(tmp_path: Path) -> None:
    fake_host(tmp_path, "memory", mountinfo=HYBRID.replace("cgroup2 cgroup2", "x x"))
    assert set_up(str(tmp_path), 1).why == "no cgroup v2 hierarchy"
    assert "cannot read /proc/self" in set_up(str(tmp_path / "nothing"), 1).why


def test_set_up_moves_the_runner_into_a_leaf_and_turns_memory_on(tmp_path: Path) -> None:
    own = fake_host(tmp_path, "cpu memory pids")
    found = set_up(str(tmp_path), 4242)
    assert found.parent == "/sys/fs/cgroup/service" and "cgroup v2" in found.describe()
    assert (own / cgroups.RUNNER_LEAF / "cgroup.procs").read_text() == "4242"
    assert (own / "cgroup.subtree_control").read_text() == "+memory"


def test_memory_on_for_our_children_already_needs_no_move(tmp_path: Path) -> None:
    own = fake_host(tmp_path, "memory", subtree="memory", path="/")
    found = set_up(str(tmp_path), 4242)
    assert found.parent == "/sys/fs/cgroup"
    assert not (own / cgroups.RUNNER_LEAF).exists()


def remove_files_too(path: str) -> None:
    """cgroupfs's rmdir, in a fake hierarchy: the control files go with the cgroup."""
    if any(Path(path).iterdir()) and any(p.name == "busy" for p in Path(path).iterdir()):
        raise OSError(16, "Device or resource busy")  # EBUSY: a member is still there
    shutil.rmtree(path)


@pytest.fixture
def fake_rmdir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "rmdir", remove_files_too)


def test_a_task_cgroup_is_limited_read_and_removed(tmp_path: Path, fake_rmdir: None) -> None:
    own = fake_host(tmp_path, "memory", subtree="memory")
    made, found = Cgroups.detect(str(tmp_path), pid=4242)
    assert made is not None and found.parent == "/sys/fs/cgroup/service"
    cg = made.create("job/7 weird", 100 * MIB)
    assert cg.path == "/sys/fs/cgroup/service/mesobatch-task-1-job_7_weird"
    d = own / "mesobatch-task-1-job_7_weird"
    assert cg.procs == str(d / "cgroup.procs")
    assert (d / "memory.max").read_text() == str(100 * MIB)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "memory.oom.group").read_text() == "1"
    cg.join(99)
    assert (d / "cgroup.procs").read_text() == "99"
    used = cg.usage()
    assert used.peak is None and not used.oom_killed  # a kernel before memory.peak
    (d / "memory.peak").write_text("104857600\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    used = cg.usage()
    assert used.peak == 100 * MIB and used.oom_killed
    (d / "busy").touch()
    assert not cg.remove(timeout=0.05)  # a member still dying: left for later
    (d / "busy").unlink()
    assert cg.remove() and not d.exists()
    assert made.create("next", MIB).path.endswith("mesobatch-task-2-next")


def test_a_cgroup_that_cannot_be_made_is_an_error(tmp_path: Path) -> None:
    fake_host(tmp_path, "memory", subtree="memory")
    made = Cgroups("/sys/fs/cgroup/no-such-parent", str(tmp_path))
    with pytest.raises(cgroups.CgroupError, match="cannot make cgroup"):
        made.create("t", MIB)


class Runner(TaskRunner):
    def __init__(self, cgroup_root: str | None = "/") -> None:
        self.exits: queue.Queue[TaskExit] = queue.Queue()
        super().__init__(self._put, kill_grace=0.5, cgroup_root=cgroup_root)

    def _put(self, batch: list[TaskExit]) -> None:
        for ex in batch:
            self.exits.put(ex)


@pytest.fixture
def fake_runner(tmp_path: Path, fake_rmdir: None) -> Iterator[tuple[Runner, Path]]:
    own = fake_host(tmp_path / "root", "memory")
    r = Runner(cgroup_root=str(tmp_path / "root"))
    yield r, own
    r.close(grace=0.1)


def test_the_runner_starts_a_limited_task_inside_its_cgroup(
        fake_runner: tuple[Runner, Path], tmp_path: Path) -> None:
    """The task joins its cgroup (writes 0 to its cgroup.procs) before its command runs;
    here the command plays the kernel: it records a peak and an OOM kill, and dies of
    SIGKILL as the OOM killer's victim would. The runner reports MEMLIMIT with the
    cgroup's peak, and removes the cgroup."""
    r, own = fake_runner
    kernel = ('d=$(dirname "$(ls "$ROOT"/mesobatch-task-*/cgroup.procs)"); '
              'cp "$d/cgroup.procs" "$OUT/joined"; cp "$d/memory.max" "$OUT/max"; '
              'echo 314572800 > "$d/memory.peak"; printf "oom 1\\noom_kill 1\\n" '
              '> "$d/memory.events"; kill -9 $$')
    r.launch(ProcessSpec("t1", kernel, {"PATH": os.environ["PATH"], "ROOT": str(own),
                                        "OUT": str(tmp_path)}, memory_limit=200 * MIB))
    ex = r.exits.get(timeout=60)
    assert (tmp_path / "joined").read_text() == "0\n"  # the task moved itself in
    assert (tmp_path / "max").read_text() == str(200 * MIB)
    assert ex.memory_exceeded and ex.peak_memory == 300 * MIB
    assert outcome(ex).ending is Ending.FAILED and outcome(ex).memory_exceeded
    assert r.memory_limits is not None and r.memory_limits.parent == "/sys/fs/cgroup/service"
    assert list(own.glob("mesobatch-task-*")) == []  # removed after
    assert (own / cgroups.RUNNER_LEAF / "cgroup.procs").read_text() == str(os.getpid())
    r.launch(ProcessSpec("t2", "exit 3", {"PATH": os.environ["PATH"]}))  # no limit
    ex = r.exits.get(timeout=60)
    assert ex.exit_code == 3 and not ex.memory_exceeded
    assert list(own.glob("mesobatch-task-*")) == []  # never made one


def test_without_a_memory_controller_the_watchdog_limits(tmp_path: Path) -> None:
    fake_host(tmp_path, "hugetlb")
    r = Runner(cgroup_root=str(tmp_path))
    try:
        big = f"{sys.executable} -c 'import time; b = bytearray(300 * 2**20); time.sleep(30)'"
        r.launch(ProcessSpec("t", big, {"PATH": os.environ["PATH"]}, memory_limit=100 * MIB))
        ex = r.exits.get(timeout=60)
        assert ex.memory_exceeded and ex.wall_time < 20
        assert r.memory_limits is not None and r.memory_limits.parent is None
        assert "watchdog" in r.memory_limits.describe()
    finally:
        r.close(grace=0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups are Linux's")
def test_the_kernel_limits_a_task_where_this_host_delegates_cgroup_v2() -> None:
    """The real hierarchy: skipped where v2 has no memory controller for us (a host
    that binds it to v1, such as this project's development VM)."""
    found = set_up("/", os.getpid())  # what the runner does at its first limited task
    if found.parent is None:
        pytest.skip(f"no usable cgroup v2 here: {found.why}")
    r = Runner()
    try:
        big = f"{sys.executable} -c 'import time; b = bytearray(300 * 2**20); time.sleep(30)'"
        r.launch(ProcessSpec("t", big, {"PATH": os.environ["PATH"]}, memory_limit=100 * MIB))
        ex = r.exits.get(timeout=60)
        assert r.memory_limits is not None and r.memory_limits.parent is not None
        assert ex.memory_exceeded and ex.wall_time < 20
        assert ex.peak_memory is not None and 50 * MIB < ex.peak_memory <= 100 * MIB
        r.launch(ProcessSpec("u", "true", {"PATH": os.environ["PATH"]}, memory_limit=MIB * 64))
        ex = r.exits.get(timeout=60)
        assert ex.exit_code == 0 and ex.peak_memory is not None  # exact, however short
    finally:
        r.close(grace=0.1)
