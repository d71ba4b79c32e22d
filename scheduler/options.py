"""Typed, immutable options, resolved once: defaults < config file < environment < arguments.

Each backend declares a frozen dataclass whose fields carry their command-line name,
parser and help (``opt(...)``). The same names work as ``--maxCores`` on the command
line, ``maxCores=`` in ``mesobatch.batch_system(...)``, ``maxCores = 2`` in the config
file and ``MESOBATCH_MAX_CORES`` in the environment. A bad value fails at start with
the option's name, the value and what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..deploy.store import DEFAULT_MAX_SIZE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")
OptionsT = TypeVar("OptionsT", bound="CommonOptions")

ENV_PREFIX = "MESOBATCH_"


class OptionError(ValueError):
    """An option has a bad value or an unknown name; the message says which and why."""


# ----------------------------------------------------------------------------- parsers

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtpe]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5,
          "e": 1024**6}
#: the largest size taken (8 PiB): beyond it sizes lose precision as floats
MAX_SIZE = 2**53
SIZE_HELP = "a size such as 512M or 2G (units B, K, M, G, T, P; binary: 1K = 1024 bytes)"


def parse_size(value: Any) -> int:
    """'2G' -> 2147483648. Plain numbers are bytes. Units are binary, as in Toil."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_HELP}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected {SIZE_HELP}")
        size = int(value)
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        number = float(m.group(1)) * _UNITS[m.group(2).lower()]  # finite, or inf
        size = int(number) if math.isfinite(number) else MAX_SIZE + 1
    else:
        raise ValueError(f"expected {SIZE_HELP}")
    if size < 0:
        raise ValueError(f"expected {SIZE_HELP}")
    if size > MAX_SIZE:
        raise ValueError(f"{_short(value)} is too large: expected at most 8 PiB (2**53 bytes)")
    return size


def parse_limit_size(value: Any) -> int:
    """A size limit (--maxMemory, --maxDisk): 0, or at least 1M, since resources are
    counted in whole MiB (1K would be offered as 0 MiB)."""
    size = parse_size(value)
    if 0 < size < _UNITS["m"]:
        raise ValueError(f"{_short(value)} is less than 1M: resources are counted in whole "
                         "MiB, expected 0 or a size of at least 1M")
    return size


def format_size(size: int) -> str:
    """A size as parse_size reads it, in the largest unit that divides it: 1G, 1536M."""
    for unit in "EPTGMK":
        if size and size % _UNITS[unit.lower()] == 0:
            return f"{size // _UNITS[unit.lower()]}{unit}"
    return str(size)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:30] + f"... ({len(text)} characters)"


def parse_cores(value: Any) -> float:
    try:
        cores = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        cores = math.nan
    if not math.isfinite(cores) or cores <= 0 or cores > 2**53:
        raise ValueError("expected a positive number of cores, such as 1, 0.5 or 16")
    return cores


#: ten years: a longer duration is a mistake, and timeouts refuse values far larger
MAX_SECONDS = 10 * 365 * 86400.0


def parse_seconds(value: Any) -> float:
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
        raise ValueError("expected a number of seconds from 0 to 10 years")
    return seconds


def parse_count(value: Any) -> int:
    try:
        n = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError, OverflowError):
        n = -1
    if n < 0 or (isinstance(value, float) and value != n):
        raise ValueError("expected a whole number >= 0")
    return n


#: --statusPort off: no status page (where one would be served by default)
STATUS_OFF = -1


def parse_port(value: Any) -> int:
    """A TCP port to listen on: 1-65535, 0 for any free one, or "off" (STATUS_OFF)."""
    if isinstance(value, str) and value.strip().lower() in ("off", "none", "no"):
        return STATUS_OFF
    try:
        port = int(value) if not isinstance(value, bool) else -2
    except (TypeError, ValueError, OverflowError):
        port = -2
    if port == STATUS_OFF:
        return port
    if not 0 <= port <= 65535 or (isinstance(value, float) and value != port):
        raise ValueError("expected a port from 1 to 65535, 0 for any free port, or off")
    return port


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def parse_path(value: Any) -> str:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValueError("expected a path")
    return os.path.abspath(os.path.expanduser(str(value)))


