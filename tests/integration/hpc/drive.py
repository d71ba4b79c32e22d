"""A test stand-in for the base's I/O: write a submission's scripts, run a dialect's argv
against a fake, poll with its one status query (and its accounting query) until final."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mesobatch.integration.hpc.dialect import CommandResult, NativeStatus, Submission
from tests.doubles.hpcfake.testing import FakeCluster
from tests.waiting import wait_for


def result(cluster: FakeCluster, argv: list[str]) -> CommandResult:
    res = cluster.run(argv)
    return CommandResult(tuple(argv), res.returncode, res.stdout, res.stderr)


def make_submission(tmp_path: Path, dialect: Any, name: str, bodies: list[str],
                    **shape: Any) -> Submission:
    """Scripts for ``bodies`` (one job, or an array when several), as the base writes them."""
    jobs = tmp_path / "jobs"
    out = tmp_path / "system"
    jobs.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    scripts = []
    for i, body in enumerate(bodies):
        path = jobs / f"{name}-{i}.sh"
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        scripts.append(str(path))
    array_script = None
    if len(bodies) > 1:
        var, first = dialect.array_index_variable, dialect.array_first_index
        cases = "".join(f"  {i + first}) exec {s} ;;\n" for i, s in enumerate(scripts))
        path = jobs / f"{name}-array.sh"
        path.write_text(f'#!/bin/sh\ncase "${var}" in\n{cases}  *) exit 99 ;;\nesac\n')
        path.chmod(0o755)
        array_script = str(path)
    defaults: dict[str, Any] = dict(cores=1.0, memory=0, disk=0, gpus=0, walltime=None,
                                    preemptible=False)
    defaults.update(shape)
    return Submission(name=name, scripts=tuple(scripts), array_script=array_script,
                      system_output=str(out), work_dir=str(tmp_path), **defaults)


def submit(cluster: FakeCluster, dialect: Any, sub: Submission) -> list[str]:
    for path, text in dialect.submit_files(sub).items():
        Path(path).write_text(text)
    res = result(cluster, dialect.submit_argv(sub))
    assert res.returncode == 0, res
    ids: list[str] = dialect.parse_submit(sub, res)
    assert len(ids) == sub.size
    return ids


def poll(cluster: FakeCluster, dialect: Any, tag: str, ids: list[str]) -> dict[str, NativeStatus]:
    """One status query (plus accounting for jobs it no longer shows)."""
    statuses: dict[str, NativeStatus] = dialect.parse_status(
        result(cluster, dialect.status_argv(tag, ids)))
    gone = [i for i in ids if i not in statuses]
    argv = dialect.accounting_argv(gone) if gone else None
    if argv is not None:
        statuses.update(dialect.parse_accounting(result(cluster, argv)))
    return {i: s for i, s in statuses.items() if i in ids}


def final(cluster: FakeCluster, dialect: Any, tag: str, ids: list[str],
          timeout: float = 30.0) -> dict[str, NativeStatus]:
    def probe() -> dict[str, NativeStatus] | None:
        got = poll(cluster, dialect, tag, ids)
        return got if len(got) == len(ids) and all(s.state.terminal for s in got.values()) \
            else None
    return wait_for(probe, timeout=timeout, interval=0.1)


def until_state(cluster: FakeCluster, dialect: Any, tag: str, job: str,
                state: Any) -> NativeStatus:
    def probe() -> NativeStatus | None:
        status = poll(cluster, dialect, tag, [job]).get(job)
        return status if status is not None and status.state is state else None
    return wait_for(probe, interval=0.1)


def env_has(path: str) -> bool:
    return os.path.exists(path)
