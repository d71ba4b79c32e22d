"""How the mesos backend has agents start its executor: bundle or pre-installed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from mesobatch.deploy import bundle
from mesobatch.deploy.resources import HttpResourceService, scratch_store
from mesobatch.scheduler.mesos.options import MesosOptions
from mesobatch.scheduler.mesos.shipping import executor_launch, master_address
from mesobatch.scheduler.options import OptionError, resolve


@pytest.fixture
def service() -> Iterator[HttpResourceService]:
    s = HttpResourceService(scratch_store(), "127.0.0.1")
    yield s
    s.close()


def options(**given: Any) -> MesosOptions:
    return resolve(MesosOptions, given, environ={})


def test_the_bundle_by_default(service: HttpResourceService) -> None:
    launch = executor_launch(options(), service)
    assert launch.command == "exec python3 mesobatch-executor.pyz"
    (uri,) = launch.uris
    assert uri["value"] == service.public_url(bundle.build().sha256, "mesobatch-executor.pyz")
    assert uri["output_file"] == "mesobatch-executor.pyz" and uri["extract"] is False
    assert uri["cache"] is False  # a port chosen per run: the URI never comes again
    assert service.store.is_public(bundle.build().sha256)


def test_a_fixed_port_makes_the_bundle_cacheable(service: HttpResourceService) -> None:
    launch = executor_launch(options(resourceAddress="10.1.2.3:7070",
                                     executorPython="/opt/py/bin/python3"), service)
    assert launch.uris[0]["cache"] is True
    assert launch.command == "exec /opt/py/bin/python3 mesobatch-executor.pyz"


def test_a_pre_installed_executor() -> None:
    given = options(executorCommand="exec /opt/mb/bin/mesobatch-executor")
    assert not given.uses_bundle()
    launch = executor_launch(given, None)
    assert launch.command == "exec /opt/mb/bin/mesobatch-executor" and launch.uris == []
    installed = executor_launch(options(executorDeploy="installed"), None)
    assert installed.command == f"exec {sys.executable} -m mesobatch.executor"
    with pytest.raises(OptionError, match="executorBundle needs"):
        options(executorDeploy="installed", executorBundle=__file__)


def test_bundle_and_a_command_of_ones_own(service: HttpResourceService) -> None:
    launch = executor_launch(options(executorDeploy="bundle",
                                     executorCommand="exec /usr/bin/python3.12 "
                                                     "mesobatch-executor.pyz"), service)
    assert launch.command.startswith("exec /usr/bin/python3.12") and len(launch.uris) == 1


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("localhost:5050", ("localhost", 5050)),
    ("http://m1.example.org:5050", ("m1.example.org", 5050)),
    ("zk://user:pw@zk1:2181,zk2:2181/mesos", ("zk1", 2181)),
    ("[::1]:5051", ("::1", 5051)),
    ("m2", ("m2", 5050)),
])
def test_the_master_address_picks_the_resource_servers_route(
        endpoint: str, expected: tuple[str, int]) -> None:
    assert master_address(endpoint) == expected
