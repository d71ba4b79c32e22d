"""Starting processes: the GIL-free posix_spawn and running plain commands without sh."""

from __future__ import annotations

import errno
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from mesobatch.executor import command
from mesobatch.executor.command import direct_argv
from mesobatch.executor.spawn import spawn

PATH = {"PATH": os.environ["PATH"]}


def status_of(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.parametrize("releases_gil", [True, False])
def test_spawn_own_session_default_sigpipe_and_file_actions(tmp_path: Path,
                                                            releases_gil: bool) -> None:
    out = tmp_path / "out"
    pid = spawn("/bin/sh", ["/bin/sh", "-c", "echo $$ $(ps -o sid= -p $$); "
                            "grep SigIgn /proc/self/status; cat; echo err >&2"],
                {**PATH, "X": "y"},
                [("open", 0, os.devnull, os.O_RDONLY, 0),
                 ("open", 1, str(out), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                 ("dup2", 1, 2)], releases_gil=releases_gil)
    assert status_of(pid) == 0
    first, ignored, err = out.read_text().splitlines()
    me, sid = first.split()
    assert me == sid == str(pid)  # its own session, so its own process group
    # Python ignores SIGPIPE; the child must not inherit that
    assert not int(ignored.split()[1], 16) & (1 << (signal.SIGPIPE - 1))
    assert err == "err"
    assert stat.S_IMODE(out.stat().st_mode) & 0o644 == 0o644


def test_spawn_reports_the_errno_of_what_failed(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        spawn(str(tmp_path / "missing"), ["x"], PATH, [])
    assert info.value.errno == errno.ENOENT
    with pytest.raises(OSError) as info:  # a file action that fails fails the spawn
        spawn("/bin/true", ["true"], PATH,
              [("open", 1, str(tmp_path / "no" / "dir"), os.O_WRONLY | os.O_CREAT, 0o644)])
    assert info.value.errno == errno.ENOENT


def test_spawn_lets_other_threads_run_while_the_child_starts(tmp_path: Path) -> None:
    # The child's stdin is a FIFO: its open blocks the spawn until a writer comes, and
    # the writer is a Python thread. Were the interpreter held during the spawn, only
    # the fallback writer (a shell, 10 s later) could free it.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fallback = spawn("/bin/sh", ["/bin/sh", "-c", f"sleep 10; exec 3>'{fifo}'"], PATH, [])

    def writer() -> None:
        time.sleep(0.2)
        os.close(os.open(fifo, os.O_WRONLY))

    t = threading.Thread(target=writer)
    t.start()
    started = time.monotonic()
    try:
        pid = spawn("/bin/true", ["true"], PATH, [("open", 0, str(fifo), os.O_RDONLY, 0)])
        took = time.monotonic() - started
    finally:
        t.join()
        os.kill(fallback, signal.SIGKILL)
        status_of(fallback)
    assert status_of(pid) == 0
    assert took < 5


@pytest.mark.parametrize("line", ["true", "  sleep 0.1 ", "env A=b c", "ls -la /tmp/x,y:z@1+2%"])
def test_plain_commands_run_without_a_shell(line: str) -> None:
    argv = direct_argv(line, PATH)
    assert argv is not None and os.path.isabs(argv[0]) and argv[1:] == line.split()[1:]


@pytest.mark.parametrize("line", [
    "echo -e x",  # a builtin that differs from the program of the same name
    "cd /tmp", "exit 3", "A=1 env", "true; false", "true && false", "ls *", "ls ~",
    "echo $HOME", "ls 'a b'", 'ls "a"', "ls a\\ b", "cat < x", "ls > y", "ls | wc",
    "sleep 1 &", "ls # comment", "(true)", "{ true; }", "true\nfalse", "`true`",
    "no-such-program-here", "", "   ",
])
def test_shell_syntax_builtins_and_unknown_programs_keep_the_shell(line: str) -> None:
    assert direct_argv(line, PATH) is None


def test_program_lookup_uses_the_jobs_path_and_forgets_failures(tmp_path: Path) -> None:
    prog = tmp_path / "myprog"
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    assert direct_argv("myprog --flag", env) == [str(prog), "--flag"]
    assert direct_argv("myprog", PATH) is None  # not on that PATH
    prog.unlink()
    command.forget("myprog", env)
    assert direct_argv("myprog", env) is None
