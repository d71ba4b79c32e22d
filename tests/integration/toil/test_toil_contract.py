"""Toil's own generic batch-system tests, as Toil ships them, against the plugin's classes.

The ``hidden.AbstractBatchSystemTest`` family (run, kill, exit codes, wall time, setEnv,
per-job environments, resource checks) and ``AbstractBatchSystemJobTest`` (whole
workflows: exact concurrency, OMP_NUM_THREADS) run against what Toil's registry hands
out for ``--batchSystem mesos`` (on a Mesos double) and ``--batchSystem mesobatch_local``.

Toil's single-machine process-escape tests (descendants of a job, hidden or not, are
gone when shutdown() returns) run against ``mesobatch_local``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from toil.batchSystems.abstractBatchSystem import AbstractBatchSystem
from toil.batchSystems.registry import get_batch_system
from toil.test.batchSystems import batchSystemTest as toil_tests  # noqa: N813

from mesobatch.integration.toil_plugin import ToilBatchSystem
from tests.doubles.mesos import MesosDouble

from .conftest import start_double


def _job(name: str) -> Any:
    return toil_tests.JobDescription(requirements=toil_tests.defaultRequirements,
                                     jobName=name, unitName=None)


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


class _PluginGenericTests(toil_tests.hidden.AbstractBatchSystemTest):
    """Toil's generic tests, and what both plugin classes add to them."""

    __test__ = False
    toil_name = ""

    def supportsWallTime(self) -> bool:
        return True

    def _createConfig(self) -> Any:
        config = super()._createConfig()
        config.mesobatch_kill_grace_period = 1.0
        return config

    def createBatchSystem(self) -> AbstractBatchSystem:
        cls = get_batch_system(self.toil_name)
        assert issubclass(cls, ToilBatchSystem)
        return cls(config=self.config, maxCores=toil_tests.numCores, maxMemory=10**9,
                   maxDisk=2**30)

    def testCheckResourceRequest(self) -> None:
        # Toil runs this test only for subclasses of its BatchSystemSupport, where
        # check_resource_request is defined; ours has the same method: run it for real.
        with mock.patch.object(toil_tests, "BatchSystemSupport", ToilBatchSystem):
            super().testCheckResourceRequest()

    def testScalableBatchSystem(self) -> None:
        # Toil's version is empty. The autoscaler's view: one node, in use exactly while
        # a job runs there; unknown addresses are not errors.
        bs = self.batchSystem
        assert _wait(lambda: len(bs.getNodes()) == 1, 30), bs.getNodes()
        ((address, node),) = bs.getNodes().items()
        assert node.coresTotal >= toil_tests.numCores and node.memoryTotal > 0
        assert not bs.nodeInUse(address)
        job = bs.issueBatchJob("sleep 1000", _job("busy"))
        assert _wait(lambda: job in bs.getRunningBatchJobIDs(), 60)
        assert bs.nodeInUse(address)
        bs.killBatchJobs([job])
        assert _wait(lambda: not bs.nodeInUse(address), 10)
        assert not bs.nodeInUse("192.0.2.1")
        bs.unignoreNode("192.0.2.1")


class TestLocalWithToilsTests(_PluginGenericTests):
    """--batchSystem mesobatch_local."""

    __test__ = True
    toil_name = "mesobatch_local"


class TestMesosWithToilsTests(_PluginGenericTests):
    """--batchSystem mesos, against a Mesos double with one agent of 2 cores."""

    __test__ = True
    toil_name = "mesos"
    double: MesosDouble

    @classmethod
    def setUpClass(cls) -> None:
        cls.double = start_double()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.double.stop()

    def _createConfig(self) -> Any:
        config = super()._createConfig()
        config.mesos_endpoint = self.double.master_address
        return config

    def testIgnoreNode(self) -> None:
        """Toil's Mesos test: an ignored node gets no new job; unignored, it does."""
        bs = self.batchSystem
        assert _wait(bs.getNodes, 30)
        (address,) = bs.getNodes()
        bs.ignoreNode(address)
        job = bs.issueBatchJob("sleep 1000", _job("ignored"))
        assert not _wait(bs.getRunningBatchJobIDs, 8)
        assert "ignored" in (bs.getSchedulingStatusMessage() or "").lower()
        bs.unignoreNode(address)
        assert _wait(lambda: job in bs.getRunningBatchJobIDs(), 60)
        bs.killBatchJobs([job])


class _PluginJobTests(toil_tests.AbstractBatchSystemJobTest):
    # Toil sleeps 30 s per job to measure overlap; 10 s overlaps just as surely.
    sleepTime = 10


class TestLocalWorkflowsWithToilsTests(_PluginJobTests):
    def getBatchSystemName(self) -> str:
        return "mesobatch_local"


class TestMesosWorkflowsWithToilsTests(_PluginJobTests):
    @pytest.fixture(autouse=True)
    def _on_double(self, double: MesosDouble) -> None:
        self.master = double.master_address

    def getBatchSystemName(self) -> str:
        return "mesos"

    def getOptions(self, tempDir: Path) -> Any:
        options = super().getOptions(tempDir)
        options.mesos_endpoint = self.master
        return options


class _ProcessEscape(toil_tests.SingleMachineBatchSystemTest):
    __test__ = False

    def createBatchSystem(self) -> AbstractBatchSystem:
        cls = get_batch_system("mesobatch_local")
        return cls(config=self.config, maxCores=toil_tests.numCores, maxMemory=10**9,
                   maxDisk=2**30)


@pytest.mark.slow
class TestLocalProcessEscape(_ProcessEscape):
    """Only Toil's two process-escape tests here; its generic ones run above."""

    __test__ = True


for _name in dir(_ProcessEscape):
    if _name.startswith("test") and "ProcessEscape" not in _name:
        setattr(TestLocalProcessEscape, _name, None)
