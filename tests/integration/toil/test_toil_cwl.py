"""toil-cwl-runner on --batchSystem mesos: a two-step CWL workflow (write a file, count
its lines) runs on the Mesos double to the right output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.doubles.mesos import MesosDouble

from .conftest import HERE, explain, run, toil_bin


@pytest.mark.slow
def test_cwl_workflow_on_mesos(tmp_path: Path, double: MesosDouble) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"lines": 7}))
    launched = double.counters()["tasks_launched"]
    result = run([toil_bin("toil-cwl-runner"), "--batchSystem", "mesos",
                  "--mesosMaster", double.master_address, "--jobStore", str(tmp_path / "js"),
                  "--outdir", str(tmp_path / "out"), "--disableProgress",
                  str(HERE / "count_lines.cwl"), str(inputs)], cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    output = json.loads(result.stdout)["count"]
    assert Path(output["path"]).read_text().strip() == "7"
    # both steps (and Toil's CWL bookkeeping jobs) ran as Mesos tasks
    assert double.counters()["tasks_launched"] - launched >= 2
