"""Property test of the API: any JSON body to any write gets a 2xx or a clear 4xx, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sixpod.inventory.lock import Lock
from sixpod.tenants.api import create_api
from sixpod.tenants.model import AppSpec
from tenantkit import open_store

TOKEN = "f" * 32

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
fields = st.sampled_from(
    [
        "name",
        "owner",
        "shard_seed",
        "settings",
        "endpoints",
        "remove",
        "force",
        "app",
        "state",
        "reason",
        "through",
        "address",
        "port",
        "weight",
    ]
)
bodies = st.one_of(json_values, st.dictionaries(fields, json_values, max_size=4))
paths = st.sampled_from(
    [
        ("POST", "/v1/apps"),
        ("PATCH", "/v1/apps/shop"),
        ("POST", "/v1/apps/shop/endpoints"),
        ("PUT", "/v1/domains/www.shop.example"),
        ("PUT", "/v1/vips/203.0.113.1"),
        ("PUT", "/v1/nodes/edge1"),
        ("POST", "/v1/publisher/force"),
    ]
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory, small_lock: Lock) -> Iterator[TestClient]:
    db = Path(tmp_path_factory.mktemp("fuzz")) / "t.db"
    store = open_store(f"sqlite:///{db}", small_lock)
    store.create_app(AppSpec("shop"))
    with TestClient(
        create_api(store, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as c:
        yield c
    store.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(paths, bodies)
def test_no_body_makes_a_server_error(
    fuzz_client: TestClient, call: tuple[str, str], body: Any
) -> None:
    method, path = call
    r = fuzz_client.request(method, path, json=body)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"]
