"""The job wrapper and the array dispatcher, run by a real /bin/sh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mesobatch.integration.hpc.wrapper import (
    array_script,
    job_script,
    read_records,
    wall_time,
    write_script,
)

TRICKY = "a 'b' \"c\" $HOME `id` \\ ; & | * ~ \n second line"


def wrapper(tmp_path: Path, command: str, env: dict[str, str], name: str = "1.0") -> Path:
    path = tmp_path / f"{name}.sh"
    write_script(str(path), job_script(
        title="job 1 (evil\nname)", command=command, env=env,
        log=str(tmp_path / f"{name}.log"), record=str(tmp_path / "records" / name),
        work_dir=str(tmp_path)))
    (tmp_path / "records").mkdir(exist_ok=True)
    return path


def test_the_command_runs_as_the_shell_would_with_the_values_exactly(tmp_path: Path) -> None:
    script = wrapper(tmp_path, 'printf "%s|%s|" "$V" "$(pwd)"; printf %s "$1" >&2; exit 3',
                     {"V": TRICKY, "odd-name": "x", "OMP_NUM_THREADS": "2"})
    assert os.stat(script).st_mode & 0o777 == 0o700
    done = subprocess.run([str(script)], cwd="/", env={"PATH": os.environ["PATH"]},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 3 and done.stdout == done.stderr == ""  # all in the log
    assert (tmp_path / "1.0.log").read_text() == f"{TRICKY}|{tmp_path}|"
    starts, exits = read_records(str(tmp_path / "records"), {"1.0"}, {"1.0"})
    assert exits["1.0"].exit_code == 3 and starts["1.0"].node == os.uname().nodename
    assert exits["1.0"].at >= starts["1.0"].at
    assert sorted(os.listdir(tmp_path / "records")) == ["1.0.exit", "1.0.started"]


def test_a_signal_is_recorded_as_the_shell_reports_it(tmp_path: Path) -> None:
    script = wrapper(tmp_path, "kill -TERM $$", {})
    assert subprocess.run([str(script)], check=False).returncode == 143
    _, exits = read_records(str(tmp_path / "records"), set(), {"1.0"})
    assert exits["1.0"].exit_code == 143


def test_the_array_dispatcher_runs_the_script_its_index_names(tmp_path: Path) -> None:
    scripts = [wrapper(tmp_path, f"echo {i}", {}, f"{i}.0") for i in range(3)]
    path = tmp_path / "array.sh"
    write_script(str(path), array_script(scripts=[str(s) for s in scripts],
                                         index_variable="TASK", first_index=1))
    for index in (1, 2, 3):
        env = {"PATH": os.environ["PATH"], "TASK": str(index)}
        assert subprocess.run([str(path)], env=env, check=False).returncode == 0
    assert [(tmp_path / f"{i}.0.log").read_text() for i in range(3)] == ["0\n", "1\n", "2\n"]
    done = subprocess.run([str(path)], env={"PATH": os.environ["PATH"], "TASK": "9"},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "no job for array index '9'" in done.stderr


def test_reserved_exit_statuses_are_recorded_but_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "r.sh"
    (tmp_path / "records").mkdir()
    for code, returned in ((99, 1), (100, 1), (98, 98)):
        write_script(str(path), job_script(
            title="t", command=f"exit {code}", env={}, log=str(tmp_path / "log"),
            record=str(tmp_path / "records" / str(code)), work_dir=str(tmp_path),
            reserved_exit_codes=[99, 100]))
        assert subprocess.run([str(path)], check=False).returncode == returned
    _, exits = read_records(str(tmp_path / "records"), set(), {"99", "100", "98"})
    assert {k: e.exit_code for k, e in exits.items()} == {"99": 99, "100": 100, "98": 98}


def test_the_wall_time_comes_from_the_node_s_clock_and_is_never_short(tmp_path: Path) -> None:
    script = wrapper(tmp_path, "sleep 0.3", {})
    subprocess.run([str(script)], check=True)
    starts, exits = read_records(str(tmp_path / "records"), {"1.0"}, {"1.0"})
    assert starts["1.0"].clock is not None and exits["1.0"].clock is not None
    assert 0.3 <= wall_time(starts["1.0"], exits["1.0"]) < 5
    # a start record still being written (empty) is not taken
    (tmp_path / "records" / "2.0.started").write_text("")
    assert read_records(str(tmp_path / "records"), {"2.0"}, set())[0] == {}
    # records without the clock line: their files' times
    (tmp_path / "records" / "3.0.started").write_text("node9\n")
    (tmp_path / "records" / "3.0.exit").write_text("0\n")
    os.utime(tmp_path / "records" / "3.0.started", (100.0, 100.0))
    os.utime(tmp_path / "records" / "3.0.exit", (102.5, 102.5))
    starts, exits = read_records(str(tmp_path / "records"), {"3.0"}, {"3.0"})
    assert starts["3.0"].clock is None and wall_time(starts["3.0"], exits["3.0"]) == 2.5
