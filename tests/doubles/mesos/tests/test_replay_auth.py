"""HTTP framework authentication: recording 12 replayed (surprise 36)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.mesos import MesosDouble
from tests.doubles.mesos.auth import load_credentials

from .conftest import recording
from .replay import Ids, assert_same, send
from .shapes import skeleton
from .wire_client import Http, Subscription

RECORDED = recording("12_framework_http_authentication")


@pytest.fixture
def auth_double(tmp_path: Path) -> Iterator[MesosDouble]:
    """A master started like 12's: --authenticate_http_frameworks --credentials=FILE."""
    credentials = tmp_path / "creds.json"
    credentials.write_text(RECORDED["extra"]["credentials_file_content"])
    with MesosDouble(agents=1, credentials=credentials) as double:
        yield double


def _subscribe(double: MesosDouble, stream: dict[str, Any]) -> Subscription:
    request = stream["request"]
    headers = {
        k: v
        for k, v in request["headers"]
        if k.lower() not in ("host", "content-type", "accept", "content-length")
    }
    return Subscription(
        double.master_address, request["path"], json.loads(request["body"]), headers=headers
    )


def test_subscribe_variants_replayed(auth_double: MesosDouble) -> None:
    ids = Ids()
    accepted: list[tuple[dict[str, Any], Subscription]] = []
    for stream in RECORDED["streams"]:
        recorded = stream["response"]
        subscription = _subscribe(auth_double, stream)
        label = stream["label"]
        assert subscription.status == recorded["status"], label
        names = [k for k, _ in subscription.response_headers]
        assert names == [k for k, _ in recorded["headers"]], label
        if recorded["status"] != 200:
            assert subscription.error_body.decode() == recorded["body"], label
            if recorded["status"] == 401:
                assert subscription.header("WWW-Authenticate") == (
                    'Basic realm="mesos-master-scheduler"'
                )
            continue
        subscribed = subscription.next("SUBSCRIBED")["subscribed"]
        ids.add(dict(recorded["headers"])["Mesos-Stream-Id"], subscription.stream_id)
        accepted.append((stream, subscription))
        ours = subscribed["framework_id"]["value"]
        # The recording's notes name the framework ids in subscription order.
        ids.add(f"088888bc-5b48-4cc7-a5ff-1b7461e4e314-{len(accepted) - 1:04d}", ours)
    assert len(accepted) == 2
    state = auth_double.state()["frameworks"]
    assert [f["principal"] for f in state.values()] == ["p1", "p1"]  # filled in when unset

    http = Http(auth_double.master_address)
    for exchange in RECORDED["exchanges"]:
        path = exchange["request"]["path"]
        if path == "/master/state":
            continue  # the double has no /master/state
        response = send(http, exchange, ids)
        if path != "/api/v1":
            assert_same(response, exchange, ids)
        else:
            recorded = json.loads(exchange["response"]["body"])["get_frameworks"]
            ours = json.loads(response.body)["get_frameworks"]
            assert response.status == 200
            assert [skeleton(f["framework_info"]) for f in ours["completed_frameworks"]] == [
                skeleton(f["framework_info"]) for f in recorded["completed_frameworks"]
            ]
            assert [f["framework_info"]["principal"] for f in ours["completed_frameworks"]] == [
                "p1",
                "p1",
            ]
    for _, subscription in accepted:
        assert subscription.wait_closed() == "terminating chunk"  # TEARDOWN with credentials


def test_authentication_comes_first_and_principals_must_match(
    auth_double: MesosDouble,
) -> None:
    """401 before any other check (even a GET); a call's principal must be the framework's."""
    http = Http(auth_double.master_address)
    get = http.request("/api/v1/scheduler", method="GET", content_type=None)
    assert (get.status, get.text) == (401, "401 Unauthorized.")
    garbage = http.request("/api/v1/scheduler", b"{", headers={"Authorization": "Basic cDE6czE="})
    assert garbage.status == 400
    for header in ("Basic  cDE6czE=", "basic cDE6czE=", "Basic cDE6czE6eA==", "Basic "):
        response = http.request("/api/v1/scheduler", {}, headers={"Authorization": header})
        assert response.status == 401, header
    # Operator and control endpoints are not authenticated (only frameworks are).
    assert http.request("/api/v1", {"type": "GET_HEALTH"}).status == 200


def test_credentials_files(tmp_path: Path) -> None:
    as_json = tmp_path / "creds.json"
    as_json.write_text('{"credentials":[{"principal":"p1","secret":"s1"},'
                       '{"principal":"p2","secret":"s:2"}]}')
    assert load_credentials(as_json) == {"p1": "s1", "p2": "s:2"}
    as_text = tmp_path / "creds.txt"
    as_text.write_text("p1 s1\n\np2 s2\n")
    assert load_credentials(as_text) == {"p1": "s1", "p2": "s2"}
    as_text.write_text("p1\n")
    with pytest.raises(ValueError):
        load_credentials(as_text)
