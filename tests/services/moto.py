"""moto's server (``pip install 'moto[server,batch]'``) on a loopback port: an independent
implementation of the AWS Batch API, to show that the boto3 calls mesobatch makes are accepted
by more than our own double.

moto runs no job without Docker: after ``POST /moto-api/config`` with
``{"batch": {"use_docker": false}}`` every job is SUCCEEDED as soon as it is submitted (without
the call, every job goes straight to FAILED), so moto checks the calls' shapes, not job states.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field


def installed() -> bool:
    try:
        import flask  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    """``with MotoServer() as moto:`` then boto3 clients with ``endpoint_url=moto.endpoint_url``."""

    port: int = 0
    region: str = "us-east-1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        self.port = self.port or free_port()
        env = {**os.environ, "AWS_DEFAULT_REGION": self.region,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._config({"batch": {"use_docker": False}})
                return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"moto_server exited with {self.process.returncode}") from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"moto_server not up on port {self.port}") from None
                time.sleep(0.1)

    def _config(self, config: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/config", data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
