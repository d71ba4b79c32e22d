"""A real headless browser for tests: Debian's `chromium`, driven through
`chromedriver` (Debian's `chromium-driver`) with the W3C WebDriver protocol over HTTP.

A few calls are all the tests need (open a page, read an element's text, take a
screenshot), so this speaks the protocol itself rather than pulling in Selenium.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"


def installed() -> bool:
    return shutil.which("chromedriver") is not None and Path(CHROMIUM).exists()


class WebDriverError(Exception):
    """A WebDriver command failed; the message has the driver's error and its text."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """One headless chromium session; ``width`` x ``height`` CSS pixels (a phone's by
    default) at ``scale`` device pixels each."""

    def __init__(self, width: int = 412, height: int = 915, scale: float = 1.0) -> None:
        self._profile = tempfile.mkdtemp(prefix="mesobatch-chromium-")
        port = _free_port()
        self._log = open(Path(self._profile) / "chromedriver.log", "wb")  # noqa: SIM115
        self._driver = subprocess.Popen(["chromedriver", f"--port={port}"],
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self._base = f"http://127.0.0.1:{port}"
        self._session: str | None = None
        try:
            self._wait_ready()
            answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", f"--user-data-dir={self._profile}/p",
                             f"--window-size={width},{height}",
                             f"--force-device-scale-factor={scale}"],
                    "mobileEmulation": {"deviceMetrics": {
                        "width": width, "height": height, "pixelRatio": scale}},
                }}}})
            self._session = str(answer["sessionId"])
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._driver.poll() is not None:
                raise WebDriverError(f"chromedriver exited with {self._driver.returncode}")
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            time.sleep(0.1)
        raise WebDriverError("chromedriver did not become ready in time")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return json.load(r)["value"]
        except urllib.error.HTTPError as e:
            value = json.load(e).get("value", {})
            raise WebDriverError(f"{method} {path}: {value.get('error')}: "
                                 f"{value.get('message', '')[:500]}") from None

    def _s(self, path: str) -> str:
        return f"/session/{self._session}{path}"

    def open(self, url: str) -> None:
        """Load ``url`` and wait until it has loaded."""
        self._call("POST", self._s("/url"), {"url": url})

    @property
    def title(self) -> str:
        return str(self._call("GET", self._s("/title")))

    def text(self, css: str) -> str:
        """The visible text of the first element ``css`` selects ('' if none). A page
        that reloads itself may be between two documents: asked again then."""
        for attempt in range(10):
            try:
                value = self.script(f"const e = document.querySelector({json.dumps(css)});"
                                    " return e === null ? null : e.innerText;")
            except WebDriverError:
                if attempt == 9:
                    raise
                time.sleep(0.2)
                continue
            if value is not None or attempt == 9:
                return str(value or "")
            time.sleep(0.2)  # not there: perhaps the next document is still loading
        raise AssertionError("unreachable")

    def script(self, source: str) -> Any:
        return self._call("POST", self._s("/execute/sync"), {"script": source, "args": []})

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (all of it, when ``full_page``)."""
        if full_page:  # the viewport grows to the document's height, then shrinks back
            height = int(self.script("return document.documentElement.scrollHeight"))
            width = int(self.script("return window.innerWidth"))
            self._cdp("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 0, "mobile": True})
        png = base64.b64decode(self._call("GET", self._s("/screenshot")))
        if full_page:
            self._cdp("Emulation.clearDeviceMetricsOverride", {})
        path = Path(path)
        path.write_bytes(png)
        return path

    def _cdp(self, command: str, params: dict[str, Any]) -> Any:
        return self._call("POST", self._s("/goog/cdp/execute"),
                          {"cmd": command, "params": params})

    def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(OSError, WebDriverError):
                self._call("DELETE", self._s(""))
            self._session = None
        if self._driver.poll() is None:
            self._driver.terminate()
            try:
                self._driver.wait(10)
            except subprocess.TimeoutExpired:
                self._driver.kill()
                self._driver.wait()
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
