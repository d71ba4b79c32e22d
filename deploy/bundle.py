"""The executor bundle: one self-contained zipapp an agent runs with nothing but python3.

It holds mesobatch's executor (mesobatch/executor/, standard library only; psutil is
optional there and absent here, so node statistics come from /proc) with the code it
shares with the scheduler (mesobatch/common/), cloudpickle (pure Python, for function
jobs) and ``__main__.py`` (executor/bundle_main.py). Built
deterministically (sorted entries, fixed timestamps) from this installation, so the
same code gives the same sha256, which names it in its URI: the Mesos fetcher caches it
per (user, URI), so each agent downloads each version once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import mesobatch

from .. import common
from ..executor import bundle_main

FILE_NAME = "mesobatch-executor.pyz"
SHEBANG = b"#!/usr/bin/env python3\n"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class BundleError(RuntimeError):
    """The bundle cannot be built from this installation."""


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def _package_sources(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(f"the {name} package is not installed here: pip install {name}")
    return Path(next(iter(spec.submodule_search_locations)))


def _files() -> list[tuple[str, bytes]]:
    files = [
        ("__main__.py", Path(bundle_main.__file__).read_bytes()),
        ("mesobatch/__init__.py",
         (f'"""mesobatch\'s executor bundle: only mesobatch.executor and mesobatch.common '
          f'are in it."""\n\n__version__ = "{mesobatch.__version__}"\n').encode()),
    ]
    # the executor never imports the scheduler, so these two folders are all it needs
    folders = {"executor": Path(bundle_main.__file__), "common": Path(common.__file__)}
    for name, member in folders.items():
        for path in sorted(member.resolve().parent.glob("*.py")):
            files.append((f"mesobatch/{name}/{path.name}", path.read_bytes()))
    cloudpickle_dir = _package_sources("cloudpickle")
    for path in sorted(cloudpickle_dir.rglob("*.py")):
        files.append((f"cloudpickle/{path.relative_to(cloudpickle_dir).as_posix()}",
                      path.read_bytes()))
    return sorted(files)


@functools.lru_cache(maxsize=1)
def build() -> Bundle:
    """This installation's bundle, in memory (built once per process)."""
    buf = io.BytesIO()
    buf.write(SHEBANG)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in _files():
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    data = buf.getvalue()
    return Bundle(data, hashlib.sha256(data).hexdigest())


def write(target: str | os.PathLike[str]) -> tuple[Path, Bundle]:
    """Write the bundle to ``target`` (a file, or a directory to put FILE_NAME in)."""
    path = Path(target)
    if path.is_dir():
        path = path / FILE_NAME
    bundle = build()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(bundle.data)
    tmp.chmod(0o755)
    tmp.replace(path)
    return path, bundle
