"""The plugin as Toil sees it: discovered when installed, its options in Toil's parser
and Config, Toil's types in and out, and the distribution shipping it."""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from configargparse import ArgParser
from toil.batchSystems.abstractBatchSystem import (
    AbstractScalableBatchSystem,
    BatchJobExitReason,
    UpdatedBatchJobInfo,
)
from toil.batchSystems.abstractBatchSystem import (
    InsufficientSystemResources as ToilInsufficient,
)
from toil.batchSystems.cleanup_support import WorkerCleanupContext
from toil.common import Config, addOptions
from toil.job import JobDescription

from mesobatch.integration.toil_options import toil_dest
from mesobatch.integration.toil_plugin import (
    ToilBatchSystem,
    toil_batch_system_class,
    worker_search_path,
)

from .conftest import REPO, explain, run, start_double

# Run in a fresh interpreter: Toil must find the plugin by itself, as installed.
CONFIG_CHECK = """
import json, sys
from configargparse import ArgParser
from toil.batchSystems.registry import get_batch_system, get_batch_systems
from toil.common import Toil, addOptions

parser = ArgParser()
addOptions(parser)
options = parser.parse_args([sys.argv[1], "--clean=always", "--batchSystem", "mesos",
                             "--mesosEndpoint", "10.1.2.3:5050", "--mesosRole", "batch",
                             "--mesosName", "nightly", "--mesosFrameworkId", "fw-1",
                             "--mesosFailoverTimeout", "42", "--mesosCheckpoint", "false",
                             "--logDir", sys.argv[2]])
with Toil(options) as toil:
    c = toil.config
    cls = get_batch_system("mesos")
    print(json.dumps({
        "names": get_batch_systems(),
        "mesos": f"{cls.__module__}.{cls.__name__}",
        "config": {k: getattr(c, k) for k in (
            "mesos_endpoint", "mesos_role", "mesos_name", "mesos_framework_id",
            "mesos_failover_timeout", "mesos_checkpoint", "mesobatch_log_dir")},
    }))
"""


def test_toil_finds_the_plugin_and_its_options_reach_config(tmp_path: Path) -> None:
    """Toil's plugin-installable check, for the plugin as installed."""
    result = run([sys.executable, "-c", CONFIG_CHECK, str(tmp_path / "js"),
                  str(tmp_path / "logs")], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, explain(result)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"mesos", "mesobatch_local", "single_machine"} <= set(out["names"])
    assert out["mesos"] == "mesobatch.integration.toil_plugin.MesobatchMesosBatchSystem"
    assert out["config"] == {
        "mesos_endpoint": "10.1.2.3:5050", "mesos_role": "batch", "mesos_name": "nightly",
        "mesos_framework_id": "fw-1", "mesos_failover_timeout": 42.0,
        "mesos_checkpoint": False, "mesobatch_log_dir": str(tmp_path / "logs"),
    }


def toil_parser() -> ArgParser:
    parser = ArgParser()
    addOptions(parser)
    return parser


def test_enforce_memory_is_a_flag_for_toil_too() -> None:
    from mesobatch.integration.local import LocalOptions
    from mesobatch.integration.toil_options import arguments_from_config
    from mesobatch.scheduler.options import resolve

    parser = toil_parser()
    given = parser.parse_args(["file:js", "--enforceMemory"])
    assert getattr(given, toil_dest("enforce_memory")) is True
    config = argparse.Namespace(**vars(given))
    options = resolve(LocalOptions, arguments_from_config(LocalOptions, config))
    assert options.enforce_memory is True
    assert getattr(parser.parse_args(["file:js"]), toil_dest("enforce_memory")) is None


