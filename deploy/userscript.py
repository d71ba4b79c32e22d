"""The user's script or package, zipped for auto-deployment (setUserScript).

What is shipped is the top-level unit that makes the user's module importable on a
node: the script file itself, or the whole top-level package it belongs to, or a
directory of modules. Modules of mesobatch, of the standard library and of installed
distributions (site-packages) are never shipped: the node has its own. The zip is
deterministic (sorted entries, fixed timestamps), so unchanged code keeps its hash and
stays cached on the nodes.
"""

from __future__ import annotations

import io
import os
import site
import sys
import sysconfig
import types
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..executor.protocol import format_refs

if TYPE_CHECKING:
    from .resources import ResourceService

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class NotShippable(ValueError):
    """The given module or path cannot (or must not) be shipped."""


def _install_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    dirs.add(site.getusersitepackages())
    return [Path(d).resolve() for d in dirs if d]


def _check(name: str, path: Path) -> None:
    if name == "mesobatch" or name.startswith("mesobatch."):
        raise NotShippable("mesobatch's own modules are never shipped: the nodes have them")
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        raise NotShippable(f"{name!r} is a standard library module; it is never shipped")
    resolved = path.resolve()
    for d in _install_dirs():
        if resolved == d or d in resolved.parents:
            raise NotShippable(
                f"{name!r} is installed in {d} (the standard library or an installed "
                "distribution); install it on the nodes instead of shipping it")


def locate(user_script: object) -> tuple[str, Path]:
    """(top-level name, path to ship) for a module object, a module name, or a path to a
    .py file, a package directory, or a directory of modules."""
    if isinstance(user_script, types.ModuleType):
        return _locate_module(user_script)
    if isinstance(user_script, str | os.PathLike):
        path = Path(user_script)
        if path.exists():
            path = path.resolve()
            if path.is_file():
                if path.suffix != ".py":
                    raise NotShippable(f"{path} is not a Python file (.py)")
                name = path.stem
            elif (path / "__init__.py").is_file():
                name = path.name
            else:
                name = ""  # a folder of modules: each is a top-level name
            _check(name or path.name, path)
            return name, path
        if isinstance(user_script, str) and user_script in sys.modules:
            return _locate_module(sys.modules[user_script])
        raise NotShippable(f"{user_script!r} is neither an existing path nor an imported "
                           "module")
    raise NotShippable(f"cannot ship {type(user_script).__name__}: give a module, a module "
                       "name or a path")


def _locate_module(module: types.ModuleType) -> tuple[str, Path]:
    name = module.__name__
    if name == "__main__":
        spec = getattr(module, "__spec__", None)
        name = spec.name if spec is not None else ""
    file = getattr(module, "__file__", None)
    if not file:
        raise NotShippable(f"module {module.__name__!r} has no file to ship")
    path = Path(file).resolve()
    if not name:  # a script run as `python script.py`
        name = path.stem
    top = name.split(".")[0]
    if "." in name or path.name == "__init__.py":
        # the whole top-level package: walk up as many folders as the name has parts
        depth = name.count(".") + (1 if path.name == "__init__.py" else 0)
        root = path.parent
        for _ in range(depth - 1):
            root = root.parent
        path = root
    _check(top, path)
    return top, path


def zip_bytes(name: str, path: Path) -> bytes:
    """A deterministic zip whose root is what goes on sys.path."""
    if path.is_file():
        entries = [(path, path.name)]
    else:
        prefix = f"{name}/" if name else ""
        entries = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames
                                 if d != "__pycache__" and not d.startswith("."))
            for f in sorted(filenames):
                if f.endswith((".pyc", ".pyo")) or f.startswith("."):
                    continue
                full = Path(dirpath) / f
                entries.append((full, prefix + full.relative_to(path).as_posix()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for full, arcname in sorted(entries, key=lambda e: e[1]):
            info = zipfile.ZipInfo(arcname, _FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, full.read_bytes())
    return buf.getvalue()


#: the environment variable that names the user's script for every job
USER_SCRIPT_ENV = "MESOBATCH_SHIP_USER_SCRIPT"


def user_script_env(user_script: object, service: ResourceService) -> dict[str, str]:
    """The variables that make every job's node put the user's code on sys.path.

    A Toil Resource (Toil's own auto-deployment) is registered the way Toil's workers
    look it up, and Toil downloads it from its job store; anything else is zipped into
    the store and shipped by hash."""
    if all(hasattr(user_script, a) for a in ("pathHash", "contentHash", "pickle")):
        return {f"JTRES_{user_script.pathHash}": str(user_script.pickle())}  # type: ignore[attr-defined]
    name, path = locate(user_script)
    ref = service.store.put_bytes(zip_bytes(name, path), "pkg")
    return {USER_SCRIPT_ENV: format_refs([ref])}
