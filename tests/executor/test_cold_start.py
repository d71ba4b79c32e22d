"""Cold starts: a task's command spawned as a child in a session of its own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from mesobatch.executor.cold_start import ColdStart
from mesobatch.executor.runner import LaunchError, ProcessSpec

PATH = {"PATH": os.environ["PATH"]}
cold = ColdStart()


def run(spec: ProcessSpec) -> tuple[int, int]:
    """Start ``spec`` as the runner would; its pid and exit code."""
    pid = cold.start(spec, cold.resolve(spec))
    return pid, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_plain_commands_are_execd_directly_in_their_own_session(tmp_path: Path) -> None:
    spec = ProcessSpec("t", "sleep 0.2", PATH)
    argv = cold.resolve(spec)
    assert argv is not None and os.path.basename(argv[0]) == "sleep" and argv[1:] == ["0.2"]
    pid = cold.start(spec, argv)
    try:
        assert psutil.Process(pid).name() == "sleep"
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid
    finally:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_shell_syntax_goes_through_sh_with_logs_opened_by_the_child(tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    spec = ProcessSpec("t", "echo out; echo err >&2; read x; echo \"[$x]\"; exit 3", PATH,
                       stdout=str(out), stderr=str(err))
    assert cold.resolve(spec) is None
    assert run(spec)[1] == 3
    assert out.read_text() == "out\n[]\n"  # stdin is /dev/null
    assert err.read_text() == "err\n"
    assert stat.S_IMODE(out.stat().st_mode) & 0o644 == 0o644
    both = tmp_path / "both"
    run(ProcessSpec("u", "echo a; echo b >&2", PATH, stdout=str(both), stderr=str(both)))
    assert both.read_text() == "a\nb\n"


def test_a_working_directory_is_entered_by_the_shell(tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    out = tmp_path / "out"
    spec = ProcessSpec("t", "pwd", PATH, cwd=str(tmp_path / "sub dir"), stdout=str(out))
    assert cold.resolve(spec) is None  # posix_spawn has no chdir
    assert run(spec)[1] == 0
    assert out.read_text() == f"{tmp_path / 'sub dir'}\n"
    assert run(ProcessSpec("u", "pwd", PATH, cwd=str(tmp_path / "missing")))[1] == 127


def test_a_program_gone_since_it_was_looked_up_falls_back_to_the_shell(tmp_path: Path) -> None:
    prog = tmp_path / "myprog"
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    err = tmp_path / "err"
    spec = ProcessSpec("t", "myprog", env, stderr=str(err))
    argv = cold.resolve(spec)
    assert argv == [str(prog)]
    prog.unlink()
    pid = cold.start(spec, argv)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 127
    assert "not found" in err.read_text()
    assert cold.resolve(spec) is None  # forgotten


def test_a_log_that_cannot_be_opened_is_a_launch_error(tmp_path: Path) -> None:
    spec = ProcessSpec("bad", "true", PATH, stdout=str(tmp_path / "no" / "such"))
    with pytest.raises(LaunchError, match="cannot start task bad") as info:
        cold.start(spec, cold.resolve(spec))
    assert info.value.errno == 2