def test_option_dests_are_unique_and_keep_toils_mesos_names() -> None:
    parser = toil_parser()
    by_dest: dict[str, list[argparse.Action]] = {}
    for action in parser._actions:
        by_dest.setdefault(action.dest, []).append(action)
    ours = {a.dest for a in parser._actions
            if any(s.startswith("--mesos") for s in a.option_strings)}
    assert {"mesos_endpoint", "mesos_role", "mesos_name", "mesos_framework_id"} <= ours
    (master,) = by_dest["mesos_endpoint"]
    assert set(master.option_strings) == {"--mesosMaster", "--mesosEndpoint"}
    for dest in [*ours, toil_dest("log_dir"), toil_dest("kill_grace_period")]:
        assert len(by_dest[dest]) == 1, (dest, [a.option_strings for a in by_dest[dest]])
    # cwltool's --log-dir keeps its dest to itself
    assert [a.option_strings for a in by_dest["log_dir"]] == [["--log-dir"]]
    # Toil's own --maxCores stays Toil's
    assert [a.option_strings for a in by_dest["maxCores"]] == [["--maxCores"]]


def test_a_bad_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        toil_parser().parse_args(["js", "--mesosFailoverTimeout", "soon"])
    assert e.value.code == 2
    assert "--mesosFailoverTimeout" in capsys.readouterr().err


def toil_config(**attributes: Any) -> Config:
    config = Config()
    config.workflowID = str(uuid.uuid4())
    for name, value in attributes.items():
        setattr(config, name, value)
    return config


def toil_job(cores: float = 0.5, **requirements: Any) -> JobDescription:
    requirements = {"memory": 64 * 2**20, "cores": cores, "disk": 2**20, "accelerators": [],
                    "preemptible": False, **requirements}
    return JobDescription(requirements=requirements, jobName="probe", unitName=None)


@pytest.fixture
def local_bs(tmp_path: Path) -> Any:
    cls = toil_batch_system_class("local")
    config = toil_config(workDir=str(tmp_path / "work"), cleanWorkDir="onSuccess",
                         batch_logs_dir=str(tmp_path / "batch-logs"),
                         mesobatch_kill_grace_period=1.0)
    bs = cls(config=config, maxCores=2, maxMemory=sys.maxsize, maxDisk=sys.maxsize)
    yield bs
    bs.shutdown()


def test_toils_config_and_limits_are_honoured(local_bs: Any, tmp_path: Path) -> None:
    assert isinstance(local_bs, AbstractScalableBatchSystem)
    assert local_bs.options.max_cores == 2
    # sys.maxsize is Toil's "not given": the machine's size applies
    assert 0 < local_bs.options.max_memory < sys.maxsize
    assert local_bs.options.kill_grace_period == 1.0
    assert local_bs.get_batch_logs_dir() == str(tmp_path / "batch-logs")
    (context,) = local_bs.getWorkerContexts()
    assert isinstance(context, WorkerCleanupContext)
    info = context.workerCleanupInfo
    assert (info.work_dir, info.workflow_id, info.clean_work_dir) == (
        str(tmp_path / "work"), local_bs.config.workflowID, "onSuccess")
    assert local_bs.supportsWorkerCleanup()


def test_results_are_toils_and_the_failed_jobs_log_is_found(local_bs: Any) -> None:
    job = local_bs.issueBatchJob("echo to the log; exit 3", toil_job(),
                                 job_environment={"OMP_NUM_THREADS": "1"})
    info = local_bs.getUpdatedBatchJob(maxWait=60)
    assert isinstance(info, UpdatedBatchJobInfo)
    assert (info.jobID, info.exitStatus, info.exitReason) == (job, 3,
                                                               BatchJobExitReason.FAILED)
    (log,) = glob.glob(local_bs.format_std_out_err_glob(job))  # as Toil's leader looks
    assert Path(log).read_text() == "to the log\n"


def test_oversized_jobs_raise_toils_exception(local_bs: Any) -> None:
    with pytest.raises(ToilInsufficient) as e:
        local_bs.issueBatchJob("true", toil_job(cores=64))
    assert e.value.resource == "cores" and "--maxCores" in str(e.value)
    with pytest.raises(ToilInsufficient) as e:
        local_bs.issueBatchJob("true", toil_job(accelerators=[{"kind": "tpu", "count": 1}]))
    assert e.value.resource == "accelerators"
    assert local_bs.getIssuedBatchJobIDs() == []


