"""ACME end to end against a real CA: Debian's pebble, validating HTTP-01 for real.

pebble resolves the test domains through a toy DNS server on loopback (A 127.0.0.1, AAAA
::1) and fetches each challenge from the real edge: store -> publisher -> Redis primary ->
replica -> edge agent -> nginx, which answers it on its HTTP port and then serves the
certificate on HTTPS by SNI. The controller-process test answers through a small responder
over the real tenant reader instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

import acmekit
import pki
import sixpod.cli.tenants
from sixpod.cli import cli
from sixpod.inventory.lock import parse_lock
from sixpod.lab.redisproc import RedisServer, free_port, redis_server, wait_until
from sixpod.tenants import issuance
from sixpod.tenants.api import create_api
from sixpod.tenants.client import Client
from sixpod.tenants.issuer import Issuer, IssuerSettings
from sixpod.tenants.model import AppSpec
from sixpod.tenants.publisher import Publisher
from sixpod.tenants.store import Store
from tenantkit import RunningPublisher, open_store

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "t" * 32
SIXPOD = str(Path(sys.executable).with_name("sixpod"))
DAY = issuance.DAY


class Clock:
    """The issuer's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        import time

        self._time = time.time
        self.offset = 0.0

    def __call__(self) -> float:
        return self._time() + self.offset


@dataclass
class Pod:
    store: Store
    primary: RedisServer
    publisher: Publisher
    pebble: acmekit.Pebble
    edge: acmekit.LoopbackEdge
    dns: acmekit.ToyDns
    clock: Clock
    registry: CollectorRegistry
    issuer: Issuer

    def metric(self, name: str) -> float:
        value = self.registry.get_sample_value(name)
        assert value is not None, name
        return value


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    acmekit.need_pebble()
    lock = parse_lock((EXAMPLES / "small.lock").read_text(), "small.lock")[0]
    store = open_store(f"sqlite:///{tmp_path / 'tenants.db'}", lock)
    http_port = free_port()
    try:
        with (
            redis_server(tmp_path, host="::1") as primary,
            redis_server(tmp_path, host="::1", replica_of=primary) as replica,
            acmekit.dns_server() as dns,
            RunningPublisher(store, primary, debounce=0) as publisher,
            acmekit.LoopbackEdge(tmp_path / "edge", replica, http_port=http_port) as edge,
        ):
            pebble = acmekit.Pebble(tmp_path / "pebble", http_port=http_port, dns_port=dns.port)
            pebble.start()
            try:
                clock = Clock()
                registry = CollectorRegistry()
                settings = IssuerSettings(
                    directory=pebble.directory,
                    account_key=tmp_path / "account.key",
                    contact="ops@example.net",
                    ca_bundle=pebble.ca_bundle,
                    propagation_delay=0.2,
                    order_timeout=30,
                    network_timeout=5,
                )
                issuer = Issuer(
                    store,
                    settings,
                    published=lambda: publisher.published,
                    registry=registry,
                    clock=clock,
                )
                yield Pod(store, primary, publisher, pebble, edge, dns, clock, registry, issuer)
            finally:
                pebble.stop()
    finally:
        store.close()


def _leaf(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem.encode())[0]


def test_account_key_is_made_0600(pod: Pod, tmp_path: Path) -> None:
    assert (tmp_path / "account.key").stat().st_mode & 0o777 == 0o600


