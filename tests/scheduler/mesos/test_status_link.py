"""On Mesos, FrameworkInfo.webui_url points to the status page, so the Mesos web UI
links to it; without a status page there is no link."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.waiting import wait_for

from .conftest import Cluster


def frameworks(cluster: Cluster) -> list[dict[str, Any]]:
    """What the master's operator API says of its frameworks (as the web UI reads it)."""
    assert cluster.double is not None
    request = urllib.request.Request(
        cluster.double.master_url + "/api/v1", data=json.dumps(
            {"type": "GET_FRAMEWORKS"}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        body: dict[str, Any] = json.load(r)
    found: list[dict[str, Any]] = body["get_frameworks"].get("frameworks", [])
    return [f["framework_info"] for f in found]


def test_webui_url_is_the_status_page(cluster: Cluster) -> None:
    cluster.start()
    bs = cluster.batch_system(statusPort=0)
    assert bs.status_url is not None
    (info,) = wait_for(lambda: frameworks(cluster))
    assert info["webui_url"] == bs.status_url
    with urllib.request.urlopen(info["webui_url"] + "api/status", timeout=10) as r:
        assert json.load(r)["backend"] == "mesos"


def test_no_status_page_no_webui_url(cluster: Cluster) -> None:
    cluster.start()
    bs = cluster.batch_system()
    assert bs.status_url is None
    (info,) = wait_for(lambda: frameworks(cluster))
    assert "webui_url" not in info
