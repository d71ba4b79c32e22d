"""The lazy backend registry and the one entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mesobatch
from mesobatch import BackendEntry, OptionError, register_backend
from mesobatch.scheduler.registry import UnknownBackend, availability


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_backend(BackendEntry("local", "x:Y", "again"))


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(UnknownBackend, match=r"unknown backend 'nope'; available: .*local"):
        mesobatch.batch_system("nope")


def test_missing_dependency_is_reported_without_importing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mesobatch.scheduler import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # left as it was
    register_backend(BackendEntry("needs-missing", "not_a_module:X", "test",
                                  requires_modules=("not_a_real_module_xyz",), extra="xyz"))
    ok, why = availability("needs-missing")
    assert not ok and "not_a_real_module_xyz" in why and "mesobatch[xyz]" in why
    with pytest.raises(ImportError, match="cannot be loaded"):
        mesobatch.batch_system_class("needs-missing")


def test_importing_mesobatch_loads_no_backend() -> None:
    code = ("import json, sys, mesobatch; from mesobatch.scheduler import registry; "
            "targets = sorted({e.target.partition(':')[0] for e in registry._REGISTRY.values()}); "
            "print(json.dumps([targets, [t for t in targets if t in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    targets, loaded = json.loads(out.stdout)
    assert {"mesobatch.integration.local", "mesobatch.scheduler.mesos.backend"} <= set(targets)
    assert loaded == []


def test_batch_system_takes_command_line_names_as_keywords() -> None:
    with mesobatch.batch_system("local", maxCores=1, maxMemory="1G", maxDisk="1G") as bs:
        assert bs.options.max_cores == 1.0 and bs.options.max_memory == 1024**3
    with pytest.raises(OptionError, match="unknown option 'maxCPU'"):
        mesobatch.batch_system("local", maxCPU=1)
