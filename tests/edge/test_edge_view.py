"""Each worker's view of the tables (host -> app, decoded entries, kept while the epoch in
sixpod_meta stands) against what the admin API changed, with two workers and real nginx."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib

import httpx
import pytest

from edgekit import BACKEND, BACKENDS, PORT, Edge, answer, ep, wait_until
from sixpod.edge.nginxconf import POOLS, pool_name
from sixpod.lab.redisproc import RedisServer
from sixpod.tenants.model import AppSpec
from sixpod.tenants.store import Store

pytestmark = pytest.mark.integration

A = f"[{BACKENDS['a']}] {PORT} 1\n"
B = f"[{BACKENDS['b']}] {PORT} 1\n"


def post(edge: Edge, batch: dict[str, object]) -> tuple[int, str]:
    transport = httpx.HTTPTransport(uds=str(edge.tmp / "run" / "admin" / "admin.sock"))
    with httpx.Client(transport=transport, base_url="http://admin", timeout=5) as c:
        r = c.post("/apply", json=batch)
    return r.status_code, r.text


def answers(edge: Edge, host: str, n: int = 16) -> set[str]:
    """What n requests on n new connections get (both workers take some)."""
    return {answer(edge.ns, host) for _ in range(n)}


def shop_alone(edge: Edge, store: Store) -> str:
    """shop.example.com -> shop -> a, the agent gone (only the test changes the tables),
    every worker's view warm; the generation nginx holds."""
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    store.attach_domain("shop.example.com", "shop")
    edge.start()
    wait_until(lambda: edge.health() == 200)
    wait_until(lambda: answer(edge.ns, "shop.example.com") == "a")
    edge.kill_agent()
    assert answers(edge, "shop.example.com") == {"a"}
    return str(edge.status()["generation"])