def test_new_domain_gets_a_certificate_renewal_replaces_it_and_failures_back_off(
    pod: Pod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pod.store
    store.create_app(AppSpec("shop"))
    for d in ("shop.example", "www.shop.example", "*.wild.example", "up.example"):
        store.attach_domain(d, "shop")
    chain, key = pki.site("up.example")
    store.put_cert("up.example", chain, key)

    # -- a first certificate for every domain that has none (uploads and wildcards aside)
    pod.issuer.tick()
    first = store.get_cert("shop.example")
    assert first.source == "acme"
    assert list(first.names) == ["shop.example"]
    assert "Pebble" in first.issuer
    assert store.get_cert("www.shop.example").source == "acme"
    assert store.get_cert("up.example").source == "upload"
    assert store.list_challenges() == []  # withdrawn after the order
    asked = pod.edge.challenge_requests()
    assert len(asked) >= 2, asked
    assert {(a["host"], a["status"], a["method"]) for a in asked} == {
        ("shop.example", 200, "GET"),
        ("www.shop.example", 200, "GET"),
    }, asked
    assert {"shop.example.", "www.shop.example."} <= {name for name, _ in pod.dns.queries}
    assert pod.metric("sixpod_acme_issued_total") == 2
    views = {f.domain: issuance.view(f, pod.clock(), issuance.Policy()) for f in store.acme_facts()}
    assert views["shop.example"]["status"] == "valid"
    assert views["up.example"]["status"] == "uploaded"
    assert views["*.wild.example"]["status"] == "wildcard"
    # the edge serves it by SNI
    wait_until(lambda: pod.edge.served_fingerprint("shop.example") == first.fingerprint)

    # -- renewal: 29 days before notAfter, a new certificate replaces the old one
    not_after = _leaf_not_after(store, "shop.example")
    pod.clock.offset = not_after - 29 * DAY - pod.clock()
    pod.issuer.tick()
    renewed = store.get_cert("shop.example")
    assert renewed.fingerprint != first.fingerprint
    assert renewed.source == "acme"
    assert pod.metric("sixpod_acme_renewed_total") == 2
    assert store.get_cert("up.example").source == "upload"
    wait_until(lambda: pod.edge.served_fingerprint("shop.example") == renewed.fingerprint)

    # -- the CA unreachable: the failure is recorded with a backoff, the old certificate stays
    pod.pebble.stop()
    pod.clock.offset += 1
    pod.issuer.tick()
    still = store.get_cert("shop.example")
    assert still.fingerprint == renewed.fingerprint
    assert pod.edge.served_fingerprint("shop.example") == renewed.fingerprint
    record = store.acme_domain("shop.example").record
    assert record is not None
    assert record.status is issuance.Status.FAILED
    assert record.failures == 1
    assert "unreachable" in record.error
    assert 45 <= record.next_attempt - pod.clock() <= 75
    assert pod.metric("sixpod_acme_failures_total") == 2
    assert pod.metric("sixpod_acme_domains_in_backoff") == 2
    assert pod.metric("sixpod_acme_soonest_expiry_timestamp_seconds") > 0
    # not retried before its time; a second failure waits twice as long
    pod.issuer.tick()
    assert store.acme_domain("shop.example").record == record
    pod.clock.offset += record.next_attempt - pod.clock() + 1
    pod.issuer.tick()
    again = store.acme_domain("shop.example").record
    assert again is not None
    assert again.failures == 2
    assert 90 <= again.next_attempt - pod.clock() <= 150

    # -- visible in the API and the CLI
    with TestClient(
        create_api(store, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        item = http.get("/v1/acme/shop.example").json()
        assert item["status"] == "failed"
        assert "unreachable" in item["error"]
        assert item["not_after"] == issuance.iso(_leaf_not_after(store, "shop.example"))

        class InProcess(Client):
            def __init__(self, url: str, token: str) -> None:
                self.url = url
                self._http = http

            def close(self) -> None:
                pass

        monkeypatch.setattr(sixpod.cli.tenants, "Client", InProcess)
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        r = CliRunner().invoke(
            cli, ["cert", "status", "--failing", "--json", "--token-file", str(token_file)]
        )
        assert r.exit_code == 0, r.output
        assert [i["domain"] for i in json.loads(r.stdout)] == ["shop.example", "www.shop.example"]

    # -- the CA back: the next attempt succeeds and clears the failure
    pod.pebble.start()
    latest = max(
        r.next_attempt for f in store.acme_facts() if (r := f.record) is not None
    )  # both domains are due, whatever their jitter
    pod.clock.offset += latest - pod.clock() + 1
    pod.issuer.tick()
    done = store.acme_domain("shop.example").record
    assert done is not None
    assert (done.status, done.failures, done.error) == (issuance.Status.VALID, 0, "")
    assert pod.metric("sixpod_acme_domains_in_backoff") == 0


def _leaf_not_after(store: Store, domain: str) -> float:
    facts = store.acme_domain(domain)
    assert facts.cert_not_after is not None
    return facts.cert_not_after


def test_a_challenge_the_edges_do_not_serve_fails_only_that_domain(pod: Pod) -> None:
    store = pod.store
    store.create_app(AppSpec("shop"))
    store.attach_domain("ok.example", "shop")
    store.attach_domain("broken.example", "shop")
    real = store.put_challenge

    def wrong_for_broken(token: str, key_authorization: str, *, domain: str) -> int:
        if domain == "broken.example":
            key_authorization = f"{token}.not-the-thumbprint"
        return real(token, key_authorization, domain=domain)

    store.put_challenge = wrong_for_broken  # type: ignore[method-assign]
    pod.issuer.tick()
    assert store.get_cert("ok.example").source == "acme"
    broken = store.acme_domain("broken.example").record
    assert broken is not None
    assert broken.status is issuance.Status.FAILED
    assert "challenge failed" in broken.error
    assert store.list_challenges() == []


def test_a_challenge_never_published_fails_the_order_and_is_withdrawn(
    pod: Pod, tmp_path: Path
) -> None:
    pod.store.create_app(AppSpec("shop"))
    pod.store.attach_domain("shop.example", "shop")
    stuck = Issuer(
        pod.store,
        IssuerSettings(
            directory=pod.pebble.directory,
            account_key=tmp_path / "account.key",
            ca_bundle=pod.pebble.ca_bundle,
            publish_timeout=0.5,
        ),
        published=lambda: 0,  # Redis never gets there (the publisher is stopped)
    )
    stuck.tick()
    record = pod.store.acme_domain("shop.example").record
    assert record is not None
    assert "not published within" in record.error
    assert pod.store.list_challenges() == []
    assert pod.edge.challenge_requests() == []  # the CA was never asked to validate


def test_the_controller_runs_the_issuer_when_enabled(tmp_path: Path) -> None:
    """``sixpod controller`` with ``acme.enabled``: a domain attached through the API gets
    its certificate, and /metrics counts it."""
    acmekit.need_pebble()
    http_port = free_port()
    api_port = free_port("::1")
    (tmp_path / "token").write_text(TOKEN + "\n")
    seal = tmp_path / "edge-seal.pub"
    seal.write_bytes(
        pki.SEAL_PUBLIC.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with (
        redis_server(tmp_path) as primary,
        acmekit.dns_server() as dns,
        acmekit.Responder(primary, port=http_port, wait=False) as responder,
    ):
        pebble = acmekit.Pebble(tmp_path / "pebble", http_port=http_port, dns_port=dns.port)
        pebble.start()
        config = {
            "listen": [f"[::1]:{api_port}"],
            "token_file": str(tmp_path / "token"),
            "database": f"sqlite:///{tmp_path / 'controller.db'}",
            "lock": str(EXAMPLES / "small.lock"),
            "redis": {"address": primary.address, "password_file": str(primary.password_file)},
            "cert_seal_key": str(seal),
            "acme": {
                "enabled": True,
                "directory": pebble.directory,
                "contact": "ops@example.net",
                "account_key": str(tmp_path / "acme.key"),
                "ca_bundle": str(pebble.ca_bundle),
                "check_interval": 1,
                "propagation_delay": 0.2,
            },
        }
        (tmp_path / "controller.yaml").write_text(json.dumps(config))
        log = (tmp_path / "controller.log").open("ab")
        proc = subprocess.Popen(
            [SIXPOD, "controller", "--config", str(tmp_path / "controller.yaml")],
            stdout=log,
            stderr=log,
        )
        log.close()
        url = f"http://[::1]:{api_port}"
        try:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=auth, timeout=10) as http:

                def up() -> bool:
                    if proc.poll() is not None:
                        raise AssertionError((tmp_path / "controller.log").read_text()[-3000:])
                    try:
                        return http.get("/healthz").status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_until(up, timeout=30, what="controller /healthz")
                assert http.post("/v1/apps", json={"name": "shop"}).status_code == 201
                assert http.put("/v1/domains/shop.example", json={"app": "shop"}).is_success

                def issued() -> bool:
                    return http.get("/v1/acme/shop.example").json()["status"] == "valid"

                wait_until(issued, timeout=60, what="an ACME certificate")
                assert http.get("/v1/certs/shop.example").json()["source"] == "acme"
                metrics = http.get("/metrics").text
                assert "sixpod_acme_issued_total 1.0" in metrics
                assert "sixpod_acme_domains_in_backoff 0.0" in metrics
            assert responder.reader.state.certs["shop.example"].not_after > 0
            assert (tmp_path / "acme.key").stat().st_mode & 0o777 == 0o600
            logged = (tmp_path / "controller.log").read_text()
            assert "shop.example: obtained a certificate" in logged
            assert "PRIVATE KEY" not in logged
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            pebble.stop()
