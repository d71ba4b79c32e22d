"""No credential reaches any log record, whoever emits it (issue 17): every logger at
its lowest level (kazoo's BLATHER included) while a framework authenticates to the
master, to ZooKeeper with a password from the zk:// URL or from --zkCredentialsFile,
and ships a function call with the resource server's token."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

import mesobatch
from tests.doubles.mesos import MesosDouble
from tests.services.zookeeper import ZooKeeper, installed

MESOS_SECRET = "mesos-Secret-4711"
URL_PASSWORD = "zk/url'Pass\\word-0815"  # '/', a quote and a backslash: repr() changes it
FILE_PASSWORD = "zk-file-Password-2342"

pytestmark = pytest.mark.skipif(not installed(), reason="needs Debian's zookeeper package "
                                                      "(tests/run.sh installs it)")


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[tuple[str, str]]:
        """(logger, the record as a handler would write it, traceback and stack too).
        The double's own records are left out: it is the test's master, not our code."""
        for record in self.records:
            if not record.name.startswith("tests."):
                yield record.name, self.format(record)


@pytest.fixture
def every_record() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    loggers = [root] + [lg for lg in logging.Logger.manager.loggerDict.values()
                        if isinstance(lg, logging.Logger)]
    levels = {lg: lg.level for lg in loggers}
    for lg in loggers:
        lg.setLevel(1)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    for lg, level in levels.items():
        lg.setLevel(level)


@pytest.fixture(scope="module")
def zookeeper() -> Iterator[ZooKeeper]:
    with ZooKeeper.standalone() as zk:
        yield zk


def register(zookeeper: ZooKeeper, path: str, port: int) -> KazooClient:
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    info = {"address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": port},
            "hostname": "127.0.0.1", "port": port, "version": "1.11.0"}
    client.create(f"{path}/json.info_", json.dumps(info).encode(), ephemeral=True,
                  sequence=True, makepath=True)
    return client


def private_file(path: Path, text: str) -> str:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize("zk_source", ["url", "file"])
def test_no_secret_in_any_log_record(zookeeper: ZooKeeper, every_record: Everything,
                                     tmp_path: Path, zk_source: str) -> None:
    path = f"/secrets-{time.monotonic_ns()}/mesos"
    options: dict[str, Any] = {"mesosPrincipal": "p1",
               "mesosSecretFile": private_file(tmp_path / "secret", MESOS_SECRET),
               "killGracePeriod": 1, "maxCores": 1, "maxMemory": "1G", "maxDisk": "1G"}
    if zk_source == "url":
        password = URL_PASSWORD
        options["mesosMaster"] = zookeeper.url(path, credentials=f"zkuser:{password}")
    else:
        password = FILE_PASSWORD
        options["mesosMaster"] = zookeeper.url(path)
        options["zkCredentialsFile"] = private_file(tmp_path / "zk", f"zkuser:{password}")
    with MesosDouble(credentials={"p1": MESOS_SECRET}) as double:
        client = register(zookeeper, path, int(double.master_address.rsplit(":", 1)[1]))
        try:
            with mesobatch.FunctionExecutor("mesos", **options) as ex:
                token = ex.batch_system.resource_service().token
                assert ex.submit(sum, [20, 22]).result(timeout=60) == 42
        finally:
            client.stop()
            client.close()
    secrets = {"the Mesos secret": MESOS_SECRET, "the ZooKeeper password": password,
               "its repr": repr(password)[1:-1], "the resource token": token,
               "the Basic credentials": base64.b64encode(f"p1:{MESOS_SECRET}".encode()).decode()}
    texts = list(every_record.texts())
    for name, text in texts:
        for what, secret in secrets.items():
            assert secret not in text, f"{what} in a record of {name}: {text[:500]}"
    # not vacuous: kazoo did log its digest Auth request, masked
    auth = [t for n, t in texts if n.startswith("kazoo") and "Auth(" in t]
    assert auth and all("auth='***'" in t or 'auth="***"' in t for t in auth), auth


def test_a_bad_zk_url_never_echoes_its_password() -> None:
    for url in ("zk://u:pa/ss-secret@zk1/mesos", "zk://u:pa/ss-secret@zk1:99999/mesos",
                "zk://u:pa@ss-secret@zk1/mesos", "zk://u:pa/ss-secret@"):
        with pytest.raises(mesobatch.OptionError) as e:
            mesobatch.batch_system("mesos", mesosMaster=url)
        assert "ss-secret" not in str(e.value) and "***@" in str(e.value), str(e.value)


def test_a_secret_file_that_is_a_directory_is_refused_as_such(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(mesobatch.OptionError, match="not a regular file"):
        mesobatch.batch_system("mesos", mesosPrincipal="p1",
                               mesosSecretFile=str(tmp_path / "dir"))
