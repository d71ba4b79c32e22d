"""The status page in a real headless browser (Debian's chromium): it loads, shows a
running job, a waiting shape and a failure's last log lines, fits a phone's width, and
refreshes itself. A screenshot is taken in every run (kept where
$MESOBATCH_STATUS_SCREENSHOT says, e.g. docs/status-page.png)."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

import mesobatch
from tests.services.browser import Browser, installed
from tests.waiting import wait_for


def job(name: str, cores: float = 1) -> mesobatch.JobDescription:
    return mesobatch.JobDescription(cores=cores, memory=64 * 2**20, disk=2**20, name=name)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_status_page_in_a_real_browser(tmp_path: Path) -> None:
    if not installed():
        raise RuntimeError("chromium and chromedriver are not installed: apt-get install "
                           "chromium chromium-driver fonts-liberation (tests/run.sh does)")
    with mesobatch.batch_system("local", maxCores=2, maxMemory="1G", maxDisk="1G",
                                logDir=str(tmp_path / "logs"), statusPort=0) as bs:
        assert bs.status_url is not None
        for i in range(6):  # something for the throughput line
            bs.issueBatchJob("true", job(f"prepare-{i}"))
        bs.issueBatchJob("echo 'reading samples.tsv'; echo 'ValueError: bad record on "
                         "line 12' >&2; exit 1", job("parse-batch-3"))
        for _ in range(7):
            assert bs.getUpdatedBatchJob(30) is not None
        running = [bs.issueBatchJob("sleep 60", job(f"align-sample-{i}")) for i in (1, 2)]
        waiting = [bs.issueBatchJob("sleep 60", job(f"merge-{i}", cores=2)) for i in (1, 2)]
        wait_for(lambda: len(bs.getRunningBatchJobIDs()) == 2)
        with Browser() as browser:
            browser.open(bs.status_url)
            assert browser.title == "mesobatch: 2 running, 2 queued", browser.title
            table = browser.text("#running")
            assert "align-sample-1" in table and "align-sample-2" in table, table
            assert "running" in table, table
            queue = browser.text("#queue")
            assert "2 cores" in queue and "waiting for resources to free up" in queue, queue
            failures = browser.text("#failures")
            assert "parse-batch-3" in failures, failures
            assert "ValueError: bad record on line 12" in failures, failures
            # readable on a phone: nothing wider than its screen
            assert browser.script("return document.documentElement.scrollWidth "
                                  "<= window.innerWidth") is True
            shot = browser.screenshot(tmp_path / "status-page.png")
            width, height = png_size(shot)
            assert width == 412 and height > 915  # the whole page, taller than a screen
            keep = os.environ.get("MESOBATCH_STATUS_SCREENSHOT")
            if keep:
                shutil.copyfile(shot, keep)
            # the page refreshes itself: the killed jobs leave it with no new open()
            bs.killBatchJobs(running + waiting)
            assert wait_for(lambda: "No job runs." in browser.text("#running"), 60), (
                browser.text("#running"))
            assert "Nothing waits." in browser.text("#queue"), browser.text("#queue")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # chromedriver and the page are on loopback; a proxy from the environment must not
    # get in between
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
