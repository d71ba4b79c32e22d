"""Reading a v1 API call the way Master/Agent ``Http::api`` does: POST only, exact
Content-Type, JSON, then the protobuf conversion, each failing with Mesos's own text."""

from __future__ import annotations

from . import httputil
from .httpserver import Request, Response
from .protojson import ProtoError, json_error_text, parse
from .wire import JsonDict, loads


def read_call(request: Request, message: str) -> JsonDict | Response:
    """The call in ``request`` as ``message`` (e.g. "Call"), or the error to answer."""
    if request.method != "POST":
        return httputil.method_not_allowed(request.method)
    error = httputil.content_type_error(request)
    if error is not None:
        return error
    body = request.body
    try:
        value = loads(body)
    except ValueError as exc:
        text_body = body.decode("utf-8", "replace")
        return httputil.bad_request(
            "Failed to parse body into JSON: " + json_error_text(text_body, exc))
    try:
        call: JsonDict = parse(value, message)
    except ProtoError as exc:
        return httputil.bad_request(f"Failed to convert JSON into Call protobuf: {exc}")
    return call
