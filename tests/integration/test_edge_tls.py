"""HTTPS at the edge: certificates chosen by SNI from the store, through the real publishing
path, into real nginx; HTTP/2, TLS versions, live replacement, tickets, redirect and HSTS."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import pki
from edgekit import PORT, ROOT, Edge, answer, ep, wait_until
from sixpod.edge import tlsfiles
from sixpod.lab.redisproc import RedisServer
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
        store.create_app(app)
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
    wait_until(lambda: (edge.tmp / "run" / "nginx.pid").exists() and edge.nginx_pid() != old,
               timeout=20)  # fmt: skip
    wait_until(lambda: edge.health() == 200, timeout=20)
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
    assert "does not open with this node's sealing key" in (edge.tmp / "agent.log").read_text()


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
    store.update_app("shop", settings={"https_redirect": True, "hsts_max_age": 31536000})
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
    status, _, _ = edge.ns.get("shop.example.com", "/.well-known/acme-challenge/other")
    assert status == 404
    status, _, _ = edge.ns.get("shop.example.com", "/.well-known/acme-challenge/a.b")
    assert status == 404


def test_plain_http_keeps_serving_on_port_80(edge: Edge, sites: dict[str, tuple[str, str]]) -> None:
    start_tls(edge)
    assert answer(edge.ns, "blog.example.org") == "b"
    status, _, _ = edge.ns.get("blog.example.org", base=f"http://127.0.0.1:{PORT}")
    assert status == 200
