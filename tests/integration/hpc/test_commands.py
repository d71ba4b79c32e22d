"""The one command helper: argument lists, errors that say everything, retries."""

from __future__ import annotations

import sys
import time

import pytest

from mesobatch.integration.hpc.commands import NOT_RUN, CommandError, Commands, Retry
from mesobatch.integration.hpc.dialect import CommandResult, ErrorKind


def classify(result: CommandResult) -> ErrorKind:
    return ErrorKind.TRANSIENT if "busy" in result.stderr else ErrorKind.PERMANENT


def commands(**kw: object) -> Commands:
    kw.setdefault("timeout", 10)
    kw.setdefault("retry", Retry(attempts=3, initial=0.05))
    return Commands(classify, **kw)  # type: ignore[arg-type]


def test_arguments_are_never_parsed_by_a_shell() -> None:
    word = "$(touch /tmp/nope); `id` | ; * 'x'"
    result = commands().run([sys.executable, "-c", "import sys; print(sys.argv[1])", word])
    assert result.stdout == word + "\n" and result.returncode == 0


def test_a_failure_carries_command_status_stdout_and_stderr_and_its_meaning() -> None:
    c = commands()
    with pytest.raises(CommandError) as caught:
        c.run([sys.executable, "-c", "print('out'); import sys; "
               "sys.stderr.write('invalid partition'); sys.exit(3)"])
    e = caught.value
    assert (e.returncode, e.stdout, e.stderr, e.kind) == (3, "out\n", "invalid partition",
                                                         ErrorKind.PERMANENT)
    assert e.argv[0] == sys.executable
    assert "exited with status 3: invalid partition" in str(e)
    assert c.total == 1  # permanent: not tried again


def test_transient_failures_are_tried_again_with_backoff(tmp_path: object) -> None:
    c = commands()
    script = "import sys; sys.stderr.write('controller busy'); sys.exit(1)"
    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        c.run([sys.executable, "-c", script])
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert c.total == 3 and time.monotonic() - started >= 0.15  # waited 0.05 + 0.1
    assert Retry(attempts=5, initial=1, longest=3).delays() == [1, 2, 3, 3]
    with pytest.raises(CommandError):
        c.run([sys.executable, "-c", script], retry=False)
    assert c.total == 4


def test_timeouts_are_transient_and_missing_programs_permanent() -> None:
    c = commands(timeout=0.5, retry=Retry(attempts=1))
    with pytest.raises(CommandError) as caught:
        c.run(["sleep", "5"])
    assert caught.value.kind is ErrorKind.TRANSIENT and caught.value.returncode == NOT_RUN
    assert "timed out after 0.5 s" in str(caught.value)
    with pytest.raises(CommandError) as caught:
        c.run(["/nonexistent/qsub", "x"])
    assert caught.value.kind is ErrorKind.PERMANENT and "cannot be run" in str(caught.value)
