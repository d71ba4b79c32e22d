"""Framework authentication (HTTP Basic) and TLS to the master, against the double."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mesobatch
from tests.doubles.mesos import MesosDouble
from tests.services.tls import TlsFiles

from .conftest import job


def secret_file(tmp_path: Path, secret: str, mode: int = 0o600) -> str:
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    path.chmod(mode)
    return str(path)


def wait_fatal(bs: mesobatch.BatchSystem, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fatal = bs.fatal_error()
        if fatal:
            return fatal
        time.sleep(0.05)
    raise AssertionError("no fatal error")


def test_principal_and_secret_authenticate(tmp_path: Path) -> None:
    secret = secret_file(tmp_path, "s3cret-value")
    with MesosDouble(credentials={"p1": "s3cret-value"}) as double, mesobatch.batch_system(
            "mesos", mesosMaster=double.master_address, mesosPrincipal="p1",
            killGracePeriod=1, mesosSecretFile=secret) as bs:
        done = bs.issueBatchJob("true", job())
        info = bs.getUpdatedBatchJob(30)
        assert info is not None and info.jobID == done and info.exitStatus == 0
        (framework,) = double.state()["frameworks"].values()
        assert framework["principal"] == "p1"


def test_wrong_secret_is_a_clear_error_that_never_shows_the_secret(tmp_path: Path) -> None:
    secret = secret_file(tmp_path, "wrong-guess")
    with MesosDouble(credentials={"p1": "right"}) as double, mesobatch.batch_system(
            "mesos", mesosMaster=double.master_address, mesosPrincipal="p1",
            killGracePeriod=1, mesosSecretFile=secret) as bs:
        bs.issueBatchJob("true", job())
        fatal = wait_fatal(bs)
        assert "HTTP 401" in fatal and "check the principal and secret" in fatal
        message = bs.getSchedulingStatusMessage() or ""
        assert "401" in message
        for text in (fatal, message):
            assert "wrong-guess" not in text and "right" not in text


def test_world_readable_secret_file_is_refused(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "s", mode=0o644)
    with pytest.raises(mesobatch.OptionError, match=r"readable by everyone.*chmod 600"):
        mesobatch.batch_system("mesos", mesosMaster="127.0.0.1:1", mesosPrincipal="p1",
                               mesosSecretFile=path)


def test_command_line_stops_with_the_error(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("true\n")
    with MesosDouble(credentials={"p1": "right"}) as double:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOBATCH_")}
        r = subprocess.run(
            [sys.executable, "-m", "mesobatch", "run", str(jobs), "--backend", "mesos",
             "--mesosMaster", double.master_address, "--mesosPrincipal", "p1",
             "--mesosSecretFile", secret_file(tmp_path, "nope"), "--no-progress"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2
    assert "HTTP 401" in r.stderr and "nope" not in r.stderr and "Traceback" not in r.stderr


def test_tls_with_the_ca_bundle_works_and_without_it_fails(tmp_path: Path) -> None:
    tls = TlsFiles.create(tmp_path / "tls")
    with MesosDouble(tls_cert=tls.server_cert, tls_key=tls.server_key) as double:
        url = double.master_url
        assert url.startswith("https://")
        with mesobatch.batch_system("mesos", mesosMaster=url, mesosCaBundle=str(tls.ca_cert),
                                    killGracePeriod=1) as bs:
            done = bs.issueBatchJob("true", job())
            info = bs.getUpdatedBatchJob(30)
            assert info is not None and info.jobID == done and info.exitStatus == 0
        with mesobatch.batch_system("mesos", mesosMaster=url, killGracePeriod=1) as bs:
            bs.issueBatchJob("true", job())
            fatal = wait_fatal(bs)
            assert "is not trusted" in fatal and "--mesosCaBundle" in fatal
            assert bs.getUpdatedBatchJob(0.5) is None
