"""Loading a call pickled on another Python version (function_task.load_call)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cloudpickle
import pytest

from mesobatch.executor import function_task as ft

OTHER = b"MBFN1 3.99\n"  # the header of a call pickled on another minor version


def _call_file(path: Path, header: bytes, call: bytes) -> str:
    path.write_bytes(header + call)
    return str(path)


def test_code_pickled_by_value_on_another_python_is_refused_before_it_runs(
        tmp_path: Path) -> None:
    offset = 1
    call = cloudpickle.dumps((lambda x: x + offset, (41,), {}), protocol=5)
    # on this Python the same bytes load and run
    fn, args, _ = ft.load_call(_call_file(tmp_path / "here", ft.blob_header(), call), None)
    assert fn(*args) == 42
    # from another, their code would crash the interpreter when run (a new minor version
    # changes the bytecode): refused with the reason instead
    with pytest.raises(RuntimeError, match=r"pickled on Python 3\.99 .* same Python minor"):
        ft.load_call(_call_file(tmp_path / "other", OTHER, call), None)


def test_calls_by_reference_still_load_from_another_python(tmp_path: Path) -> None:
    call = cloudpickle.dumps((os.path.join, ("a", "b"), {}), protocol=5)
    fn, args, _ = ft.load_call(_call_file(tmp_path / "ref", OTHER, call), None)
    assert fn(*args) == os.path.join("a", "b")
    plain = pickle.dumps((divmod, (7, 2), {}))
    fn, args, _ = ft.load_call(_call_file(tmp_path / "plain", OTHER, plain), None)
    assert fn(*args) == (3, 1)
