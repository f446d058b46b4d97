"""The pod status page: what it shows, who may see it, and that nothing in it is active."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from sixpod.inventory.lock import Lock
from sixpod.tenants.api import create_api
from sixpod.tenants.model import AppSpec, EndpointSpec, NodeSpec, NodeState, VipSpec, VipState
from sixpod.tenants.statuspage import CSP, PATH, authorized, render, snapshot
from sixpod.tenants.store import Store

TOKEN = "s3cret-token-0123456789"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def fill(store: Store, lock: Lock) -> None:
    edge1 = lock.nodes["edge1"].prefix.network_address
    store.create_app(AppSpec("shop", owner="acme"))
    store.create_app(AppSpec("blog", owner="<script>alert(1)</script>"))
    store.set_endpoints("shop", [EndpointSpec(edge1 + i, 8080) for i in (16, 17, 18)])
    store.attach_domain("www.shop.example", "shop")
    store.set_vip(VipSpec.parse("203.0.113.1", VipState.BLACKHOLED, "DDoS <b>on</b> shop"))
    store.set_node(NodeSpec("edge2", NodeState.DRAINED, "kernel upgrade"))


def test_the_page_shows_the_pod(store: Store, small_lock: Lock) -> None:
    fill(store, small_lock)
    status = {"active": True, "published": store.head() - 2, "guard": None, "error": None}
    snap = snapshot(store, lambda: status)
    assert snap.apps == [("blog", "<script>alert(1)</script>", 0), ("shop", "acme", 3)]
    assert snap.endpoint_count == 3
    assert snap.oldest_unpublished is not None
    page = render(snap, now=snap.oldest_unpublished + 2.5)
    for text in ("shop", "acme", "edge2", "drained", "kernel upgrade", "203.0.113.1",
                 "blackholed", "2 rev, 2.5 s", "vip 203.0.113.1 -&gt; blackholed",
                 "dom www.shop.example", '<meta http-equiv="refresh" content="10">',
                 'name="viewport"'):  # fmt: skip
        assert text in page, text
    # everything stored is text on the page, never markup
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "DDoS &lt;b&gt;on&lt;/b&gt; shop" in page
    # no external assets: no URL the browser would fetch
    assert "http://" not in page
    assert "https://" not in page
    assert "src=" not in page


def test_the_token_as_bearer_or_basic_password(store: Store) -> None:
    with TestClient(create_api(store, token=TOKEN)) as c:
        r = c.get(PATH)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic realm=")
        assert "text/html" not in r.headers["content-type"]
        assert c.get(PATH, headers={"Authorization": basic("ops", "wrong")}).status_code == 401
        assert c.get(PATH, headers={"Authorization": "Bearer wrong"}).status_code == 401
        for auth in (f"Bearer {TOKEN}", basic("ops", TOKEN), basic("", TOKEN)):
            r = c.get(PATH, headers={"Authorization": auth})
            assert r.status_code == 200, auth
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["content-security-policy"] == CSP
            assert r.headers["cache-control"] == "no-store"
            assert "<h2>Nodes</h2>" in r.text


def test_authorization_values_that_never_match() -> None:
    for value in (None, "", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"\xff:x").decode(),
                  "Digest " + TOKEN, TOKEN, basic(TOKEN, "")):  # fmt: skip
        assert not authorized(value, TOKEN), value
    assert authorized("bearer  " + TOKEN, TOKEN)