# ----------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class OptionMeta:
    """How one option is spelled, parsed and explained."""

    name: str  #: command-line name without dashes, e.g. "maxCores"
    parse: Callable[[Any], Any]
    help: str
    metavar: str | None = None
    aliases: tuple[str, ...] = ()
    #: extra environment variables read (lower precedence than MESOBATCH_<NAME>)
    env_aliases: tuple[str, ...] = ()
    #: a default computed at resolution time (e.g. the machine's core count)
    default_factory: Callable[[], Any] | None = None
    #: how a value may be shown in messages (e.g. with credentials masked)
    show: Callable[[Any], str] = repr
    #: on the command line a flag without a value (--enforceMemory); elsewhere a boolean
    flag: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).upper()


def opt(
    name: str,
    *,
    parse: Callable[[Any], Any],
    help: str,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    metavar: str | None = None,
    aliases: tuple[str, ...] = (),
    env_aliases: tuple[str, ...] = (),
    show: Callable[[Any], str] = repr,
    flag: bool = False,
) -> Any:
    """A dataclass field that is also a command-line option."""
    meta = OptionMeta(name, parse, help, metavar, aliases, env_aliases, default_factory, show,
                      flag)
    return field(default=default, metadata={"option": meta})


def option_fields(cls: type[Any]) -> Iterator[tuple[str, OptionMeta]]:
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if isinstance(meta, OptionMeta):
            yield f.name, meta


def _names(cls: type[Any]) -> dict[str, str]:
    """Every accepted spelling (name, alias, dest) -> dest."""
    out: dict[str, str] = {}
    for dest, meta in option_fields(cls):
        for spelling in (meta.name, *meta.aliases, dest):
            out[spelling] = dest
    return out


