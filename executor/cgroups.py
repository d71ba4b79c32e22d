"""Memory limits by the kernel: a cgroup v2 per limited task, where this process may
make them; otherwise the runner's watchdog (memory_watch.py) does the job.

Where: a child cgroup of the runner's own cgroup in the v2 hierarchy, which must have
the memory controller (on a host that still binds it to cgroup v1, as hybrid setups
do, v2 has none) and be writable by us (delegated: systemd's ``Delegate=yes``, a
container given its own cgroup, or root). A cgroup holding processes cannot hand
controllers to its children, so unless the memory controller is on for our children
already, the runner first moves itself into a leaf of its own (``mesobatch-runner``)
and turns it on; what cannot be done leaves the cgroup as it was, and the watchdog on.

Each limited task gets ``mesobatch-task-<n>`` with ``memory.max`` its limit,
``memory.swap.max`` 0 (a limit swapped out is no limit), ``memory.oom.group`` 1 (the
kernel kills the whole task, not one of its processes); the task joins it before it
execs (cold_start.py), so all it forks is inside. At its end ``memory.peak`` is its
peak (all its processes together, exact) and ``memory.events``' ``oom_kill`` tells
that the kernel killed it for its limit (MEMLIMIT); then the cgroup is removed.

Every path is under ``root`` (``/`` for real), so the tests run this against a fake
hierarchy in a temporary directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import dataclass

RUNNER_LEAF = "mesobatch-runner"
#: how a cgroup is removed: its control files go with it (a fake hierarchy's test
#: puts a remover of its files here)
rmdir = os.rmdir
TASK_PREFIX = "mesobatch-task-"


class CgroupError(OSError):
    """A limited task's cgroup could not be made: the task then starts under the
    watchdog."""


def v2_mount(mountinfo: str) -> tuple[str, str] | None:
    """(mount point, root of the mount) of the cgroup v2 hierarchy in a
    /proc/self/mountinfo text, or None if it is not mounted."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if sep + 1 < len(fields) and fields[sep + 1] == "cgroup2" and len(fields) > 4:
            return _unescape(fields[4]), _unescape(fields[3])
    return None


def v2_path(self_cgroup: str) -> str | None:
    """This process's cgroup in the v2 hierarchy (the ``0::`` line of
    /proc/self/cgroup), or None."""
    for line in self_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def _unescape(field: str) -> str:
    """mountinfo escapes blanks, tabs, newlines and backslashes as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def own_cgroup(mountinfo: str, self_cgroup: str) -> str | None:
    """The directory of this process's v2 cgroup (relative to the filesystem root),
    or None when there is no v2 hierarchy or we are outside the mounted part."""
    mount = v2_mount(mountinfo)
    path = v2_path(self_cgroup)
    if mount is None or path is None:
        return None
    point, root = mount
    if root != "/":
        if path != root and not path.startswith(root.rstrip("/") + "/"):
            return None
        path = path[len(root.rstrip("/")):] or "/"
    return point.rstrip("/") + path if path != "/" else point


@dataclass(frozen=True)
class Detection:
    """Where limited tasks' cgroups go (None: nowhere, the watchdog limits them) and
    what the runner said about it."""

    parent: str | None
    why: str

    def describe(self) -> str:
        return (f"cgroup v2 ({self.why})" if self.parent is not None
                else f"a watchdog over /proc ({self.why})")


class Cgroups:
    """The cgroups of limited tasks under one parent (a Detection's), filesystem
    ``root`` prepended to every path."""

    def __init__(self, parent: str, root: str = "/") -> None:
        self.parent = parent
        self.root = root
        self._count = 0

    @classmethod
    def detect(cls, root: str = "/", pid: int | None = None) -> tuple[Cgroups | None, Detection]:
        """Set up where limited tasks' cgroups go, if this process may: (the Cgroups,
        or None for the watchdog; what was found). ``pid``: the process to move into a
        leaf when needed (default: this one)."""
        detection = set_up(root, os.getpid() if pid is None else pid)
        if detection.parent is None:
            return None, detection
        return cls(detection.parent, root), detection

    def create(self, task_id: str, limit: int) -> TaskCgroup:
        """A cgroup limited to ``limit`` bytes for one task. Raises CgroupError."""
        self._count += 1
        name = f"{TASK_PREFIX}{self._count}-{_safe(task_id)}"
        path = os.path.join(self.parent, name)
        full = _at(self.root, path)
        try:
            os.mkdir(full)
        except OSError as e:
            raise CgroupError(e.errno, f"cannot make cgroup {path}: {e.strerror}") from e
        try:
            _write(full, "memory.max", str(limit))
            # absent without swap accounting, or before 4.19: the limit holds without
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                with contextlib.suppress(OSError):
                    _write(full, name, value)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.rmdir(full)
            raise CgroupError(e.errno, f"cannot limit cgroup {path}: {e.strerror}") from e
        return TaskCgroup(path, full)


@dataclass(frozen=True)
class Usage:
    """What a task's cgroup saw."""

    peak: int | None  #: bytes (None: the kernel has no memory.peak, before 5.19)
    oom_killed: bool  #: the kernel killed in it for its limit


