"""HTTPS at the edge: certificates chosen by SNI from the store, through the real publishing
path, into real nginx; HTTP/2, TLS versions, live replacement, tickets, redirect and HSTS."""

from __future__ import annotations

import base64
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
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import pki
from edgekit import PORT, ROOT, Edge, answer, ep, wait_until
from sixpod.edge import tls, tlsfiles
from sixpod.lab.redisproc import RedisServer
from sixpod.tenants.model import AppPatch, AppSpec, Cert
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

    def tls12(cipher: str) -> bool:
        r = edge.ns.run(
            "openssl", "s_client", "-connect", f"[::1]:{TLS_PORT}", "-servername",
            "shop.example.com", "-tls1_2", "-cipher", cipher, check=False,
        )  # fmt: skip
        return r.returncode == 0 and "BEGIN CERTIFICATE" in r.stdout

    # TLS 1.2: forward secret AEAD suites only (no static RSA, no CBC, no SHA-1 MACs)
    assert tls12("ECDHE-ECDSA-AES128-GCM-SHA256")
    for weak in ("AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        assert not tls12(weak), weak


def test_a_certificate_replaced_or_removed_applies_live(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    store, _ = pod
    start_tls(edge)
    master = edge.nginx_pid()
    workers = sorted(_workers(master))
    assert handshake(edge, "shop.example.com")["fingerprint"] == fingerprint(sites["shop"][0])
    chain, key = pki.site("shop.example.com")
    store.put_cert("shop.example.com", chain, key)
    wait_until(lambda: handshake(edge, "shop.example.com")["fingerprint"] == fingerprint(chain))
    store.delete_cert("blog.example.org")
    wait_until(lambda: not handshake(edge, "blog.example.org")["ok"])
    # no reload either: the same master and the same workers
    assert edge.nginx_pid() == master
    assert sorted(_workers(master)) == workers
    # no key in any log the edge writes
    for log in ("agent.log", "error.log", "access.log"):
        text = (edge.tmp / log).read_text()
        assert "PRIVATE KEY" not in text, log
        assert key.splitlines()[1] not in text, log


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie its parent has not reaped yet counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_nginx_restarted_gets_every_certificate_again_before_health_passes(
    edge: Edge, sites: dict[str, tuple[str, str]]
) -> None:
    start_tls(edge)
    old = edge.nginx_pid()
    os.kill(old, signal.SIGTERM)
    # observe only the new nginx: the old master exits after its workers
    wait_until(lambda: _gone(old), timeout=20)
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


def test_domains_under_one_intermediate_each_get_their_whole_chain_ecdsa_and_rsa(
    edge: Edge, pod: tuple[Store, RedisServer]
) -> None:
    """A worker parses an intermediate once for every domain it signs (the value carries
    DER and the key in its algorithm's own form): each domain still gets its own leaf and
    key, with the intermediate after it, from every worker, for EC and RSA leaves."""
    store, _ = pod
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    inter = pki.cert("Test Intermediate", int_key, ("Test Root", root_key), ca=True)
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", [ep("a")])
    want = {}
    for name, key in (
        ("ec.example.com", ec.generate_private_key(ec.SECP384R1())),
        ("rsa.example.com", rsa.generate_private_key(65537, 2048)),
        ("ec2.example.com", ec.generate_private_key(ec.SECP256R1())),
    ):
        leaf = pki.cert(name, key, ("Test Intermediate", int_key), names=(name,))
        store.attach_domain(name, "shop")
        store.put_cert(name, pki.pem(leaf, inter), pki.key_pem(key))
        want[name] = [fingerprint(pki.pem(c)) for c in (leaf, inter)]
    start_tls(edge)
    for _ in range(4):  # every worker, each name in turn
        for name, chain in want.items():
            assert _served_chain(edge, name) == chain, name
    status, body, _ = https_get(edge, "rsa.example.com")
    assert (status, json.loads(body)["name"]) == (200, "a")
    assert edge.status()["tls_parse_errors"] == 0


def test_a_batch_with_a_malformed_certificate_value_is_refused_whole(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    """Every value is checked as far as a handshake would need before anything is stored:
    a header this module did not write, lengths past the end, no DER; a value stored could
    otherwise fail every handshake under a version the agent takes as current."""
    start_tls(edge)
    gen = str(edge.status()["generation"])
    good = tls.cert_value(
        Cert("shop.example.com", "f", 1, *sites["shop"][:1], "s"), sites["shop"][1]
    )
    _, header, body = good.split("\n")
    der = base64.b64decode(body)
    total = sum(int(n) for n in header.split()[1:])
    b64 = base64.b64encode
    for value, why in (
        ("no newline", "not VERSION, header and base64 lines"),
        (f"v\n{header}\n!!not base64!!", "its body is not base64"),
        (f"v\n{header}\n", "its body is not base64"),
        (f"v\nec\n{body}", "no certificate lengths"),
        (f"v\nec 0\n{body}", "certificate length 0 is not a number"),
        (f"v\nec -5\n{body}", "certificate length -5 is not a number"),
        (f"v\nec 1234x 5\n{body}", "certificate length 1234x is not a number"),
        (f"v\nec  {total}\n{body}", "a malformed header"),
        (f"v\ndsa {total}\n{body}", "unknown key kind in dsa"),
        (f"v\n{total}\n{body}", "unknown key kind in"),  # the PEM format of old
        (f"v\nec 99999\n{body}", "certificate lengths past the end"),
        (f"v\n{header}\n{b64(der[:total]).decode()}", "certificate lengths past the end"),
        (f"v\n{header}\n{b64(b'x' + der).decode()}", "not DER"),
    ):
        got = edge.admin(
            {"generation": gen, "certs": {"blog.example.org": None, "shop.example.com": value}}
        )
        assert not got["ok"], value
        assert f"the value of shop.example.com: {why}" in str(got["error"]), (value, got)
    # nothing changed: blog.example.org was not deleted, shop.example.com still served
    for sni, site in (("blog.example.org", "blog"), ("shop.example.com", "shop")):
        assert handshake(edge, sni)["fingerprint"] == fingerprint(sites[site][0])


def test_a_stored_certificate_that_cannot_be_served_is_logged_with_its_domain_and_why(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    """Values that pass the batch checks but not the handshake's (a key of a curve uploads
    may not use, a key of another certificate): refused, counted, and said once per worker
    at error level, naming the domain and the cause."""
    start_tls(edge)
    gen = str(edge.status()["generation"])
    p521 = pki.key_pem(ec.generate_private_key(ec.SECP521R1()))
    for chain, key, why in (
        (sites["shop"][0], p521, "the key's curve is not P-256 or P-384"),
        (sites["blog"][0], sites["shop"][1], "OpenSSL refuses it"),  # another leaf's key
    ):
        value = tls.cert_value(Cert("shop.example.com", "f", 1, chain, "s"), key)
        assert edge.admin({"generation": gen, "certs": {"shop.example.com": value}})["ok"]
        before = edge.status()["tls_parse_errors"]
        for _ in range(4):
            assert not handshake(edge, "shop.example.com")["ok"]
        assert edge.status()["tls_parse_errors"] > before
        log = (edge.tmp / "error.log").read_text()
        said = [line for line in log.splitlines() if why in line]
        assert said, log[-2000:]
        assert "[error]" in said[0]
        assert "the certificate of shop.example.com cannot be served" in said[0]
        assert len(said) <= 2  # once per worker (two), not once per handshake
    assert handshake(edge, "blog.example.org")["fingerprint"] == fingerprint(sites["blog"][0])


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


RAWSNI = ROOT / "tests" / "edge" / "rawsni.py"


def raw_sni(edge: Edge, sni: bytes | None) -> dict[str, Any]:
    arg = "-" if sni is None else sni.hex()
    r = edge.ns.run(sys.executable, str(RAWSNI), "::1", str(TLS_PORT), arg, check=False)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_hostile_server_names_get_the_right_certificate_or_none(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    """Any bytes in the SNI extension: a name that is one of ours (in any case, with a
    trailing dot, as an A-label) gets its certificate; anything else (NUL, raw UTF-8, too
    long, an IP literal, our internal keys, empty, none) a refusal; no worker crashes."""
    store, _ = pod
    idn = pki.site("xn--bcher-kva.example")
    store.put_cert("bücher.example", *idn)
    start_tls(edge)
    wait_until(lambda: handshake(edge, "xn--bcher-kva.example")["ok"])
    want = {name: fingerprint(chain) for name, (chain, _) in sites.items()}
    good = {
        b"SHOP.EXAMPLE.COM": want["shop"],
        b"shop.example.com.": want["shop"],
        b"A.Wild.Example.NET.": want["wild"],
        b"XN--BCHER-KVA.example": fingerprint(idn[0]),
    }
    for sni, fp in good.items():
        got = raw_sni(edge, sni)
        assert got.get("fingerprint") == fp, (sni, got)
    bad = [
        b"shop.example.com\x00.evil.example",
        b"shop.example.com\x00",
        "shöp.example.com".encode(),
        "bücher.example".encode(),
        b"shop.example.com..",
        b".shop.example.com",
        b"shop..example.com",
        b"*.wild.example.net",
        b"a.*.wild.example.net",
        b"\x01generation",
        b"a" * 63 + b"." + b"b" * 63 + b"." + b"c" * 63 + b"." + b"d" * 61,
        b"a" * 255,
        b"a" * 1000 + b".shop.example.com",
        b"127.0.0.1",
        b"::1",
        b"[::1]",
        b"shop.example.com:443",
        b"shop.example.com/x",
        b"shop.example.com shop.example.com",
        b"",
        None,
    ]
    for sni in bad:
        got = raw_sni(edge, sni)
        assert not got["ok"], (sni, got)
    # the node still serves, with the workers it had
    assert handshake(edge, "shop.example.com")["fingerprint"] == want["shop"]
    assert "exited on signal" not in (edge.tmp / "error.log").read_text()


_HANDSHAKES = """
import hashlib, json, socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        with socket.create_connection(("::1", int(sys.argv[1])), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=sys.argv[2]) as s:
                der = s.getpeercert(binary_form=True)
                print(hashlib.sha256(der).hexdigest(), flush=True)
    except (OSError, ssl.SSLError):
        print("refused", flush=True)
"""


def test_certificates_deleted_and_replaced_under_handshakes_never_serve_another(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    """Handshakes run without pause while a domain's exact certificate is replaced and then
    deleted (its wildcard takes over), and another domain's is deleted: each handshake gets
    the old certificate, the new one, the wildcard or a refusal, never anything else."""
    store, _ = pod
    exact = pki.site("a.wild.example.net")
    store.put_cert("a.wild.example.net", *exact)
    start_tls(edge)
    first = fingerprint(exact[0])
    wait_until(lambda: handshake(edge, "a.wild.example.net")["fingerprint"] == first)
    clients = {
        sni: edge.ns.popen(sys.executable, "-c", _HANDSHAKES, str(TLS_PORT), sni, "6")
        for sni in ("a.wild.example.net", "blog.example.org")
    }
    time.sleep(1)
    newer = pki.site("a.wild.example.net")
    store.put_cert("a.wild.example.net", *newer)
    time.sleep(1)
    store.delete_cert("a.wild.example.net")
    store.delete_cert("blog.example.org")
    seen = {}
    for sni, p in clients.items():
        out, _ = p.communicate(timeout=30)
        seen[sni] = out.split()
    allowed = {fingerprint(exact[0]), fingerprint(newer[0]), fingerprint(sites["wild"][0])}
    assert set(seen["a.wild.example.net"]) <= allowed, set(seen["a.wild.example.net"]) - allowed
    assert seen["a.wild.example.net"][-1] == fingerprint(sites["wild"][0])
    assert set(seen["blog.example.org"]) <= {fingerprint(sites["blog"][0]), "refused"}
    assert seen["blog.example.org"][-1] == "refused"
    assert len(seen["blog.example.org"]) > 20
    assert "exited on signal" not in (edge.tmp / "error.log").read_text()


def test_redirects_never_leave_the_requested_host_and_challenge_paths_are_safe(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    """The 308 goes to the host the request named, only when it is one of ours with a
    certificate: a Host of someone else's, with userinfo, a port or an absolute-form request
    line cannot make it point elsewhere. ACME challenge paths with dot segments, encoded
    bytes or very long tokens are answered like any path: never a 500, never a file."""
    store, _ = pod
    for app in ("shop", "wild"):
        store.update_app(app, AppPatch(settings={"https_redirect": True, "hsts_max_age": 60}))
    start_tls(edge)
    wait_until(lambda: edge.ns.get("shop.example.com")[0] == 308)
    for host, path, want in (
        ("evil.example", "/", None),
        ("shop.example.com:8080", "/a?b=c", "https://shop.example.com/a?b=c"),
        ("SHOP.example.com.", "/", "https://shop.example.com/"),
        ("x.wild.example.net", "//evil.example/", "https://x.wild.example.net//evil.example/"),
        ("x.y.wild.example.net", "/", None),  # routed by the wildcard, but no certificate
    ):
        status, _, headers = edge.ns.get(host, path)
        if want is None:
            assert status != 308, (host, status)
        else:
            assert (status, headers.get("location")) == (308, want), (host, path)
        assert "strict-transport-security" not in headers
    raw = ROOT / "tests" / "edge" / "rawhttp.py"
    for request in (
        "GET http://evil.example/ HTTP/1.1\\r\\nHost: shop.example.com\\r\\n\\r\\n",
        "GET / HTTP/1.1\\r\\nHost: evil.example@shop.example.com\\r\\n\\r\\n",
        "GET / HTTP/1.1\\r\\nHost: shop.example.com\\r\\nHost: evil.example\\r\\n\\r\\n",
    ):
        line = edge.ns.run(sys.executable, str(raw), str(PORT), request).stdout
        assert " 308 " not in line, (request, line)
    reply = edge.admin({"generation": edge.status()["generation"],
                        "challenges": {"tok": "tok.thumb"}})  # fmt: skip
    assert reply["ok"]
    for path in (
        "/.well-known/acme-challenge/../acme-challenge/tok",
        "/.well-known/acme-challenge/%74ok",
        "/.well-known/acme-challenge/./tok",
    ):
        status, body, _ = edge.ns.get("blog.example.org", path, "--path-as-is")
        assert (status, body) == (200, "tok.thumb"), (path, status, body)
    for path in (
        "/.well-known/acme-challenge/../../../../etc/passwd",
        "/.well-known/acme-challenge/%2e%2e/%2e%2e/etc/passwd",
        "/.well-known/acme-challenge/tok%00",
        "/.well-known/acme-challenge/tok/",
        "/.well-known/acme-challenge/" + "A" * 8000,
        "/.well-known/acme-challenge/" + "%41" * 5000,
    ):
        status, body, _ = edge.ns.get("blog.example.org", path, "--path-as-is")
        assert status in (200, 400, 404, 414), (path, status)
        assert "root:" not in body
        assert body != "tok.thumb", path
    assert "exited on signal" not in (edge.tmp / "error.log").read_text()
    assert "lua entry thread aborted" not in (edge.tmp / "error.log").read_text()


def test_a_session_is_never_resumed_under_a_name_the_edge_would_refuse(
    edge: Edge, pod: tuple[Store, RedisServer], sites: dict[str, tuple[str, str]]
) -> None:
    """OpenSSL skips the certificate phase when a client resumes a session (ticket or
    cache), so the SNI policy must hold before that: a session is never resumed for a name
    the edge would refuse in a full handshake (one it holds no certificate for, or holds no
    longer), in TLS 1.2 and 1.3; under its own name it resumes as before."""
    store, _ = pod
    start_tls(edge)
    for version in ("1.2", "1.3"):
        got = handshakes(
            edge, "shop.example.com", "--version", version, "--count", "3", "--request",
            "--later-sni", "nowhere.example",
        )  # fmt: skip
        assert got[0]["ok"]
        assert [g["ok"] for g in got[1:]] == [False, False], (version, got)
        got = handshakes(
            edge, "shop.example.com", "--version", version, "--count", "2", "--request"
        )
        assert got[1]["reused"], (version, got)
    argv = [sys.executable, str(CLIENT), "::1", str(TLS_PORT), "blog.example.org"]
    clients = {
        version: edge.ns.popen(*argv, "--version", version, "--count", "2", "--wait", "--request")
        for version in ("1.2", "1.3")
    }
    for p in clients.values():
        assert p.stdout is not None
        first = json.loads(p.stdout.readline())
        assert (first["ok"], first["status"]) == (True, 200), first
    store.delete_cert("blog.example.org")
    wait_until(lambda: not handshake(edge, "blog.example.org")["ok"])
    for version, p in clients.items():
        assert p.stdin is not None
        assert p.stdout is not None
        p.stdin.write("\n")
        p.stdin.flush()
        resumed = json.loads(p.stdout.readline())
        assert not resumed["ok"], (version, resumed)
        p.stdin.close()
        p.wait(timeout=10)
        p.stdout.close()