def _parse(meta: OptionMeta, value: Any, source: str) -> Any:
    if value is None:
        return None
    try:
        return meta.parse(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise OptionError(
            f"invalid value {meta.show(value)} for --{meta.name}{source}: {e}") from None


def unknown_option_error(spelling: str, allowed: list[str], where: str) -> OptionError:
    close = difflib.get_close_matches(spelling, allowed, n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; allowed: {', '.join(sorted(allowed))}"
    return OptionError(f"unknown option {spelling!r}{where}{hint}")


# ----------------------------------------------------------------------------- config file


def default_config_path() -> Path | None:
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "mesobatch" / "config.toml"
    return path if path.is_file() else None


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """Read a TOML config file: top-level options, and a table per backend."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            data: dict[str, Any] = tomllib.load(f)
            return data
    except OSError as e:
        raise OptionError(f"cannot read config file {str(path)!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise OptionError(f"config file {str(path)!r} is not valid TOML: {e}") from None


# ----------------------------------------------------------------------------- resolution


def resolve(
    cls: type[OptionsT],
    arguments: Mapping[str, Any] | None = None,
    *,
    backend: str = "",
    config: Mapping[str, Any] | None = None,
    config_path: str = "config file",
    environ: Mapping[str, str] | None = None,
    toil_config: Any = None,
) -> OptionsT:
    """Build ``cls`` from defaults < config file < environment < Toil config < arguments.

    ``arguments`` are keyword arguments or parsed command-line values keyed by option
    name (``maxCores``), alias or dest; None values count as "not given".
    """
    environ = os.environ if environ is None else environ
    spellings = _names(cls)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def put(dest: str, value: Any, source: str) -> None:
        values[dest] = value
        sources[dest] = source

    # config file: top-level keys, then the backend's own table
    if config:
        for key, value in config.items():
            if isinstance(value, dict):
                continue
            if key in ("backend",):
                continue
            if key not in spellings:
                raise unknown_option_error(key, [m.name for _, m in option_fields(cls)],
                                           f" in {config_path}")
            put(spellings[key], value, f" (from {config_path})")
        table = config.get(backend)
        if isinstance(table, dict):
            for key, value in table.items():
                if key not in spellings:
                    raise unknown_option_error(
                        key, [m.name for _, m in option_fields(cls)],
                        f" in [{backend}] of {config_path}")
                put(spellings[key], value, f" (from [{backend}] of {config_path})")
    for dest, meta in option_fields(cls):
        for var in (*reversed(meta.env_aliases), meta.env):
            if environ.get(var):
                put(dest, environ[var], f" (from ${var})")
        if toil_config is not None and getattr(toil_config, dest, None) is not None:
            put(dest, getattr(toil_config, dest), "")
    for key, value in (arguments or {}).items():
        if key not in spellings:
            raise unknown_option_error(key, [m.name for _, m in option_fields(cls)], "")
        if value is not None:
            put(spellings[key], value, "")
    kwargs: dict[str, Any] = {}
    for dest, meta in option_fields(cls):
        if dest in values:
            kwargs[dest] = _parse(meta, values[dest], sources[dest])
        elif meta.default_factory is not None:
            kwargs[dest] = meta.default_factory()
    options = cls(**kwargs)
    options.validate()
    return options


def add_arguments(cls: type[Any], parser: argparse.ArgumentParser | Any,
                  skip: tuple[str, ...] = ()) -> None:
    """Add ``cls``'s options to an argparse parser (values stay strings; resolve parses)."""
    for dest, meta in option_fields(cls):
        if meta.name in skip:
            continue
        default = next(f.default for f in dataclasses.fields(cls) if f.name == dest)
        if meta.parse in (parse_size, parse_limit_size) and isinstance(default, int):
            default = format_size(default)
        shown = "" if default is None else f" (default: {default})"
        names = (f"--{meta.name}", *(f"--{a}" for a in meta.aliases))
        help_text = meta.help + shown + f" [env {meta.env}]"
        if meta.flag:  # no value: a following job file must not be taken for one
            parser.add_argument(*names, dest=dest, default=None, action="store_const",
                                const="true", help=help_text)
        else:
            parser.add_argument(*names, dest=dest, default=None, metavar=meta.metavar,
                                help=help_text)


# ----------------------------------------------------------------------------- common


def _cpu_count() -> float:
    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return float(os.cpu_count() or 1)


def machine_memory() -> int:
    import psutil  # noqa: PLC0415  (psutil is only needed when a default is computed)

    return int(psutil.virtual_memory().total)


def machine_disk() -> int:
    import shutil  # noqa: PLC0415

    return int(shutil.disk_usage(os.getcwd()).free)


def enforce_memory_option() -> Any:
    """--enforceMemory, for the backends whose nodes run mesobatch's task runner."""
    return opt("enforceMemory", parse=parse_bool, default=False, flag=True,
               help="kill a job whose processes use more memory than it asked for, and "
                    "report it as MEMLIMIT (a watchdog samples every 0.2 s)")


@dataclass(frozen=True)
class CommonOptions:
    """Options every backend has."""

    max_cores: float | None = opt(
        "maxCores", parse=parse_cores, metavar="CORES",
        help="largest number of cores one job may request")
    max_memory: int | None = opt(
        "maxMemory", parse=parse_limit_size, metavar="SIZE",
        help="largest memory one job may request, e.g. 4G")
    max_disk: int | None = opt(
        "maxDisk", parse=parse_limit_size, metavar="SIZE",
        help="largest disk one job may request, e.g. 10G")
    log_dir: str | None = opt(
        "logDir", parse=parse_path, metavar="DIR",
        help="keep each job's output (stdout and stderr) here, one file per job (default: "
             "a scratch directory in /dev/shm, removed at shutdown)")
    kill_grace_period: float = opt(
        "killGracePeriod", parse=parse_seconds, default=5.0, metavar="SECONDS",
        help="after SIGTERM, wait this long before SIGKILL")
    max_resource_size: int = opt(
        "maxResourceSize", parse=parse_size, default=DEFAULT_MAX_SIZE, metavar="SIZE",
        help="largest blob that may be shipped, or function result returned")
    status_port: int | None = opt(
        "statusPort", parse=parse_port, metavar="PORT",
        help="serve a status page, /api/status (JSON) and /metrics (Prometheus) on this "
             "port; 0: any free port; off: none (default: none, but `mesobatch run` "
             "serves one on a free port)")
    status_address: str = opt(
        "statusAddress", parse=parse_str, default="127.0.0.1", metavar="ADDRESS",
        help="the address the status page listens on; 0.0.0.0 for every interface")

    def validate(self) -> None:
        """Check combinations of values; raise OptionError."""
