"""How code reaches Mesos agents: the resource server, and the executor's launch.

The executor comes either as the bundle (a CommandInfo URI the agent's fetcher
downloads once per agent and version, then ``exec python3 mesobatch-executor.pyz``) or
pre-installed (``--executorCommand``, or this Python with ``-m mesobatch.executor``).
Shipped functions, objects and the user's script come from the resource server, on a
port of its own, with the framework's token (sent inside each TaskInfo.data).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field

from ...deploy import bundle
from ...deploy.resources import HttpResourceService, address_towards, scratch_store
from .interface import Message
from .options import MesosOptions, split_host_port


def installed_executor_command() -> str:
    """This interpreter by absolute path: agents do not pass their PATH on, and a
    cluster whose agents have this environment at this path runs it as is. `exec`, so
    that the agent's signals reach the executor rather than a shell around it."""
    return f"exec {shlex.quote(sys.executable)} -m mesobatch.executor"


def master_address(endpoint: str) -> tuple[str, int]:
    """A host and port the master (or its ZooKeeper) answers on, from --mesosMaster."""
    rest = endpoint.split("://", 1)[-1]
    hosts = rest.split("/", 1)[0].rpartition("@")[2]
    host, port = split_host_port(hosts.split(",")[0])
    return host or "localhost", port or 5050


def start_resource_service(options: MesosOptions) -> HttpResourceService:
    host, port = None, 0
    if options.resource_address:
        host, given = split_host_port(options.resource_address)
        port = given or 0
    if not host:
        host = address_towards(*master_address(options.mesos_endpoint))
    store = scratch_store(options.max_resource_size)
    return HttpResourceService(store, host, port)


@dataclass(frozen=True)
class ExecutorLaunch:
    """The executor's CommandInfo value and URIs."""

    command: str
    uris: list[Message] = field(default_factory=list)


def executor_launch(options: MesosOptions,
                    service: HttpResourceService | None) -> ExecutorLaunch:
    """How agents start our executor, per --executorDeploy (service: when bundled)."""
    if not options.uses_bundle():
        return ExecutorLaunch(options.executor_command or installed_executor_command())
    assert service is not None
    store = service.store
    if options.executor_bundle:
        ref = store.put_file(options.executor_bundle, public=True)
    else:
        ref = store.put_bytes(bundle.build().data, public=True)
    # The fetcher caches by URI and never refreshes: worth it when the URI outlives this
    # run (a fixed --resourceAddress port); with a port chosen per run, each agent
    # fetches once per run either way, and cached copies would never be hit again.
    fixed_port = bool(options.resource_address
                      and split_host_port(options.resource_address)[1])
    uri = {"value": service.public_url(ref.sha256, bundle.FILE_NAME), "cache": fixed_port,
           "extract": False, "output_file": bundle.FILE_NAME}
    command = (options.executor_command
               or f"exec {shlex.quote(options.executor_python)} {bundle.FILE_NAME}")
    return ExecutorLaunch(command, [uri])