def test_every_worker_follows_an_acknowledged_change_at_its_next_request(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    gen = shop_alone(edge, pod[0])
    # a host moved to another app
    assert (
        post(edge, {"generation": gen, "apps": {"blog": B}, "hosts": {"shop.example.com": "blog"}})[
            0
        ]
        == 200
    )
    assert answers(edge, "shop.example.com") == {"b"}
    # the app's entry replaced
    assert post(edge, {"generation": gen, "apps": {"blog": A}})[0] == 200
    assert answers(edge, "shop.example.com") == {"a"}
    # the host deleted: 404 at once, in every worker
    assert post(edge, {"generation": gen, "hosts": {"shop.example.com": None}})[0] == 200
    assert answers(edge, "shop.example.com") == {"404"}
    # back, then its app deleted under it (an app with no entry: 503)
    assert post(edge, {"generation": gen, "hosts": {"shop.example.com": "blog"}})[0] == 200
    assert answers(edge, "shop.example.com") == {"a"}
    assert post(edge, {"generation": gen, "apps": {"blog": None}})[0] == 200
    assert answers(edge, "shop.example.com") == {"503"}
    # a full push into the other slot: the old slot serves until the commit, the new at once
    assert (
        post(
            edge,
            {
                "generation": "g2",
                "begin": True,
                "apps": {"x": B},
                "hosts": {"shop.example.com": "x"},
            },
        )[0]
        == 200
    )
    assert answers(edge, "shop.example.com") == {"503"}
    assert post(edge, {"generation": "g2", "commit": True})[0] == 200
    assert answers(edge, "shop.example.com") == {"b"}
    # and another full push without the host
    assert post(edge, {"generation": "g3", "begin": True, "apps": {"x": B}})[0] == 200
    assert post(edge, {"generation": "g3", "commit": True})[0] == 200
    assert answers(edge, "shop.example.com") == {"404"}


@pytest.mark.parametrize(
    "extra",
    [
        {"certs": {}},  # TLS is off on this node: refused after the hosts applied
        {"apps": "not a table"},  # a Lua error after the hosts applied
        {"challenges": "not a table"},
    ],
)
def test_a_refused_batch_changes_nothing(
    edge: Edge, pod: tuple[Store, RedisServer], extra: dict[str, object]
) -> None:
    """A batch nginx does not acknowledge leaves the tables as they were: otherwise the
    workers keep serving what they cached while the tables say otherwise, until some
    later batch moves the epoch."""
    gen = shop_alone(edge, pod[0])
    status, text = post(edge, {"generation": gen, "hosts": {"shop.example.com": None}, **extra})
    assert status == 400, text
    assert answers(edge, "shop.example.com") == {"a"}
    assert post(edge, {"generation": gen})[0] == 200  # moves the epoch: the tables as they are
    assert answers(edge, "shop.example.com") == {"a"}


def test_every_keepalive_pool_is_found_by_name(edge: Edge, pod: tuple[Store, RedisServer]) -> None:
    """An endpoint in each of the 256 pools (names up to 270 characters): nginx finds every
    block by its name (a miss would be 'no resolver defined' and a 502 of its own)."""
    gen = shop_alone(edge, pod[0])
    ports: dict[int, int] = {}
    addr = f"[{BACKENDS['a']}]"
    p = 20000
    while len(ports) < POOLS:
        ports.setdefault(zlib.crc32(f"{addr} {p}".encode()) % POOLS, p)
        p += 1
    apps = {f"p{i}": f"{addr} {port} 1\n" for i, port in ports.items()}
    hosts = {f"p{i}.example.com": f"p{i}" for i in ports}
    assert post(edge, {"generation": gen, "apps": apps, "hosts": hosts})[0] == 200
    # nothing listens on those ports: each is nginx's connect failure, a 502
    for i in range(POOLS):
        assert answer(edge.ns, f"p{i}.example.com") == "502"
    log = (edge.tmp / "error.log").read_text()
    assert "no resolver" not in log
    assert "sixpod_pool" not in log
    assert len(pool_name(POOLS - 1)) == 12 + 3 + POOLS - 1
    # and a live endpoint in the last pool (the longest name) answers
    port = ports[POOLS - 1]
    edge.ns.spawn(sys.executable, str(BACKEND), BACKENDS["a"], str(port), "last")
    wait_until(lambda: answer(edge.ns, f"p{POOLS - 1}.example.com") == "last")


def test_a_success_after_a_failure_resets_the_count_in_an_idle_worker(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """eject_after 2: timeout, success, timeout on one endpoint is not two in a row, also
    when the success is a request that began before the first timeout and the worker took
    no new request in between (its view, read before the failure, said nothing failing)."""
    store, _ = pod
    edge.configure(
        workers=1, eject_after=2, eject_for=60, upstream_timeout=4, retry_burst=0, retry_ratio=0.0
    )  # no retries: one attempt each
    gen = shop_alone(edge, store)
    # a nearly always, b there so that a may be ejected (never more than half)
    entry = f"[{BACKENDS['a']}] {PORT} 1000000\n[{BACKENDS['b']}] {PORT} 1\n"
    assert post(edge, {"generation": gen, "apps": {"shop": entry}})[0] == 200
    assert answers(edge, "shop.example.com", 4) == {"a"}

    def curl(path: str) -> subprocess.Popen[str]:
        return edge.ns.popen(
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: shop.example.com",
            f"http://[::1]:{PORT}{path}",
        )

    # half a second of margin on each side: the success begins a second after the first
    # request, answers half a second after that one timed out (at 4 s) and half a second
    # before its own timeout
    first = curl("/slow/10")  # a timeout at 4 s: the endpoint's first failure
    time.sleep(1)
    ok = curl("/slow/3.5")  # began before the failure, answers after it
    assert first.communicate(timeout=20)[0] == "504"
    assert ok.communicate(timeout=20)[0] == "200"
    assert curl("/slow/10").communicate(timeout=20)[0] == "504"  # one failure since
    assert edge.status()["ejections"] == 0


def test_a_post_that_times_out_after_it_was_sent_is_no_refused_retry(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """nginx never retries a POST once it was sent (proxy_next_upstream's non_idempotent
    off): its timeout is no retry the budget refused, even with the budget spent; a
    connect failure is (nginx retries one for any method)."""
    store, _ = pod
    edge.configure(workers=1, upstream_timeout=1, retry_burst=0, retry_ratio=0.0)
    gen = shop_alone(edge, store)
    entry = f"[{BACKENDS['a']}] {PORT} 1000000\n[{BACKENDS['b']}] {PORT} 1\n"
    assert post(edge, {"generation": gen, "apps": {"shop": entry}})[0] == 200
    status, _, _ = edge.ns.get("shop.example.com", "/slow/3", "-X", "POST", "-d", "x")
    assert status == 504
    assert edge.status()["retries_refused"] == 0
    # a connect failure (nothing listens on port 1) would have been retried: refused
    dead = f"[{BACKENDS['a']}] 1 1000000\n[{BACKENDS['b']}] {PORT} 1\n"
    assert post(edge, {"generation": gen, "apps": {"shop": dead}})[0] == 200
    status, _, _ = edge.ns.get("shop.example.com", "/", "-X", "POST", "-d", "x")
    assert status == 502
    assert edge.status()["retries_refused"] == 1


def test_an_ejection_in_one_worker_applies_to_the_next_request_in_every_worker(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    store, _ = pod
    edge.configure(workers=2, eject_after=1, eject_for=120)
    gen = shop_alone(edge, store)
    dead = f"[{BACKENDS['a']}] 1 1000\n[{BACKENDS['b']}] {PORT} 1\n"  # port 1: refused
    assert post(edge, {"generation": gen, "apps": {"shop": dead}})[0] == 200
    log = edge.tmp / "access.log"
    before = len(log.read_text().splitlines())
    assert answer(edge.ns, "shop.example.com") == "b"  # a refused, retried on b: ejected
    wait_until(lambda: len(log.read_text().splitlines()) > before)
    # the ejection is counted in the log phase, which may end after the access log's line
    wait_until(lambda: edge.status()["ejections"] == 1)
    before = len(log.read_text().splitlines())
    # new connections until both workers have answered (a loaded machine may hand a run of
    # them to one worker): every answer from b, a never tried again
    sent, deadline = 0, time.monotonic() + 20
    lines: list[dict[str, object]] = []
    while sent < 20 or (len({x["worker"] for x in lines}) < 2 and time.monotonic() < deadline):
        assert answer(edge.ns, "shop.example.com") == "b"
        sent += 1
        wait_until(lambda n=sent: len(log.read_text().splitlines()) >= before + n)
        lines = [json.loads(x) for x in log.read_text().splitlines()[before:]]
    assert {x["upstream"] for x in lines} == {f"[{BACKENDS['b']}]:{PORT}"}
    assert len({x["worker"] for x in lines}) == 2
