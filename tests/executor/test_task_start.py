"""Starting a task the same way on an agent and on the local backend (task_start.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mesobatch.executor import function_task
from mesobatch.executor.protocol import RESULT_ID_ENV
from mesobatch.executor.runner import TaskExit
from mesobatch.executor.shipping import DirectorySource, NodeResources, Prepared, ResourceError
from mesobatch.executor.task_start import (
    Ending,
    Outcome,
    TaskRequest,
    outcome,
    prepare,
    process_spec,
)


def request(**kw: object) -> TaskRequest:
    fields: dict[str, object] = {"task_id": "7.0", "job_id": 7, "name": "my job",
                                 "command": "echo hi", "cores": 2.5}
    fields.update(kw)
    return TaskRequest(**fields)  # type: ignore[arg-type]


def test_the_environment_is_layered_and_the_node_fills_only_what_the_job_left() -> None:
    req = request(set_env={"A": "set", "OMP_NUM_THREADS": "9", "B": "set"},
                  job_env={"B": "job", "CUDA_VISIBLE_DEVICES": "5", "MESOBATCH_JOB_ID": "x"},
                  work_dir="/work/wf", walltime=30.0)
    spec = process_spec(req, base_env={"A": "base", "PATH": "/bin"}, log_dir="/logs",
                        node_env={"CUDA_VISIBLE_DEVICES": "0,1", "NODE": "n"})
    assert spec.env == {
        "PATH": "/bin", "A": "set", "B": "job", "OMP_NUM_THREADS": "3",
        "CUDA_VISIBLE_DEVICES": "5", "NODE": "n", "MESOBATCH_JOB_ID": "x",
        "MESOBATCH_WORK_DIR": "/work/wf"}
    assert spec.stdout == spec.stderr == "/logs/7-my_job.log"
    assert (spec.task_id, spec.command, spec.walltime, spec.warm) == (
        "7.0", "echo hi", 30.0, None)
    assert process_spec(request(), base_env={}, log_dir="/l").env["MESOBATCH_JOB_ID"] == "7"


def test_a_function_job_runs_warm_with_its_resources_and_the_callers_path() -> None:
    prepared = Prepared(env={function_task.FUNCTION_FILE_ENV: "/cache/abc", "X": "1"})
    spec = process_spec(request(job_env={"X": "0"}), base_env={"B": "1"}, log_dir="/l",
                        prepared=prepared, function_sys_path="/here:/there")
    assert spec.warm is not None and spec.warm.key == "function"
    assert spec.warm.argv[-1] == "--forkserver" and spec.warm.env == {"B": "1"}
    assert spec.env["X"] == "1" and spec.env[function_task.SYS_PATH_ENV] == "/here:/there"
    agent = process_spec(request(), base_env={}, log_dir="/l", prepared=prepared)
    assert function_task.SYS_PATH_ENV not in agent.env and agent.warm is not None
    plain = process_spec(request(), base_env={}, log_dir="/l", prepared=Prepared())
    assert plain.warm is None


@pytest.mark.parametrize(("ex", "expected"), [
    (TaskExit("t", 0, 1.0), Outcome(Ending.FINISHED)),
    (TaskExit("t", 3, 1.0), Outcome(Ending.FAILED)),
    (TaskExit("t", 143, 1.0, signal=15, killed=True), Outcome(Ending.KILLED)),
    (TaskExit("t", 143, 1.0, walltime_exceeded=True),
     Outcome(Ending.FAILED, "wall time exceeded", walltime_exceeded=True)),
    (TaskExit("t", 0, 1.0, walltime_exceeded=True),
     Outcome(Ending.FAILED, "wall time exceeded", walltime_exceeded=True)),
    (TaskExit("t", 127, 0.0, launch_error="no log"), Outcome(Ending.ERROR, "no log")),
])
def test_what_an_exit_means(ex: TaskExit, expected: Outcome) -> None:
    assert outcome(ex) == expected


def test_a_refused_resource_fails_the_start_and_a_function_job_learns_why(
        tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "results").mkdir(parents=True)
    source = DirectorySource(str(store))
    rid = "c" * 32
    env = {"MESOBATCH_SHIP": "fn:" + "ab" * 32 + ":10", RESULT_ID_ENV: rid}
    req = request(job_env=env)
    assert req.ships() and not request().ships()
    assert request(set_env={"JTRES_x": "1"}).ships()
    with pytest.raises(ResourceError, match="is not in"):
        prepare(NodeResources(str(tmp_path / "cache")), req, source, str(tmp_path / "work"))
    kind, message = pickle.loads((store / "results" / rid).read_bytes())
    assert kind == "refused" and "is not in" in message
