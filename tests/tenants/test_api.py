"""The controller API over a real SQLite store, through FastAPI's test client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sixpod.inventory.lock import Lock
from sixpod.tenants.api import create_api
from sixpod.tenants.store import Store

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_api(store, token=TOKEN), headers=AUTH) as c:
        yield c


def prefix_of(lock: Lock, node: str) -> str:
    return str(lock.nodes[node].prefix.network_address)


def ep(lock: Lock, on: str, host: int, port: int = 8080, **kw: Any) -> dict[str, Any]:
    base = lock.nodes[on].prefix
    return {"address": str(base[host]), "port": port, **kw}


def assert_problem(r: Any, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    for w in words:
        assert w in body["detail"], body["detail"]


def test_app_lifecycle_with_etags(client: TestClient) -> None:
    r = client.post("/v1/apps", json={"name": "shop", "owner": "acme", "settings": {"a": [1]}})
    assert r.status_code == 201
    assert r.headers["Location"] == "/v1/apps/shop"
    etag = r.headers["ETag"]
    got = client.get("/v1/apps/shop")
    assert got.json()["settings"] == {"a": [1]}
    assert got.headers["ETag"] == etag
    r = client.patch("/v1/apps/shop", json={"owner": "acme2"}, headers={"If-Match": etag})
    assert r.status_code == 200
    assert r.json()["owner"] == "acme2"
    stale = client.patch("/v1/apps/shop", json={"owner": "x"}, headers={"If-Match": etag})
    assert_problem(stale, 412, "not " + etag.strip('"'))
    assert client.get("/v1/apps/shop").json()["owner"] == "acme2"
    assert client.delete("/v1/apps/shop").status_code == 204
    assert_problem(client.get("/v1/apps/shop"), 404, "shop")


def test_pagination_walks_every_app_once(client: TestClient) -> None:
    for i in range(25):
        assert client.post("/v1/apps", json={"name": f"app{i:02d}"}).status_code == 201
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if after:
            params["after"] = after
        page = client.get("/v1/apps", params=params).json()
        seen += [a["name"] for a in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [f"app{i:02d}" for i in range(25)]


def test_endpoints_only_inside_their_nodes_64(client: TestClient, small_lock: Lock) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    ok = client.post("/v1/apps/shop/endpoints", json={"endpoints": [ep(small_lock, "edge1", 5)]})
    assert ok.status_code == 200
    assert int(ok.headers["X-Sixpod-Revision"]) > 0
    items = client.get("/v1/apps/shop/endpoints").json()["items"]
    assert [(i["node"], i["port"], i["weight"], i["state"]) for i in items] == [
        ("edge1", 8080, 100, "up")
    ]
    outside = {"address": "2001:db8:dead::1", "port": 80}
    assert_problem(
        client.post("/v1/apps/shop/endpoints", json={"endpoints": [outside]}),
        422,
        "not inside any node's /64",
    )
    wrong_node = ep(small_lock, "edge1", 6, node="edge2")
    assert_problem(
        client.post("/v1/apps/shop/endpoints", json={"endpoints": [wrong_node]}),
        422,
        "edge1",
    )
    assert len(client.get("/v1/apps/shop/endpoints").json()["items"]) == 1


BAD_ENDPOINTS = [
    ({"address": "10.0.0.1", "port": 80}, "IPv6-only"),
    ({"address": "2001:db8::1::2", "port": 80}, "2001:db8::1::2"),
    ({"address": "fe80::1%eth0", "port": 80}, "fe80::1%eth0"),
    ({"address": "2001:db8:200:1::5", "port": 0}, "port"),
    ({"address": "2001:db8:200:1::5", "port": "80"}, "port"),
    ({"address": "2001:db8:200:1::5", "port": 80, "weight": 0}, "weight"),
    ({"address": "2001:db8:200:1::5", "port": 80, "state": "maybe"}, "state"),
    ({"address": "2001:db8:200:1::5", "port": 80, "colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("item", "word"), BAD_ENDPOINTS)
def test_bad_endpoints_rejected_and_nothing_stored(
    client: TestClient, store: Store, item: dict[str, Any], word: str
) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    head = store.head()
    good = {"address": "2001:db8:200:1::9", "port": 80}
    r = client.post("/v1/apps/shop/endpoints", json={"endpoints": [good, item]})
    assert_problem(r, 422, word)
    assert store.head() == head
    assert client.get("/v1/apps/shop/endpoints").json()["items"] == []


def test_domains_belong_to_one_app(client: TestClient) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    client.post("/v1/apps", json={"name": "blog"})
    r = client.put("/v1/domains/Bücher.Example", json={"app": "shop"})
    assert r.status_code == 200
    assert r.json()["name"] == "xn--bcher-kva.example"
    assert client.put("/v1/domains/*.shop.example", json={"app": "shop"}).status_code == 200
    assert_problem(
        client.put("/v1/domains/xn--bcher-kva.example", json={"app": "blog"}), 409, "'shop'"
    )
    assert client.get("/v1/domains", params={"app": "shop"}).json()["items"][0]["app"] == "shop"
    assert client.delete("/v1/domains/bücher.example").status_code == 204
    assert client.put("/v1/domains/bücher.example", json={"app": "blog"}).status_code == 200


@pytest.mark.parametrize(
    ("host", "word"),
    [
        ("a.*.example", "leftmost"),
        ("*.com", "two labels"),
        ("under_score.example", "not allowed"),
        ("-lead.example", "hyphen"),
        ("x" * 64 + ".example", "too long"),
        ("10.0.0.1", "digits"),
    ],
)
def test_bad_hostnames(client: TestClient, store: Store, host: str, word: str) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    head = store.head()
    assert_problem(client.put(f"/v1/domains/{host}", json={"app": "shop"}), 422, word)
    assert store.head() == head


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"name": "Shop"}, "lower-case"),
        ({"name": "a" * 64}, "1-63"),
        ({"name": "shop", "shard_seed": -1}, "shard_seed"),
        ({"name": "shop", "owner": 5}, "owner"),
        ({"name": "shop", "extra": 1}, "extra"),
        ({}, "name"),
    ],
)
def test_bad_apps(client: TestClient, store: Store, body: dict[str, Any], word: str) -> None:
    head = store.head()
    assert_problem(client.post("/v1/apps", json=body), 422, word)
    assert store.head() == head


def test_malformed_json_and_auth(store: Store) -> None:
    with TestClient(create_api(store, token=TOKEN)) as anon:
        r = anon.get("/v1/apps")
        assert_problem(r, 401, "Bearer")
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert_problem(
            anon.get("/v1/apps", headers={"Authorization": "Bearer wrong"}), 401, "not valid"
        )
        r = anon.post(
            "/v1/apps", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
        )
        assert_problem(r, 422, "JSON")
        assert anon.get("/openapi.json").json()["info"]["title"] == "sixpod controller"


def test_vips_and_nodes(client: TestClient, small_lock: Lock) -> None:
    vips = client.get("/v1/vips").json()["items"]
    assert len(vips) == len(small_lock.vips4) + len(small_lock.vips6)
    assert {v["state"] for v in vips} == {"active"}
    v6 = str(small_lock.vips6[0])
    long_form = small_lock.vips6[0].exploded.upper()
    r = client.put(f"/v1/vips/{long_form}", json={"state": "blackholed", "reason": "DDoS"})
    assert r.status_code == 200, r.text
    assert r.json()["address"] == v6
    assert_problem(client.put("/v1/vips/198.51.100.77", json={"state": "drained"}), 404, "pool")
    assert_problem(client.put(f"/v1/vips/{v6}", json={"state": "gone"}), 422, "state")
    assert_problem(client.put("/v1/vips/1.2.3", json={"state": "drained"}), 422, "1.2.3")
    assert client.put("/v1/nodes/edge1", json={"state": "drained"}).json()["state"] == "drained"
    assert_problem(client.put("/v1/nodes/nope", json={"state": "drained"}), 404, "nope")


def test_churn_guard_refuses_mass_removal_unless_forced(
    client: TestClient, store: Store, small_lock: Lock
) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    eps = [ep(small_lock, "edge1", i) for i in range(1, 11)]
    client.post("/v1/apps/shop/endpoints", json={"endpoints": eps})
    texts = [f"[{e['address']}]:8080" for e in eps[:6]]
    head = store.head()
    assert_problem(client.post("/v1/apps/shop/endpoints", json={"remove": texts}), 409, "6 of 10")
    assert store.head() == head
    assert_problem(client.delete("/v1/apps/shop"), 409, "force")
    replace = {
        "endpoints": [ep(small_lock, "edge1", i) for i in range(20, 26)],
        "remove": texts,
    }
    r = client.post("/v1/apps/shop/endpoints", json=replace)
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == 6
    small = client.post("/v1/apps/shop/endpoints", json={"remove": texts[:1] + texts[6:9]})
    assert small.status_code == 200  # 4 of 10: within the limit


BAD_CALLS = [
    ("patch", "/v1/apps/shop", {"owner": 7}, None, 422, "owner"),
    ("patch", "/v1/apps/shop", {"colour": "red"}, None, 422, "colour"),
    ("patch", "/v1/apps/nope", {"owner": "x"}, None, 404, "nope"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": 'W/"1"'}, 412, "weak"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": '"\u00b2"'.encode()}, 412, "never"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": '"1'}, 422, "If-Match"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": '"1" "2"'}, 422, "If-Match"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": ", ,"}, 422, "empty"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": '"998", "999"'}, 412, "998 or 999"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": "abc"}, 422, "If-Match"),
    ("delete", "/v1/apps/nope", None, None, 404, "nope"),
    ("delete", "/v1/apps/shop", None, {"If-Match": '"999"'}, 412, "999"),
    ("get", "/v1/apps?limit=0", None, None, 422, "limit"),
    ("get", "/v1/apps?limit=1001", None, None, 422, "limit"),
    ("get", "/v1/apps/shop/endpoints?after=not-an-endpoint", None, None, 422, "not-an-endpoint"),
    ("get", "/v1/apps/nope/endpoints", None, None, 404, "nope"),
    ("post", "/v1/apps/nope/endpoints", {"endpoints": []}, None, 404, "nope"),
    ("post", "/v1/apps/shop/endpoints", {"remove": ["[2001:db8::1]"]}, None, 422, "port"),
    ("post", "/v1/apps/shop/endpoints", {"remove": ["10.0.0.1:80"]}, None, 422, "IPv6-only"),
    ("post", "/v1/apps/shop/endpoints", {"endpoints": "x"}, None, 422, "endpoints"),
    ("delete", "/v1/apps/shop/endpoints/garbage", None, None, 422, "garbage"),
    (
        "delete",
        "/v1/apps/shop/endpoints/%5B2001:db8:200:1::99%5D:80",
        None,
        None,
        404,
        "no endpoint",
    ),
    ("post", "/v1/apps", b'{"name": "x", "settings": {"n": NaN}}', None, 422, "JSON"),
    ("post", "/v1/apps", b'{"name": "x", "settings": {"k": "\\ud800"}}', None, 422, "settings"),
    ("post", "/v1/apps", {"name": "x", "owner": "a\u0000b"}, None, 422, "owner"),
    ("patch", "/v1/apps/shop", {"owner": "x"}, {"If-Match": "9" * 5000}, 422, "If-Match"),
    ("get", "/v1/apps/a%00b", None, None, 404, "does not exist"),
    ("put", "/v1/nodes/a%00b", {"state": "drained"}, None, 404, "pod.lock"),
    ("get", "/v1/apps?after=a%00b", None, None, 422, "control"),
    ("post", "/v1/publisher/force", {"through": 10**12}, None, 422, "past the last revision"),
    ("get", "/v1/domains/nothere.example", None, None, 404, "nothere.example"),
    ("put", "/v1/domains/x.example", {"app": "nope"}, None, 404, "nope"),
    ("put", "/v1/domains/x.example", {}, None, 422, "app"),
    ("delete", "/v1/domains/nothere.example", None, None, 404, "nothere.example"),
    ("put", "/v1/vips/203.0.113.1", {"state": "active", "reason": "a\nb"}, None, 422, "reason"),
    ("put", "/v1/vips/203.0.113.1", {"state": "active"}, {"If-Match": '"999"'}, 412, "999"),
    ("put", "/v1/nodes/edge1", {"state": "blackholed"}, None, 422, "state"),
    ("post", "/v1/publisher/force", {"through": -1}, None, 422, "through"),
    ("post", "/v1/apps", {"name": "shop"}, None, 409, "already exists"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "word"), BAD_CALLS)
def test_every_operation_refuses_bad_input_and_stores_nothing(
    client: TestClient,
    store: Store,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None,
    status: int,
    word: str,
) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    head = store.head()
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs["headers"]["content-type"] = "application/json"
    elif body is not None:
        kwargs["json"] = body
    assert_problem(client.request(method.upper(), path, **kwargs), status, word)
    assert store.head() == head


def _call(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """Drive the ASGI app by hand: (status, how many body messages it asked for)."""
    import asyncio

    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked <= len(chunks):
            return {
                "type": "http.request",
                "body": chunks[asked - 1],
                "more_body": asked < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/apps",
        "raw_path": b"/v1/apps",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), *headers],
        "client": ("::1", 1),
        "server": ("::1", 80),
    }
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), asked


def test_no_body_byte_is_read_before_the_token_is_checked(store: Store) -> None:
    app = create_api(store, token=TOKEN, max_body=1000)
    body = [b'{"name": "big", "owner": "' + b"x" * 50, b'"}']
    assert _call(app, [], body) == (401, 0)
    assert _call(app, [(b"authorization", b"Bearer wrong-wrong-wrong")], body) == (401, 0)
    assert _call(app, [(b"authorization", AUTH["Authorization"].encode())], body)[0] == 201


def test_bodies_over_the_limit_are_413_declared_or_streamed(store: Store) -> None:
    app = create_api(store, token=TOKEN, max_body=1000)
    auth = (b"authorization", AUTH["Authorization"].encode())
    status, asked = _call(app, [auth, (b"content-length", b"5000000")], [b"x" * 100])
    assert (status, asked) == (413, 0)  # declared: refused before reading
    status, asked = _call(app, [auth], [b"x" * 600, b"x" * 600, b"x" * 600])
    assert (status, asked) == (413, 2)  # streamed: refused once past the limit
    assert _call(app, [auth, (b"content-length", b"\xd9\xa3")], [b"{}"])[0] == 400
    assert store.list_apps().items == []


def test_the_api_socket_sends_small_writes_at_once() -> None:
    """TCP_NODELAY on the listener, inherited by each connection: no 40 ms Nagle stall on
    keep-alive connections."""
    import socket

    from sixpod import addr
    from sixpod.tenants.controller import listen_socket

    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    listener = listen_socket(addr.parse_endpoint(f"[::1]:{port}"))
    with listener, socket.create_connection(("::1", port)):
        conn, _ = listener.accept()
        with conn:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_405_names_every_method_of_the_path(client: TestClient) -> None:
    r = client.put("/v1/apps/shop")
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, PATCH"
    assert r.headers["content-type"] == "application/problem+json"


def test_unknown_or_repeated_query_parameters_are_refused(client: TestClient) -> None:
    assert_problem(client.get("/v1/apps?limt=5"), 422, "'limt'", "limit")
    assert_problem(client.get("/v1/apps?limit=5&limit=6"), 422, "more than once")


def test_the_spec_documents_errors_as_problems_and_the_token(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    patch = spec["paths"]["/v1/apps/{name}"]["patch"]
    assert set(patch["responses"]) >= {"200", "401", "404", "409", "412", "413", "422", "503"}
    for code, answer in patch["responses"].items():
        if code >= "400":
            assert list(answer["content"]) == ["application/problem+json"]
    assert patch["security"] == [{"HTTPBearer": []}]
    name = next(p for p in patch["parameters"] if p["name"] == "name")
    assert name["schema"]["pattern"].startswith("^[a-z0-9]")
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_a_nul_anywhere_in_settings_is_refused(client: TestClient, store: Store) -> None:
    head = store.head()
    for settings in ({"k": "a\x00b"}, {"a\x00": 1}, {"k": [{"deep": "\x00"}]}):
        r = client.post("/v1/apps", json={"name": "shop", "settings": settings})
        assert_problem(r, 422, "settings", "NUL")
    client.post("/v1/apps", json={"name": "shop"})
    assert_problem(client.patch("/v1/apps/shop", json={"settings": {"k": "\x00"}}), 422, "NUL")
    assert client.get("/v1/apps/shop").json()["settings"] == {}
    assert store.head() == head + 1


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("/v1/apps/shop/endpoints", b'{"remove": [], "force": true, "force": false}', "'force'"),
        ("/v1/apps", b'{"name": "a", "name": "b"}', "'name'"),
        ("/v1/apps", b'{"name": "blog", "settings": {"x": 1, "x": 2}}', "'x'"),
    ],
)
def test_duplicate_json_keys_are_refused(
    client: TestClient, store: Store, path: str, body: bytes, key: str
) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    head = store.head()
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_problem(r, 422, key, "more than once")
    assert store.head() == head


@pytest.mark.parametrize("name", ["xn--zz", "ab--cd", "zz--a"])
def test_app_names_with_reserved_ldh_hyphens_are_refused(
    client: TestClient, store: Store, name: str
) -> None:
    head = store.head()
    assert_problem(client.post("/v1/apps", json={"name": name}), 422, name, "positions 3-4")
    assert store.head() == head
    assert client.post("/v1/apps", json={"name": "a--b"}).status_code == 201


def test_an_endpoint_on_the_subnet_router_anycast_address_is_refused(
    client: TestClient, store: Store, small_lock: Lock
) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    head = store.head()
    anycast = {"address": prefix_of(small_lock, "edge1"), "port": 80}
    r = client.post("/v1/apps/shop/endpoints", json={"endpoints": [anycast]})
    assert_problem(r, 422, prefix_of(small_lock, "edge1"), "Subnet-Router anycast")
    assert store.head() == head
    assert client.get("/v1/apps/shop/endpoints").json()["items"] == []


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(store: Store, scheme: str) -> None:
    with TestClient(create_api(store, token=TOKEN)) as anon:
        assert anon.get("/v1/apps", headers={"Authorization": f"{scheme} {TOKEN}"}).is_success
        wrong = anon.get("/v1/apps", headers={"Authorization": f"{scheme} {'x' * 32}"})
        assert_problem(wrong, 401, "not valid")
        other = anon.get("/v1/apps", headers={"Authorization": f"Basic {TOKEN}"})
        assert_problem(other, 401)


def test_two_authorization_headers_are_refused(store: Store) -> None:
    """Which one counts would be up to the framework (the last one did): refuse both."""
    with TestClient(create_api(store, token=TOKEN)) as anon:
        twice = [("Authorization", "Bearer bad"), ("Authorization", f"Bearer {TOKEN}")]
        r = anon.get("/v1/apps", headers=twice)
        assert_problem(r, 400, "Authorization given more than once")
        assert "www-authenticate" not in r.headers


def test_the_unspecified_address_and_huge_duplicate_keys_get_plain_messages(
    client: TestClient, store: Store
) -> None:
    client.post("/v1/apps", json={"name": "shop"})
    head = store.head()
    r = client.post("/v1/apps/shop/endpoints", json={"endpoints": [{"address": "::", "port": 80}]})
    assert_problem(r, 422, "the unspecified address")
    key = "k" * 100_000
    body = '{"name": "x", "settings": {"' + key + '": 1, "' + key + '": 2}}'
    r = client.post("/v1/apps", content=body, headers={"Content-Type": "application/json"})
    assert_problem(r, 422, "given more than once")
    assert len(r.json()["detail"]) < 300
    assert store.head() == head


def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_clients_host(
    client: TestClient,
) -> None:
    r = client.get("/v1/apps/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert_problem(r, 404, "'/v1/apps'")
    assert "location" not in r.headers


def test_certificates_upload_show_list_delete_and_never_the_key(
    client: TestClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    import pki

    chain, key = pki.site("shop.example.com", "*.shop.example.com")
    r = client.put("/v1/certs/Shop.Example.com", json={"chain": chain, "key": key})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["domain"] == "shop.example.com"
    assert got["names"] == ["*.shop.example.com", "shop.example.com"]
    assert got["source"] == "upload"
    assert got["chain_length"] == 2
    shown = client.get("/v1/certs/shop.example.com").json()
    assert shown["fingerprint"] == got["fingerprint"]
    assert [c["domain"] for c in client.get("/v1/certs").json()["items"]] == ["shop.example.com"]
    # the wildcard covers one label below
    r = client.put("/v1/certs/a.shop.example.com", json={"chain": chain, "key": key})
    assert r.status_code == 200
    listed = client.get("/v1/certs", params={"limit": 1}).json()
    assert listed["next"] == "a.shop.example.com"
    for text in (
        r.text,
        client.get("/v1/certs").text,
        client.get("/v1/certs/shop.example.com").text,
    ):
        assert "PRIVATE KEY" not in text
        assert key.splitlines()[1] not in text
    assert "PRIVATE KEY" not in caplog.text
    assert client.delete("/v1/certs/a.shop.example.com").status_code == 204
    assert_problem(client.get("/v1/certs/a.shop.example.com"), 404, "no certificate")
    assert_problem(client.delete("/v1/certs/a.shop.example.com"), 404, "no certificate")


def test_a_bad_certificate_upload_is_422_and_stores_nothing(
    client: TestClient, store: Store
) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    import pki

    head = store.head()
    chain, key = pki.site("shop.example.com")
    _, other_key = pki.site("shop.example.com")
    end = "-----END CERTIFICATE-----\n"
    leaf, inter = (block + end for block in chain.split(end)[:2])
    expired, expired_key = pki.site("shop.example.com", now=dt.datetime.now(dt.UTC) - 200 * pki.DAY)
    # a subjectAltName that does not parse (cryptography reads extensions lazily)
    k = pki.ec.generate_private_key(pki.ec.SECP256R1())
    san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x7f")
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "shop.example.com")])
    now = dt.datetime.now(dt.UTC)
    broken = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(k.public_key())
        .serial_number(1)
        .not_valid_before(now - pki.DAY)
        .not_valid_after(now + pki.DAY)
        .add_extension(san, critical=False)
        .sign(k, pki.hashes.SHA256())
    )
    cases = [
        ({"chain": chain, "key": other_key}, "does not match the certificate"),
        ({"chain": "garbage", "key": key}, "chain: not PEM certificates"),
        ({"chain": chain, "key": "garbage"}, "key: not a PEM private key"),
        ({"chain": expired, "key": expired_key}, "certificate: expired at"),
        ({"chain": inter + leaf, "key": key}, "chain: out of order"),
        ({"chain": pki.pem(broken), "key": pki.key_pem(k)}, "its extensions do not parse"),
        ({"chain": chain}, "key"),
        ({"chain": chain, "key": key, "extra": 1}, "extra"),
        ({"chain": chain, "key": 5}, "key"),
    ]
    for body, words in cases:
        r = client.put("/v1/certs/shop.example.com", json=body)
        assert_problem(r, 422, words)
        assert "PRIVATE KEY" not in r.text
    r = client.put("/v1/certs/other.example.com", json={"chain": chain, "key": key})
    assert_problem(r, 422, "does not cover other.example.com")
    assert_problem(client.put("/v1/certs/bad_name", json={"chain": chain, "key": key}), 422)
    assert client.get("/v1/certs").json()["items"] == []
    assert store.head() == head


def test_validation_errors_are_in_the_operators_words(client: TestClient) -> None:
    """The API's 422s say what is expected, never the validation library's sentences, and
    never echo a key or a long text."""
    leaks = ("Input should", "Field required", "Extra inputs", "valid integer", "String should")
    cases = [
        ({"name": "a", "shard_seed": 99999999999999999999999}, "must be at most 2147483647"),
        ({"name": "a", "shard_seed": "7"}, "expected a whole number"),
        ({"owner": "x"}, "body.name: required"),
        ({"name": "a", "colour": "red"}, "body.colour: not a field of this call"),
        ({"name": 5}, "expected text"),
        ({"name": "a", "owner": "o" * 5000}, "at most 200 characters"),
    ]
    for body, words in cases:
        r = client.post("/v1/apps", json=body)
        assert_problem(r, 422, words)
        assert not any(leak in r.json()["detail"] for leak in leaks), r.json()["detail"]
        assert len(r.json()["detail"]) < 400
    secret = "S" * 70000
    r = client.put("/v1/certs/shop.example.com", json={"chain": "x", "key": secret})
    assert_problem(r, 422, "body.key", "a value not shown")
    assert "SSSS" not in r.text


def test_the_body_limit_setting_must_be_one_the_edge_can_enforce(
    client: TestClient, store: Store
) -> None:
    head = store.head()
    for bad in (-5, 0, "abc", True, 1.5, 2**41):
        r = client.post("/v1/apps", json={"name": "shop", "settings": {"max_body_bytes": bad}})
        assert_problem(r, 422, "settings.max_body_bytes: expected a whole number of bytes")
    assert store.head() == head
    r = client.post("/v1/apps", json={"name": "shop", "settings": {"max_body_bytes": 1024}})
    assert r.status_code == 201
    r = client.patch("/v1/apps/shop", json={"settings": {"max_body_bytes": "1m"}})
    assert_problem(r, 422, "max_body_bytes")
    assert client.get("/v1/apps/shop").json()["settings"] == {"max_body_bytes": 1024}


def test_https_settings_must_be_ones_the_edge_can_apply(client: TestClient, store: Store) -> None:
    head = store.head()
    for key, bad, message in (
        ("https_redirect", "yes", "expected true or false"),
        ("https_redirect", 1, "expected true or false"),
        ("hsts_max_age", -1, "expected whole seconds"),
        ("hsts_max_age", True, "expected whole seconds"),
        ("hsts_max_age", 10**9, "expected whole seconds"),
        ("hsts_max_age", "1y", "expected whole seconds"),
    ):
        r = client.post("/v1/apps", json={"name": "shop", "settings": {key: bad}})
        assert_problem(r, 422, f"settings.{key}: {message}")
    assert store.head() == head
    good = {"https_redirect": True, "hsts_max_age": 31536000}
    assert client.post("/v1/apps", json={"name": "shop", "settings": good}).status_code == 201
    assert client.get("/v1/apps/shop").json()["settings"] == good


def test_an_absent_app_is_404_before_a_fault_in_the_body(client: TestClient) -> None:
    bad_settings = {"settings": {"max_body_bytes": "lots"}}
    assert client.patch("/v1/apps/nope", json=bad_settings).status_code == 404
    bad_endpoint = {"endpoints": [{"address": "not an address", "port": 80}]}
    assert client.post("/v1/apps/nope/endpoints", json=bad_endpoint).status_code == 404
    assert client.delete("/v1/apps/nope/endpoints/garbage").status_code == 404
