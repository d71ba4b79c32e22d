"""What a user gets from the source distribution and from a plain editable install."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: folders whose every file the source distribution carries (tests with their doubles,
#: fixtures and services; the agent's systemd unit)
SHIPPED = ("tests", "deploy", "examples", "bench")


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_the_source_distribution_holds_the_tests_the_agent_unit_and_the_license(
        tmp_path: Path) -> None:
    # a copy, so that the build's egg-info does not land in the checkout
    src = tmp_path / "src"
    subprocess.run(["cp", "-a", str(ROOT), str(src)], check=True)
    subprocess.run([sys.executable, "-c", "from setuptools import build_meta; "
                    f"build_meta.build_sdist({str(tmp_path / 'dist')!r})"],
                   cwd=src, check=True, capture_output=True)
    (sdist,) = (tmp_path / "dist").glob("mesobatch-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        license_text = tar.extractfile(next(
            m for m in tar.getmembers() if m.name.endswith("/LICENSE")))
        assert license_text is not None
        assert b"Apache License" in license_text.read()
    expected = set().union(*(_files_under(ROOT / f) for f in SHIPPED))
    expected |= {"LICENSE", "README.md", "pyproject.toml",
                 "deploy/agent/mesos-agent.service", "toil_batch_system_mesobatch.py"}
    assert not expected - names, sorted(expected - names)[:20]
    assert "mesobatch/scheduler/cli.py" in names


@pytest.mark.slow
def test_a_plain_editable_install_shows_toil_the_plugin(tmp_path: Path) -> None:
    """`pip install -e .` as the quick start says, in a fresh virtualenv: Toil finds
    plugins with pkgutil.iter_modules, which must list toil_batch_system_mesobatch."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_USER")}
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "-e",
                              str(ROOT)], env=env, capture_output=True, text=True,
                             timeout=600, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    found = subprocess.run(
        [python, "-c", "import pkgutil, importlib.util as u; "
         "print([m.name for m in pkgutil.iter_modules() if m.name.startswith('toil_batch')]);"
         "print(u.find_spec('mesobatch').origin)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    modules, origin = found.stdout.splitlines()
    assert modules == "['toil_batch_system_mesobatch']"
    assert origin == str(ROOT / "mesobatch" / "__init__.py")
