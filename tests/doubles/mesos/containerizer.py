"""Executor processes: spawn in a sandbox and their own session, watch exits, kill groups."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from .wire import JsonDict


def spawn(command: JsonDict, env: dict[str, str], directory: Path) -> subprocess.Popen[bytes]:
    """``/bin/sh -c value`` when shell (default), else exec value with arguments as argv."""
    with open(directory / "stdout", "ab") as out, open(directory / "stderr", "ab") as err:
        if command.get("shell", True):
            argv = ["/bin/sh", "-c", command.get("value", "")]
            executable = None
        else:
            argv = list(command.get("arguments") or [command.get("value", "")])
            executable = command.get("value")
        return subprocess.Popen(
            argv,
            executable=executable,
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )


def raw_wait_status(returncode: int) -> int:
    """Rebuild waitpid()'s raw status: exit(7) -> 1792, killed by signal 9 -> 9."""
    return -returncode if returncode < 0 else returncode << 8


def watch_exit(process: subprocess.Popen[bytes], on_exit: Callable[[int], None]) -> None:
    """Call ``on_exit(raw_status)`` on the running loop when the process ends."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        _watch_with_thread(process, on_exit, loop)
        return

    def readable() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        on_exit(raw_wait_status(process.wait()))

    loop.add_reader(fd, readable)


def _watch_with_thread(
    process: subprocess.Popen[bytes],
    on_exit: Callable[[int], None],
    loop: asyncio.AbstractEventLoop,
) -> None:
    def wait() -> None:
        status = raw_wait_status(process.wait())
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(on_exit, status)

    threading.Thread(target=wait, daemon=True, name=f"wait-{process.pid}").start()


def kill_group(pid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal the executor's whole process group (it runs in its own session)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
