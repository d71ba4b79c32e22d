"""The private master<->agent protocol: JSON frames over one full-duplex chunked HTTP/1.1 POST.

The agent finds the leading master through a LeaderDetector and POSTs ``/__agent__/link`` with
``Transfer-Encoding: chunked``; the master answers 200 with a chunked body. From then on each
chunk in either direction is one frame, a JSON array of messages (messages produced in one loop
iteration share a frame). Closing the connection is how the master learns that an agent went
away, like the agent's libprocess socket closing in real Mesos. Because it is plain HTTP, an
agent can register with a master living in another process.
"""

from __future__ import annotations

from .httpserver import Link, open_link

LINK_PATH = "/__agent__/link"

__all__ = ["LINK_PATH", "Link", "open_link"]
