"""Headless Debian Chromium driven through chromedriver's W3C WebDriver HTTP API (and its
DevTools passthrough), with httpx: no browser-automation library needed."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from sixpod.lab.redisproc import free_port, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


class Browser:
    def __init__(self, driver: str, session: str) -> None:
        self.base = f"{driver}/session/{session}"
        self.http = httpx.Client(timeout=60)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, f"{self.base}{path}", json=body)
        value = r.json().get("value")
        if r.status_code != 200:
            raise AssertionError(f"webdriver {path}: {r.status_code} {value}")
        return value

    def cdp(self, cmd: str, **params: Any) -> Any:
        """A DevTools protocol command, through chromedriver."""
        return self._call("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def js(self, script: str) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": []})

    def screenshot(self, path: Path) -> None:
        shot = self.cdp("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def chromium() -> Iterator[Browser]:
    """A fresh headless Chromium (its own profile directory) and its chromedriver."""
    port = free_port("127.0.0.1")
    driver = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="sixpod-chromium-") as profile:
        proc = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        session = None
        browser = None
        try:
            wait_until(lambda: _ready(driver), timeout=20, what="chromedriver")
            caps = {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [*ARGS, f"--user-data-dir={profile}"],
                },
            }
            r = httpx.post(
                f"{driver}/session", json={"capabilities": {"alwaysMatch": caps}}, timeout=60
            )
            assert r.status_code == 200, r.text
            session = r.json()["value"]["sessionId"]
            browser = Browser(driver, session)
            yield browser
        finally:
            if browser is not None:
                browser.http.close()
            if session is not None:
                httpx.delete(f"{driver}/session/{session}", timeout=30)
            proc.terminate()
            proc.wait(timeout=20)


def _ready(driver: str) -> bool:
    try:
        return bool(httpx.get(f"{driver}/status", timeout=1).json()["value"]["ready"])
    except (httpx.HTTPError, ValueError, KeyError):
        return False
