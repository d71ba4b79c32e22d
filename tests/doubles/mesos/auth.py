"""HTTP framework authentication (``--authenticate_http_frameworks``, recording 12).

libprocess' Basic authenticator runs before the scheduler handler: any failure is the same
bare 401 (surprise 36). Credentials come from a Mesos ``--credentials`` file: JSON
``{"credentials": [{"principal": "p1", "secret": "s1"}]}`` or lines of ``principal secret``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .httpserver import Request, Response, text
from .wire import b64decode_strict

REALM = "mesos-master-scheduler"


def load_credentials(path: str | Path) -> dict[str, str]:
    """principal -> secret from a Mesos credentials file (JSON or text)."""
    content = Path(path).read_text()
    if content.lstrip().startswith("{"):
        data = json.loads(content)
        return {c["principal"]: c["secret"] for c in data.get("credentials", [])}
    credentials: dict[str, str] = {}
    for line in content.splitlines():
        words = line.split()
        if len(words) == 2:
            credentials[words[0]] = words[1]
        elif words:
            raise ValueError(f"{path}: expecting 'principal secret' lines")
    return credentials


def authenticate(request: Request, credentials: dict[str, str]) -> str | None:
    """libprocess' BasicAuthenticator: the authenticated principal, or None (-> 401)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    components = header.split(" ")
    if len(components) != 2 or components[0] != "Basic":
        return None
    try:
        decoded = b64decode_strict(components[1]).decode("utf-8", "surrogateescape")
    except ValueError:
        return None
    parts = decoded.split(":")
    if len(parts) != 2 or credentials.get(parts[0]) != parts[1]:
        return None
    return parts[0]


def unauthorized() -> Response:
    """The bare 401 of recording 12."""
    return text(401, "401 Unauthorized.", [("WWW-Authenticate", f'Basic realm="{REALM}"')])
