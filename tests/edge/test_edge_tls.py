"""HTTPS at the edge: certificates chosen by SNI from the store, through the real publishing
path, into real nginx; HTTP/2, TLS versions, live replacement, tickets, redirect and HSTS."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import pki
from edgekit import PORT, ROOT, Edge, answer, ep, wait_until
from sixpod.edge import tlsfiles
from sixpod.lab.redisproc import RedisServer
from sixpod.tenants.model import AppPatch, AppSpec
from sixpod.tenants.store import Store

pytestmark = pytest.mark.integration

TLS_PORT = 8443
CLIENT = ROOT / "tests" / "edge" / "tlsclient.py"


def fingerprint(chain: str) -> str:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(chain.encode())
    return leaf.fingerprint(pki.hashes.SHA256()).hex()


def handshakes(edge: Edge, sni: str, *extra: str, host: str = "::1") -> list[dict[str, Any]]:
    r = edge.ns.run(sys.executable, str(CLIENT), host, str(TLS_PORT), sni, *extra, check=False)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def handshake(edge: Edge, sni: str, *extra: str, host: str = "::1") -> dict[str, Any]:
    return handshakes(edge, sni, *extra, host=host)[0]


def https_get(
    edge: Edge, host: str, path: str = "/", *extra: str
) -> tuple[int, str, dict[str, str]]:
    return edge.ns.get(
        host,
        path,
        "-k",
        "--resolve",
        f"{host}:{TLS_PORT}:[::1]",
        *extra,
        base=f"https://{host}:{TLS_PORT}",
    )


def start_tls(edge: Edge, **tls: object) -> None:
    key = edge.tmp / "edge-seal.key"
    key.write_bytes(
        pki.SEAL_PRIVATE.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key, 0o600)
    section = {
        "listen": [f"[::1]:{TLS_PORT}", f"127.0.0.1:{TLS_PORT}"],
        "seal_key": str(key),
        "certs_dict": "16m",
        **tls,
    }
    edge.configure(tls=section)
    edge.start()
    wait_until(lambda: edge.health() == 200, timeout=20)


@pytest.fixture
def sites(pod: tuple[Store, RedisServer]) -> dict[str, tuple[str, str]]:
    store, _ = pod
    out = {
        "shop": pki.site("shop.example.com"),
        "blog": pki.site("blog.example.org"),
        "wild": pki.site("*.wild.example.net"),
    }
    for app, domain, backend in (
        ("shop", "shop.example.com", "a"),
        ("blog", "blog.example.org", "b"),
        ("wild", "*.wild.example.net", "c"),
    ):
        store.create_app(AppSpec(app))
        store.set_endpoints(app, [ep(backend)])
        store.attach_domain(domain, app)
    store.put_cert("shop.example.com", *out["shop"])
    store.put_cert("blog.example.org", *out["blog"])
    store.put_cert("*.wild.example.net", *out["wild"])
    return out


def test_each_domain_gets_its_certificate_by_sni_over_ipv6_and_ipv4(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    start_tls(edge)
    for sni, site in (
        ("shop.example.com", "shop"),
        ("Blog.Example.org.", "blog"),
        ("a.wild.example.net", "wild"),
    ):
        got = handshake(edge, sni)
        assert got["ok"], got
        assert got["fingerprint"] == fingerprint(sites[site][0])
    assert handshake(edge, "shop.example.com", host="127.0.0.1")["fingerprint"] == fingerprint(
        sites["shop"][0]
    )
    # a wildcard covers one label only; an unknown name or no name: the handshake is refused
    for sni in ("a.b.wild.example.net", "wild.example.net", "nowhere.example", ""):
        got = handshake(edge, sni)
        assert not got["ok"], (sni, got)
    assert edge.status()["tls_refused"] >= 4
    # HTTP/2 by ALPN, and a request through it reaches the app
    assert handshake(edge, "shop.example.com", "--alpn", "h2,http/1.1")["alpn"] == "h2"
    status, body, _ = https_get(edge, "shop.example.com", "/", "--http2", "-w", "%{http_version}")
    assert status == 200
    assert body.endswith("2")
    assert json.loads(body[:-1])["headers"]["X-Forwarded-Proto"] == "https"
    status, body, _ = https_get(edge, "x.wild.example.net")
    assert (status, json.loads(body)["name"]) == (200, "c")


def test_only_tls_1_2_and_1_3(edge: Edge, sites: dict[str, tuple[str, str]]) -> None:
    start_tls(edge)
    assert handshake(edge, "shop.example.com", "--version", "1.3")["version"] == "TLSv1.3"
    assert handshake(edge, "shop.example.com", "--version", "1.2")["version"] == "TLSv1.2"
    old = handshake(edge, "shop.example.com", "--version", "1.1")
    assert not old["ok"]
    assert "version" in old["error"].lower()


def test_a_certificate_replaced_or_removed_applies_live(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    store, _ = pod
    start_tls(edge)
    master = edge.nginx_pid()
    assert handshake(edge, "shop.example.com")["fingerprint"] == fingerprint(sites["shop"][0])
    chain, key = pki.site("shop.example.com")
    store.put_cert("shop.example.com", chain, key)
    wait_until(lambda: handshake(edge, "shop.example.com")["fingerprint"] == fingerprint(chain))
    store.delete_cert("blog.example.org")
    wait_until(lambda: not handshake(edge, "blog.example.org")["ok"])
    assert edge.nginx_pid() == master


def test_nginx_restarted_gets_every_certificate_again_before_health_passes(
    edge: Edge, sites: dict[str, tuple[str, str]]
) -> None:
    start_tls(edge)
    old = edge.nginx_pid()
    os.kill(old, signal.SIGTERM)
    # until the new nginx holds this agent's certificates again, health never passes
    seen: list[tuple[int, bool]] = []

    def back() -> bool:
        health = edge.health()  # first: a 200 then means the mark was there before status
        st = edge.status()
        seen.append((health, bool(st.get("certs_mark"))))
        return bool(st) and st.get("ready") is True and seen[-1] == (200, True)

    wait_until(back, timeout=20)
    assert edge.nginx_pid() != old
    assert all(marked for health, marked in seen if health == 200)
    assert handshake(edge, "shop.example.com")["fingerprint"] == fingerprint(sites["shop"][0])
    assert edge.status()["certs_mark"]


def test_a_key_sealed_for_another_pod_is_not_loaded_and_the_rest_is(
    tmp_path: Path, edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    store, _ = pod
    start_tls(edge)
    other = Store(store.url, seal_key=X25519PrivateKey.generate().public_key())
    chain, key = pki.site("stray.example.com")
    other.put_cert("stray.example.com", chain, key)
    other.close()
    store.put_cert("late.example.com", *pki.site("late.example.com"))
    wait_until(lambda: handshake(edge, "late.example.com")["ok"])
    assert not handshake(edge, "stray.example.com")["ok"]
    assert handshake(edge, "shop.example.com")["ok"]
    wait_until(lambda: edge.metric("sixpod_edge_certs_unopened") == 1)


def test_session_tickets_resume_across_reloads_until_their_key_is_rotated_out(
    edge: Edge, sites: dict[str, tuple[str, str]]
) -> None:
    start_tls(edge, ticket_rotate=3600)
    run = str(edge.tmp / "run")
    client = edge.ns.popen(
        sys.executable, str(CLIENT), "::1", str(TLS_PORT), "shop.example.com",
        "--count", "5", "--wait", "--request",
    )  # fmt: skip
    assert client.stdout is not None
    assert client.stdin is not None

    def next_connection() -> dict[str, Any]:
        assert client.stdin is not None
        assert client.stdout is not None
        client.stdin.write("\n")
        client.stdin.flush()
        return json.loads(client.stdout.readline())

    first = json.loads(client.stdout.readline())
    assert first["ok"]
    assert not first["reused"]
    assert next_connection()["reused"]
    for rotations in (1, 2, 3):
        master, key = edge.nginx_pid(), tlsfiles.ticket_path(run, 0).read_bytes()
        past = time.time() - 7200
        os.utime(tlsfiles.ticket_path(run, 0), (past, past))
        wait_until(lambda old=key: tlsfiles.ticket_path(run, 0).read_bytes() != old)
        time.sleep(1.0)  # the reload: new workers
        assert edge.nginx_pid() == master
        got = next_connection()
        # three keys are kept: the first ticket's key decrypts until the third rotation
        assert got["reused"] == (rotations < 3), rotations
    client.stdin.close()
    client.wait(timeout=10)
    client.stdout.close()
    log = [json.loads(x) for x in (edge.tmp / "access.log").read_text().splitlines()]
    assert {x["tls_resumed"] for x in log if x["tls"]} >= {"r", "."}
    assert len({x["worker"] for x in log if x["tls"]}) >= 2


def test_redirect_and_hsts_per_app_and_acme_challenges_are_never_redirected(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    store, _ = pod
    store.update_app("shop", AppPatch(settings={"https_redirect": True, "hsts_max_age": 31536000}))
    start_tls(edge)
    wait_until(lambda: edge.ns.get("shop.example.com")[0] == 308)
    status, _, headers = edge.ns.get("shop.example.com", "/cart?id=7")
    assert status == 308
    assert headers["location"] == "https://shop.example.com/cart?id=7"
    assert "strict-transport-security" not in headers  # never on plain HTTP
    status, _, headers = https_get(edge, "shop.example.com")
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=31536000"
    # another app: neither
    assert answer(edge.ns, "blog.example.org") == "b"
    status, _, headers = https_get(edge, "blog.example.org")
    assert status == 200
    assert "strict-transport-security" not in headers
    # a challenge nginx holds is answered on plain HTTP for any host, even a redirected one
    reply = edge.admin({"generation": edge.status()["generation"],
                        "challenges": {"tok-1_A": "tok-1_A.thumb"}})  # fmt: skip
    assert reply["ok"]
    status, body, _ = edge.ns.get("shop.example.com", "/.well-known/acme-challenge/tok-1_A")
    assert (status, body) == (200, "tok-1_A.thumb")
    # any other token is the app's own ACME client's: routed to it, never redirected
    status, body, _ = edge.ns.get("shop.example.com", "/.well-known/acme-challenge/other")
    assert (status, json.loads(body)["name"]) == (200, "a")
    status, body, _ = edge.ns.get("shop.example.com", "/.well-known/acme-challenge/a.b")
    assert (status, json.loads(body)["name"]) == (200, "a")


def test_plain_http_keeps_serving_on_port_80(edge: Edge, sites: dict[str, tuple[str, str]]) -> None:
    start_tls(edge)
    assert answer(edge.ns, "blog.example.org") == "b"
    status, _, _ = edge.ns.get("blog.example.org", base=f"http://127.0.0.1:{PORT}")
    assert status == 200


def _served_chain(edge: Edge, sni: str) -> list[str]:
    """SHA-256 fingerprints of every certificate the edge sends for ``sni`` (openssl)."""
    r = edge.ns.run(
        "openssl", "s_client", "-connect", f"[::1]:{TLS_PORT}", "-servername", sni,
        "-showcerts", check=False,
    )  # fmt: skip
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    return [
        x509.load_pem_x509_certificate(b.encode()).fingerprint(hashes.SHA256()).hex()
        for b in blocks
    ]


def _site_with_two_intermediates(name: str) -> tuple[str, str, str]:
    """One leaf and key, and two chains for it: the same intermediate (same name, same key)
    issued twice, as a CA does when it reissues or cross-signs an intermediate."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    inter1 = pki.cert("Test Intermediate", int_key, ("Test Root", root_key), ca=True)
    inter2 = pki.cert(
        "Test Intermediate", int_key, ("Test Root", root_key), ca=True,
        end=dt.datetime.now(dt.UTC) + 400 * pki.DAY,
    )  # fmt: skip
    leaf = pki.cert(name, leaf_key, ("Test Intermediate", int_key), names=(name,))
    return pki.pem(leaf, inter1), pki.pem(leaf, inter2), pki.key_pem(leaf_key)