@dataclass(frozen=True)
class TaskCgroup:
    path: str  #: as the system sees it
    full: str  #: with the filesystem root prepended

    @property
    def procs(self) -> str:
        """The file a process writes ``0`` to, to join it."""
        return os.path.join(self.full, "cgroup.procs")

    def join(self, pid: int) -> None:
        """Move ``pid`` in (a task its runner did not start itself)."""
        _write(self.full, "cgroup.procs", str(pid))

    def usage(self) -> Usage:
        try:
            events = _read(os.path.join(self.full, "memory.events"))
        except OSError:  # gone, or never there: no OOM kill we can tell of
            events = ""
        return Usage(_read_int(os.path.join(self.full, "memory.peak")), oom_kills(events) > 0)

    def remove(self, timeout: float = 0.5) -> bool:
        """Kill what is left in it and remove it; False if it is still busy after
        ``timeout`` seconds (members dying: try again later)."""
        if os.path.exists(os.path.join(self.full, "cgroup.kill")):  # Linux >= 5.14
            with contextlib.suppress(OSError):
                _write(self.full, "cgroup.kill", "1")
        deadline = time.monotonic() + timeout
        while True:
            try:
                rmdir(self.full)
                return True
            except FileNotFoundError:
                return True
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                    return False
            time.sleep(0.01)


def oom_kills(events: str) -> int:
    """The ``oom_kill`` count of a memory.events text (0 if absent)."""
    for line in events.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def set_up(root: str, pid: int) -> Detection:
    """Find this process's v2 cgroup and make it ready to hold limited tasks' cgroups,
    or say why not (nothing is left changed then)."""
    try:
        own = own_cgroup(_read(_at(root, "/proc/self/mountinfo")),
                         _read(_at(root, "/proc/self/cgroup")))
    except OSError as e:
        return Detection(None, f"cannot read /proc/self: {e.strerror}")
    if own is None:
        return Detection(None, "no cgroup v2 hierarchy")
    full = _at(root, own)
    try:
        controllers = _read(os.path.join(full, "cgroup.controllers")).split()
        subtree = _read(os.path.join(full, "cgroup.subtree_control")).split()
    except OSError as e:
        return Detection(None, f"cannot read cgroup {own}: {e.strerror}")
    if "memory" not in controllers:
        return Detection(None, f"cgroup v2 has no memory controller at {own} (bound to "
                               "cgroup v1, or not delegated)")
    if not os.access(full, os.W_OK):
        return Detection(None, f"cgroup {own} is not writable (not delegated to us)")
    if "memory" in subtree:
        return Detection(own, f"tasks' cgroups in {own}")
    # Processes in a cgroup keep it from handing controllers on: move ourselves into a
    # leaf first, then turn the memory controller on for our children.
    leaf = os.path.join(own, RUNNER_LEAF)
    leaf_full = _at(root, leaf)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(leaf_full)
        _write(leaf_full, "cgroup.procs", str(pid))
    except OSError as e:
        with contextlib.suppress(OSError):
            os.rmdir(leaf_full)
        return Detection(None, f"cannot move into {leaf}: {e.strerror}")
    try:
        _write(full, "cgroup.subtree_control", "+memory")
    except OSError as e:  # EBUSY: other processes share our cgroup
        with contextlib.suppress(OSError):
            _write(full, "cgroup.procs", str(pid))
            os.rmdir(leaf_full)
        return Detection(None, f"cannot turn the memory controller on in {own}: "
                               f"{e.strerror}")
    return Detection(own, f"tasks' cgroups in {own}; the runner moved to {leaf}")


def _safe(task_id: str) -> str:
    """A task id as part of a cgroup's name (its first 40 safe characters)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task_id)[:40]


def _at(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _read_int(path: str) -> int | None:
    try:
        return int(_read(path).strip())
    except (OSError, ValueError):
        return None


def _write(directory: str, name: str, value: str) -> None:
    # One write per value: the kernel takes each write(2) as one command. O_CREAT
    # makes the file in a fake hierarchy; cgroupfs refuses to make a missing one.
    fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
