"""Start a process with posix_spawn while the other threads of this process run on.

glibc and musl spawn with CLONE_VFORK: the caller waits until the child has exec'd,
100-200 us. os.posix_spawn holds the GIL for that time, so every other thread of the
scheduler (the reaper, the thread collecting results) stops with it. Calling libc's
posix_spawn through ctypes releases the GIL for the call. Where ctypes or the libc
symbols are missing (not Linux, a stripped interpreter), os.posix_spawn does it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

#: Signals Python ignores that a child must get back at their default (as subprocess
#: does): a job writing to a closed pipe dies of SIGPIPE instead of seeing EPIPE.
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)

_SETSIGDEF = 0x04  # POSIX_SPAWN_SETSIGDEF, the same in glibc and musl
_SETSID = 0x80  # POSIX_SPAWN_SETSID (glibc >= 2.26, musl >= 1.1.24)
# Opaque libc types, sized with room to spare (glibc x86-64: 336, 80 and 128 bytes).
_ATTR_SIZE, _ACTIONS_SIZE, _SIGSET_SIZE = 1024, 512, 256


class _Libc:
    """The libc entry points; ``spawn`` releases the GIL, the small calls keep it."""

    def __init__(self) -> None:
        free = ctypes.CDLL(None, use_errno=True)  # calls release the GIL
        held = ctypes.PyDLL(None, use_errno=True)  # calls keep it: they take a microsecond
        self.spawn = free.posix_spawn
        self.spawn.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.actions_init = held.posix_spawn_file_actions_init
        self.actions_destroy = held.posix_spawn_file_actions_destroy
        self.add_open = held.posix_spawn_file_actions_addopen
        self.add_open.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                  ctypes.c_uint]
        self.add_dup2 = held.posix_spawn_file_actions_adddup2
        self.add_dup2.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        # One attribute object for every spawn: own session, default signal handlers.
        self.attr = ctypes.create_string_buffer(_ATTR_SIZE)
        sigs = ctypes.create_string_buffer(_SIGSET_SIZE)
        for rc in (held.posix_spawnattr_init(self.attr), held.sigemptyset(sigs),
                   *(held.sigaddset(sigs, s) for s in RESET_SIGNALS),
                   held.posix_spawnattr_setsigdefault(self.attr, sigs),
                   held.posix_spawnattr_setflags(self.attr, ctypes.c_short(_SETSID | _SETSIGDEF))):
            if rc != 0:
                raise OSError(rc, "posix_spawnattr set-up failed")


def _load() -> _Libc | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return _Libc()
    except (OSError, AttributeError):
        return None


_libc = _load()
_ENCODING = sys.getfilesystemencoding()  # what os.fsencode uses, spelt out: it is hot

#: A file action: ("open", fd, path, flags, mode) or ("dup2", fd, new_fd).
FileAction = tuple[Any, ...]


def spawn(path: str, argv: Sequence[str], env: Mapping[str, str],
          actions: Sequence[FileAction], *, releases_gil: bool = True) -> int:
    """Start ``path`` in its own session with ``argv``, ``env`` and the file actions
    applied in the child (errors in them fail the spawn); default handlers for
    RESET_SIGNALS. Returns the pid; raises OSError with the errno of what failed."""
    if _libc is None or not releases_gil:
        return os.posix_spawn(path, list(argv), env, file_actions=_os_actions(actions),
                              setsid=True, setsigdef=RESET_SIGNALS)
    lib = _libc
    fa = ctypes.create_string_buffer(_ACTIONS_SIZE)
    lib.actions_init(fa)
    try:
        for action in actions:
            if action[0] == "open":
                _, fd, file, flags, mode = action
                rc = lib.add_open(fa, fd, os.fsencode(file), flags, mode)
            else:
                rc = lib.add_dup2(fa, action[1], action[2])
            if rc != 0:
                raise OSError(rc, os.strerror(rc))
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*map(os.fsencode, argv), None)
        entries = [f"{k}={v}".encode(_ENCODING, "surrogateescape") for k, v in env.items()]
        c_env = (ctypes.c_char_p * (len(entries) + 1))(*entries, None)
        pid = ctypes.c_int()
        rc = lib.spawn(ctypes.byref(pid), os.fsencode(path), fa, lib.attr, c_argv, c_env)
    finally:
        lib.actions_destroy(fa)
    if rc != 0:
        raise OSError(rc, f"{os.strerror(rc)}: {path!r}")
    return pid.value


def _os_actions(actions: Sequence[FileAction]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for action in actions:
        if action[0] == "open":
            out.append((os.POSIX_SPAWN_OPEN, *action[1:]))
        else:
            out.append((os.POSIX_SPAWN_DUP2, *action[1:]))
    return out