def test_a_new_chain_for_the_same_leaf_is_served(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """The classic fix "I forgot / had the wrong intermediate": same leaf, new chain. The
    worker LRU and the agent's full sync both key on the leaf fingerprint only."""
    store, _ = pod
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    store.attach_domain("shop.example.com", "shop")
    chain1, chain2, key = _site_with_two_intermediates("shop.example.com")
    store.put_cert("shop.example.com", chain1, key)
    start_tls(edge)
    want1 = [fingerprint(c) for c in re.findall(r"-----BEGIN.*?-----END CERTIFICATE-----\n",
                                                 chain1, re.S)]  # fmt: skip
    want2 = [fingerprint(c) for c in re.findall(r"-----BEGIN.*?-----END CERTIFICATE-----\n",
                                                 chain2, re.S)]  # fmt: skip
    assert want1[0] == want2[0]
    assert want1[1] != want2[1]
    for _ in range(8):  # every worker parses and caches chain1
        assert _served_chain(edge, "shop.example.com") == want1
    store.put_cert("shop.example.com", chain2, key)
    # the agent pushes the new value at once; give it 5 s, then every handshake must send
    # the new intermediate
    got: list[list[str]] = []

    def all_new() -> bool:
        got[:] = [_served_chain(edge, "shop.example.com") for _ in range(8)]
        return all(g == want2 for g in got)

    with contextlib.suppress(AssertionError):
        wait_until(all_new, timeout=5)
    stale = sum(g == want1 for g in got)
    assert all(g == want2 for g in got), f"{stale} of {len(got)} handshakes sent the old chain"


def test_sni_that_is_not_a_hostname_gets_no_certificate(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """'.wild.example.net' and '*.wild.example.net' are not names a wildcard covers
    (RFC 6125 6.4.3): they should be refused like any unknown name."""
    store, _ = pod
    store.create_app(AppSpec("wild"))
    store.set_endpoints("wild", [ep("c")])
    store.attach_domain("*.wild.example.net", "wild")
    store.put_cert("*.wild.example.net", *pki.site("*.wild.example.net"))
    start_tls(edge)
    assert _served_chain(edge, "a.wild.example.net")
    got = {
        sni: bool(_served_chain(edge, sni)) for sni in (".wild.example.net", "*.wild.example.net")
    }
    assert got == {".wild.example.net": False, "*.wild.example.net": False}, got


def test_hsts_max_age_zero_is_sent_so_a_site_can_withdraw_hsts(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """RFC 6797 6.1.1: max-age=0 is how a host tells browsers to forget its HSTS policy.
    The store accepts 0 and documents it as "no header", so a site that once sent HSTS has
    no way to withdraw it."""
    store, _ = pod
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    store.attach_domain("shop.example.com", "shop")
    store.put_cert("shop.example.com", *pki.site("shop.example.com"))
    store.update_app("shop", AppPatch(settings={"hsts_max_age": 0}))
    start_tls(edge)
    status, _, headers = https_get(edge, "shop.example.com")
    assert status == 200
    assert headers.get("strict-transport-security") == "max-age=0", headers


def test_no_redirect_into_a_handshake_the_edge_would_refuse(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """https_redirect on an app whose domain has no certificate: served over HTTP (a 308
    would send every visitor into a refused handshake); once a certificate is there, 308."""
    store, _ = pod
    store.create_app(AppSpec("blog"))
    store.set_endpoints("blog", [ep("b")])
    store.attach_domain("blog.example.org", "blog")
    store.update_app("blog", AppPatch(settings={"https_redirect": True}))
    start_tls(edge)
    assert edge.ns.get("blog.example.org")[0] == 200
    store.put_cert("blog.example.org", *pki.site("blog.example.org"))
    wait_until(lambda: edge.ns.get("blog.example.org")[0] == 308)
    assert handshake(edge, "blog.example.org")["ok"]


_WS = """
import socket, sys, time
s = socket.create_connection(("::1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.1\\r\\nHost: shop.example.com\\r\\nConnection: Upgrade\\r\\n"
          b"Upgrade: websocket\\r\\n\\r\\n")
assert b" 101 " in s.recv(4096)
print("up", flush=True)
while True:
    s.sendall(b"ping"); s.recv(16); time.sleep(0.5)
"""


def _workers(master: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                out.append(int(d.name))
    return out


def test_reloads_do_not_pile_up_old_workers_held_by_long_connections(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """Every ticket rotation is a reload; an old worker held by a busy websocket is closed
    after drain_timeout, so rotations never leave worker generations behind."""
    store, _ = pod
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    store.attach_domain("shop.example.com", "shop")
    store.put_cert("shop.example.com", *pki.site("shop.example.com"))
    edge.configure(drain_timeout=2)
    start_tls(edge)
    run = str(edge.tmp / "run")
    master = edge.nginx_pid()
    base = len(_workers(master))
    for _ in range(3):
        ws = edge.ns.popen(sys.executable, "-c", _WS, str(PORT))
        assert ws.stdout is not None
        assert ws.stdout.readline().strip() == "up"
        key = tlsfiles.ticket_path(run, 0).read_bytes()
        past = time.time() - 2 * 86400  # older than ticket_rotate
        os.utime(tlsfiles.ticket_path(run, 0), (past, past))
        wait_until(lambda old=key: tlsfiles.ticket_path(run, 0).read_bytes() != old)
        time.sleep(1.0)
    wait_until(lambda: len(_workers(master)) <= base, timeout=10)
