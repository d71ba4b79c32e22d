"""The rules between the folders, checked on every import statement (lazy ones and
those under TYPE_CHECKING included).

common/ imports nothing of mesobatch; the executor only itself and common/; deploy/
never the scheduler or integration/; the scheduler takes from the executor only its
message formats (executor/protocol.py), and its pure core (scheduler/core/) nothing
but itself and the API's data types (scheduler/contract.py). Importing the package
root (``import mesobatch``, for its version) is not a folder's import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("common", "executor", "deploy", "scheduler", "integration")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name inside mesobatch) of each import of mesobatch code in a file."""
    package = ["mesobatch", *path.relative_to(ROOT).with_suffix("").parts]
    if package[-1] == "__init__":
        package.pop()
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            # `from .. import common` names a module too
            names = [f"{module}.{a.name}" for a in node.names] if node.level else [module]
        else:
            continue
        out.extend((node.lineno, n.removeprefix("mesobatch.")) for n in names
                   if n.startswith("mesobatch."))
    return out


def within(target: str, module: str) -> bool:
    return target == module or target.startswith(f"{module}.")


def allowed(source: str, target: str) -> bool:
    """May the file ``source`` (a path under the root) import mesobatch.``target``?"""
    own, _, rest = source.partition("/")
    if own == "scheduler" and rest.startswith("core/"):
        return within(target, "scheduler.core") or within(target, "scheduler.contract")
    top = target.partition(".")[0]
    if top == own or top not in FOLDERS:
        return True
    rules = {
        "common": (),
        "executor": ("common",),
        "deploy": ("common", "executor"),
        "scheduler": ("common", "deploy", "executor.protocol"),
        "integration": FOLDERS,
    }
    return any(within(target, r) for r in rules[own])


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_folder_imports_only_what_its_rules_allow(folder: str) -> None:
    broken = [f"{path.relative_to(ROOT)}:{line} imports mesobatch.{target}"
              for path in sorted((ROOT / folder).rglob("*.py"))
              for line, target in imports(path)
              if not allowed(path.relative_to(ROOT).as_posix(), target)]
    assert broken == []


def test_the_rules_catch_what_they_should() -> None:
    assert not allowed("executor/driver.py", "scheduler.mesos.driver")
    assert not allowed("deploy/functions.py", "scheduler.contract")
    assert not allowed("scheduler/mesos/driver.py", "executor.transport")
    assert not allowed("scheduler/core/states.py", "scheduler.mesos.states")
    assert not allowed("common/transport.py", "executor.protocol")
    assert not allowed("scheduler/core/scheduler.py", "common.transport")
    assert not allowed("scheduler/cli.py", "executor.check_agent")
    assert allowed("scheduler/mesos/messages.py", "executor.protocol")
    assert allowed("scheduler/mesos/shipping.py", "deploy.bundle")
    assert allowed("integration/functions.py", "scheduler.contract")
