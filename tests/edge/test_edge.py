"""The edge with real nginx, real Redis and the real publishing path (see edgekit)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgekit import BACKEND, BACKENDS, NODE_NET, PORT, ROOT, Edge, answer, ep, wait_until
from sixpod.lab.redisproc import RedisServer
from sixpod.tenants.model import AppSpec, EndpointRef, EndpointSpec
from sixpod.tenants.store import Store

pytestmark = pytest.mark.integration


def test_routes_by_host_live_without_reload(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, _ = pod
    edge.start()
    wait_until((edge.tmp / "run" / "nginx.pid").exists)
    wait_until(lambda: edge.health() != 0)
    # no tenant state in nginx yet: the announcer withdraws the VIPs (an empty state that
    # the publisher already built counts as state)
    health = edge.health()
    assert health == 503 or edge.status().get("ready"), health
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    store.attach_domain("shop.example.com", "shop")
    store.create_app(AppSpec("blog"))
    store.set_endpoints("blog", [ep("b")])
    store.attach_domain("*.blog.example.org", "blog")
    wait_until(lambda: edge.health() == 200)
    master = edge.nginx_pid()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    assert answer(edge.ns, "SHOP.example.com.:80") == "a"
    assert answer(edge.ns, "x.blog.example.org") == "b"
    status, body, _ = edge.ns.get("nowhere.example.net")
    assert status == 404
    assert "no app" in body
    # live changes: an endpoint replaced, a domain moved, an app emptied
    store.set_endpoints("shop", [ep("c")], remove=[EndpointRef.parse(f"[{BACKENDS['a']}]:{PORT}")])
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "c")
    assert {answer(edge.ns, "shop.example.com") for _ in range(10)} == {"c"}
    store.set_endpoints("blog", [ep("b", state="draining")])
    wait_until(lambda: answer(edge.ns, "x.blog.example.org") == "503")
    status, _, headers = edge.ns.get("x.blog.example.org")
    assert status == 503
    assert headers.get("retry-after")
    store.detach_domain("shop.example.com")
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "404")
    assert edge.nginx_pid() == master


def _logged_request_ids(edge: Edge) -> set[str]:
    text = (edge.tmp / "access.log").read_text()
    return {json.loads(x)["request_id"] for x in text.splitlines()}


def test_forwarded_headers_and_request_id(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, _ = pod
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    store.attach_domain("shop.example.com", "shop")
    edge.start()
    wait_until(lambda: edge.health() == 200)
    status, body, _ = edge.ns.get(
        "Shop.Example.com:80",
        "/",
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        "-H",
        "Connection: x-secret",
        "-H",
        "X-Secret: 1",
    )
    assert status == 200
    h = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert h["x-forwarded-for"] == "6.6.6.6, ::1"
    assert h["forwarded"] == 'for="[::1]";host="shop.example.com";proto=http'
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "shop.example.com"
    assert h["host"] == "shop.example.com"  # what the request was routed by
    assert "x-secret" not in h
    rid = h.get("x-request-id")
    assert rid
    # the access log names the id the container saw, so one request is traced end to end
    wait_until(lambda: rid in _logged_request_ids(edge))
    # an IPv4 client on the IPv4 listener
    status, body, _ = edge.ns.get("shop.example.com", base=f"http://127.0.0.1:{PORT}")
    assert status == 200
    h = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["forwarded"] == 'for=127.0.0.1;host="shop.example.com";proto=http'
    # a client naming the framing and routing headers in Connection cannot strip them
    status, body, _ = edge.ns.get(
        "shop.example.com",
        "/",
        "-H",
        "Connection: content-length, host, x-request-id",
        "-H",
        "X-Request-Id: mine",
        "--data-binary",
        "0123456789",
    )
    assert status == 200
    got = json.loads(body)
    assert got["body_bytes"] == 10
    h = {k.lower(): v for k, v in got["headers"].items()}
    assert h["host"] == "shop.example.com"
    assert h["x-request-id"] == "mine"
    wait_until(lambda: "mine" in _logged_request_ids(edge))


def test_routing_follows_the_request_line_host(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    """An absolute-form request line names the host nginx (and so the container) sees."""
    store, _ = pod
    _shop(store, "a")
    store.create_app(AppSpec("blog"))
    store.set_endpoints("blog", [ep("b")])
    store.attach_domain("blog.example.org", "blog")
    edge.start()
    wait_until(lambda: answer(edge.ns, "blog.example.org") == "b")
    raw = "GET http://blog.example.org/ HTTP/1.1\\r\\nHost: shop.example.com\\r\\n\\r\\n"
    line = edge.ns.run(sys.executable, str(ROOT / "tests" / "edge" / "rawhttp.py"), str(PORT), raw)
    assert line.stdout.split()[1] == "200"
    log = [json.loads(x) for x in (edge.tmp / "access.log").read_text().splitlines()]
    assert log[-1]["app"] == "blog"
    assert log[-1]["upstream"] == f"[{BACKENDS['b']}]:{PORT}"


def test_nginx_restart_is_repopulated_and_agent_death_keeps_traffic(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    store.attach_domain("shop.example.com", "shop")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    edge.kill_agent()
    assert answer(edge.ns, "shop.example.com") == "a"  # nginx keeps serving
    edge.start()  # a new agent adopts the running nginx
    store.set_endpoints("shop", [ep("b")], remove=[EndpointRef.parse(f"[{BACKENDS['a']}]:{PORT}")])
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "b")
    # nginx dies and is restarted with empty shared dicts: the agent pushes everything again
    old = edge.nginx_pid()
    os.kill(old, signal.SIGTERM)
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "b", timeout=20)
    assert edge.nginx_pid() != old


def _shop(store: Store, *names: str) -> None:
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep(n) for n in names])
    store.attach_domain("shop.example.com", "shop")


def test_dead_endpoint_is_retried_then_ejected(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, _ = pod
    _shop(store, "a", "b")
    edge.start()
    wait_until(lambda: edge.health() == 200)
    assert {answer(edge.ns, "shop.example.com") for _ in range(30)} == {"a", "b"}
    victim = edge.ns.procs[0]  # backend "a"
    victim.kill()
    victim.wait(timeout=10)
    got = [answer(edge.ns, "shop.example.com") for _ in range(40)]
    assert set(got) == {"b"}  # connect failures are retried on another endpoint
    status = json.loads(edge.ns.run("curl", "-s", "-g", "http://[::1]:8081/status").stdout)
    assert status["ejections"] >= 1


def test_draining_gets_no_new_requests(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, _ = pod
    _shop(store, "a", "b")
    edge.start()
    wait_until(lambda: edge.health() == 200)
    store.set_endpoints("shop", [ep("a", state="draining")])
    wait_until(lambda: all(answer(edge.ns, "shop.example.com") == "b" for _ in range(10)))
    assert {answer(edge.ns, "shop.example.com") for _ in range(30)} == {"b"}


HOSTILE = {
    "content-length and transfer-encoding": "POST / HTTP/1.1\\r\\nHost: shop.example.com\\r\\n"
    "Content-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n",
    "two content-lengths": "POST / HTTP/1.1\\r\\nHost: shop.example.com\\r\\n"
    "Content-Length: 1\\r\\nContent-Length: 2\\r\\n\\r\\nab",
    "odd transfer-encoding": "POST / HTTP/1.1\\r\\nHost: shop.example.com\\r\\n"
    "Transfer-Encoding: xchunked\\r\\n\\r\\n",
    "obs-fold": "GET / HTTP/1.1\\r\\nHost: shop.example.com\\r\\n"
    "X-A: 1\\r\\n continued\\r\\n\\r\\n",
    "header too large": "GET / HTTP/1.1\\r\\nHost: shop.example.com\\r\\nX-A: "
    + "a" * 20000
    + "\\r\\n\\r\\n",
    "no host": "GET / HTTP/1.1\\r\\n\\r\\n",
    "body over the limit": "POST / HTTP/1.1\\r\\nHost: shop.example.com\\r\\n"
    "Content-Length: 99999999999\\r\\n\\r\\n",
    "too many header fields": "GET / HTTP/1.1\\r\\nHost: shop.example.com\\r\\n"
    + "".join(f"X-H{i}: {i}\\r\\n" for i in range(120))
    + "\\r\\n",
    "quote in host": 'GET / HTTP/1.1\\r\\nHost: sh"op.example.com\\r\\n\\r\\n',
    "chunked then gzip": "POST / HTTP/1.1\\r\\nHost: shop.example.com\\r\\n"
    "Transfer-Encoding: chunked, gzip\\r\\n\\r\\n",
    "many labels in host": "GET / HTTP/1.1\\r\\nHost: " + "a." * 7000 + "com\\r\\n\\r\\n",
    "long label in host": "GET / HTTP/1.1\\r\\nHost: " + "a" * 64 + ".com\\r\\n\\r\\n",
    "many connection options": "GET / HTTP/1.1\\r\\nHost: shop.example.com\\r\\nConnection: "
    + ", ".join(f"x{i}" for i in range(40))
    + "\\r\\n\\r\\n",
}


def test_hostile_requests_get_4xx_and_never_reach_a_container(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    _shop(store, "a")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    for what, raw in HOSTILE.items():
        line = edge.ns.run(
            sys.executable, str(ROOT / "tests" / "edge" / "rawhttp.py"), str(PORT), raw
        )
        code = int(line.stdout.split()[1])
        assert 400 <= code < 500, f"{what}: {line.stdout!r}"
    log = [json.loads(x) for x in (edge.tmp / "access.log").read_text().splitlines()]
    assert all(entry["upstream"] in ("", "-") for entry in log if entry["status"] >= 400)


def test_redis_down_keeps_serving(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, replica = pod
    _shop(store, "a")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    replica.stop()
    time.sleep(1.0)  # let the reader notice
    assert {answer(edge.ns, "shop.example.com") for _ in range(10)} == {"a"}
    assert edge.health() == 200


def test_access_log_is_json_lines(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, _ = pod
    _shop(store, "a")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    entry = json.loads((edge.tmp / "access.log").read_text().splitlines()[-1])
    assert entry["app"] == "shop"
    assert entry["host"] == "shop.example.com"
    assert entry["client"] == "::1"
    assert entry["status"] == 200
    assert entry["upstream"] == f"[{BACKENDS['a']}]:{PORT}"
    assert entry["bytes"] > 0
    assert "request_time" in entry


def test_metrics(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    import httpx

    store, _ = pod
    _shop(store, "a")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    edge.ns.get("nowhere.example.net")

    def scrape() -> str:
        try:
            return httpx.get(edge.metrics_url, timeout=5).text
        except httpx.HTTPError:
            return ""

    # the agent refreshes nginx's counters every check_interval: wait for one after both
    wanted = (
        'sixpod_edge_requests_total{app="-",code="4xx"}',
        'sixpod_edge_requests_total{app="shop",code="2xx"}',
    )
    wait_until(lambda: all(w in scrape() for w in wanted))
    text = scrape()
    assert 'sixpod_edge_upstream_seconds_bucket{le="+Inf"}' in text
    assert "sixpod_edge_full_pushes_total 1.0" in text
    assert "sixpod_edge_ready 1.0" in text
    # an app deleted takes its request counters with it
    store.delete_app("shop", force=True)
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "404")
    wait_until(lambda: 'app="shop"' not in scrape())


def test_agent_restart_and_full_pushes_never_interrupt_serving(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """A new agent loads everything into nginx's other slot and switches at the end: no 404,
    no 503 and no failing health check while it does."""
    store, _ = pod
    edge.configure(chunk_apps=10)
    # one backend answers for a whole /80 of the node's /64 (local route): 150 endpoints
    edge.ns.run("ip", "-6", "route", "add", "local", f"{NODE_NET}:1::/80", "dev", "lo")
    edge.ns.spawn(sys.executable, str(BACKEND), "::", "8090", "any")
    hosts = []
    for i in range(150):
        store.create_app(AppSpec(f"app{i}"))
        store.set_endpoints(f"app{i}", [EndpointSpec.parse(f"{NODE_NET}:1::{i + 1:x}", 8090)])
        store.attach_domain(f"app{i}.example.com", f"app{i}")
        hosts.append(f"app{i}.example.com")
    edge.start()
    wait_until(lambda: edge.health() == 200, timeout=20)
    wait_until(lambda: answer(edge.ns, hosts[-1]) == "any")
    hammer = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            edge.ns.name,
            sys.executable,
            str(ROOT / "tests/edge/hammer.py"),
            str(PORT),
            "6",
            *hosts[::7],
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(2):
        before = edge.status()["generation"]
        edge.kill_agent()
        edge.start()
        wait_until(lambda b=before: edge.status().get("generation") not in ("", b), timeout=20)
    out, _ = hammer.communicate(timeout=30)
    seen = json.loads(out)
    assert set(seen["codes"]) == {"200"}, seen
    assert set(seen["health"]) == {"200"}, seen


def test_config_change_reloads_nginx_and_a_resized_dict_is_refilled(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    _shop(store, "a")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    master = edge.nginx_pid()
    generation = edge.status()["generation"]
    # a config nginx -t refuses is not loaded: nginx keeps serving with the old one
    (edge.tmp / "nginx.conf").write_text(
        (edge.tmp / "nginx.conf").read_text().replace("worker_processes", "worker_procs")
    )
    wait_until(lambda: edge.metric("sixpod_edge_reload_failures_total") == 1.0)
    assert answer(edge.ns, "shop.example.com") == "a"
    # one that passes nginx -t but fails in the master (init_by_lua runs only there): the
    # agent sees no new workers, counts a failure, and nginx serves on with the old one
    good = edge.tmp / "nginx.conf"
    text = good.read_text().replace("worker_procs", "worker_processes")
    good.write_text(text.replace("http {", 'http {\n    init_by_lua_block { error("x") }', 1))
    wait_until(lambda: edge.metric("sixpod_edge_reload_failures_total") == 2.0, timeout=30)
    assert edge.metric("sixpod_edge_reloads_total") == 0.0
    assert answer(edge.ns, "shop.example.com") == "a"
    # resizing the apps dicts empties them on reload: the agent sees it and pushes again
    edge.configure(apps_dict="128m")
    wait_until(lambda: edge.metric("sixpod_edge_reloads_total") == 1.0)
    wait_until(lambda: edge.status().get("generation") not in ("", generation), timeout=20)
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    assert edge.nginx_pid() == master
    assert edge.health() == 200


def test_refused_retries_are_502_and_a_lone_endpoint_is_never_ejected(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    store.create_app(AppSpec("dead"))
    # nothing listens on port 9: every connect is refused
    store.set_endpoints("dead", [EndpointSpec.parse(BACKENDS[n], 9) for n in ("a", "b")])
    store.attach_domain("dead.example.com", "dead")
    store.create_app(AppSpec("lone"))
    store.set_endpoints("lone", [EndpointSpec.parse(BACKENDS["c"], 9)])
    store.attach_domain("lone.example.com", "lone")
    edge.configure(workers=1, retry_burst=0, retry_ratio=0.0)  # a budget that allows none
    edge.start()
    wait_until(lambda: edge.health() == 200)
    codes = {edge.ns.get("dead.example.com")[0] for _ in range(40)}
    assert codes == {502}  # refused retries are 502, never 500
    st = edge.status()
    assert st["retries_refused"] > 0
    assert st["retries"] == 0
    assert st["ejections"] == 1  # one of the two; never both
    assert {edge.ns.get("lone.example.com")[0] for _ in range(10)} == {502}
    assert edge.status()["ejections"] == 1


def test_with_the_retry_budget_spent_the_endpoints_own_503_reaches_the_client(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    store.create_app(AppSpec("busy"))
    store.set_endpoints("busy", [EndpointSpec.parse(BACKENDS[n], 8080) for n in ("a", "b")])
    store.attach_domain("busy.example.com", "busy")
    edge.configure(workers=1, retry_burst=0, retry_ratio=0.0)  # a budget that allows none
    edge.start()
    wait_until(lambda: edge.health() == 200)
    for _ in range(10):
        status, body, _ = edge.ns.get("busy.example.com", "/status/503")
        assert status == 503
        assert json.loads(body)["name"] in ("a", "b")  # the app's answer, not nginx's 502
    st = edge.status()
    assert st["retries"] == 0
    assert st["retries_refused"] == 10


def test_workers_failing_together_never_eject_more_than_half(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """Two workers seeing the same endpoints fail at once still leave half of them."""
    store, _ = pod
    store.create_app(AppSpec("dead"))
    dead = [EndpointSpec.parse(BACKENDS[n], p) for n in ("a", "b") for p in (9, 10)]
    store.set_endpoints("dead", dead)
    store.attach_domain("dead.example.com", "dead")
    edge.configure(workers=2, eject_after=1, eject_for=120)
    edge.start()
    wait_until(lambda: edge.health() == 200)
    url = f"http://[::1]:{PORT}/"
    loop = f"for i in $(seq 25); do curl -s -o /dev/null -H 'Host: dead.example.com' {url}; done"
    clients = [edge.ns.spawn("sh", "-c", loop) for _ in range(8)]
    for c in clients:
        c.wait(timeout=120)
    assert 1 <= edge.status()["ejections"] <= 2


def test_an_apps_own_502_does_not_eject_and_every_attempt_is_timed(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    _shop(store, "a", "b")
    edge.configure(workers=1)
    edge.start()
    wait_until(lambda: edge.health() == 200)
    for _ in range(30):
        assert edge.ns.get("shop.example.com", "/status/502")[0] == 502
    st = edge.status()
    assert st["ejections"] == 0
    assert st["retries"] > 0  # GET is idempotent: retried on the other endpoint
    attempts = 30 + st["retries"]
    wait_until(lambda: edge.metric("sixpod_edge_upstream_seconds_count") == attempts)
    assert {answer(edge.ns, "shop.example.com") for _ in range(20)} == {"a", "b"}


def test_upstream_connections_are_reused(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    """Requests to an endpoint ride the keepalive connections of its pool: a handful of
    connections for many requests, not one each."""
    store, _ = pod
    _shop(store, "a", "b")
    edge.configure(workers=1)
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") in ("a", "b"))
    ports: dict[str, set[int]] = {"a": set(), "b": set()}
    for _ in range(40):
        status, body, _ = edge.ns.get("shop.example.com")
        assert status == 200
        got = json.loads(body)
        ports[got["name"]].add(got["peer_port"])
    assert all(ports.values()), ports  # both endpoints served
    assert all(len(p) <= 2 for p in ports.values()), ports


def test_per_app_body_limit(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, _ = pod
    store.create_app(AppSpec("small", settings={"max_body_bytes": 10}))
    store.set_endpoints("small", [ep("a")])
    store.attach_domain("small.example.com", "small")
    edge.start()
    wait_until(lambda: answer(edge.ns, "small.example.com") == "a")
    assert edge.ns.get("small.example.com", "/", "--data-binary", "x" * 10)[0] == 200
    assert edge.ns.get("small.example.com", "/", "--data-binary", "x" * 11)[0] == 413
    chunked = ("-H", "Transfer-Encoding: chunked", "--data-binary")
    assert edge.ns.get("small.example.com", "/", *chunked, "x" * 11)[0] == 413
    assert edge.ns.get("small.example.com", "/", *chunked, "x" * 5)[0] == 200


def test_websocket_passes_through(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    store, _ = pod
    _shop(store, "a")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    r = edge.ns.run(
        sys.executable, str(ROOT / "tests/edge/wsclient.py"), str(PORT), "shop.example.com", "hi"
    )
    status_line, echoed = r.stdout.splitlines()
    assert status_line.split()[1] == "101"
    assert echoed == "hi"
    # an Upgrade the client's Connection does not name, or not to websocket, is not passed
    for extra in (
        ("-H", "Upgrade: h2c", "-H", "Connection: Upgrade"),
        ("-H", "Upgrade: websocket"),
    ):
        status, body, _ = edge.ns.get("shop.example.com", "/", *extra)
        assert status == 200
        h = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
        assert "upgrade" not in h, extra
        assert h.get("connection", "").lower() != "upgrade", extra


def test_connections_over_the_per_client_limit_get_429(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    _shop(store, "a")
    edge.configure(conn_per_client=1, workers=1)
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    slow = edge.ns.spawn(
        *("curl", "-s", "-o", "/dev/null", "-g", "--max-time", "10"),
        *("-H", "Host: shop.example.com", f"http://[::1]:{PORT}/slow/3"),
    )
    time.sleep(0.5)
    assert edge.ns.get("shop.example.com")[0] == 429
    # the limit counts an IPv6 client's /64 (one subscriber), not each of its addresses
    for ip in ("2001:db8:c1::1", "2001:db8:c1::2", "2001:db8:c2::1"):
        edge.ns.run("ip", "addr", "add", f"{ip}/128", "dev", "lo", "nodad")
    slow = edge.ns.spawn(
        *("curl", "-s", "-o", "/dev/null", "-g", "--max-time", "10"),
        *("--interface", "2001:db8:c1::1", "-H", "Host: shop.example.com"),
        f"http://[::1]:{PORT}/slow/3",
    )
    time.sleep(0.5)
    assert edge.ns.get("shop.example.com", "/", "--interface", "2001:db8:c1::2")[0] == 429
    assert edge.ns.get("shop.example.com", "/", "--interface", "2001:db8:c2::1")[0] == 200
    slow.wait(timeout=15)
    assert edge.ns.get("shop.example.com")[0] == 200


def test_in_flight_requests_complete_across_changes(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    _shop(store, "a")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    slow = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            edge.ns.name,
            "curl",
            "-s",
            "-g",
            "--max-time",
            "20",
            "-H",
            "Host: shop.example.com",
            f"http://[::1]:{PORT}/slow/2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)
    store.set_endpoints("shop", [ep("b")], remove=[EndpointRef.parse(f"[{BACKENDS['a']}]:{PORT}")])
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "b")
    edge.kill_agent()
    edge.start()
    out, _ = slow.communicate(timeout=30)
    assert json.loads(out)["name"] == "a"  # started on "a", finished there


def test_a_full_dict_keeps_the_old_state_serving(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    _shop(store, "a")
    edge.configure(apps_dict="32k")
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    store.create_app(AppSpec("huge"))
    store.set_endpoints(
        "huge", [EndpointSpec.parse(f"{NODE_NET}::{i:x}", PORT) for i in range(0x100, 0x900)]
    )
    store.attach_domain("huge.example.com", "huge")
    wait_until(lambda: edge.metric("sixpod_edge_push_errors_total") >= 1)
    assert edge.metric("sixpod_edge_not_stored") == 1.0  # the app that does not fit
    assert answer(edge.ns, "shop.example.com") == "a"
    assert edge.health() == 200
    assert edge.ns.get("huge.example.com")[0] in (404, 503)
    # what does not fit never holds back the changes after it
    store.set_endpoints("shop", [ep("b")], remove=[EndpointRef.parse(f"[{BACKENDS['a']}]:{PORT}")])
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "b")
    # once it is gone, nothing is left waiting
    store.delete_app("huge", force=True)
    wait_until(lambda: edge.metric("sixpod_edge_not_stored") == 0.0)
    assert edge.metric("sixpod_edge_pending_changes") == 0.0


def test_nginx_starts_before_the_announcer_puts_the_vips_on_lo(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """nginx binds VIPs that are not on lo yet (ip_nonlocal_bind) and serves them once the
    announcer adds them, also after it removed and re-added them (its restart)."""
    store, _ = pod
    _shop(store, "a")
    vip6, vip4 = "2001:db8:ffff::80", "203.0.113.80"
    edge.configure(listen=[f"[{vip6}]:{PORT}", f"{vip4}:{PORT}", f"[::1]:{PORT}"])
    edge.start()
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    for _ in range(2):
        edge.ns.run("ip", "addr", "add", f"{vip6}/128", "dev", "lo", "nodad")
        edge.ns.run("ip", "addr", "add", f"{vip4}/32", "dev", "lo")
        for base in (f"http://[{vip6}]:{PORT}", f"http://{vip4}:{PORT}"):
            status, body, _ = edge.ns.get("shop.example.com", base=base)
            assert status == 200
            assert json.loads(body)["name"] == "a"
        edge.ns.run("ip", "addr", "del", f"{vip6}/128", "dev", "lo")
        edge.ns.run("ip", "addr", "del", f"{vip4}/32", "dev", "lo")
