"""The executor bundle: one self-contained zipapp an agent runs with nothing but python3.

It holds mesobatch's executor (mesobatch/executor/, standard library only; psutil is
optional there and absent here, so node statistics come from /proc) with the code it
shares with the scheduler (mesobatch/common/), cloudpickle (pure Python, for function
jobs) and ``__main__.py`` (executor/bundle_main.py). Built
deterministically (sorted entries, fixed timestamps) from this installation, so the
same code gives the same sha256, which names it in its URI: the Mesos fetcher caches it
per (user, URI), so each agent downloads each version once.

Each module comes with its bytecode for this interpreter beside it (``X.pyc``, the
layout zipimport looks for; unchecked-hash, so no timestamp can make it stale): Python
does not write bytecode into a zip, so without it every executor would compile every
module at each start, most of its start-up CPU. An agent's Python of another version
finds the magic number wrong, ignores the .pyc and compiles the source as before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import logging
import marshal
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import mesobatch

from .. import common
from ..executor import bundle_main

log = logging.getLogger(__name__)

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


#: compiles what comes on stdin (a marshalled list of (name, source)) and writes each
#: code object's marshal. In a fresh interpreter: marshal marks a string as interned
#: when this process has interned it, which depends on what it ran before (a "{"
#: interned by some imported module), so only a process of fixed history gives the
#: same bytes for the same code every time.
_COMPILE = """
import marshal, sys
files = marshal.loads(sys.stdin.buffer.read())
sys.stdout.buffer.write(marshal.dumps([
    marshal.dumps(compile(source, path, "exec", dont_inherit=True)) for path, source in files]))
"""


def _bytecodes(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Each source's .pyc for this interpreter, as ``(name + "c", bytecode)``:
    unchecked-hash (zipimport loads it without looking at the source), named in
    tracebacks by its path in the bundle. Nothing if they cannot be compiled here (the
    bundle then carries sources only)."""
    sources = [(f"{FILE_NAME}/{name}", data) for name, data in files]
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _COMPILE],
                              input=marshal.dumps(sources), capture_output=True,
                              check=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("the executor bundle carries no bytecode (executors compile their "
                    "modules at start): %s", e)
        return []
    header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little")  # hash, unchecked
    return [(name + "c", header + importlib.util.source_hash(source) + code)
            for (name, source), code in zip(files, marshal.loads(done.stdout), strict=True)]


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
        files = _files()
        compiled = _bytecodes([(name, data) for name, data in files if name.endswith(".py")])
        for name, data in sorted(files + compiled):
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
