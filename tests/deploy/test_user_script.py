"""Auto-deployment of the user's script: shipped once, on sys.path, gone at cleanup."""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

import mesobatch
from mesobatch import FunctionExecutor
from mesobatch.deploy.userscript import NotShippable, locate, zip_bytes
from tests.waiting import wait_for

from .conftest import Make, Systems

JOB = mesobatch.JobDescription(cores=1, memory=2**27, disk=2**27)


def make_package(root: Path) -> str:
    """A package with two modules, one importing the other; importable nowhere yet."""
    name = f"mb_user_{uuid.uuid4().hex[:8]}"
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A user package."""\n')
    (pkg / "settings.py").write_text("BASE = 40\n")
    (pkg / "compute.py").write_text(
        "from .settings import BASE\n\n\ndef answer(extra):\n    return BASE + extra\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "junk.pyc").write_bytes(b"never shipped")
    return name


def test_a_user_package_is_shipped_and_imported_by_tasks(make_bs: Make, tmp_path: Path
                                                          ) -> None:
    name = make_package(tmp_path / "src")
    bs = make_bs()
    assert bs.supportsAutoDeployment()
    bs.setUserScript(str(tmp_path / "src" / name))
    out = tmp_path / "out.json"
    script = (f"import json, {name}.compute as c; json.dump([c.answer(2), c.__file__], "
              f"open({str(out)!r}, 'w'))")
    job = bs.issueBatchJob(f'"$MESOBATCH_PYTHON" -c "{script}"', JOB)
    info = bs.getUpdatedBatchJob(60)
    assert info is not None and info.jobID == job and info.exitStatus == 0
    value, where = json.loads(out.read_text())
    assert value == 42
    assert not where.startswith(str(tmp_path))  # the shipped copy, not the original
    with FunctionExecutor(bs) as ex:  # and calls can import it too
        answer = ex.submit(lambda: importlib.import_module(f"{name}.compute").answer(1))
        assert answer.result(timeout=60) == 41
    with pytest.raises(RuntimeError, match="before the first job"):
        bs.setUserScript(str(tmp_path / "src" / name))
    bs.shutdown()  # worker cleanup: the unpacked package goes with the workflow
    assert wait_for(lambda: not os.path.exists(where))


def test_what_is_shipped(tmp_path: Path) -> None:
    name = make_package(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(f"{name}.compute")
        assert locate(module) == (name, tmp_path / name)  # the whole top-level package
        assert locate(f"{name}.compute") == (name, tmp_path / name)
    finally:
        sys.path.remove(str(tmp_path))
    first = zip_bytes(name, tmp_path / name)
    os.utime(tmp_path / name / "settings.py", (0, 0))
    assert zip_bytes(name, tmp_path / name) == first  # deterministic: same code, same hash
    import zipfile
    from io import BytesIO
    names = zipfile.ZipFile(BytesIO(first)).namelist()
    assert names == [f"{name}/__init__.py", f"{name}/compute.py", f"{name}/settings.py"]
    script = tmp_path / "flow.py"
    script.write_text("x = 1\n")
    assert locate(str(script)) == ("flow", script)


@pytest.mark.parametrize("what", ["json", "os.path", "mesobatch", "mesobatch.executor",
                                  "psutil"])
def test_the_standard_library_mesobatch_and_installed_packages_are_never_shipped(
        what: str, systems: Systems) -> None:
    importlib.import_module(what)
    with pytest.raises(NotShippable):
        locate(what)
    with pytest.raises(NotShippable):
        locate(sys.modules[what])
    bs = systems.local()
    with pytest.raises(NotShippable):
        bs.setUserScript(what)


class ToilLikeResource:
    """What Toil hands to setUserScript: its Resource (name, pathHash, url, contentHash)."""

    pathHash = "0123abcd"
    contentHash = "feed"
    url = "file:///jobstore/shared/0123abcd"
    name = "workflow"

    def pickle(self) -> str:
        return 'toil.resource.DirectoryResource:["workflow", "0123abcd", "file:///x", "feed"]'


def test_a_toil_resource_is_registered_for_toils_workers(make_bs: Make, tmp_path: Path
                                                          ) -> None:
    bs = make_bs()
    bs.setUserScript(ToilLikeResource())
    out = tmp_path / "env.json"
    script = ("import json, os; json.dump([os.environ['JTRES_ROOT'], "
              f"os.environ['JTRES_0123abcd']], open({str(out)!r}, 'w'))")
    bs.issueBatchJob(f"{sys.executable} -c \"{script}\"", JOB)
    info = bs.getUpdatedBatchJob(60)
    assert info is not None and info.exitStatus == 0
    root, registered = json.loads(out.read_text())
    assert registered == ToilLikeResource().pickle()
    assert os.path.isdir(root) and root.endswith("toil-resources")
    bs.shutdown()
    assert wait_for(lambda: not os.path.exists(root))
