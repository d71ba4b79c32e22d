"""Node tracking and draining on the local backend (one emulated agent)."""

from __future__ import annotations

import time

import mesobatch
from mesobatch import JobDescription

J = JobDescription(cores=1, memory=2**20, disk=2**20)


def test_get_nodes_node_in_use_and_drain_by_ignoring() -> None:
    with mesobatch.batch_system("local", maxCores=2, maxMemory="1G", maxDisk="1G") as bs:
        nodes = bs.getNodes()
        assert list(nodes) == ["127.0.0.1"]
        info = nodes["127.0.0.1"]
        assert info.coresTotal == 2 and info.memoryTotal > 0 and info.workers == 0
        assert 0 <= info.coresUsed <= 1 and 0 <= info.memoryUsed <= 1
        assert not bs.nodeInUse("127.0.0.1")
        busy = bs.issueBatchJob("sleep 1", J)
        deadline = time.monotonic() + 10
        while busy not in bs.getRunningBatchJobIDs() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bs.nodeInUse("127.0.0.1")
        assert bs.getNodes()["127.0.0.1"].requestedCores == 1
        # drain: no new work lands, the running job finishes, the node goes idle
        bs.ignoreNode("127.0.0.1")
        later = bs.issueBatchJob("true", J)
        first = bs.getUpdatedBatchJob(10)
        assert first is not None and first.jobID == busy
        assert not bs.nodeInUse("127.0.0.1")
        assert bs.getUpdatedBatchJob(1) is None and later not in bs.getRunningBatchJobIDs()
        message = bs.getSchedulingStatusMessage()
        assert message is not None and "Ignored nodes (no new jobs): 127.0.0.1" in message
        bs.unignoreNode("127.0.0.1")
        done = bs.getUpdatedBatchJob(10)
        assert done is not None and done.jobID == later and done.exitStatus == 0
        bs.unignoreNode("10.9.9.9")  # unknown address: not an error
        assert not bs.nodeInUse("10.9.9.9")
        types = bs.nodeTypes()
        assert len(types) == 1 and next(iter(types)).cores == 2
