"""The local backend's jobs die with the scheduling process, even when it is killed with
SIGKILL (issue 10 defect 2): jobs that ignore SIGTERM and the children they forked too."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.processes import still_running, wait_gone
from tests.stubborn_jobs import pids_of, started, stubborn

SCHEDULER = textwrap.dedent("""
    import sys, time
    import mesobatch
    bs = mesobatch.batch_system("local", maxCores=3, maxMemory="1G", maxDisk="1G")
    for command in sys.argv[1:]:
        bs.issueBatchJob(command, mesobatch.JobDescription(cores=1, memory=2**26, disk=2**26))
    time.sleep(600)
""")


def test_jobs_die_with_the_scheduling_process_killed_with_sigkill(tmp_path: Path) -> None:
    commands = [stubborn(tmp_path, f"j{i}") for i in range(3)]
    proc = subprocess.Popen([sys.executable, "-c", SCHEDULER, *commands])
    try:
        deadline = time.monotonic() + 60
        while not all(started(tmp_path, f"j{i}") for i in range(3)):
            assert proc.poll() is None and time.monotonic() < deadline, "no job started"
            time.sleep(0.02)
        pids = pids_of(tmp_path)
        assert len(pids) == 9 and still_running(pids) == pids
    finally:
        proc.kill()
        proc.wait()
    assert wait_gone(pids, timeout=10) == []
