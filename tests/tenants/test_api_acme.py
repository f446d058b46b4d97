"""GET /v1/acme and /v1/acme/{domain}: every attached domain's ACME status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import pki
from sixpod.tenants import issuance
from sixpod.tenants.api import create_api
from sixpod.tenants.model import AppSpec
from sixpod.tenants.store import Store

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_api(store, token=TOKEN), headers=AUTH) as c:
        yield c


def test_every_attached_domain_has_a_status(store: Store, client: TestClient) -> None:
    store.create_app(AppSpec("shop"))
    for d in ("new.example", "up.example", "*.wild.example", "bad.example"):
        store.attach_domain(d, "shop")
    chain, key = pki.site("up.example")
    store.put_cert("up.example", chain, key)
    failed = issuance.failed(
        None, store.clock(), "the CA refused: rateLimited", 0.5, issuance.Policy()
    )
    store.record_acme("bad.example", failed)
    body = client.get("/v1/acme").json()
    assert body["next"] is None
    by = {i["domain"]: i for i in body["items"]}
    assert by["new.example"]["status"] == "pending"
    assert by["up.example"]["status"] == "uploaded"
    assert by["up.example"]["next_attempt"] is None
    assert by["*.wild.example"]["status"] == "wildcard"
    assert "upload" in by["*.wild.example"]["error"]
    bad = client.get("/v1/acme/bad.example").json()
    assert bad == by["bad.example"]
    assert (bad["status"], bad["failures"]) == ("failed", 1)
    assert bad["error"] == "the CA refused: rateLimited"
    assert bad["next_attempt"] == issuance.iso(failed.next_attempt)
    page = client.get("/v1/acme", params={"limit": 2}).json()
    assert len(page["items"]) == 2
    rest = client.get("/v1/acme", params={"after": page["next"]}).json()
    assert [i["domain"] for i in page["items"] + rest["items"]] == sorted(by)


def test_an_unattached_domain_is_404(client: TestClient) -> None:
    r = client.get("/v1/acme/nowhere.example")
    assert r.status_code == 404
    assert "not attached" in r.json()["detail"]
    assert client.get("/v1/acme", headers={"Authorization": "Bearer wrong"}).status_code == 401
