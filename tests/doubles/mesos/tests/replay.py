"""Replaying recorded requests against the double with the ids swapped for its own."""

from __future__ import annotations

from typing import Any

from .wire_client import Http, Response


class Ids:
    """Recorded id -> double id (and back) for requests and expected bodies."""

    def __init__(self) -> None:
        self.forward: dict[str, str] = {}

    def add(self, recorded: str | None, ours: str | None) -> None:
        if recorded and ours:
            self.forward[recorded] = ours

    def to_ours(self, text: str) -> str:
        for recorded in sorted(self.forward, key=len, reverse=True):
            text = text.replace(recorded, self.forward[recorded])
        return text

    def to_recorded(self, text: str) -> str:
        backward = {v: k for k, v in self.forward.items()}
        for ours in sorted(backward, key=len, reverse=True):
            text = text.replace(ours, backward[ours])
        return text


def send(http: Http, exchange: dict[str, Any], ids: Ids) -> Response:
    request = exchange["request"]
    headers = [(k, ids.to_ours(v)) for k, v in request["headers"]]
    body = request.get("body")
    data = ids.to_ours(body).encode() if body is not None else None
    return http.request(request["path"], data, method=request["method"], raw_headers=headers)


def assert_same(response: Response, exchange: dict[str, Any], ids: Ids) -> None:
    """Status, reason, header names in order, and the body (ids mapped back)."""
    recorded = exchange["response"]
    label = exchange.get("label")
    assert (response.status, response.reason) == (recorded["status"], recorded["reason"]), label
    names = [k for k, _ in response.headers]
    assert names == [k for k, _ in recorded["headers"]], label
    assert ids.to_recorded(response.text) == recorded["body"], label


def replay(http: Http, exchange: dict[str, Any], ids: Ids) -> Response:
    response = send(http, exchange, ids)
    assert_same(response, exchange, ids)
    return response
