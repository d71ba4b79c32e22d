"""A task whose TaskInfo.data has a field of the wrong type fails alone (TASK_ERROR with
the reason): the executor, its running job and a job launched with it go on (issue 17).
The payload is spoiled on its way out of the scheduler, so the real executor on the
double's agent receives it."""

from __future__ import annotations

import json
from typing import Any

import pytest

import mesobatch
from mesobatch.executor.protocol import b64decode, b64encode
from mesobatch.scheduler.mesos import backend, messages

from .conftest import Cluster, job

#: fields of a TaskPayload with a value of the wrong type; each killed the executor
SPOILED: dict[str, dict[str, Any]] = {"bad-name": {"name": 5}, "bad-env": {"env": "notadict"},
           "bad-command": {"command": 5}, "bad-cores": {"cores": "x"},
           "bad-walltime": {"walltime": "soon"}, "bad-env-value": {"env": {"A": 1}},
           "bad-nul": {"command": "echo a\u0000b"}}


def test_a_spoiled_payload_fails_only_its_task(cluster: Cluster,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    real = messages.task_info

    def spoiling(launch: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        info = real(launch, *args, **kwargs)
        spoil = SPOILED.get(launch.job.name)
        if spoil:
            payload = json.loads(b64decode(info["data"]))
            info["data"] = b64encode(json.dumps({**payload, **spoil}).encode())
        return info

    monkeypatch.setattr(backend, "task_info", spoiling)
    cluster.start()
    bs = cluster.batch_system()
    running = bs.issueBatchJob("sleep 2", job(cores=0.1, name="running"))
    assert _wait_running(bs, running)
    bad = {bs.issueBatchJob("true", job(cores=0.1, name=name)): name for name in SPOILED}
    good = bs.issueBatchJob("true", job(cores=0.1, name="good"))
    results: dict[int, mesobatch.UpdatedBatchJobInfo] = {}
    for _ in range(len(bad) + 2):
        info = bs.getUpdatedBatchJob(30)
        assert info is not None, results
        results[info.jobID] = info
    assert set(results) == {running, good, *bad}
    for job_id in (running, good):
        assert results[job_id].exitStatus == 0, results[job_id]
        assert results[job_id].exitReason is mesobatch.BatchJobExitReason.FINISHED
    for job_id in bad:
        assert results[job_id].exitReason is mesobatch.BatchJobExitReason.ERROR, results[job_id]
    assert bs.getIssuedBatchJobIDs() == []


def _wait_running(bs: mesobatch.BatchSystem, job_id: int) -> bool:
    from tests.waiting import wait_for

    return bool(wait_for(lambda: job_id in bs.getRunningBatchJobIDs(), 20))
