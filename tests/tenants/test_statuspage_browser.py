"""The status page in headless Debian Chromium, served by a real ``sixpod controller`` with
data: what a phone shows, that it refreshes itself, and the screenshot the README shows
(``SIXPOD_UPDATE_GOLDEN=1`` rewrites ``docs/status-page.png``)."""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_controller import EDGE1, Controller, start_controller

from browserkit import Browser, available, chromium
from sixpod.lab.redisproc import RedisServer, wait_until
from sixpod.tenants.statuspage import PATH, REFRESH

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not available(), reason="needs Debian chromium and chromium-driver"),
]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "status-page.png"


@pytest.fixture
def controller(tmp_path: Path, primary: RedisServer) -> Iterator[Controller]:
    yield from start_controller(tmp_path, primary)


def text(browser: Browser) -> str:
    body: str = browser.js("return document.body.innerText")
    return body


def test_the_status_page_on_a_phone(controller: Controller, tmp_path: Path) -> None:
    for args in (
        ("app", "create", "shop", "--owner", "acme"),
        ("app", "create", "blog", "--owner", "jane"),
        ("endpoint", "add", "shop", *(f"[{EDGE1}::{i:x}]:8080" for i in range(16, 22))),
        ("endpoint", "add", "blog", f"[{EDGE1}::30]:8080"),
        ("domain", "attach", "www.shop.example", "shop"),
        ("vip", "set", "203.0.113.1", "blackholed", "--reason", "DDoS on shop"),
        ("vip", "set", "2001:db8:2fe::2", "drained"),
    ):
        r = controller.cli(*args)
        assert r.returncode == 0, r.stderr
    auth = "Basic " + base64.b64encode(f"ops:{controller.token}".encode()).decode()
    with chromium() as browser:
        browser.cdp("Network.enable")
        browser.cdp("Network.setExtraHTTPHeaders", headers={"Authorization": auth})
        browser.cdp(  # a phone: 390 CSS pixels wide, twice as dense
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=2,
            mobile=True,
        )
        browser.get(f"{controller.url}{PATH}")
        shown = text(browser)
        for want in ("status", "publisher", "active", "shop", "acme", "blog", "edge1",
                     "203.0.113.1", "blackholed", "DDoS on shop", "drained",
                     "dom www.shop.example", "Recent changes"):  # fmt: skip
            assert want in shown, want
        rows = browser.js(
            "return [...document.querySelectorAll('tr')].map(r => r.innerText.split('\\t'))"
        )
        assert ["shop", "acme", "6"] in rows
        assert ["blog", "jane", "1"] in rows
        # readable on a phone: nothing wider than the screen (tables scroll in their box)
        assert browser.js("return document.documentElement.scrollWidth") <= 390
        assert browser.js("return document.querySelectorAll('script, link, img').length") == 0
        shot = tmp_path / "status-page.png"
        browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000
        if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
            shutil.copy(shot, SCREENSHOT)
        # it refreshes itself: a change shows up without anyone reloading
        started = time.monotonic()
        r = controller.cli("app", "create", "wiki", "--owner", "kim")
        assert r.returncode == 0, r.stderr
        wait_until(
            lambda: "kim" in text(browser), timeout=REFRESH + 10, interval=0.5, what="refresh"
        )
        assert time.monotonic() - started < REFRESH + 10