def test_worker_search_path(tmp_path: Path) -> None:
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    python = str(bindir / "python")
    assert worker_search_path("/usr/bin:/bin", python) is None  # no _toil_worker there
    (bindir / "_toil_worker").touch()
    assert worker_search_path("/usr/bin:/bin", python) == f"{bindir}:/usr/bin:/bin"
    assert worker_search_path(f"/usr/bin:{bindir}:/bin", python) == f"{bindir}:/usr/bin:/bin"
    assert worker_search_path(f"{bindir}:/usr/bin", python) is None  # already first
    assert worker_search_path("", "") is None


def test_jobs_get_the_leaders_interpreter_directory_first(local_bs: Any) -> None:
    expected = worker_search_path(os.environ.get("PATH", ""), sys.executable)
    job = local_bs.issueBatchJob('test "$PATH" = "$EXPECTED"', toil_job(),
                                 job_environment={"EXPECTED": expected or os.environ["PATH"]})
    info = local_bs.getUpdatedBatchJob(maxWait=60)
    assert (info.jobID, info.exitStatus) == (job, 0)


def test_every_backend_is_registered_under_its_toil_name() -> None:
    from toil.batchSystems.registry import get_batch_system

    import mesobatch

    for name in mesobatch.backend_names():
        toil_name = "mesos" if name == "mesos" else f"mesobatch_{name}"
        cls = get_batch_system(toil_name)
        assert issubclass(cls, ToilBatchSystem) and cls.backend_class.name == name
        assert get_batch_system(toil_name) is cls


@pytest.mark.slow
def test_the_distribution_ships_the_plugin_module(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "--disable-pip-version-check", "-w", str(tmp_path), str(REPO)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, explain(result)
    (wheel,) = tmp_path.glob("mesobatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"toil_batch_system_mesobatch.py", "mesobatch/integration/toil_plugin.py",
            "mesobatch/integration/toil_options.py"} <= names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Provides-Extra: toil" in text and "toil>=9.0; extra == \"toil\"" in text


def test_mesobatch_mesos_batch_system_takes_toils_config_and_arguments() -> None:
    import mesobatch

    double = start_double()
    try:
        config = toil_config(mesos_endpoint=double.master_address, mesos_name="toil-config")
        bs = mesobatch.MesosBatchSystem(config=config, maxCores=2, maxMemory=1e9,
                                        maxDisk=2**30)
        try:
            job = bs.issueBatchJob("true", toil_job())
            info = bs.getUpdatedBatchJob(maxWait=60)
            assert (info.jobID, info.exitStatus) == (job, 0)
            assert bs.workflow_id == config.workflowID
            (framework,) = double.state()["frameworks"].values()
            assert framework["name"] == "toil-config"
        finally:
            bs.shutdown()
    finally:
        double.stop()


def test_toils_mesos_class_has_toils_mesos_names() -> None:
    from toil.batchSystems.registry import get_batch_system

    cls = get_batch_system("mesos")
    for name in ("get_default_mesos_endpoint", "registered", "reregistered",
                 "resourceOffers", "statusUpdate", "frameworkMessage", "executorLost",
                 "nodeFilter", "nodeFiltering", "ExecutorInfo", "getNodes"):
        assert hasattr(cls, name), name
    assert isinstance(cls.get_default_mesos_endpoint(), str)


def test_get_nodes_gives_toils_node_info_flagged_by_the_node_filter(local_bs: Any) -> None:
    from toil.batchSystems.abstractBatchSystem import NodeInfo as ToilNodeInfo

    nodes = local_bs.getNodes(preemptible=None, timeout=None)
    ((address, node),) = nodes.items()
    assert isinstance(node, ToilNodeInfo) and node.filtered is False
    local_bs.nodeFilter = [lambda executor: executor.nodeAddress != address]
    ((_, node),) = local_bs.getNodes().items()
    assert node.filtered is True and node.coresTotal > 0
