"""Response builders and request checks shared by the master and agent endpoints."""

from __future__ import annotations

from .httpserver import Request, Response, text


def bad_request(body: str) -> Response:
    return text(400, body)


def accepted() -> Response:
    """libprocess' 202: only Date and Content-Length: 0."""
    return Response(202)


def ok_empty() -> Response:
    return Response(200)


def ok_json(payload: bytes) -> Response:
    return Response(200, payload, content_type="application/json")


def method_not_allowed(method: str) -> Response:
    return text(
        405,
        f"405 Method Not Allowed. Expecting one of {{ 'POST' }}, but received '{method}'.",
        [("Allow", "POST")],
    )


def temporary_redirect(location: str) -> Response:
    return Response(307, headers=[("Location", location)])


def content_type_error(request: Request) -> Response | None:
    """Exact-string Content-Type check (surprise 1); None when acceptable."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return bad_request("Expecting 'Content-Type' to be present")
    if content_type == "application/json":
        return None
    if content_type == "application/x-protobuf":
        return text(
            415, "The Mesos double only speaks JSON; application/x-protobuf is not supported"
        )
    return text(415, "Expecting 'Content-Type' of application/json or application/x-protobuf")


def accept_error(request: Request) -> Response | None:
    """Streaming calls must accept JSON (the double has no protobuf encoder)."""
    accept = request.headers.get("accept")
    if accept is None:
        return None
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("application/json", "*/*", "application/*"):
            return None
    return text(406, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")
