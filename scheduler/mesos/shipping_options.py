"""Options of the mesos backend for shipping code: how agents get the executor, and
where they fetch shipped resources from (light: importing this loads nothing else)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...deploy.store import DEFAULT_MAX_SIZE
from ..options import OptionError, opt, parse_path, parse_size, parse_str
from .options import MesosOptions

DEPLOY_MODES = ("auto", "bundle", "installed")


def _deploy_mode(value: object) -> str:
    mode = parse_str(value).strip().lower()
    if mode not in DEPLOY_MODES:
        raise ValueError("expected one of " + ", ".join(DEPLOY_MODES))
    return mode


def _host_port(value: object) -> str:
    text = parse_str(value).strip()
    host, port = split_host_port(text)
    if not host or (port is not None and not 0 <= port < 65536):
        raise ValueError("expected HOST or HOST:PORT (an address the agents can reach)")
    return text


def split_host_port(text: str) -> tuple[str, int | None]:
    """'h:80' -> ('h', 80); '[::1]:80' -> ('::1', 80); 'h' -> ('h', None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"not a port: {port!r}")
    return host, int(port) if port else None


@dataclass(frozen=True)
class MesosShippingOptions(MesosOptions):
    """MesosOptions, plus how code reaches the agents."""

    # Redefined here (same name and place) only so that its help tells the new default.
    executor_command: str | None = opt(
        "executorCommand", parse=parse_str, metavar="COMMAND",
        help="the command agents run to start our executor, for sites that install "
             "mesobatch on the agents (default: the executor bundle, shipped; see "
             "--executorDeploy)")
    executor_deploy: str = opt(
        "executorDeploy", parse=_deploy_mode, default="auto", metavar="MODE",
        help="how agents get the executor: 'bundle' ships a self-contained zipapp (as a "
             "cached CommandInfo URI) that any python3 >= 3.10 runs; 'installed' runs "
             "--executorCommand, or this Python with '-m mesobatch.executor'; 'auto' is "
             "'installed' when --executorCommand is given, else 'bundle'")
    executor_bundle: str | None = opt(
        "executorBundle", parse=parse_path, metavar="FILE",
        help="ship this bundle (from 'mesobatch deploy bundle') instead of one built "
             "from this installation")
    executor_python: str = opt(
        "executorPython", parse=parse_str, default="python3", metavar="COMMAND",
        help="the Python agents run the bundle with (found on the executor's PATH)")
    resource_address: str | None = opt(
        "resourceAddress", parse=_host_port, metavar="HOST[:PORT]",
        help="where agents reach this scheduler's resource server (default: this "
             "machine's address on the route to the master, a free port)")
    max_resource_size: int = opt(
        "maxResourceSize", parse=parse_size, default=DEFAULT_MAX_SIZE, metavar="SIZE",
        help="largest blob that may be shipped, or function result returned")

    def uses_bundle(self) -> bool:
        if self.executor_deploy == "auto":
            return self.executor_command is None
        return self.executor_deploy == "bundle"

    def validate(self) -> None:
        super().validate()
        if self.executor_bundle and not self.uses_bundle():
            raise OptionError("--executorBundle needs --executorDeploy bundle (or no "
                              "--executorCommand)")
        if self.executor_bundle and not os.path.isfile(self.executor_bundle):
            raise OptionError(f"--executorBundle {self.executor_bundle}: no such file (make "
                              "one with 'mesobatch deploy bundle')")
