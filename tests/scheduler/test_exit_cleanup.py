"""A process that exits without shutdown(), or whose batch system fails to start, leaves
no scratch directory behind (/dev/shm/mesobatch-*, /tmp/mesobatch-*-work-*, resource
stores) and no job running (issue 17). Each case runs in a process of its own, which
records every temporary directory mesobatch makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

RECORD = textwrap.dedent("""
    import atexit, json, sys, tempfile
    made = []
    _mkdtemp = tempfile.mkdtemp
    def mkdtemp(*args, **kwargs):
        path = _mkdtemp(*args, **kwargs)
        made.append(path)
        return path
    tempfile.mkdtemp = mkdtemp
    # registered first, so it runs last: after mesobatch's own exit handlers
    atexit.register(lambda: print(json.dumps(made), file=sys.stderr))
    import mesobatch
""")


def run(script: str, tmp_path: Path) -> tuple[list[str], str]:
    """Run RECORD + script; (the directories it made, its stdout)."""
    done = subprocess.run([sys.executable, "-c", RECORD + textwrap.dedent(script)],
                          check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    made: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return made, done.stdout


def test_exit_without_shutdown_leaves_nothing_behind(tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    made, out = run(f"""
        bs = mesobatch.batch_system("local", maxCores=1, maxMemory="1G", maxDisk="1G")
        bs.resource_service()  # a resource store
        job = bs.issueBatchJob('test -d "$MESOBATCH_WORK_DIR" && echo ok',
                               mesobatch.JobDescription(cores=1, memory=2**26, disk=2**26))
        info = bs.getUpdatedBatchJob(30)
        print(info.exitStatus)
        bs.issueBatchJob("sleep 3; touch {marker}",
                         mesobatch.JobDescription(cores=1, memory=2**26, disk=2**26))
        # no shutdown()
    """, tmp_path)
    assert out.split() == ["0"]
    assert len(made) >= 3, made  # the log directory, the work directory, the store
    assert any("-work-" in p for p in made) and any("resources" in p for p in made), made
    assert [p for p in made if os.path.exists(p)] == []
    assert not marker.exists()  # the running job was killed, not left to finish


def test_a_constructor_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    # ZooKeeper does not answer: the mesos backend fails after its log directory and
    # resource store (for the executor bundle) were made
    made, out = run("""
        import os
        try:
            mesobatch.batch_system("mesos", mesosMaster="zk://127.0.0.1:9/mesos", zkTimeout=1)
        except Exception as e:
            print("refused:", type(e).__name__)
        print(json.dumps([p for p in made if os.path.exists(p)]))
    """, tmp_path)
    refused, left = out.strip().splitlines()
    assert refused.startswith("refused:")
    assert made, "nothing was made: the test would prove nothing"
    assert json.loads(left) == []  # already gone when the constructor raised
    assert [p for p in made if os.path.exists(p)] == []
